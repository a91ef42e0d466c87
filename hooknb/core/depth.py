"""The loop guard: how deep in a chain of hooks an item is.

A hook that publishes to its own node, or two hooks publishing to each other's nodes, would run
for ever.  So every item carries a *depth*: 0 for an item published from outside any hook's run,
``d + 1`` for an item published (or retracted) from inside the run of a hook on an item of depth
``d``.  A hook does not run on an item as deep as its ``max_depth`` (``--max-depth``,
:data:`MAX_DEPTH` by default, the limit AWS Lambda uses for recursive loops): the item is
journaled with status ``loop`` instead, and the chain stops there.

The server does not carry our depth, so it travels like this:

1. while a hook runs, :func:`running` holds the depth of its item in a context variable (set on
   the worker thread of a sync hook, in the task of an async one; it follows the run into
   ``client.publish``, whose coroutine is started from that context);
2. when a publish or retract is made from inside a run (:meth:`Depths.note`, called by the engine
   for every operation it intercepts), the operation is given an item id if it has none (chosen
   here, so that its notification can be told apart before the server answers) and the
   (kind, service, node, item id) is remembered with depth ``d + 1`` for :data:`KEEP` seconds;
3. when the notification of that item arrives, :meth:`Depths.of` gives its depth back, and the
   engine makes the hooks' :class:`~hooknb.xmpp.events.Item` with it (``item.depth``).

Limits: the depth is known in the process that published the item (a chain through another
process, or one restarted from the inbox after a restart, starts again at 0); threads a hook
starts itself do not carry it.  The registry is used on the loop thread only.
"""

from __future__ import annotations

import time
import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..xmpp.operations import Operation
    from ..xmpp.events import Event

#: The depth at which a chain of hooks stops, unless a hook says otherwise (``--max-depth``).
MAX_DEPTH = 16
#: Seconds an item published from a run is remembered, waiting for its notification.
KEEP = 60.0
#: Items remembered at most (the oldest are forgotten first).
KEEP_MAX = 10_000

_current: ContextVar[int | None] = ContextVar("hooknb_depth", default=None)


def current() -> int | None:
    """The depth of the item whose hook is running here, None outside any hook's run."""
    return _current.get()


class running:  # noqa: N801 - used as a function: ``with running(depth):``
    """Mark the code run inside as a hook's run on an item of ``depth`` (a class, not a
    generator: it is entered at every run)."""

    __slots__ = ("depth", "token")

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def __enter__(self) -> None:
        self.token = _current.set(self.depth)

    def __exit__(self, *_exc: object) -> None:
        _current.reset(self.token)


class Depths:
    """The items published from hooks' runs whose notifications may still come (loop thread)."""

    def __init__(self, keep: float = KEEP, keep_max: int = KEEP_MAX) -> None:
        self.keep, self.keep_max = keep, keep_max
        self._items: dict[tuple[str, str, str, str], tuple[int, float]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def note(self, op: Operation) -> int:
        """The depth of an operation about to be sent (0 outside a hook's run).  Inside a run, a
        publish without an item id gets one, and the item is remembered with its depth."""
        parent = current()
        if parent is None:
            return 0
        if op.item_id is None:
            op.item_id = uuid.uuid4().hex
        now = time.monotonic()
        items = self._items
        key = (op.op, op.service, op.node, op.item_id)
        items.pop(key, None)  # re-inserted last: the dict stays in order of expiry
        items[key] = (parent + 1, now + self.keep)
        while items:
            oldest = next(iter(items))
            if len(items) <= self.keep_max and items[oldest][1] > now:
                break
            del items[oldest]
        return parent + 1

    def of(self, event: Event) -> int:
        """The depth of an incoming event: what :meth:`note` remembered of its item, else 0."""
        if event.item_id is None or not self._items:
            return 0
        found = self._items.get((event.kind, event.service, event.node, event.item_id))
        return found[0] if found is not None and found[1] > time.monotonic() else 0
