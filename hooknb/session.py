"""Between the client and the engine: what a connection's sessions need to miss nothing.

A :class:`Session` is an account's :class:`~hooknb.client.ClientHandler`.  On every session
start of its client it:

1. before presence (so before any live item can arrive): restores the account's persistent
   hooks from the store and notes where each hooked node stood (:class:`Positions`), and
   starts holding live events;
2. once presence is sent: subscribes the hooked nodes, fetches what was published on them
   while away (the catch-up; a node that no longer holds the last item seen is a gap, recorded),
   hands the missed items to the engine, then the live ones held meanwhile, so that hooks see
   missed items first and in order.

Between session starts it passes each batch of events to the engine, noting the last item
seen per node.  Publishes and retracts go to the engine's before/after hooks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .client import Client, ClientHandler, Operation, Send
from .errors import HooknbError
from .events import Event

if TYPE_CHECKING:
    from .engine import Engine
    from .store import Store

log = logging.getLogger(__name__)
SEEN_FLUSH = 1.0  # seconds between writes of the last item seen per node
NodeKey = tuple[str, str, str]  # (account, service, node)


class Positions:
    """The last item seen on each node, per account; written to the store (every
    ``SEEN_FLUSH`` seconds) for nodes that persistent hooks are on.  Loop thread only."""

    def __init__(self, store: Callable[[], Store], persistent_nodes: Callable[[], set[NodeKey]]) -> None:
        self._store = store
        self._persistent_nodes = persistent_nodes
        self._seen: dict[NodeKey, str] = {}
        self._flush_due = False
        self.closed = False

    def __contains__(self, key: NodeKey) -> bool:
        return key in self._seen

    def get(self, key: NodeKey) -> str | None:
        """The last item id seen on a node ("" for a node seen empty; None if never looked at)."""
        return self._seen[key] if key in self._seen else self._store().get_seen(*key)

    def note(self, events: list[Event]) -> None:
        """Remember the newest published item of each node in ``events``."""
        for event in events:
            if event.kind == "publish" and event.item_id:
                self._seen[(event.account, event.service, event.node)] = event.item_id
                if not self._flush_due:
                    self._flush_due = True
                    asyncio.get_running_loop().call_later(SEEN_FLUSH, self.flush)

    def remember(self, key: NodeKey, items: list[Event], persistent: bool) -> None:
        """Note a node's newest item ("" when it is empty), in the store too for persistent hooks."""
        self._seen[key] = (items[-1].item_id or "") if items else ""
        if persistent:
            self._store().set_seen(*key, self._seen[key])

    def flush(self) -> None:
        """Write the positions of persistently hooked nodes to the store."""
        self._flush_due = False
        if self.closed:
            return
        persistent = self._persistent_nodes()
        try:
            for key, item_id in list(self._seen.items()):
                if key in persistent:
                    self._store().set_seen(*key, item_id)
        except HooknbError as exc:  # a locked store must not stop events; retried next time
            log.warning("could not remember the last items seen: %s", exc)


class Session(ClientHandler):
    """One account's handler of its client's sessions (see the module docstring)."""

    def __init__(self, engine: Engine, positions: Positions) -> None:
        self.engine = engine
        self.positions = positions
        self._held: list[Event] | None = None
        self._marks: dict[NodeKey, str | None] = {}

    # ---------------------------------------------------------------- ClientHandler
    def prepare_session(self, client: Client) -> None:
        """Before presence: restore the persistent hooks and note the last item seen on each
        hooked node, where the catch-up starts from.  A store that cannot be read (locked,
        corrupt) costs the catch-up, never the session."""
        self._held = []
        marks: dict[NodeKey, str | None] = {}
        try:
            self.engine.restore(client.jid)
            for service, node in self.engine.registry.nodes(client.jid):
                key = (client.jid, service, node)
                marks[key] = self.positions.get(key)
        except HooknbError as exc:
            client.last_error = f"persistent hooks not restored: {exc}"
            log.error("%s: %s", client.jid, client.last_error)
        self._marks = marks

    async def session_started(self, client: Client, reconnected: bool) -> None:
        """Subscribe, catch up, then release the live events held meanwhile."""
        try:
            await self._subscribe_hooked(client)
            if reconnected or any(h.persistent for h in self.engine.registry.all(client.jid)):
                await self._catch_up(client)
        finally:
            held, self._held = self._held, None
            if held:
                self.accept(client, held)

    def on_events(self, client: Client, events: list[Event]) -> None:
        """Live events: held while the session's catch-up runs, else accepted."""
        if self._held is not None:
            self._held.extend(events)
        else:
            self.accept(client, events)

    async def intercept(self, client: Client, op: Operation, send: Send) -> Any:
        """Publishes and retracts go through the engine's before/after hooks."""
        return await self.engine.intercept(client, op, send)

    # ---------------------------------------------------------------- the pipeline
    def accept(self, client: Client, events: list[Event]) -> None:
        """Note the last item per node, then hand the events to the engine."""
        self.positions.note(events)
        self.engine.accept(client, events)

    async def _subscribe_hooked(self, client: Client) -> list[tuple[str, str]]:
        """Subscribe to the hooked nodes not subscribed yet; a refusal is shown on the hooks."""
        registry = self.engine.registry
        added, failed = await client.asubscribe_missing(registry.nodes(client.jid))
        for (service, node), reason in failed.items():
            for hook in registry.find(client.jid, service, node):
                hook.subscribe_error = f"cannot subscribe: {reason}"
        for service, node in added:
            for hook in registry.find(client.jid, service, node):
                hook.subscribe_error = None
        return added

    async def subscribe_hooks(self, client: Client) -> list[tuple[str, str]]:
        """Subscribe to the nodes of hooks added since the session started (e.g. picked up from
        the store), noting each one's newest item; returns the pairs newly subscribed."""
        added = await self._subscribe_hooked(client)
        for service, node in added:
            persistent = any(h.persistent for h in self.engine.registry.find(client.jid, service, node))
            await self.mark(client, service, node, persistent)
        return added

    async def mark(self, client: Client, service: str, node: str, persistent: bool) -> None:
        """Note the newest item of a newly hooked node, so that a catch-up after a disconnection
        runs what was published after it ("" when the node is empty)."""
        key = (client.jid, service, node)
        if key in self.positions:
            return
        try:
            items = await client.aget_items(node, service, max_items=1)
        except HooknbError:
            return
        self.positions.remember(key, items, persistent)

    async def _catch_up(self, client: Client) -> None:
        """Fetch what was published on hooked nodes while away and accept what was missed."""
        marks, self._marks = self._marks, {}
        registry = self.engine.registry
        for service, node in sorted(registry.nodes(client.jid)):
            key = (client.jid, service, node)
            last = marks.get(key)
            try:
                items = await client.aget_items(node, service)
            except HooknbError:
                continue
            ids = [e.item_id for e in items]
            if last is None:  # first look at this node: remember where it stands
                self.positions.remember(key, items, any(h.persistent for h in registry.find(*key)))
                continue
            if last == "" or last in ids:  # "" marks a node seen empty
                missed = items[ids.index(last) + 1:] if last else items
            else:
                missed = items
                self.engine.store.add_gap(client.jid, service, node, last, len(items))
                client.last_error = (f"gap on {service} node {node!r}: item {last!r} is no longer held; "
                                     f"items published while away may be lost")
            if missed:
                self.accept(client, missed)
