"""Trying a hook on what its node already holds: replays over the node's stored items.

``host.replay(hook, last=N)`` or ``since=datetime`` (``%hook replay``, ``%%hook replay`` for a
cell's code, ``hooknb pubsub hook replay``) fetches the items the node holds, page by page where
the service pages (:meth:`hooknb.xmpp.client.Client.astored_items`), and runs the hook on each, in
publish order, one at a time, with the hook's timeout.  Each run is journaled with ``replay``
set, its output captured as any run's.  Nothing else changes: no inbox entry, no node position,
no done mark, so the hook's live runs are exactly what they would have been.  A disabled hook
replays like any other: that is how it is tried before it is enabled.

* ``last=N``: the N newest items; ``since``: the items whose payload says it was made at or
  after ``since`` (an Atom entry's ``published``, else its ``updated``; a location's
  ``timestamp``; see :mod:`hooknb.xmpp.views`).  PubSub items carry no date of their own, so items
  without one are left out of a ``since`` replay and counted (:attr:`Replay.undated`).  Neither:
  every item the node holds.
* A ``--from`` hook replays only the items whose publisher the service names and lists; the
  others are journaled as ``skipped`` replays, with the reason, as live items are.
* A replay of many items shows a progress bar (:mod:`hooknb.core.progress`) in a notebook or
  on a terminal.
* Replays run items as ``publish`` events: a hook that does not take them (``--on retract``),
  or a before/after hook, cannot be replayed.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..xmpp import views
from ..errors import HooknbError
from ..xmpp.events import Event, Item
from ..storage.journal import Run
from . import progress
from .outcome import Outcome

if TYPE_CHECKING:
    from ..xmpp.client import Client
    from .invoke import Invoker
    from .hooks import Hook

#: The payload columns (see :mod:`hooknb.xmpp.views`) that date an item, the first present wins.
DATE_COLUMNS = ("published", "updated", "timestamp")


class Replay(list):
    """The journaled runs of one replay, oldest item first (a list of :class:`~hooknb.storage.journal.Run`),
    with how many items the node gave and how many a ``since`` replay left out for want of a date."""

    def __init__(self, runs: list[Run], hook_id: str, fetched: int, undated: int) -> None:
        super().__init__(runs)
        self.hook_id, self.fetched, self.undated = hook_id, fetched, undated

    def summary(self) -> str:
        """One line: how many items, how the runs ended, what was left out."""
        statuses: dict[str, int] = {}
        for run in self:
            statuses[run.status] = statuses.get(run.status, 0) + 1
        ended = ", ".join(f"{count} {status}" for status, count in statuses.items())
        line = f"hook {self.hook_id} replayed on {len(self)} item(s)" + (f": {ended}" if ended else "")
        if self.undated:
            line += f"; {self.undated} item(s) left out: their payload gives no date to compare with --since"
        return line


def dated(event: Event) -> datetime | None:
    """When the item's payload says it was made (UTC), or None."""
    columns = views.extract(event.payload)
    for name in DATE_COLUMNS:
        value = columns.get(name)
        if isinstance(value, datetime):
            return value
    return None


def check(hook: Hook, last: int | None, since: datetime | None) -> None:
    """A clear :class:`HooknbError` when ``hook`` cannot be replayed so."""
    if last is not None and since is not None:
        raise HooknbError("replay: give last or since, not both")
    if last is not None and last < 1:
        raise HooknbError(f"replay: last must be at least 1, not {last}")
    if hook.phase != "event":
        raise HooknbError(f"hook {hook.id} is a {hook.phase} hook: it runs on this toolkit's own "
                          "publish and retract, so there is nothing stored to replay it on")
    if "publish" not in hook.kinds:
        raise HooknbError(f"hook {hook.id} runs on {', '.join(sorted(hook.kinds))} events: a replay runs "
                          "a hook on stored items (publish events) only")


def _refusal(hook: Hook, event: Event) -> str | None:
    """Why a ``--from`` hook does not take ``event`` (None when it does)."""
    if not hook.publishers:
        return None
    if event.publisher is None:
        return f"--from: publisher unknown, {event.service} did not say who published the item"
    publisher = event.publisher.split("/")[0]
    return None if publisher in hook.publishers else f"--from: published by {publisher}, not in the list"


async def areplay(invoker: Invoker, client: Client, hook: Hook, last: int | None = None,
                  since: datetime | None = None, cell: dict[str, Any] | None = None) -> Replay:
    """Run ``hook`` on its node's stored items (see the module docstring) through ``client`` (the
    account's connection, or one of its own), what they print shown under ``cell`` (default: the
    cell that created the hook); the journaled runs."""
    check(hook, last, since)
    events = await client.astored_items(hook.node, hook.service, last=last)
    fetched, undated = len(events), 0
    if since is not None:
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        dates = [dated(e) for e in events]
        undated = sum(d is None for d in dates)
        events = [e for e, d in zip(events, dates) if d is not None and d >= since]
    runs = []
    with progress.bar(len(events), f"replay of hook {hook.id}") as shown:
        for event in events:
            item, reason = Item(event), _refusal(hook, event)
            if reason is not None:
                runs.append(invoker.record(hook, item, time.time(), 0.0, Outcome("skipped", error=reason),
                                           replay=True))
            else:
                runs.append((await invoker.call_inline(hook, client, item, replay=True, cell=cell))[1])
            shown.update()
    return Replay(runs, hook.id, fetched, undated)


async def arun_latest(invoker: Invoker, client: Client, hook: Hook) -> Run:
    """Run ``hook`` once, now, on the newest item of its node (a live run: ``replay`` unset)."""
    items = await client.aget_items(hook.node, hook.service, max_items=1)
    if not items:
        raise HooknbError(f"node {hook.node!r} on {hook.service} has no item to run the hook on")
    _outcome, run = await invoker.call_inline(hook, client, Item(items[-1]))
    return run
