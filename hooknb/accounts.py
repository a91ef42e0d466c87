"""Which account a command acts on: one rule for the API, the magics and the command line; and
which journal rows a view limited to one account shows.

The account named (``account=``, ``--jid``; for the magics, ``HookMagics.default_account`` when
set); else ``$HOOKNB_JID``; else the account this process connected last (``%hook connect``,
``hooknb.connect``: connecting an account again makes it the default again); else the only
account that has hooks in the store; else one line asking for one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from .errors import HooknbError

ENV = "HOOKNB_JID"


def choose(given: str | None, last: str | None, stored: Callable[[], Iterable[str]]) -> str:
    """The account to act on: ``given``, else ``$HOOKNB_JID``, else ``last`` (the last connected),
    else the one account of ``stored()`` (the accounts with hooks in the store)."""
    for choice in (given, os.environ.get(ENV, "").strip(), last):
        if choice:
            return choice
    accounts = sorted(set(stored()))
    if len(accounts) == 1:
        return accounts[0]
    if accounts:
        raise HooknbError(f"which account? the store holds hooks of {', '.join(accounts)}: give --jid "
                          f"(or set ${ENV})")
    raise HooknbError(f"no account: give --jid JID, set ${ENV}, or connect one first (%hook connect JID, "
                      "hooknb.connect(JID))")


def shows(row: Any, node: str | None, account: str | None) -> bool:
    """Whether a view of ``node`` and ``account`` (None: any) shows a journal row (an event, a run)."""
    return (not node or row.node == node) and (not account or row.account == account)
