"""``python -m hooknb.server``: start or stop a throwaway local XMPP server."""

import sys

from .cli import main

sys.exit(main())
