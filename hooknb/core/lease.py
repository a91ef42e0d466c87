"""One account's lease: which process runs its persistent hooks (:class:`Lease`).

A lease row in the store names its holder; the holder renews it every ``LEASE_BEAT`` seconds and
a lease older than ``LEASE_TTL`` is free, so when the holder dies another process takes it within
``LEASE_TTL + STANDBY_POLL`` seconds; a holder that ends cleanly (``host.close()``, the
interpreter's exit, a kernel shut down or restarted, SIGTERM of ``hooknb run``) releases it, and a
standby takes it within ``STANDBY_POLL`` seconds.  The set of accounts this process runs (``active``, read by
the engine's dispatch) has one writer: the :class:`Lease` of each account's session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..xmpp import loop as _loop

if TYPE_CHECKING:
    from ..storage.store import Store

LEASE_TTL = 6.0
LEASE_BEAT = 2.0
STANDBY_POLL = 0.25  # seconds between a standby's looks at a lease held elsewhere


class Lease:
    """The lease of one account, as this process (``holder``) sees and holds it."""

    def __init__(self, store: Callable[[], Store], active: set[str], holder: str) -> None:
        self._store = store
        self._active = active
        self.holder = holder
        self.account = ""
        #: The lease row as last read: holder, expiry and who the holder is (``info``); None if free.
        self.row: dict[str, Any] | None = None

    @property
    def held(self) -> bool:
        """Whether this process runs the account's persistent hooks."""
        return bool(self.account) and self.account in self._active

    def describe(self) -> str:
        """Who runs the account's persistent hooks, in words."""
        if self.held:
            return "this process"
        if not self.row:
            return "nobody"
        info = self.row["info"]
        return f"{info.get('program')} (pid {info.get('pid')} on {info.get('host')})"

    async def take(self, force: bool, take: bool) -> bool:
        """Renew the lease, or take it if it is free (or ``force``) and ``take`` says this
        process has persistent hooks to run; True if this process holds it now."""
        self.row = await asyncio.to_thread(self._store().acquire_lease, self.account, self.holder,
                                           LEASE_TTL, force, take)
        mine = self.row is not None and self.row["holder"] == self.holder
        if mine:
            self._active.add(self.account)
        else:
            self._active.discard(self.account)
        return mine

    def drop(self) -> None:
        """Stop running the account's persistent hooks here (the row stays until released or
        expired)."""
        self._active.discard(self.account)

    async def release(self) -> None:
        """Stop running them here and free the row at once, if this process holds it."""
        self.drop()
        await _loop.to_thread(self._store().release_lease, self.account, self.holder)
