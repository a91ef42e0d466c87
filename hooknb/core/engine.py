"""The hook engine: the registry's hooks, loaded, fed the events of their nodes, queued in their lanes.

The stage after :mod:`hooknb.core.session` in the pipeline (see ``docs/architecture.md``)::

    session --accept(events)--> engine --> events journal
                                  |-- registry lookup (account, service, node, phase)
                                  |-- persistent hooks: inbox (:mod:`hooknb.core.inbox`) --deliver--> lanes
                                  |-- one lane per hook (:mod:`hooknb.core.lanes`)
    lanes, replays -----------> invoker (:mod:`hooknb.core.invoke`) --> runs journal, done marks
    client --intercept(op)-----> engine: before hooks, send, after hooks

An item enters the engine at most twice: :meth:`Engine.accept` (dispatch), and for a persistent
hook :meth:`Engine.deliver` when the inbox hands its written entry back.  From the lane on, only
the :class:`~hooknb.core.invoke.Invoker` is called: lanes never see the engine.

The engine is built from what it uses: the :class:`~hooknb.core.hooks.Registry`, the two journals,
the store (opened on first use), the inbox, the ``context`` handed to hooks as ``host``, the lane
makers of executors other than ``thread`` (the Dask executor's, given by the facade) and the set
of accounts whose persistent hooks run here (written by their sessions, read here).  It is the
only place that loads hook code (``make_loader``).

* A run longer than the hook's timeout is recorded as ``timeout`` (see :mod:`hooknb.core.lanes`);
  the engine's watchdog task notices it.
* An item a ``--from`` hook does not run, because the service did not name its publisher or
  named one not in the list, is journaled as ``skipped`` with the reason, never dropped
  silently.  Only the ``publisher`` the service states counts, never the payload's author.
* Loading is where trust is checked: the store before code is taken from it, the restrict
  policy and the pinned code (see :mod:`hooknb.storage.trust`, :mod:`hooknb.core.policy`,
  :mod:`hooknb.core.loading`); a refused run is journaled with status ``refused``.
* A disabled hook runs nothing: each item it would have run is journaled with status ``would_run``.
* Three guards, each in a module of its own: a sync hook whose stuck runs reached the cap is
  ``stalled`` (:mod:`hooknb.core.stalls`); an async hook that holds the event loop more than 100 ms
  is journaled ``blocked_loop`` (:mod:`hooknb.core.watchdog`); a chain of hooks publishing items
  that trigger hooks stops at the hook's ``max_depth``, journaled ``loop`` (:mod:`hooknb.core.depth`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Container
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import depth
from ..xmpp import loop as _loop
from . import policy
from ..errors import HooknbError
from ..xmpp.events import Event, Item
from .hooks import Hook, HookSpec
from .registry import Registry
from .inbox import Entry, Inbox, Position, digest
from ..storage.journal import Journal, Run
from .invoke import Invoker
from . import lanes
from .lanes import Lane, TaskLane, ThreadLane
from .spill import Spill
from .outcome import Outcome
from .loading import Loader, make_loader
from .phases import around, operation_item
from .quarantine import MAX_ATTEMPTS, Quarantine
from .stalls import Stalls

if TYPE_CHECKING:
    from .lanes import LaneFactory
    from ..xmpp.client import Client
    from ..xmpp.operations import Operation, Send
    from ..storage.store import Store

WATCH_PERIOD = 0.05


class Engine:
    """Loads hooks and dispatches events to their lanes (the invoker runs and journals them)."""

    def __init__(self, registry: Registry, events: Journal[Event], runs: Journal[Run],
                 store: Callable[[], Store], inbox: Inbox | None = None, context: Any = None,
                 executors: dict[str, LaneFactory] | None = None, active: Container[str] = frozenset(),
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        self.registry = registry
        self.events = events
        self._store = store
        self.inbox = inbox or Inbox(store)
        #: What lanes and replays call: the hooks' code, runs recorded, done marks.
        self.invoker = Invoker(runs, self.inbox, context)
        #: Poison items: the attempts limit, the entries over it (:mod:`hooknb.core.quarantine`).
        self.quarantine = self.invoker.quarantine = Quarantine(self.invoker, registry, store, self.inbox,
                                                               max_attempts)
        self.lanes: dict[str, Lane] = {}
        #: Lanes of executors other than ``thread``, by executor name (given by the facade,
        #: which knows them: the engine imports no executor).
        self._executors = dict(executors or {})
        #: The accounts whose persistent hooks run in this process (read here; written by their
        #: sessions alone, :mod:`hooknb.core.lease`).
        self.active = active
        self._watchdog: asyncio.Task | None = None
        #: The thread lanes the watchdog looks at (loop thread): those given items since its
        #: last look, and those it keeps (items queued or running, a stall).
        self._watched: set[ThreadLane] = set()
        self.stalls = Stalls(store)
        #: Persistent entries waiting in the store for room in their lane.
        self.spill = Spill(self.inbox, lambda: lanes.QUEUE_MAX)
        #: The items published from hooks' runs, with their depth (the loop guard).
        self.depths = depth.Depths()

    # ---------------------------------------------------------------- hooks and their code
    @staticmethod
    def prepare(type_: str, arg: str, pin: bool = False, compat: str | None = None) -> Loader:
        """Validate (type, arg) by loading it; :class:`HookCreateError` if it cannot run.
        A pinned loader refuses any other code than this (``pin``); ``compat``: the calling
        convention (:mod:`hooknb.compat`)."""
        return make_loader(type_, arg, pin=pin, compat=compat)

    def trial(self, spec: HookSpec) -> Hook:
        """A hook that is not registered, its code loaded (a ``%%hook replay`` cell's code):
        it runs only when replayed; :class:`HookCreateError` if it cannot load."""
        policy.check(spec.service, spec.node, spec.type, spec.phase)
        hook = Hook(spec)
        hook.loader = self.prepare(spec.type, spec.arg, spec.pin, spec.compat)
        return hook

    def set_enabled(self, hook_id: str, enabled: bool) -> Hook:
        """Enable or disable a hook (a new spec, stored if the hook is persistent); a disabled
        hook journals what it would have run instead of running it."""
        hook = self.registry.require(hook_id)
        if hook.disabled != (not enabled):
            spec = replace(hook.spec, disabled=not enabled)
            if spec.persistent:
                self.store.save_hook(spec.to_record())
            self.registry.respec(hook, spec)
        return hook

    def install(self, spec: HookSpec, loader: Loader | None = None,
                rules: tuple[policy.Rule, ...] | None = None) -> Hook:
        """Register ``spec`` (the new spec of the hook of the same id, if there is one) with
        its code: ``loader``, or loaded now; a hook that fails to load, or that the restrict
        policy (``rules`` read already, or read now) forbids, is kept, with its ``load_error``."""
        hook = self.registry.get(spec.id)
        if hook is None:
            hook = Hook(spec)
        else:  # the same hook with new options: same object, statistics and lane
            self.registry.respec(hook, spec)
        try:
            policy.check(spec.service, spec.node, spec.type, spec.phase, rules)
            hook.loader, hook.load_error = loader or make_loader(spec.type, spec.arg, spec.sha256,
                                                                 spec.pin, spec.compat), None
        except HooknbError as exc:
            hook.loader, hook.load_error = None, str(exc)
        self.registry.add(hook)
        return hook

    @property
    def store(self) -> Store:
        """The persistent store (opened on first use)."""
        return self._store()

    def restore(self, account: str, load: bool = True, records: list[dict[str, Any]] | None = None) -> None:
        """Bring the registry in line with the account's persistent hooks in the store.

        With ``load`` (when the account is connected) each new hook's code is loaded; a hook
        that fails to load is kept, with its ``load_error``, never dropped.  Without it (listing
        or deleting offline) the records are only listed.  Hooks deleted from the store by
        another process leave the registry; hooks re-created there (new options, or code
        accepted again) are installed anew.  ``records`` are the stored hooks when the caller
        has read them already (off the loop).  Code is taken from a trusted store only
        (:class:`~hooknb.errors.TrustError` otherwise).
        """
        rules = None  # the restrict policy, read once for every hook loaded now
        if load:
            self.store.check_trusted()
            try:
                rules = policy.load_rules()
            except HooknbError:  # each hook loaded says why
                pass
        if records is None:
            records = self.store.load_hooks(account)
        stored = {r["id"]: r for r in records}
        for hook_id, record in stored.items():
            hook, spec = self.registry.get(hook_id), HookSpec.from_record(record)
            if hook is None:
                hook = Hook(spec)
                self.registry.add(hook)
            elif hook.spec != spec:  # re-created by another process: new options, its code now
                if load:
                    self.install(spec, rules=rules)
                else:
                    self.registry.respec(hook, spec)
            if load and hook.loader is None and hook.load_error is None:
                self.install(hook.spec, rules=rules)
        gone = [h.id for h in self.registry.all(account) if h.persistent and h.id not in stored]
        for hook in self.registry.remove(gone):
            self.drop_lane(hook.id)

    def remove(self, hook_ids: list[str]) -> list[Hook]:
        """Unregister hooks (their queued items are discarded; persistent ones leave the store)."""
        removed = self.registry.remove(hook_ids)
        for hook in removed:
            self.drop_lane(hook.id)
        stored = [h.id for h in removed if h.persistent]
        if stored:
            self.store.delete_hooks(stored)
        return removed

    # ---------------------------------------------------------------- dispatch (loop thread)
    def accept(self, client: Client, events: list[Event], positions: list[Position] = (),
               skip: frozenset[str] = frozenset()) -> None:
        """Journal incoming events and hand each to the hooks of its node but those in ``skip``
        (hooks younger than these events); ``positions`` (of persistently hooked nodes) are
        written with the inbox entries of these events."""
        self.events.extend(events)
        self.dispatch(client, events, positions, skip)

    def lane(self, hook: Hook) -> Lane:
        """The hook's lane, made on first use: sync or async after the hook's function, or a
        Dask lane (:mod:`hooknb.executors.dask_lane`) for the ``dask`` executor."""
        lane = self.lanes.get(hook.id)
        if lane is None or lane.hook is not hook or lane.closed or lane.executor != hook.spec.executor:
            is_async = False
            if hook.loader is not None:
                try:
                    is_async = hook.loader.resolve()[1]
                except Exception:  # noqa: BLE001 - reported by the run itself
                    pass
            make = self._executors.get(hook.spec.executor)
            if make is not None:
                lane = make(self.invoker, hook)
            else:
                lane = (TaskLane if is_async else ThreadLane)(self.invoker, hook)
            old = self.lanes.get(hook.id)
            if old is not None:
                lane.done.update(old.done)
                old.close()
            lane.watch = self._watch_lane
            self.lanes[hook.id] = lane
        return lane

    def drop_lane(self, hook_id: str) -> None:
        """Stop a deleted hook's lane (items not started yet are discarded)."""
        lane = self.lanes.pop(hook_id, None)
        _loop.get_loop().call_soon_threadsafe(self.spill.forget, [hook_id])
        if lane is not None:
            _loop.get_loop().call_soon_threadsafe(lane.close)

    def dispatch(self, client: Client, events: list[Event], positions: list[Position] = (),
                 skip: frozenset[str] = frozenset()) -> None:
        """Hand each event to the lanes of the hooks attached to its node but those in ``skip``
        (loop thread); items for persistent hooks go through the inbox first, if this process
        runs them."""
        lookup = self.registry.lookup
        entries: list[Entry] = []
        offers: dict[Hook, list[tuple[Item, None]]] = {}  # temporary hooks' items, offered together
        for event in events:
            hooks = lookup(event.account, event.service, event.node)
            if not hooks:
                continue
            item = Item(event, depth=self.depths.of(event))
            for hook in hooks:
                if event.kind not in hook.kinds or hook.id in skip:
                    continue
                if hook.publishers and not self._published_by_allowed(hook, item):
                    continue
                if hook.persistent and event.account not in self.active:
                    continue  # another process runs it
                if hook.disabled:
                    self.would_run(hook, item)
                elif not hook.persistent:
                    offers.setdefault(hook, []).append((item, None))
                else:
                    entries.append(Entry(hook.id, event))
        for hook, work in offers.items():
            self.offer(hook, client, work)
        if (entries or positions) and client.jid in self.active:
            if not self.inbox.submit(entries, list(positions), lambda new: self.deliver(client, new)):
                for entry in entries:  # not written: a catch-up at the next start may find them
                    self.invoker.note(self.registry.get(entry.hook_id), Item(entry.event),
                                      Outcome("dropped", error=f"the store fails ({self.inbox.status}) "
                                                         "and the memory for waiting items is full"))

    def deliver(self, client: Client, entries: list[Entry]) -> None:
        """Queue inbox entries (written, or pending from an earlier run) to their hooks' lanes."""
        offers: dict[str, list[tuple[Item, Entry]]] = {}
        for entry in entries:
            if entry.event.account in self.active:
                offers.setdefault(entry.hook_id, []).append((self._item(entry), entry))
        for hook_id, work in offers.items():
            hook = self.registry.get(hook_id)
            if hook is not None:
                self.offer(hook, client, work)

    def _item(self, entry: Entry) -> Item:
        """The item of a persistent hook's entry, at the depth its event was published from."""
        return Item(entry.event, depth=self.depths.of(entry.event))

    def _published_by_allowed(self, hook: Hook, item: Item) -> bool:
        """Whether the publisher the service states for ``item`` is in the hook's ``--from``
        list; if not, the item is journaled as skipped, with the reason.  Notes on the hook
        whether the service names publishers: a named one settles it, since Prosody's PEP
        leaves the publisher out of fetched items (catch-up) but not of notifications."""
        event = item.event
        if event.publisher is None:
            if event.kind != "publish":
                reason = f"--from: {event.kind} notifications do not say who made them"
            else:
                if hook.publishers_named is None:
                    hook.publishers_named = False
                reason = f"--from: publisher unknown, {event.service} did not say who published the item"
        else:
            if not hook.publishers_named:
                hook.publishers_named = True
            publisher = event.publisher.split("/")[0]
            if publisher in hook.publishers:
                return True
            reason = f"--from: published by {publisher}, not in the list"
        self.invoker.note(hook, item, Outcome("skipped", error=reason))
        return False

    @staticmethod
    def show_output(hook: Hook, cell: dict[str, Any] | None) -> Hook:
        """Show what ``hook`` prints under ``cell``: the kernel's parent message of the cell that
        created it (:func:`hooknb.core.capture.cell`)."""
        hook.cell = cell
        return hook

    def would_run(self, hook: Hook, item: Item) -> None:
        """Journal that a disabled hook would have run on ``item`` (it does not run)."""
        self.invoker.note(hook, item, Outcome("would_run", error="the hook is disabled"))

    def note_publishers(self, hook: Hook, named: bool) -> None:
        """Note whether the service names the publisher of items on the hook's node, as it
        answered when the hook was created (see :meth:`hooknb.core.session.Session.publishers_named`)."""
        hook.publishers_named = named

    def offer(self, hook: Hook, client: Client, work: list[tuple[Item, Entry | None]]) -> None:
        """Queue items for one hook, in order, each with its inbox entry (persistent hooks).  A
        temporary hook skips a version it already saw (the inbox does it for persistent ones):
        versions are remembered by their payload's digest, never the payload itself.  An item
        too deep in a chain of hooks is journaled ``loop``, one that does not fit ``dropped``."""
        lane = self.lane(hook)
        queued = []
        for item, entry in work:
            event = item.event
            if entry is None and event.item_id is not None and \
                    not lane.claim((event.service, event.node, event.item_id, event.kind, digest(event))):
                continue
            if item.depth >= hook.max_depth:
                self.invoker.note(hook, item, self.invoker.too_deep(hook, item), entry)  # not to run later either
                continue
            queued.append((item, entry))
        if hook.id in self.spill:  # its entries wait in the store for room (see hooknb.core.spill)
            fresh = [(item, entry) for item, entry in queued if entry is None]
            self.spill.skip(hook.id, len(queued) - len(fresh))
            queued = fresh
        for item, entry in queued[lane.offer(client, queued):]:
            if entry is not None:
                self.spill.start(hook.id, client, entry)  # it waits in the store, and so do the next ones
                self.spill.skip(hook.id)
            else:
                self.invoker.note(hook, item, Outcome("dropped", error=f"queue full ({lane.pending()} items waiting)"))

    def stop_lanes(self, account: str) -> None:
        """Take no more items for the account's persistent hooks; runs in progress end."""
        stopped = set()
        for hook in self.registry.all(account):
            lane = self.lanes.get(hook.id)
            if hook.persistent and lane is not None:
                lane.stop()
                stopped.add(hook.id)
        self.spill.forget(stopped)

    # ---------------------------------------------------------------- before / after phases
    async def intercept(self, client: Client, op: Operation, send: Send) -> Any:
        """Run before hooks, send (unless vetoed), then run after hooks (see :mod:`hooknb.core.phases`)."""
        lookup = self.registry.lookup
        level = self.depths.note(op)  # made from a hook's run: its notification will say how deep
        befores, afters = ([h for h in lookup(client.jid, op.service, op.node, phase) if op.op in h.kinds]
                           for phase in ("before", "after"))
        for hook in [h for h in befores + afters if h.disabled]:
            self.would_run(hook, operation_item(client.jid, op))
        befores, afters = ([h for h in hooks if not h.disabled] for hooks in (befores, afters))
        if not befores and not afters:
            return await send(op)
        return await around(self.invoker, befores, afters, client, op, send, level)

    # ---------------------------------------------------------------- timeouts, idleness
    def _watch_lane(self, lane: ThreadLane) -> None:
        """A thread lane was given items (loop thread): the watchdog looks at it until it is idle."""
        self._watched.add(lane)
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        # Runs while a thread lane has items or a stall, or a hook spills (then the lanes are
        # busy too), and ends when none has: an idle process is not woken 20 times a second.
        watched = self._watched
        while watched or self.spill:
            await asyncio.sleep(WATCH_PERIOD)
            now = time.perf_counter()
            for lane in list(watched):
                expired = lane.expire(now)
                if expired is not None:
                    ts, item, entry = expired
                    error = f"timed out after {lane.hook.timeout:g} s"
                    self.invoker.note(lane.hook, item, Outcome("timeout", error=error, digest=lane.hook.sha256),
                                      entry, ts, lane.hook.timeout)
                self.stalls.check(lane)
                if lane.closed or (lane.idle() and not lane.stalled and lane.hook.stalled_since is None):
                    watched.discard(lane)
            if self.spill:
                self.spill.refill(self.lanes, self._item)

    def pending(self, hook_id: str | None = None) -> int:
        """Items waiting or running for a hook (every hook when None)."""
        if hook_id is None:
            return sum(lane.pending() for lane in list(self.lanes.values()))
        lane = self.lanes.get(hook_id)
        return lane.pending() if lane is not None else 0

    def waiting(self, hook_id: str) -> int:
        """Items queued for a hook and not started, in this process."""
        lane = self.lanes.get(hook_id)
        return lane.waiting() if lane is not None else 0

    def listing(self, hooks: list[Hook], lease_ttl: float) -> list[dict[str, Any]]:
        """The listing records of ``hooks``, with their ``items_waiting``: the store says those of
        the persistent hooks another process runs (:meth:`hooknb.core.stalls.Stalls.listing`)."""
        return self.quarantine.listing(self.stalls.listing(
            hooks, lambda h: not h.persistent or h.account in self.active, self.waiting, lease_ttl))

    async def idle(self, timeout: float = 10.0) -> bool:
        """Wait until no lane has work left and the inbox has nothing left to hand to them (for
        tests, demos and clean shutdown)."""
        deadline = time.monotonic() + timeout
        while self.pending() or self.inbox.busy:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

