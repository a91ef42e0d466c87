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

A hooked node that does not exist (yet, or any more: deleted) is *waited for*: its hooks show
``waiting for node``, and the session tries to subscribe again every ``NODE_POLL`` seconds and
at every session start.  A missing node counts as a node seen empty, so once it appears, every
item it holds (all published since it appeared) is run, in order, before the live ones that
arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .client import Client, ClientHandler, Operation, Send
from .errors import HooknbError, PubSubError
from .events import Event

if TYPE_CHECKING:
    from .engine import Engine
    from .store import Store

log = logging.getLogger(__name__)
SEEN_FLUSH = 1.0  # seconds between writes of the last item seen per node
NODE_POLL = 2.0  # seconds between looks for the hooked nodes that do not exist yet
NodeKey = tuple[str, str, str]  # (account, service, node)
Pair = tuple[str, str]  # (service, node)


def node_missing(error: HooknbError) -> bool:
    """Whether a refusal says that the node does not exist."""
    return isinstance(error, PubSubError) and error.condition == "item-not-found"


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
        #: The hooked (service, node) pairs that do not exist yet.
        self.waiting: set[Pair] = set()
        self._appearing: dict[Pair, list[Event]] = {}  # live events held while a node is caught up
        self._poller: asyncio.Task | None = None

    # ---------------------------------------------------------------- ClientHandler
    def prepare_session(self, client: Client) -> None:
        """Before presence: restore the persistent hooks and note the last item seen on each
        hooked node, where the catch-up starts from.  A store that cannot be read (locked,
        corrupt) costs the catch-up, never the session."""
        self._held = []
        self.waiting = set()  # every node is looked at again
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
        """Live events: held while the session's catch-up runs (or that of the node they are
        on), else accepted."""
        if self._held is not None:
            self._held.extend(events)
            return
        if self._appearing:
            live = []
            for event in events:
                held = self._appearing.get((event.service, event.node))
                (live if held is None else held).append(event)
            events = live
        if events:
            self.accept(client, events)

    async def intercept(self, client: Client, op: Operation, send: Send) -> Any:
        """Publishes and retracts go through the engine's before/after hooks."""
        return await self.engine.intercept(client, op, send)

    # ---------------------------------------------------------------- the pipeline
    def accept(self, client: Client, events: list[Event]) -> None:
        """Note the last item per node, then hand the events to the engine; a hooked node
        deleted is waited for, as a node that does not exist."""
        self.positions.note(events)
        self.engine.accept(client, events)
        for event in events:
            if event.kind == "delete" and (event.service, event.node) in client.subscriptions:
                client.drop_subscription(event.service, event.node)
                if (event.service, event.node) in self.engine.registry.nodes(client.jid):
                    self.wait_for_node(client, event.service, event.node)

    async def _subscribe_hooked(self, client: Client, pairs: set[Pair] | None = None) -> list[Pair]:
        """Subscribe to the hooked nodes (of ``pairs``, else those not waited for) not subscribed
        yet; a refusal is shown on the hooks, and a missing node is waited for."""
        registry = self.engine.registry
        wanted = registry.nodes(client.jid) - self.waiting if pairs is None else pairs
        added, failed = await client.asubscribe_missing(wanted)
        for (service, node), error in failed.items():
            if node_missing(error):
                self.wait_for_node(client, service, node)
                continue
            self.waiting.discard((service, node))
            for hook in registry.find(client.jid, service, node):
                hook.subscribe_error, hook.waiting = f"cannot subscribe: {error}", False
        for service, node in added:
            self.waiting.discard((service, node))
            for hook in registry.find(client.jid, service, node):
                hook.subscribe_error, hook.waiting = None, False
        return added

    async def subscribe_hooks(self, client: Client) -> list[Pair]:
        """Subscribe to the nodes of hooks added since the session started (e.g. picked up from
        the store), noting each one's newest item; returns the pairs newly subscribed."""
        added = await self._subscribe_hooked(client)
        for service, node in added:
            await self.mark(client, service, node, self._persistent(client, service, node))
        return added

    def _persistent(self, client: Client, service: str, node: str) -> bool:
        return any(h.persistent for h in self.engine.registry.find(client.jid, service, node))

    async def hook_node(self, client: Client, service: str, node: str, persistent: bool) -> bool:
        """Subscribe to a newly hooked node and note its newest item (see :meth:`mark`); False
        if the node does not exist (:meth:`wait_for_node` once its hook is registered)."""
        if (service, node) not in client.subscriptions:
            try:
                await client.asubscribe(node, service)
            except PubSubError as exc:
                if node_missing(exc):
                    return False
                raise
        await self.mark(client, service, node, persistent)
        return True

    def wait_for_node(self, client: Client, service: str, node: str) -> None:
        """Wait for a hooked node that does not exist: its hooks say so, and it is looked for
        every ``NODE_POLL`` seconds (and at every session start).  Until it appears it counts as
        a node seen empty: whatever it holds then was published after it appeared."""
        key = (client.jid, service, node)
        if (service, node) not in self.waiting:
            self.positions.remember(key, [], self._persistent(client, service, node))
            self.waiting.add((service, node))
        for hook in self.engine.registry.find(*key):
            hook.waiting = True
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll_waiting(client))

    async def _poll_waiting(self, client: Client) -> None:
        """Look for the nodes waited for until none is left or the session ends (a new session
        looks at every node itself)."""
        while self.waiting and client.state == "connected":
            await asyncio.sleep(NODE_POLL)
            if client.state == "connected" and self._held is None:
                await self._check_waiting(client)

    async def _check_waiting(self, client: Client) -> list[Pair]:
        """Subscribe to the nodes waited for that exist now, and run what they hold (all
        published since they appeared) before the live events that arrive meanwhile; returns
        the pairs that appeared."""
        self.waiting &= self.engine.registry.nodes(client.jid)  # hooks deleted meanwhile
        pairs = set(self.waiting)
        self._appearing.update((pair, []) for pair in pairs)
        appeared: list[Pair] = []
        try:
            appeared = await self._subscribe_hooked(client, pairs)
            for service, node in appeared:
                key = (client.jid, service, node)
                await self._catch_up_node(client, key, self.positions.get(key))
        finally:
            for pair in pairs:
                held = self._appearing.pop(pair)
                if held:
                    self.accept(client, held)
        return appeared

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
        for service, node in sorted(self.engine.registry.nodes(client.jid)):
            key = (client.jid, service, node)
            await self._catch_up_node(client, key, marks.get(key))

    async def _catch_up_node(self, client: Client, key: NodeKey, last: str | None) -> None:
        """Accept what a node holds after item ``last`` ("": all of it; None: nothing, the node
        is only looked at for the first time and its position noted)."""
        _account, service, node = key
        try:
            items = await client.aget_items(node, service)
        except HooknbError:
            return
        ids = [e.item_id for e in items]
        if last is None:  # first look at this node: remember where it stands
            self.positions.remember(key, items, self._persistent(client, service, node))
            return
        if last == "" or last in ids:  # "" marks a node seen empty
            missed = items[ids.index(last) + 1:] if last else items
        else:
            missed = items
            self.engine.store.add_gap(client.jid, service, node, last, len(items))
            client.last_error = (f"gap on {service} node {node!r}: item {last!r} is no longer held; "
                                 f"items published while away may be lost")
        if missed:
            self.accept(client, missed)
