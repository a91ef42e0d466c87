"""Where each hooked node stands: the last item seen on it, per account (:class:`Positions`).

Kept in memory on the loop thread by the sessions (:mod:`hooknb.core.session`); the positions of
persistently hooked nodes reach the store with the inbox entries of the same events
(:mod:`hooknb.core.inbox`), so that a restart catches up from there.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING

from ..xmpp import loop as _loop
from ..xmpp.events import Event
from .inbox import Position, digest

if TYPE_CHECKING:
    from .hooks import Hook
    from .registry import Registry

NodeKey = tuple[str, str, str]  # (account, service, node)
#: The last item seen on a node: (item id, payload digest); for a node seen empty, ("", its room
#: then, see :func:`empty`).
Mark = tuple[str, str]
ROOM = "room:"  # how the room of a node seen empty is written in the place of a digest


def empty(room: float | None = None) -> Mark:
    """The mark of a node seen empty, with the number of items it kept then (``pubsub#max_items``;
    "" when not known: never asked, or unbounded), so that a catch-up need not ask it again
    (:func:`room_of`).  It is written where a payload digest goes: no store change, and a
    release before this one reads it as a node seen empty, as it is."""
    return ("", f"{ROOM}{int(room)}" if room is not None and math.isfinite(room) and room >= 0 else "")


def room_of(mark: Mark | None) -> float | None:
    """The room noted with a node seen empty (None: not a node seen empty, or not known)."""
    if mark is None or mark[0] or not mark[1].startswith(ROOM):
        return None
    try:
        return float(int(mark[1][len(ROOM):]))
    except ValueError:
        return None


class Positions:
    """The last item seen on each hooked node of each account, with its payload digest (so a
    republished item is told apart), in memory (loop thread only).  Only nodes with hooks are
    kept; those with persistent hooks reach the store through the inbox (:meth:`note` returns
    them).

    A node whose hooks are all deleted is forgotten at the next deletion (if it has no hook
    again by then: a hook replaced by a new one keeps its node's position), and from the first
    one is no longer taken as known: hooked again, it is looked at anew (:meth:`Session.mark`)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._seen: dict[NodeKey, Mark] = {}
        self._unhooked: set[NodeKey] = set()  # nodes left without hooks at the last deletion
        self._loose: set[NodeKey] = set()  # nodes noted without a hook, or whose hooks went: pruned
        self._loose_lock = threading.Lock()  # (added to on any thread)
        registry.removed.append(self._removed)

    def __contains__(self, key: NodeKey) -> bool:
        return key in self._seen and key not in self._unhooked

    def __len__(self) -> int:
        return len(self._seen)

    def _removed(self, hooks: list[Hook]) -> None:
        """Hooks were deleted (any thread): look at their nodes on the loop."""
        if self._seen:
            keys = {(h.account, h.service, h.node) for h in hooks}
            with self._loose_lock:
                self._loose |= keys
            _loop.get_loop().call_soon_threadsafe(self._forget, keys)

    def _forget(self, keys: set[NodeKey]) -> None:
        hooked = self._registry.hooked
        for key in self._unhooked:
            if not hooked(*key):
                self._seen.pop(key, None)
        self._unhooked = {key for key in keys if key in self._seen and not hooked(*key)}

    def get(self, key: NodeKey) -> Mark | None:
        """The last item seen on a node (("", ...) for a node seen empty; None if never looked at)."""
        return self._seen.get(key)

    def note(self, events: list[Event]) -> tuple[list[Event], list[Position]]:
        """Remember the newest published item of each hooked node in ``events``.  Returns the
        events that are not a copy of the item last seen on their node (a server sends the last
        item again on subscription, ejabberd sends the owner two copies of a PEP item: such a
        copy is the same version, already seen), and the new positions of the persistently
        hooked nodes, to be written."""
        lookup, out, fresh = self._registry.lookup, {}, []
        for event in events:
            if event.kind == "publish" and event.item_id:
                hooks = lookup(event.account, event.service, event.node)
                if hooks:
                    key, mark = (event.account, event.service, event.node), (event.item_id, digest(event))
                    if self._seen.get(key) == mark:
                        continue
                    self._seen[key] = mark
                    if any(h.persistent for h in hooks):
                        out[key] = mark
            fresh.append(event)
        return fresh, [(*key, *mark) for key, mark in out.items()]

    def prune(self) -> None:
        """Forget the nodes no hook is on any more: nobody followed them since, so what is known
        of them is old (a hook made there later looks at the node again).  Only the nodes that
        may have none are looked at (noted before their hook was registered, or whose hooks were
        deleted): what it costs does not grow with the number of hooked nodes."""
        with self._loose_lock:
            loose, self._loose = self._loose, set()
        lookup = self._registry.lookup
        for key in loose:
            if not lookup(*key):
                self._seen.pop(key, None)

    def _note_loose(self, key: NodeKey) -> None:
        if not self._registry.lookup(*key):
            with self._loose_lock:
                self._loose.add(key)

    def reset(self, key: NodeKey, mark: Mark | None) -> None:
        """Take ``mark`` as the last item seen on a node (None: never looked at), whatever was
        seen since (what a process saw while another one ran the node's persistent hooks)."""
        if mark is None:
            self._seen.pop(key, None)
        else:
            self._seen[key] = mark
            self._note_loose(key)

    def remember(self, key: NodeKey, items: list[Event], room: float | None = None) -> Position:
        """Note a node's newest item ("" when it is empty, with its ``room`` if known: see
        :func:`empty`); returns the position."""
        self._seen[key] = (items[-1].item_id or "", digest(items[-1])) if items else empty(room)
        self._unhooked.discard(key)
        self._note_loose(key)
        return (*key, *self._seen[key])
