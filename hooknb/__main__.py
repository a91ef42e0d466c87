"""``python -m hooknb``: the ``hooknb`` command line."""

import sys

from .frontends.cli import main

sys.exit(main())
