"""Between the client and the engine: what a connection's sessions need to miss nothing.

A :class:`Session` is an account's :class:`~hooknb.xmpp.operations.ClientHandler`.  On every session
start of its client it:

1. before presence (so before any live item can arrive): starts holding live events, restores
   the account's persistent hooks from the store, takes (or renews) the account's **lease**,
   and notes where each hooked node stood;
2. once presence is sent: subscribes the hooked nodes; if this process holds the lease, runs
   the inbox entries left pending by an earlier run, first and in order; fetches what was
   published on hooked nodes while away (the catch-up: a node that no longer holds the last
   item seen, or that is full when it was seen empty, is a **gap**, recorded and shown); then
   releases the live events held meanwhile, so that hooks see missed items first and in order.

Between session starts it passes each batch of events to the engine, with the new positions
of the persistently hooked nodes (written in the same transaction as the inbox entries).

A hooked node that does not exist (yet, or any more: deleted) is *waited for*: its hooks show
``waiting for node``, and the session tries to subscribe again every ``NODE_POLL`` seconds and
at every session start.  A missing node counts as a node seen empty, so once it appears, every
item it holds (all published since it appeared) is run, in order, before the live ones that
arrived meanwhile.

**One runner per account**: a lease in the store decides which process runs an account's
persistent hooks.  The holder renews it every ``LEASE_BEAT`` seconds; a lease older than
``LEASE_TTL`` is free, so when the holder dies another process takes it within
``LEASE_TTL + LEASE_BEAT`` seconds and catches up.  The others still see events and run their
temporary hooks; :meth:`Session.take_over` takes the lease explicitly.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from ..xmpp import loop as _loop
from ..errors import HookCreateError, HooknbError, PubSubError
from ..xmpp.events import Event
from .inbox import Entry, Position, digest
from ..xmpp.operations import ClientHandler, Operation, Send

if TYPE_CHECKING:
    from ..xmpp.client import Client
    from .engine import Engine
    from .hooks import Hook, HookSpec

log = logging.getLogger(__name__)
NodeKey = tuple[str, str, str]  # (account, service, node)
Mark = tuple[str, str]  # the last item seen on a node: (item id or "" for none, payload digest)
Pair = tuple[str, str]  # (service, node)
LEASE_TTL = 6.0
LEASE_BEAT = 2.0
PREFETCH = 4  # nodes whose items are asked for while a catch-up takes in those before
NODE_POLL = 2.0  # seconds between looks for the hooked nodes that do not exist yet


def node_missing(error: HooknbError) -> bool:
    """Whether a refusal says that the node does not exist."""
    return isinstance(error, PubSubError) and error.condition == "item-not-found"


class Positions:
    """The last item seen on each hooked node of each account, with its payload digest (so a
    republished item is told apart), in memory (loop thread only).  Only nodes with hooks are
    kept; those with persistent hooks reach the store through the inbox (:meth:`note` returns
    them).

    A node whose hooks are all deleted is forgotten at the next deletion (if it has no hook
    again by then: a hook replaced by a new one keeps its node's position), and from the first
    one is no longer taken as known: hooked again, it is looked at anew (:meth:`Session.mark`)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._seen: dict[NodeKey, Mark] = {}
        self._unhooked: set[NodeKey] = set()  # nodes left without hooks at the last deletion
        engine.registry.removed.append(self._removed)

    def __contains__(self, key: NodeKey) -> bool:
        return key in self._seen and key not in self._unhooked

    def __len__(self) -> int:
        return len(self._seen)

    def _removed(self, hooks: list[Hook]) -> None:
        """Hooks were deleted (any thread): look at their nodes on the loop."""
        if self._seen:
            keys = {(h.account, h.service, h.node) for h in hooks}
            _loop.get_loop().call_soon_threadsafe(self._forget, keys)

    def _forget(self, keys: set[NodeKey]) -> None:
        hooked = self._engine.registry.hooked
        for key in self._unhooked:
            if not hooked(*key):
                self._seen.pop(key, None)
        self._unhooked = {key for key in keys if key in self._seen and not hooked(*key)}

    def get(self, key: NodeKey) -> Mark | None:
        """The last item seen on a node (("", "") for a node seen empty; None if never looked at)."""
        return self._seen.get(key)

    def note(self, events: list[Event]) -> tuple[list[Event], list[Position]]:
        """Remember the newest published item of each hooked node in ``events``.  Returns the
        events that are not a copy of the item last seen on their node (a server sends the last
        item again on subscription, ejabberd sends the owner two copies of a PEP item: such a
        copy is the same version, already seen), and the new positions of the persistently
        hooked nodes, to be written."""
        lookup, out, fresh = self._engine.registry.lookup, {}, []
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
        of them is old (a hook made there later looks at the node again)."""
        hooked = {(account, service, node) for account, service, node in self._seen
                  if self._engine.registry.lookup(account, service, node)}
        self._seen = {key: mark for key, mark in self._seen.items() if key in hooked}

    def remember(self, key: NodeKey, items: list[Event]) -> Position:
        """Note a node's newest item ("" when it is empty); returns the position."""
        self._seen[key] = (items[-1].item_id or "", digest(items[-1])) if items else ("", "")
        self._unhooked.discard(key)
        return (*key, *self._seen[key])


class Session(ClientHandler):
    """One account's handler of its client's sessions (see the module docstring)."""

    def __init__(self, engine: Engine, positions: Positions, holder: str) -> None:
        self.engine = engine
        self.positions = positions
        self.holder = holder
        self.lease: dict[str, Any] | None = None
        self.gaps = 0
        #: Events of nodes neither subscribed to here nor hooked: counted, not journaled.
        self.unsolicited = 0
        self._held: list[Event] | None = None
        self._marks: dict[NodeKey, Mark | None] = {}
        self._late: dict[NodeKey, frozenset[str]] = {}  # hooks younger than their node's stored mark
        self._lease_task: asyncio.Task | None = None
        self._client: Client | None = None
        #: The hooked (service, node) pairs that do not exist yet.
        self.waiting: set[Pair] = set()
        self._appearing: dict[Pair, list[Event]] = {}  # live events held while a node is caught up
        self._poller: asyncio.Task | None = None
        self._pending_queued = False  # since this process took the persistent hooks (see _run_pending)

    @property
    def account(self) -> str:
        return self._client.jid if self._client is not None else ""

    @property
    def active(self) -> bool:
        """Whether this process runs the account's persistent hooks (it holds the lease)."""
        return self.account in self.engine.active

    def describe_lease(self) -> str:
        """Who runs the account's persistent hooks, in words."""
        if self.active:
            return "this process"
        if not self.lease:
            return "nobody"
        info = self.lease["info"]
        return f"{info.get('program')} (pid {info.get('pid')} on {info.get('host')})"

    def status(self, client: Client) -> dict[str, Any]:
        """The account's row of :meth:`hooknb.host.Host.status` (but the store's)."""
        warnings = [w for h in self.engine.registry.all(client.jid) for w in h.warnings]
        return {"account": client.jid, "state": client.state, "last_error": client.last_error,
                "reconnects": client.reconnects, "subscriptions": len(client.subscriptions),
                "persistent_hooks_run_by": self.describe_lease(), "gaps": self.gaps,
                "warnings": "\n".join(warnings) or None, "waiting": len(self.waiting),
                "unsolicited": self.unsolicited}

    # ---------------------------------------------------------------- ClientHandler
    async def prepare_session(self, client: Client) -> None:
        """Before presence: hold live events, restore the persistent hooks, take the lease, note
        where each hooked node stands.  A store that cannot be read (locked, corrupt) costs the
        catch-up, never the session."""
        self._client = client
        self._held = []
        self._marks = {}
        self.waiting = set()  # every node is looked at again
        try:
            records = await asyncio.to_thread(self.engine.store.load_hooks, client.jid)
            self.engine.restore(client.jid, records=records)
            await self._take_lease(force=False)
            self._marks = await self._read_marks(client)
        except HooknbError as exc:
            client.last_error = f"persistent hooks not restored: {exc}"
            log.error("%s: %s", client.jid, client.last_error)

    async def session_started(self, client: Client, reconnected: bool) -> None:
        """Subscribe, run what was pending, catch up, then release the live events held."""
        try:
            await self._subscribe_hooked(client)
            if self.active:
                await self._run_pending(client)
            if reconnected or self.active:
                await self._catch_up(client)
        finally:
            self._release(client)
        if self._lease_task is None or self._lease_task.done():
            self._lease_task = asyncio.get_running_loop().create_task(self._keep_lease(client))

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
    def accept(self, client: Client, events: list[Event], skip: frozenset[str] = frozenset()) -> None:
        """Note the last item per node, then hand the events to the engine (not to the hooks in
        ``skip``); a hooked node deleted is waited for, as a node that does not exist.  Events of
        nodes that this client did not subscribe to and that have no hook (a subscription of
        another resource of the account, a contact's PEP) are only counted (:attr:`unsolicited`)."""
        subscribed, hooked = client.subscribed, self.engine.registry.hooked
        wanted = [e for e in events if subscribed(e.service, e.node) or hooked(e.account, e.service, e.node)]
        if len(wanted) < len(events):
            self.unsolicited += len(events) - len(wanted)
            events = wanted
        fresh, positions = self.positions.note(events)
        self.engine.accept(client, fresh, positions, skip)
        for event in events:
            if event.kind == "delete" and (event.service, event.node) in client.subscriptions:
                client.drop_subscription(event.service, event.node)
                if (event.service, event.node) in self.engine.registry.nodes(client.jid):
                    self.wait_for_node(client, event.service, event.node)

    def _release(self, client: Client) -> None:
        held, self._held = self._held, None
        if held:
            self.accept(client, held)

    async def _read_marks(self, client: Client) -> dict[NodeKey, Mark | None]:
        """Where each hooked node stood: for nodes with persistent hooks, when this process runs
        them, the store's positions (written with the inbox); else those seen in memory.

        A hook created after its node's position was noted (on the command line, which does not
        connect, while nothing followed the node) is *late*: what the node got since may be older
        than the hook, so the catch-up does not run it there (:attr:`_late`); a hook never runs on
        an item published before it was created."""
        registry = self.engine.registry
        self.positions.prune()
        self._late = {}
        marks = {key: self.positions.get(key) for key in
                 ((client.jid, s, n) for s, n in registry.nodes(client.jid))}
        stored = {key: [h for h in registry.find(*key) if h.persistent] for key in marks} if self.active else {}
        stored = {key: hooks for key, hooks in stored.items() if hooks}
        if stored:
            noted = self.engine.store.noted_position
            found = await asyncio.to_thread(lambda: {key: noted(*key) for key in stored})
            for key, row in found.items():
                marks[key] = row[:2] if row else None
                late = frozenset(h.id for h in stored[key] if row and h.created > row[2])
                if late:
                    self._late[key] = late
        return marks

    async def _run_pending(self, client: Client) -> None:
        """Queue the inbox entries whose run has not ended, once each time this process takes
        the account's persistent hooks: after a reconnection its lanes hold them already."""
        if self._pending_queued:
            return
        rows = await asyncio.to_thread(self.engine.store.pending, client.jid)
        self._pending_queued = True
        if rows:
            log.info("%s: %d pending inbox entries run first", client.jid, len(rows))
            self.engine.deliver(client, [Entry.from_row(row) for row in rows])

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
        """Subscribe to the nodes of hooks added or removed since the session started (e.g. picked
        up from the store), noting each one's newest item (and noting again where the hooked
        nodes followed already stand, so that a hook picked up now starts there); returns the
        pairs newly subscribed."""
        self.positions.prune()
        added = await self._subscribe_hooked(client)
        if any(h.persistent for h in self.engine.registry.all(client.jid)):
            await self.want_lease(client)  # (which notes the new nodes' positions if it takes it)
        for service, node in added:
            await self.mark(client, service, node, self._persistent(client, service, node))
        if self.active and self._held is None:  # (during a catch-up, the catch-up notes them)
            followed = [key for key in ((client.jid, s, n) for s, n in self.engine.registry.nodes(client.jid))
                        if key in self.positions and self._persistent(client, *key[1:])]
            if followed:
                self.engine.inbox.submit([], [(*key, *self.positions.get(key)) for key in followed])
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
        if persistent:
            await self.want_lease(client)
        await self.mark(client, service, node, persistent)
        return True

    async def attach(self, client: Client, spec: HookSpec, create_node: bool,
                     node_config: dict[str, Any] | None) -> tuple[bool, bool | None]:
        """The connected part of making a hook: create its node if asked (one that exists is
        left as it is), subscribe and note the node's position (event hooks), and for a
        ``--from`` hook ask whether the service names publishers.  Returns (whether the node
        exists, whether publishers are named: None when not known yet);
        :class:`HookCreateError` if the node cannot be made or hooked."""
        service, node = spec.service, spec.node
        if create_node:
            try:
                await client.acreate_node(node, service, node_config or None)
            except PubSubError as exc:
                if exc.condition != "conflict":
                    raise HookCreateError(f"cannot create node {node!r} on {service}: {exc}") from None
        if spec.phase != "event":
            return True, None
        try:
            exists = await self.hook_node(client, service, node, spec.persistent)
        except HooknbError as exc:
            raise HookCreateError(f"cannot hook node {node!r} on {service}: {exc}") from None
        named = await self.publishers_named(client, service, node) if spec.publishers and exists else None
        return exists, named

    def wait_for_node(self, client: Client, service: str, node: str) -> None:
        """Wait for a hooked node that does not exist: its hooks say so, and it is looked for
        every ``NODE_POLL`` seconds (and at every session start).  Until it appears it counts as
        a node seen empty: whatever it holds then was published after it appeared."""
        key = (client.jid, service, node)
        if (service, node) not in self.waiting:
            self._write_position(self.positions.remember(key, []), self._persistent(client, service, node))
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
        """Note the newest item of a newly hooked node, so that a hook runs on what is published
        after it and a catch-up after a disconnection starts there ("" when the node is empty).
        A node followed already is not looked at again: where it stands is noted anew."""
        key = (client.jid, service, node)
        self.positions.prune()
        if key in self.positions:
            if self._held is None:  # (during a catch-up, the catch-up notes it)
                self._write_position((*key, *self.positions.get(key)), persistent)
            return
        try:
            items = await client.aget_items(node, service, max_items=1)
        except HooknbError:
            return
        self._write_position(self.positions.remember(key, items), persistent)

    def _write_position(self, position: Position, persistent: bool) -> None:
        """Persist a persistently hooked node's position (through the inbox, off the loop)."""
        if persistent and self.active:
            self.engine.inbox.submit([], [position])

    async def _catch_up(self, client: Client) -> None:
        """Fetch what was published on hooked nodes while away and accept what was missed, node
        after node; the next ``PREFETCH`` nodes' items are asked for meanwhile, so that the
        server prepares them while the items before are written and queued."""
        marks, self._marks = self._marks, {}
        late, self._late = self._late, {}
        keys = iter([(client.jid, service, node)
                     for service, node in sorted(self.engine.registry.nodes(client.jid) - self.waiting)])
        ahead: deque[tuple[NodeKey, asyncio.Future]] = deque()
        try:
            while True:
                for key in itertools.islice(keys, PREFETCH + 1 - len(ahead)):
                    ahead.append((key, asyncio.ensure_future(client.aget_items(key[2], key[1]))))
                if not ahead:
                    return
                key, items = ahead.popleft()
                await self._catch_up_node(client, key, marks.get(key), late.get(key, frozenset()), items)
        finally:
            for _key, items in ahead:  # the catch-up ended early (the session did, or it failed)
                if not items.cancel() and not items.cancelled():
                    items.exception()  # a fetch that failed meanwhile: nothing more to report

    async def _catch_up_node(self, client: Client, key: NodeKey, mark: Mark | None,
                             late: frozenset[str] = frozenset(), fetch: Awaitable[list[Event]] | None = None) -> None:
        """Accept what a node holds after the item ``mark`` names (("", ""): all of it; None:
        nothing, the node is only looked at for the first time and its position noted) for its
        hooks but the ``late`` ones (see :meth:`_read_marks`), which start after it; ``fetch``:
        its items, asked for already."""
        _account, service, node = key
        try:
            items = await (fetch or client.aget_items(node, service))
        except HooknbError:
            return
        ids = [e.item_id for e in items]
        if mark is None:  # first look at this node: remember where it stands
            self._write_position(self.positions.remember(key, items), self._persistent(client, service, node))
            return
        last, version = mark
        if last in ids:  # the item after it; or it, if it was republished since
            at = ids.index(last)
            missed = items[at + (1 if digest(items[at]) == version or not version else 0):]
        else:  # "" marks a node seen empty
            missed = items
            if last or (items and len(items) >= await self._capacity(client, service, node)):
                await self._gap(client, service, node, last, len(items))
        if missed:
            self.accept(client, missed, late)
        if late:  # noted again now: the late hooks are followed from here on
            self._write_position(self.positions.remember(key, items), True)

    async def _capacity(self, client: Client, service: str, node: str) -> float:
        """How many items the node keeps (``pubsub#max_items``; infinite when unknown)."""
        try:
            return float((await client.aget_node_config(node, service))["pubsub#max_items"])
        except (HooknbError, KeyError, TypeError, ValueError):  # not the owner; "max"
            return float("inf")

    async def _gap(self, client: Client, service: str, node: str, last: str, held: int) -> None:
        """Record that items published while away may be lost: in the store, the events journal
        (kind ``gap``), the log and the client's ``last_error``."""
        self.gaps += 1
        seen = f"item {last!r} is no longer held" if last else f"it was empty and now holds {held} items, all it keeps"
        client.last_error = f"gap on {service} node {node!r}: {seen}; items published while away may be lost"
        log.warning("%s: %s", client.jid, client.last_error)
        self.engine.events.append(Event(client.jid, service, node, "gap", last or None, None, None))
        try:
            await asyncio.to_thread(self.engine.store.add_gap, client.jid, service, node, last, held)
        except HooknbError as exc:
            log.error("%s: the gap could not be recorded in the store: %s", client.jid, exc)

    @staticmethod
    async def publishers_named(client: Client, service: str, node: str) -> bool | None:
        """Whether ``service`` names the publisher of items on ``node``, as far as it shows without
        publishing (None: not known yet, the first notification will tell).

        Measured (see ``docs/security.rst``): Prosody's component names them in items and
        notifications alike, or in neither (``expose_publisher``), and has no ``pubsub#itemreply``;
        ejabberd names them in both exactly when the node's ``pubsub#itemreply`` is ``publisher``
        (only the owner may read it); Prosody's PEP names them in notifications but never in
        fetched items, so a fetched item without one proves nothing on a PEP service.
        """
        try:
            items = await client.aget_items(node, service, max_items=1)
        except HooknbError:
            items = []
        if items and items[-1].publisher:
            return True
        try:
            itemreply = (await client.aget_node_config(node, service)).get("pubsub#itemreply")
        except HooknbError:
            itemreply = None
        if itemreply:
            return itemreply == "publisher"
        if items and not client.is_pep(service):
            return False
        return None

    # ---------------------------------------------------------------- the lease
    async def _take_lease(self, force: bool, want: bool = False) -> bool:
        """Take or renew the account's lease if this process has persistent hooks of the account
        to run (or ``want``s to: it is making one; or ``force``); True if it holds it now."""
        take = force or want or self.active or any(h.persistent for h in self.engine.registry.all(self.account))
        self.lease = await asyncio.to_thread(self.engine.store.acquire_lease, self.account, self.holder,
                                             LEASE_TTL, force, take)
        mine = self.lease is not None and self.lease["holder"] == self.holder
        if mine:
            self.engine.active.add(self.account)
        else:
            self.engine.active.discard(self.account)
            self._pending_queued = False  # what is pending is queued again when the lease comes back
        return mine

    async def _keep_lease(self, client: Client) -> None:
        """Renew the lease while holding it; take it when its holder stops renewing."""
        while client.state != "disconnected":
            await asyncio.sleep(LEASE_BEAT)
            if client.state != "connected" or self._held is not None:
                continue
            was_active = self.active
            try:
                await self._take_lease(force=False)
            except HooknbError as exc:  # the store is locked or broken: nobody else can take it
                log.warning("%s: the lease could not be renewed: %s", client.jid, exc)
                continue
            if self.active and not was_active:
                log.warning("%s: this process now runs the persistent hooks", client.jid)
                await self._activate(client)
            elif was_active and not self.active:
                log.warning("%s: the persistent hooks are now run by %s", client.jid, self.describe_lease())
                self.engine.stop_lanes(client.jid)

    async def want_lease(self, client: Client) -> None:
        """A persistent hook is being made here: run the account's persistent hooks here unless
        another live process does already."""
        if not self.active and await self._take_lease(force=False, want=True):
            await self._activate(client)

    async def take_over(self, client: Client) -> None:
        """Run the account's persistent hooks here, whoever holds the lease now (the holder
        notices within ``LEASE_BEAT`` seconds and stops running them)."""
        if not self.active:
            await self._take_lease(force=True)
            await self._activate(client)

    async def _activate(self, client: Client) -> None:
        """This process just took the lease: run what is pending, catch up, go on live."""
        self._held = []
        try:
            self._marks = await self._read_marks(client)
            await self._run_pending(client)
            await self._catch_up(client)
        finally:
            self._release(client)

    async def close(self) -> None:
        """Stop renewing and give the lease up (the session's account is disconnecting)."""
        if self._lease_task is not None:
            self._lease_task.cancel()
        self.engine.active.discard(self.account)
        try:  # only if this process holds it (it may have stopped taking items already)
            await asyncio.to_thread(self.engine.store.release_lease, self.account, self.holder)
        except HooknbError as exc:
            log.warning("%s: the lease could not be released: %s", self.account, exc)

    def stop_intake(self) -> None:
        """Take no more items for the persistent hooks (a clean stop): queued ones run on, and
        what arrives from now on waits in the node (the next holder catches up)."""
        if self._lease_task is not None:
            self._lease_task.cancel()
        self.engine.active.discard(self.account)
