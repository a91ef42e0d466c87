"""The subcommands that act on one hook by its id, with what they do: ``enable`` / ``disable``,
``retry`` / ``discard`` (its quarantined items, :mod:`hooknb.core.quarantine`).

Part of the one grammar of the magics and the command line (:mod:`hooknb.frontends.grammar`).
"""

from __future__ import annotations

import argparse
from typing import Any


#: ``enable`` / ``disable`` and what each does.
SWITCHES = {"enable": "run a disabled hook again, from the next item on",
            "disable": "run a hook no more, journal what it would run"}


def _on_hook(sub: Any, actions: dict[str, str], more: str) -> list[argparse.ArgumentParser]:
    """A subcommand ``ACTION HOOK`` per action (what it does, then ``more`` in its description)."""
    parsers = []
    for name, what in actions.items():
        p = sub.add_parser(name, help=what, description=f"{what[:1].upper()}{what[1:]}.  {more}")
        p.add_argument("hook", metavar="HOOK", help="the hook's id (see list)")
        parsers.append(p)
    return parsers


def add_switches(sub: Any) -> list[argparse.ArgumentParser]:
    """``enable HOOK`` and ``disable HOOK``."""
    return _on_hook(sub, SWITCHES, "A disabled hook journals each item it would have run (status would_run) "
                                   "and runs nothing.")


#: ``retry`` / ``discard`` (quarantined items, :mod:`hooknb.core.quarantine`) and what each does.
QUARANTINE = {"retry": "run a hook's quarantined items again",
              "discard": "drop a hook's quarantined items, never run"}


def add_quarantine(sub: Any) -> list[argparse.ArgumentParser]:
    """``retry HOOK [ITEM]`` and ``discard HOOK [ITEM]``."""
    parsers = _on_hook(sub, QUARANTINE, "An item of a persistent hook is quarantined when its runs ended with "
                                        "their process (or worker process) dying as many times as the attempts "
                                        "limit (list shows how many per hook); a retried one starts its count "
                                        "from zero.")
    for p in parsers:
        p.add_argument("item", metavar="ITEM", nargs="?", default=None,
                       help="the item's id (default: every quarantined item of the hook)")
    return parsers
