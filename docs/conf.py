"""Sphinx configuration of hooknb's documentation (``make docs`` builds it with warnings as errors)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

from hooknb import __version__  # noqa: E402

project = "hooknb"
author = "the hooknb developers"
copyright = "the hooknb developers"  # noqa: A001
release = version = __version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode", "magicref", "myst_nb"]
exclude_patterns = ["_build", "notebooks/.ipynb_checkpoints"]
# The notebooks (docs/notebooks is a link to ../notebooks) are rendered with the outputs they are
# committed with, which tests/test_notebooks.py keeps those of a real run: never executed here.
nb_execution_mode = "off"
autodoc_member_order = "bysource"
html_theme = "alabaster"
html_theme_options = {"description": "XMPP PubSub hooks in Jupyter"}
