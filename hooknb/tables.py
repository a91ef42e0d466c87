"""The host's read side: its journals, hooks, gaps and accounts as DataFrames (:class:`Tables`).

A part of :class:`hooknb.host.Host`.  pandas is imported when a table is first asked for
(:mod:`hooknb.frames` builds them), never by the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import accounts
from .storage.journal import Run

if TYPE_CHECKING:
    import pandas as pd


class Tables:
    """What a host shows as tables (its state: ``events``, ``runs``, ``store``, ``inbox``,
    ``clients``, ``sessions``; its methods ``list_hooks``, ``account`` and ``quarantined``)."""

    events: Any
    runs: Any
    store: Any
    inbox: Any
    clients: Any
    sessions: Any

    def events_frame(self, node: str | None = None, last: int | None = None,
                     expand: bool = False, account: str | None = None) -> pd.DataFrame:
        """The events journal as a DataFrame (``received`` in UTC, categoricals for repeats); with
        ``expand``, typed columns of known payloads (a post's ``title``...: :mod:`hooknb.xmpp.views`)."""
        from . import frames

        rows = [e for e in self.events.snapshot() if accounts.shows(e, node, account)]
        return frames.events(rows[-last:] if last else rows, typed=expand)

    def runs_frame(self, node: str | None = None, last: int | None = None, hook: str | None = None,
                   account: str | None = None) -> pd.DataFrame:
        """The runs journal as a DataFrame (``start`` in UTC, ``duration`` in seconds)."""
        from . import frames

        rows = [r for r in self.runs.snapshot() if accounts.shows(r, node, account) and (not hook or r.hook_id == hook)]
        return frames.records(rows[-last:] if last else rows, Run, {"ts": "start"})

    def wait_runs(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` runs in all have been journaled (False on timeout)."""
        return self.runs.wait(count, timeout)

    def wait_events(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` events in all have been journaled (False on timeout)."""
        return self.events.wait(count, timeout)

    def hooks_frame(self, account: str | None = None) -> pd.DataFrame:
        """:meth:`list_hooks` as a DataFrame (``last_run`` as UTC datetimes)."""
        from . import frames

        return frames.hooks(self.list_hooks(account))

    def gaps(self, account: str | None = None) -> pd.DataFrame:
        """Recorded gaps: nodes where items published while away were no longer all held."""
        from . import frames

        return frames.gaps(self.store.gaps(account))

    def status(self, account: str | None = None) -> pd.DataFrame:
        """One row per account (or ``account``'s): state, last error, reconnects, streams ``resumed`` after a
        cut (XEP-0198) and the stanzas the server ``replayed`` then, subscriptions, who runs its
        persistent hooks, gaps, why the ``store`` cannot be written, items ``quarantined``, warnings, nodes
        waited for, ``unsolicited``."""
        from . import frames

        return frames.accounts({**self.sessions[c.jid].status(c), "store": self.inbox.status,
                                "quarantined": len(self.quarantined(c.jid))} for c in self.clients.values()
                               if not account or c.jid == self.account(account))
