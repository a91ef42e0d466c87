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

extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode", "magicref"]
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
html_theme = "alabaster"
html_theme_options = {"description": "XMPP PubSub hooks in Jupyter"}
