"""The hook engine: the registry's hooks, loaded, fed the events of their nodes, runs journaled.

The stage after :mod:`hooknb.core.session` in the pipeline (see ``docs/architecture.md``)::

    session --accept(events)--> engine --> events journal
                                  |-- registry lookup (account, service, node, phase)
                                  |-- persistent hooks: inbox (:mod:`hooknb.core.inbox`), then lanes
                                  |-- one lane per hook (:mod:`hooknb.core.lanes`) --> runs journal
    client --intercept(op)-----> engine: before hooks, send, after hooks

The engine is built from what it uses: the :class:`~hooknb.core.hooks.Registry`, the two journals,
the store (opened on first use), the inbox and the ``context`` handed to hooks as ``host``.
Persistent hooks run only for the accounts in :attr:`Engine.active` (those whose lease this
process holds, see :mod:`hooknb.core.session`); elsewhere their events are journaled, not run.  It is the only
place that loads hook code (``make_loader``) and the only writer of hook statistics.

* A run longer than the hook's timeout is recorded as ``timeout`` (see :mod:`hooknb.core.lanes`).
* A hook created with ``--executor dask`` gets a Dask lane (:mod:`hooknb.executors.dask_lane`): its
  runs happen in Dask workers and their results come back to :meth:`Engine.record` and
  :meth:`Engine.finish` in item order.  A hook of either executor may return
  :class:`~hooknb.executors.remote.Publish` / :class:`~hooknb.executors.remote.Retract` requests, which the engine
  performs before the run is recorded (a refused one fails the run).
* An item a ``--from`` hook does not run, because the service did not name its publisher or
  named one not in the list, is journaled as ``skipped`` with the reason, never dropped
  silently.  Only the ``publisher`` the service states counts, never the payload's author.
* Every run lands in the runs journal, with its duration, status, error, traceback, the repr
  of the return value and the SHA-256 of the code that ran (``code_changed`` when it is not
  the code the hook was created with).
* Loading is where trust is checked: the store before code is taken from it, the restrict
  policy and the pinned code (see :mod:`hooknb.storage.trust`, :mod:`hooknb.core.policy`,
  :mod:`hooknb.core.loading`); a refused run is journaled with status ``refused``.
* What a run prints is captured with it (``output``) and shown under the cell that created the
  hook (:mod:`hooknb.core.capture`).  A disabled hook runs nothing: each item it would have run is
  journaled with status ``would_run``.  Replays (:mod:`hooknb.core.replay`) are journaled as runs
  with ``replay`` set.
* Three guards, each in a module of its own: a sync hook whose stuck runs reached the cap is
  ``stalled`` (:mod:`hooknb.core.stalls`); an async hook that holds the event loop more than 100 ms
  is journaled ``blocked_loop`` (:mod:`hooknb.core.watchdog`); a chain of hooks publishing items
  that trigger hooks stops at the hook's ``max_depth``, journaled ``loop`` (:mod:`hooknb.core.depth`).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import reprlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import depth
from ..xmpp import loop as _loop
from . import policy
from .capture import Capture
from ..errors import HooknbError, PubSubError, Veto, VetoError
from ..xmpp.events import Event, Item
from .hooks import Hook, HookSpec, Registry
from .inbox import Entry, Inbox, Position, digest
from ..storage.journal import Journal, Run
from .lanes import Lane, Outcome, TaskLane, ThreadLane, failure
from .loading import Loader, make_loader
from .phases import operation_item
from ..executors.remote import perform, requests
from .stalls import Stalls
from .watchdog import Stepped

if TYPE_CHECKING:
    from ..xmpp.client import Client
    from ..xmpp.operations import Operation, Send
    from ..storage.store import Store

WATCH_PERIOD = 0.05

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 200


class Engine:
    """Loads hooks, dispatches events to their lanes, runs them, journals runs."""

    def __init__(self, registry: Registry, events: Journal[Event], runs: Journal[Run],
                 store: Callable[[], Store], inbox: Inbox | None = None, context: Any = None) -> None:
        self.registry = registry
        self.events = events
        self.runs = runs
        self._store = store
        self.inbox = inbox or Inbox(store)
        self.context = context
        self.lanes: dict[str, Lane] = {}
        #: The accounts whose persistent hooks run in this process (written by their sessions).
        self.active: set[str] = set()
        self._watchdog: asyncio.Task | None = None
        self.stalls = Stalls(store)
        #: The items published from hooks' runs, with their depth (the loop guard).
        self.depths = depth.Depths()

    # ---------------------------------------------------------------- hooks and their code
    @staticmethod
    def prepare(type_: str, arg: str, pin: bool = False) -> Loader:
        """Validate (type, arg) by loading it; :class:`HookCreateError` if it cannot run.
        A pinned loader refuses any other code than this (``pin``)."""
        return make_loader(type_, arg, pin=pin)

    def trial(self, spec: HookSpec) -> Hook:
        """A hook that is not registered, its code loaded (a ``%%hook replay`` cell's code):
        it runs only when replayed; :class:`HookCreateError` if it cannot load."""
        policy.check(spec.service, spec.node, spec.type, spec.phase)
        hook = Hook(spec)
        hook.loader = self.prepare(spec.type, spec.arg, spec.pin)
        return hook

    def set_enabled(self, hook_id: str, enabled: bool) -> Hook:
        """Enable or disable a hook (a new spec, stored if the hook is persistent); a disabled
        hook journals what it would have run instead of running it."""
        hook = self.registry.require(hook_id)
        if hook.disabled != (not enabled):
            spec = replace(hook.spec, disabled=not enabled)
            if spec.persistent:
                self.store.save_hook(spec.to_record())
            hook.spec = spec
        return hook

    def install(self, spec: HookSpec, loader: Loader | None = None) -> Hook:
        """Register ``spec`` (the new spec of the hook of the same id, if there is one) with
        its code: ``loader``, or loaded now; a hook that fails to load, or that the restrict
        policy forbids, is kept, with its ``load_error``."""
        hook = self.registry.get(spec.id)
        if hook is None:
            hook = Hook(spec)
        else:  # the same hook with new options: same object, statistics and lane
            hook.spec = spec
        try:
            policy.check(spec.service, spec.node, spec.type, spec.phase)
            hook.loader, hook.load_error = loader or make_loader(spec.type, spec.arg, spec.sha256,
                                                                 spec.pin), None
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
        if load:
            self.store.check_trusted()
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
                    self.install(spec)
                else:
                    hook.spec = spec
            if load and hook.loader is None and hook.load_error is None:
                self.install(hook.spec)
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
            if hook.spec.executor == "dask":
                from ..executors.dask_lane import DaskLane

                lane = DaskLane(self, hook)
            else:
                lane = (TaskLane if is_async else ThreadLane)(self, hook)
            old = self.lanes.get(hook.id)
            if old is not None:
                lane.done.update(old.done)
                old.close()
            self.lanes[hook.id] = lane
            self._ensure_watchdog()
        return lane

    def drop_lane(self, hook_id: str) -> None:
        """Stop a deleted hook's lane (items not started yet are discarded)."""
        lane = self.lanes.pop(hook_id, None)
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
                    self.record(self.registry.get(entry.hook_id), Item(entry.event), time.time(), 0.0,
                                Outcome("dropped", error=f"the store fails ({self.inbox.status}) "
                                                         "and the memory for waiting items is full"))

    def deliver(self, client: Client, entries: list[Entry]) -> None:
        """Queue inbox entries (written, or pending from an earlier run) to their hooks' lanes."""
        offers: dict[str, list[tuple[Item, Entry]]] = {}
        for entry in entries:
            if entry.event.account in self.active:
                offers.setdefault(entry.hook_id, []).append((Item(entry.event, depth=self.depths.of(entry.event)),
                                                             entry))
        for hook_id, work in offers.items():
            hook = self.registry.get(hook_id)
            if hook is not None:
                self.offer(hook, client, work)

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
        self.record(hook, item, time.time(), 0.0, Outcome("skipped", error=reason))
        return False

    @staticmethod
    def show_output(hook: Hook, cell: dict[str, Any] | None) -> Hook:
        """Show what ``hook`` prints under ``cell``: the kernel's parent message of the cell that
        created it (:func:`hooknb.core.capture.cell`)."""
        hook.cell = cell
        return hook

    def would_run(self, hook: Hook, item: Item) -> None:
        """Journal that a disabled hook would have run on ``item`` (it does not run)."""
        self.record(hook, item, time.time(), 0.0, Outcome("would_run", error="the hook is disabled"))

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
                self.record(hook, item, time.time(), 0.0, self._too_deep(hook, item))
                if entry is not None:  # not to be run, at the next start either
                    self.inbox.done_later(entry, time.time())
                continue
            queued.append((item, entry))
        for item, entry in queued[lane.offer(client, queued):]:
            self.record(hook, item, time.time(), 0.0,
                        Outcome("dropped", error=f"queue full ({lane.pending()} items waiting)"
                                + ("; it stays pending in the inbox" if entry is not None else "")))

    def finish(self, entry: Entry) -> None:
        """Mark a persistent hook's run done (on the worker thread that ran it)."""
        self.inbox.done(entry, time.time())

    async def afinish(self, entry: Entry) -> None:
        """Mark a persistent hook's run done (a run that ended on the loop)."""
        await self.inbox.adone(entry, time.time())

    def stop_lanes(self, account: str) -> None:
        """Take no more items for the account's persistent hooks; runs in progress end."""
        for hook in self.registry.all(account):
            lane = self.lanes.get(hook.id)
            if hook.persistent and lane is not None:
                lane.stop()

    # ---------------------------------------------------------------- calling hooks
    @staticmethod
    def resolve(hook: Hook, again: bool = False) -> tuple[Callable[..., Any], bool, str | None]:
        """The hook's function as its code is now (see :meth:`Loader.resolve`, and ``again``),
        whether it is a coroutine function, and the SHA-256 of that code; raises why it cannot run."""
        if hook.loader is None:
            raise RuntimeError(f"hook failed to load: {hook.load_error}")
        return hook.loader.resolve(again)

    def call_sync(self, hook: Hook, client: Client, item: Item, again: bool = False) -> Outcome:
        """Run a hook on a worker thread (an async function is run on the loop and waited),
        capturing what it prints (:mod:`hooknb.core.capture`); ``again``: straight after another run
        of the hook (see :meth:`Loader.resolve`)."""
        digest, capture = hook.sha256, Capture(hook.cell)
        try:
            with capture.active():
                fn, _is_async, digest = self.resolve(hook, again)
                with depth.running(item.depth):
                    result = fn(self.context, client, item)
                    if result is not None and inspect.isawaitable(result):
                        result = asyncio.run_coroutine_threadsafe(
                            self._stepped(hook, item, _awaited(result, capture)), _loop.get_loop()).result()
                    if result is not None and (wanted := requests(result)):
                        _loop.call(perform(client, wanted))  # at the item's depth: the loop guard sees it
            outcome = Outcome("ok", result, digest=digest)
        except BaseException as exc:  # noqa: BLE001 - a hook's failure is recorded, never raised
            outcome = failure(exc, digest)
        outcome.output = capture.text()
        return outcome

    async def call_async(self, hook: Hook, client: Client, item: Item,
                         cell: dict[str, Any] | None = None) -> Outcome:
        """Run a hook on the loop with its timeout (a sync function goes to a thread), capturing
        what it prints (:mod:`hooknb.core.capture`): shown under ``cell``, else the hook's own."""
        digest, capture = hook.sha256, Capture(cell or hook.cell)
        try:
            with capture.active():
                fn, is_async, digest = self.resolve(hook)
                with depth.running(item.depth):
                    if is_async:
                        result = await self._stepped(hook, item, fn(self.context, client, item), hook.timeout)
                    else:
                        call = contextvars.copy_context().run  # the thread runs it at this depth, captured
                        result = await asyncio.wait_for(asyncio.shield(asyncio.get_running_loop().run_in_executor(
                            None, call, fn, self.context, client, item)), hook.timeout)
                    if inspect.isawaitable(result):
                        result = await self._stepped(hook, item, result, hook.timeout)
                    if result is not None and hook.phase == "event" and (wanted := requests(result)):
                        await perform(client, wanted)
            outcome = Outcome("ok", result, digest=digest)
        except asyncio.TimeoutError as exc:
            outcome = Outcome("timeout", error=f"timed out after {hook.timeout:g} s", digest=digest, exc=exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            outcome = failure(exc, digest)
        outcome.output = capture.text()
        return outcome

    async def _stepped(self, hook: Hook, item: Item, awaitable: Any, timeout: float | None = None) -> Any:
        """Await a hook's coroutine (on the loop, within ``timeout``), journaling it as
        ``blocked_loop`` if one of its steps held the loop too long (see :mod:`hooknb.core.watchdog`)."""
        stepped = Stepped(awaitable)
        ts = time.time()
        try:
            return await asyncio.wait_for(stepped.run(), timeout)
        finally:
            if stepped.blocked:
                self.record(hook, item, ts, stepped.longest, Outcome(
                    "blocked_loop", error=f"held the event loop for {stepped.longest:.3f} s without awaiting: "
                                          "every hook and publish of the process waited (await instead of "
                                          "blocking, or make the hook a plain function)", digest=hook.sha256))

    @staticmethod
    def _too_deep(hook: Hook, item: Item) -> Outcome:
        """The outcome of an item a hook does not run: the chain of hooks that led to it is as
        deep as the hook's ``max_depth`` (see :mod:`hooknb.core.depth`)."""
        return Outcome("loop", error=f"not run: {item.depth} hooks' runs published the items that led to "
                                     f"this one (a loop?); the hook stops chains at --max-depth {hook.max_depth}",
                       digest=hook.sha256)

    def record(self, hook: Hook, item: Item, ts: float, duration: float, outcome: Outcome,
               replay: bool = False, worker: str | None = None) -> Run:
        """Journal one run (a replay's when ``replay``; ``worker``: the Dask worker it ran on)
        and count it in the hook's statistics (any thread)."""
        event = item.event
        result = None if outcome.result is None else _repr.repr(outcome.result)
        changed = bool(hook.sha256 and outcome.digest and outcome.digest != hook.sha256)
        queued = max(0.0, ts - event.ts)
        run = Run(hook.id, event.account, event.service, event.node, event.kind, event.item_id, ts,
                  duration, outcome.status, outcome.error, result, outcome.digest, outcome.tb, changed,
                  outcome.output, replay, hook.spec.executor, worker, queued)
        self.runs.append(run)
        hook.stats.record(outcome.status, ts, outcome.error, outcome.output, worker, queued)
        return run

    async def call_inline(self, hook: Hook, client: Client, item: Item, replay: bool = False,
                          cell: dict[str, Any] | None = None) -> tuple[Outcome, Run]:
        """Run a hook now (before/after hooks, "run once", replays: ``replay``, output shown
        under ``cell``) and journal it; errors, including Veto, are in the outcome."""
        ts, start = time.time(), time.perf_counter()
        if item.depth >= hook.max_depth:
            outcome = self._too_deep(hook, item)
        else:
            outcome = await self.call_async(hook, client, item, cell)
        return outcome, self.record(hook, item, ts, time.perf_counter() - start, outcome, replay)

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
        for hook in befores:
            outcome, _run = await self.call_inline(hook, client, operation_item(client.jid, op, level))
            if isinstance(outcome.exc, Veto):
                raise VetoError(f"{op.op} to node {op.node!r} vetoed by before hook {hook.id}: "
                                f"{outcome.exc.reason}")
            if outcome.status != "ok":
                raise HooknbError(f"{op.op} to node {op.node!r} not sent: before hook {hook.id} "
                                  f"failed ({outcome.error})")
            if outcome.result is not None:
                op.hook_data[hook.id] = outcome.result
        failed: PubSubError | None = None
        result = None
        try:
            result = await send(op)
        except PubSubError as exc:
            failed = exc
        for hook in afters:
            item = operation_item(client.jid, op, level)
            item.outcome = failed.condition if failed else "ok"
            item.error = str(failed) if failed else None
            item.result = result
            await self.call_inline(hook, client, item)
        if failed is not None:
            raise failed
        return result

    # ---------------------------------------------------------------- timeouts, idleness
    def _ensure_watchdog(self) -> None:
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while self.lanes:
            await asyncio.sleep(WATCH_PERIOD)
            now = time.perf_counter()
            for lane in list(self.lanes.values()):
                if isinstance(lane, ThreadLane):
                    expired = lane.expire(now)
                    if expired is not None:
                        ts, item, entry = expired
                        error = f"timed out after {lane.hook.timeout:g} s"
                        self.record(lane.hook, item, ts, lane.hook.timeout,
                                    Outcome("timeout", error=error, digest=lane.hook.sha256))
                        if entry is not None:
                            self.inbox.done_later(entry, time.time())
                    self.stalls.check(lane)

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
        return self.stalls.listing(hooks, lambda h: not h.persistent or h.account in self.active,
                                   self.waiting, lease_ttl)

    async def idle(self, timeout: float = 10.0) -> bool:
        """Wait until no lane has work left and the inbox has nothing left to hand to them (for
        tests, demos and clean shutdown)."""
        deadline = time.monotonic() + timeout
        while self.pending() or self.inbox.busy:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True


async def _awaited(awaitable: Any, capture: Capture) -> Any:
    with capture.active():
        return await awaitable
