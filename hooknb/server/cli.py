"""``python -m hooknb.server start|stop``: the command line of the local server."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import HooknbError
from .info import KINDS
from .lifecycle import start, stop

DESCRIPTION = "A throwaway local XMPP server (Prosody by default, ejabberd on request) on a loopback port."


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m hooknb.server``."""
    parser = argparse.ArgumentParser(prog="python -m hooknb.server", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="start a local server in the background, print JSON")
    p_start.add_argument("--dir", required=True, help="directory holding the server's files")
    p_start.add_argument("--accounts", default="alice,bob", help="comma-separated account names")
    p_start.add_argument("--kind", choices=KINDS, default=None,
                         help="server (default: prosody, or the kind already in --dir)")
    p_start.add_argument("--storage", choices=("internal", "memory"), default=None,
                         help="storage of the PubSub component (default: internal)")
    p_start.add_argument("--port", type=int, default=None)
    p_start.add_argument("--plaintext", dest="tls", action="store_false", default=None,
                         help="no TLS: accept plaintext clients only (for tests of plaintext)")
    p_start.add_argument("--stanza-limit", type=int, default=None, metavar="BYTES",
                         help="the largest stanza clients may send (default 4 MiB)")
    p_start.add_argument("--stream-limits", action="store_true", default=None,
                         help="Prosody: advertise the stanza limit to clients (XEP-0478)")
    p_start.add_argument("--resume-window", type=int, default=None, metavar="SECONDS",
                         help="how long a cut stream can be resumed (XEP-0198; default 60; 0: never)")
    p_stop = sub.add_parser("stop", help="stop the server living in --dir")
    p_stop.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            info = start(args.dir, args.accounts.split(","), kind=args.kind, storage=args.storage,
                         port=args.port, tls=args.tls, stanza_limit=args.stanza_limit,
                         stream_limits=args.stream_limits, resume_window=args.resume_window)
            print(json.dumps(info.public()))
        else:
            print(json.dumps({"stopped": stop(args.dir)}))
    except HooknbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
