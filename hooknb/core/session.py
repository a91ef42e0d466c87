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
of the persistently hooked nodes (written in the same transaction as the inbox entries).  A
stream resumed after a cut (XEP-0198) starts no session: the server sends what it queued as
live events, so nothing is caught up; only the nodes waited for are looked at again.

A hooked node that does not exist (yet, or any more: deleted) is *waited for*: its hooks show
``waiting for node``, and the session tries to subscribe again every ``NODE_POLL`` seconds and
at every session start.  A missing node counts as a node seen empty, so once it appears, every
item it holds (all published since it appeared) is run, in order, before the live ones that
arrived meanwhile.

**One runner per account**: a lease in the store decides which process runs an account's
persistent hooks (:mod:`hooknb.core.lease`): a holder that ends cleanly releases it and a
standby takes it within a second; when the holder dies another process takes it within
``LEASE_TTL + STANDBY_POLL`` seconds.  Whenever this process takes it (at start, after waiting
out a dead holder, by :meth:`Session.take_over`, back after a reconnection), every pending inbox
entry is queued and every hooked node caught up from the store's positions.  The others still see events and run their
temporary hooks; :meth:`Session.take_over` takes the lease explicitly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..xmpp import loop as _loop
from ..errors import HookCreateError, HooknbError, PubSubError
from ..storage.journal import Journal
from ..xmpp.events import Event
from ..xmpp.operations import ClientHandler, Operation, Send
from .inbox import Inbox, Position
from .lease import LEASE_BEAT, STANDBY_POLL, Lease
from .catchup import NODE_TIMEOUT, CatchUp
from .waiting import NodeWaits
from .nodes import capacity, node_missing, publishers_named
from .positions import Mark, NodeKey, Positions

if TYPE_CHECKING:
    from ..xmpp.client import Client
    from ..storage.store import Store
    from .engine import Engine
    from .hooks import HookSpec
    from .registry import Registry

log = logging.getLogger(__name__)
Pair = tuple[str, str]  # (service, node)


@dataclass(frozen=True)
class Parts:
    """What every session of a process works with, given by the facade: the engine (asked with
    its methods: accept, deliver, intercept, restore, stop_lanes), the registry it reads, the
    positions it keeps, the store, the inbox, the events journal (gaps), and the accounts whose
    persistent hooks run here (written by the sessions' leases alone)."""

    engine: Engine
    registry: Registry
    positions: Positions
    store: Callable[[], Store]
    inbox: Inbox
    events: Journal[Event]
    active: set[str]


class Session(CatchUp, NodeWaits, ClientHandler):
    """One account's handler of its client's sessions (see the module docstring)."""

    def __init__(self, parts: Parts, holder: str) -> None:
        self.engine = parts.engine
        self.registry = parts.registry
        self.positions = parts.positions
        self._store = parts.store
        self.inbox = parts.inbox
        self.events = parts.events
        self.holder = holder
        self.lease = Lease(parts.store, parts.active, holder)
        #: Whether the session ended (:meth:`close`): a connection given up, an account disconnected.
        self.closed = False
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
        return self.lease.held

    def describe_lease(self) -> str:
        """Who runs the account's persistent hooks, in words."""
        return self.lease.describe()

    def status(self, client: Client) -> dict[str, Any]:
        """The account's row of :meth:`hooknb.host.Host.status` (but the store's)."""
        warnings = [w for h in self.registry.all(client.jid) for w in h.warnings]
        return {"account": client.jid, "state": client.state, "last_error": client.last_error,
                "reconnects": client.reconnects, "resumed": client.resumption.resumed,
                "replayed": client.resumption.replayed_total, "subscriptions": len(client.subscriptions),
                "persistent_hooks_run_by": self.describe_lease(), "gaps": self.gaps,
                "warnings": "\n".join(warnings) or None, "waiting": len(self.waiting),
                "unsolicited": self.unsolicited}

    # ---------------------------------------------------------------- ClientHandler
    async def prepare_session(self, client: Client) -> None:
        """Before presence: hold live events, restore the persistent hooks, take the lease, note
        where each hooked node stands.  A store that cannot be read (locked, corrupt) costs the
        catch-up, never the session."""
        self._client = client
        self.lease.account = client.jid
        self._held = []
        self._marks = {}
        self.waiting = set()  # every node is looked at again
        try:
            self.activity = "reading the persistent hooks and the lease from the store"
            records = await asyncio.to_thread(self._store().load_hooks, client.jid)
            self.engine.restore(client.jid, records=records)
            await self._take_lease(force=False)
            self._marks = await self._read_marks(client)
        except HooknbError as exc:
            client.last_error = f"persistent hooks not restored: {exc}"
            log.error("%s: %s", client.jid, client.last_error)
        finally:
            self.activity = None

    async def session_started(self, client: Client, reconnected: bool) -> None:
        """Subscribe, run what was pending, catch up, then release the live events held."""
        try:
            self.activity = f"subscribing to {len(self.registry.nodes(client.jid))} hooked nodes"
            await self._subscribe_hooked(client)
            if self.active:
                self.activity = "reading the pending inbox entries"
                await self._run_pending(client)
            if reconnected or self.active:
                await self._catch_up(client)
        finally:
            self.activity = None
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
            self._accept_each_if_need_be(client, events)

    def _accept_each_if_need_be(self, client: Client, events: list[Event]) -> None:
        """Accept live events together; if that fails (a bug, a store that raises where it should
        not), one by one, so that a bad event costs itself only, logged with its node and item."""
        try:
            self.accept(client, events)
        except Exception:  # noqa: BLE001 - the others of the read go on
            if len(events) == 1:
                event = events[0]
                log.exception("%s: event %s of %s node %r (item %r) could not be taken in", client.jid,
                              event.kind, event.service, event.node, event.item_id)
                return
            for event in events:
                self._accept_each_if_need_be(client, [event])

    async def intercept(self, client: Client, op: Operation, send: Send) -> Any:
        """Publishes and retracts go through the engine's before/after hooks."""
        return await self.engine.intercept(client, op, send)

    # ---------------------------------------------------------------- the pipeline
    def accept(self, client: Client, events: list[Event], skip: frozenset[str] = frozenset(),
               hold_positions: bool = False) -> list[Position]:
        """Note the last item per node, then hand the events to the engine (not to the hooks in
        ``skip``); a hooked node deleted is waited for, as a node that does not exist.  Events of
        nodes that this client did not subscribe to and that have no hook (a subscription of
        another resource of the account, a contact's PEP) are only counted (:attr:`unsolicited`).

        The new positions of persistently hooked nodes are written with the inbox entries; with
        ``hold_positions``, they are returned instead, for the caller to write later."""
        subscribed, hooked = client.subscribed, self.registry.hooked
        wanted = [e for e in events if subscribed(e.service, e.node) or hooked(e.account, e.service, e.node)]
        if len(wanted) < len(events):
            self.unsolicited += len(events) - len(wanted)
            events = wanted
        fresh, positions = self.positions.note(events)
        held, positions = (positions, []) if hold_positions else ([], positions)
        self.engine.accept(client, fresh, positions, skip)
        for event in events:
            if event.kind == "delete" and client.subscribed(event.service, event.node, pending=False):
                client.drop_subscription(event.service, event.node)
                if self.registry.lookup(client.jid, event.service, event.node):  # (no copy of every hooked node)
                    self.wait_for_node(client, event.service, event.node)
        return held

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
        registry = self.registry
        self.positions.prune()
        self._late = {}
        marks = {key: self.positions.get(key) for key in
                 ((client.jid, s, n) for s, n in registry.nodes(client.jid))}
        stored = {key: [h for h in registry.find(*key) if h.persistent] for key in marks} if self.active else {}
        stored = {key: hooks for key, hooks in stored.items() if hooks}
        if stored:
            noted = await asyncio.to_thread(self._store().noted_positions, client.jid)
            for key in stored:
                row = noted.get(key[1:])
                marks[key] = row[:2] if row else None
                # What this process saw of the node while another one ran its hooks is no
                # position of ours: the catch-up starts from the store's, the newest item included
                self.positions.reset(key, marks[key])
                late = frozenset(h.id for h in stored[key] if row and h.created > row[2])
                if late:
                    self._late[key] = late
        return marks

    async def _run_pending(self, client: Client) -> None:
        """Queue the inbox entries whose run has not ended, once each time this process takes
        the account's persistent hooks: after a reconnection its lanes hold them already."""
        if self._pending_queued:
            return
        entries = await asyncio.to_thread(self.engine.quarantine.pending, client.jid)  # poison ones left out
        self._pending_queued = True
        if entries:
            log.info("%s: %d pending inbox entries run first", client.jid, len(entries))
            self.engine.deliver(client, entries)

    async def _subscribe_hooked(self, client: Client, pairs: set[Pair] | None = None) -> list[Pair]:
        """Subscribe to the hooked nodes (of ``pairs``, else those not waited for) not subscribed
        yet; a refusal is shown on the hooks, and a missing node is waited for."""
        registry = self.registry
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
        if self.registry.has_persistent(client.jid):
            await self.want_lease(client)  # (which notes the new nodes' positions if it takes it)
        for service, node in added:
            await self.mark(client, service, node, self._persistent(client, service, node))
        if self.active and self._held is None:  # (during a catch-up, the catch-up notes them)
            followed = [key for key in ((client.jid, s, n) for s, n in self.registry.nodes(client.jid))
                        if key in self.positions and self._persistent(client, *key[1:])]
            if followed:
                self.inbox.submit([], [(*key, *self.positions.get(key)) for key in followed])
        return added

    def _persistent(self, client: Client, service: str, node: str) -> bool:
        return any(h.persistent for h in self.registry.find(client.jid, service, node))

    async def hook_node(self, client: Client, service: str, node: str, persistent: bool) -> bool:
        """Subscribe to a newly hooked node and note its newest item (see :meth:`mark`); False
        if the node does not exist (:meth:`wait_for_node` once its hook is registered)."""
        if not client.subscribed(service, node, pending=False):
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
        named = await publishers_named(client, service, node) if spec.publishers and exists else None
        return exists, named

    async def mark(self, client: Client, service: str, node: str, persistent: bool) -> None:
        """Note the newest item of a newly hooked node (an empty one: "", with its room if it has
        persistent hooks, :func:`~.positions.empty`), so that a hook runs on what is published
        after it and a catch-up starts there; a node followed already is noted anew."""
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
        room = await capacity(client, service, node, NODE_TIMEOUT) if persistent and not items else None
        if key not in self.positions:  # (a live item noted meanwhile is newer than this answer)
            self._write_position(self.positions.remember(key, items, room), persistent)

    def _write_position(self, position: Position, persistent: bool) -> None:
        """Persist a persistently hooked node's position (through the inbox, off the loop)."""
        if persistent:
            self._write_positions([position])

    # ---------------------------------------------------------------- the lease
    async def _take_lease(self, force: bool, want: bool = False) -> bool:
        """Take or renew the account's lease if this process has persistent hooks of the account
        to run (or ``want``s to: it is making one; or ``force``); True if it holds it now."""
        was_active = self.active
        mine = await self.lease.take(force, force or want or was_active or self.registry.has_persistent(self.account))
        if not mine:
            self._pending_queued = False  # what is pending is queued again when the lease comes back
            if was_active:  # wherever it is noticed (a beat, a reconnection): the new holder runs them
                log.warning("%s: the persistent hooks are now run by %s", self.account, self.describe_lease())
                self.engine.stop_lanes(self.account)
        return mine

    async def _keep_lease(self, client: Client) -> None:
        """Renew the lease while holding it; take it when its holder stops renewing."""
        while client.state != "disconnected":
            # a standby looks often (a read of one row), so that a holder's clean release is
            # taken at once; the holder renews every LEASE_BEAT
            standby = not self.active and self.registry.has_persistent(self.account)
            await asyncio.sleep(STANDBY_POLL if standby else LEASE_BEAT)
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
        """Stop renewing and give the lease up (the session's account is disconnecting, or the
        process ends): no more items are taken, the done marks of the runs that ended are written,
        then the lease is freed, so that the next process takes it at once and runs nothing twice
        but a run still in flight."""
        self.closed = True  # a catch-up still going (a connection given up) stops at its next node
        if self._lease_task is not None:
            self._lease_task.cancel()
        try:  # only if this process holds it (it may have stopped taking items already)
            if self.active:
                self.lease.drop()
                await _loop.to_thread(self.inbox.flush)
            await self.lease.release()
        except HooknbError as exc:
            log.warning("%s: the lease could not be released: %s", self.account, exc)

    def stop_intake(self) -> None:
        """Take no more items for the persistent hooks (a clean stop): queued ones run on, and
        what arrives from now on waits in the node (the next holder catches up)."""
        if self._lease_task is not None:
            self._lease_task.cancel()
        self.lease.drop()
