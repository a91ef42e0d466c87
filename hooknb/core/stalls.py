"""Stalled hooks: a sync hook whose abandoned runs reached the cap, and what waits for it.

Python cannot stop a thread, so a sync run past its timeout is abandoned (journaled ``timeout``)
and a fresh thread carries on with the hook's next items, up to ``MAX_ABANDONED`` abandoned
threads per hook (:mod:`hooknb.core.lanes`).  At that cap the hook is **stalled**: no thread takes its
items, which wait (each is run, or dropped with a record when its queue is full, never lost in
silence).  As soon as one of its abandoned threads returns, that thread takes the items again:
the hook recovers by itself.

* The engine's watchdog looks at each busy lane every ``WATCH_PERIOD`` (:meth:`Stalls.check`),
  and keeps looking at a stalled one until its stall is over; it is
  the one writer of ``hook.stalled_since``: the hook's status is ``stalled`` meanwhile
  (listings, the hook manager widget, ``hooknb run``'s ``stalled`` and ``recovered`` records).
* The stall of a persistent hook is also written to the store (the ``stalls`` table, naming the
  process), off the loop, so that another process (``hooknb pubsub hook list``) can show it.  It
  is shown only while that process still holds the account's lease: a stall row left by a
  process that died says nothing.
* A listing (:meth:`Stalls.listing`) gives each hook its ``items_waiting``: the items queued in
  its lane and not started, for a hook run in this process; for a persistent hook run by
  another process (or by none), its inbox entries whose run has not ended.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import HooknbError
from .hooks import STALLED, Hook

if TYPE_CHECKING:
    from .lanes import Lane
    from ..storage.store import Store

log = logging.getLogger(__name__)


class Stalls:
    """Notes stalls as the engine's watchdog sees them, and says them in listings."""

    def __init__(self, store: Callable[[], Store]) -> None:
        self._store = store
        self._writing = threading.Lock()  # one store write at a time, each of the state then

    def check(self, lane: Lane) -> None:
        """Set or clear the stall of the lane's hook (loop thread, called by the watchdog)."""
        hook = lane.hook
        stalled = lane.stalled
        if stalled == (hook.stalled_since is not None):
            return
        hook.stalled_since = time.time() if stalled else None
        if hook.persistent:
            threading.Thread(target=self._write, args=(hook,), name="hooknb-stall", daemon=True).start()

    def _write(self, hook: Hook) -> None:
        with self._writing:
            try:
                self._store().set_stall(hook.id, hook.account, hook.stalled_since)
            except HooknbError as exc:  # the hook's own status still says it
                log.warning("hook %s: its stall could not be written to the store: %s", hook.id, exc)

    def listing(self, hooks: Iterable[Hook], here: Callable[[Hook], bool], waiting: Callable[[str], int],
                lease_ttl: float) -> list[dict[str, Any]]:
        """The listing records of ``hooks`` (:meth:`Hook.summary`) with their ``items_waiting``;
        ``here`` tells the hooks this process runs, ``waiting`` their queued items; for the
        others, the store says (a stall counts while its process holds a lease younger than
        ``lease_ttl``)."""
        hooks = list(hooks)
        elsewhere = {h.id for h in hooks if h.persistent and not here(h)}
        stalled: set[str] = set()
        pending: dict[str, int] = {}
        if elsewhere:
            store, accounts = self._store(), {h.account for h in hooks if h.id in elsewhere}
            stalled, pending = store.stalls(accounts, lease_ttl), store.waiting(accounts)
        rows = []
        for hook in hooks:
            if hook.id not in elsewhere:
                rows.append(hook.summary(waiting(hook.id)))
                continue
            row = hook.summary(pending.get(hook.id, 0))
            if hook.id in stalled:
                row["status"] = STALLED
            rows.append(row)
        return rows
