"""Persistent items a full lane could not take: they stay pending in the store and are queued
again, in order, when their lane has room (:class:`Spill`).

A lane holds at most ``QUEUE_MAX`` items (:mod:`hooknb.core.lanes`).  A temporary hook's item that
does not fit is dropped (journaled ``dropped``); a persistent hook's is already in the inbox, so
nothing is lost by leaving it there: from the first entry that did not fit, the hook *spills*:
its new entries are not queued either (they would overtake the ones left behind), and the
engine's watchdog, once the lane is down to half its size, reads the next entries of the hook
from the store (:meth:`hooknb.core.inbox.Inbox.pending`) and queues them.  When the store has
no more of them than fit, the hook stops spilling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .inbox import Entry
from .lanes import Lane

if TYPE_CHECKING:
    from ..xmpp.events import Item
    from .inbox import Inbox


class Spill:
    """The hooks whose entries wait in the store for room in their lane (loop thread only)."""

    def __init__(self, inbox: Inbox, room: Callable[[], int]) -> None:
        self._inbox = inbox
        self._room = room  # how many items a lane may hold (read when needed: tests change it)
        self._from: dict[str, tuple[int, Any]] = {}  # hook id -> (first seq left in the store, client)
        self._skipped: dict[str, int] = {}  # hook id -> entries left in the store since the last refill
        self._refilling: set[str] = set()

    def __contains__(self, hook_id: str) -> bool:
        return hook_id in self._from

    def __len__(self) -> int:
        return len(self._from)

    def start(self, hook_id: str, client: Any, entry: Entry) -> None:
        """``entry`` (and every later one of the hook) did not fit its lane: it waits in the store."""
        if hook_id not in self._from:
            self._from[hook_id] = (entry.seq, client)
            self._skipped[hook_id] = 0

    def skip(self, hook_id: str, count: int = 1) -> None:
        """``count`` new entries of a spilling hook were left in the store."""
        self._skipped[hook_id] += count

    def forget(self, hook_ids: set[str] | list[str]) -> None:
        """The hooks' lanes stopped (deleted, lease lost): their pending entries are queued anew
        whenever the process takes them again."""
        for hook_id in hook_ids:
            self._from.pop(hook_id, None)
            self._skipped.pop(hook_id, None)

    def refill(self, lanes: dict[str, Lane], item: Callable[[Entry], Item]) -> None:
        """Queue the next stored entries of each spilling hook whose lane is down to half its size."""
        for hook_id, (first, client) in list(self._from.items()):
            lane = lanes.get(hook_id)
            if lane is None or lane.closed:
                self.forget([hook_id])
            elif hook_id not in self._refilling and lane.waiting() <= self._room() // 2:
                self._refilling.add(hook_id)
                asyncio.get_running_loop().create_task(self._refill(hook_id, lane, first, client, item))

    async def _refill(self, hook_id: str, lane: Lane, first: int, client: Any, item: Callable[[Entry], Item]) -> None:
        try:
            skipped = self._skipped.get(hook_id, 0)
            limit = self._room() - lane.waiting()
            rows = await asyncio.to_thread(self._inbox.pending, lane.hook.account, hook_id, first, limit)
            if hook_id not in self._from:  # forgotten meanwhile
                return
            work = [(item(entry), entry) for entry in map(Entry.from_row, rows)]
            taken = lane.offer(client, work)
            if taken < len(work):
                self._from[hook_id] = (work[taken][1].seq, client)
            elif len(rows) < limit and self._skipped.get(hook_id) == skipped:
                self.forget([hook_id])  # all read, and none left behind since
            else:
                self._from[hook_id] = ((rows[-1][0] + 1) if rows else first, client)
        finally:
            self._refilling.discard(hook_id)
