"""Running hooks: one ordered lane per hook, threads for sync hooks, tasks for async ones.

* Each hook has its own lane, so a slow or stuck hook delays nobody else, and sees its items
  in arrival order.
* Sync hooks run on the lane's own worker thread; async hooks run as a task on hooknb's loop.
  The event loop itself never runs hook code that could block.
* A run longer than the hook's timeout is recorded as ``timeout``: an async run is cancelled;
  a sync run's thread is abandoned (Python cannot kill it) and a fresh thread carries on with
  the next items.  At most ``MAX_ABANDONED`` stuck threads per hook; past that the lane waits.
* Lanes are bounded (``QUEUE_MAX`` items).  An item that does not fit is dropped, counted on
  the hook (``dropped``) and journaled as a run with status ``dropped``: never silently.
* Every run lands in the runs journal, with its duration, status, error, traceback, the repr
  of the return value and the SHA-256 of the code that ran.
"""

from __future__ import annotations

import asyncio
import inspect
import reprlib
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import loop as _loop
from .events import Item
from .hooks import Hook
from .journal import Journal, Run
from .store import DONE_KEEP

if TYPE_CHECKING:
    from .client import Client
    from .store import Store

QUEUE_MAX = 10_000
MAX_ABANDONED = 8
IDLE_EXIT = 60.0
WATCH_PERIOD = 0.05

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 200


class Outcome:
    """How one call of a hook ended."""

    __slots__ = ("status", "result", "error", "tb", "digest", "exc")

    def __init__(self, status: str = "ok", result: Any = None, error: str | None = None,
                 tb: str | None = None, digest: str | None = None, exc: BaseException | None = None):
        self.status, self.result, self.error, self.tb, self.digest, self.exc = (
            status, result, error, tb, digest, exc)


def _failure(exc: BaseException, digest: str | None) -> Outcome:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next
                                            if exc.__traceback__ else None))
    return Outcome("error", None, f"{type(exc).__name__}: {exc}", tb, digest, exc)


class Lane:
    """The ordered queue of one hook, with what is needed to skip items it already ran."""

    def __init__(self, engine: Engine, hook: Hook) -> None:
        self.engine, self.hook = engine, hook
        self.done: dict[tuple[str, str, str, str], None] = {}
        self.closed = False

    def claim(self, key: tuple[str, str, str, str]) -> bool:
        """True the first time ``key`` (service, node, item id, kind) is seen by this hook."""
        if key in self.done:
            return False
        self.done[key] = None
        if len(self.done) > DONE_KEEP:
            for old in list(self.done)[: DONE_KEEP // 10]:
                del self.done[old]
        return True

    def offer(self, client: Client, item: Item) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


class ThreadLane(Lane):
    """A sync hook's lane: a worker thread draining a deque."""

    def __init__(self, engine: Engine, hook: Hook) -> None:
        super().__init__(engine, hook)
        self._items: deque[tuple[Client, Item]] = deque()
        self._cv = threading.Condition()
        self._gen = 0
        self._worker = False
        self.abandoned = 0
        self.current: tuple[int, float, float, Item] | None = None

    def pending(self) -> int:
        return len(self._items) + (1 if self.current else 0)

    def offer(self, client: Client, item: Item) -> bool:
        with self._cv:
            if len(self._items) >= QUEUE_MAX:
                return False
            self._items.append((client, item))
            if not self._worker:
                self._start()
            else:
                self._cv.notify()
        return True

    def _start(self) -> None:
        if self.abandoned >= MAX_ABANDONED or self.closed:
            return
        self._worker = True
        threading.Thread(target=self._work, args=(self._gen,), daemon=True,
                         name=f"hooknb-hook-{self.hook.id}").start()

    def _work(self, gen: int) -> None:
        engine, hook = self.engine, self.hook
        while True:
            with self._cv:
                while not self._items and not self.closed:
                    if not self._cv.wait(IDLE_EXIT) and not self._items:
                        self._worker = False
                        return
                if self.closed:
                    self._worker = False
                    return
                client, item = self._items.popleft()
                ts, start = time.time(), time.perf_counter()
                self.current = (gen, start, ts, item)
            outcome = engine.call_sync(hook, client, item)
            duration = time.perf_counter() - start
            with self._cv:
                if gen != self._gen:  # the watchdog gave up on this run (timeout recorded)
                    self.abandoned -= 1
                    if self._worker or self.closed:
                        return
                    self._worker, gen = True, self._gen  # take over the lane again
                    continue
                self.current = None
            engine.record(hook, item, ts, duration, outcome)

    def expire(self, now: float) -> tuple[float, Item] | None:
        """Called by the watchdog: abandon the current run if it is past the timeout."""
        with self._cv:
            cur = self.current
            if cur is None or now - cur[1] <= self.hook.timeout:
                return None
            self._gen += 1
            self.abandoned += 1
            self.current = None
            self._worker = False
            if self._items:
                self._start()
            return cur[2], cur[3]

    def close(self) -> None:
        with self._cv:
            self.closed = True
            self._items.clear()
            self._cv.notify_all()


class TaskLane(Lane):
    """An async hook's lane: a task on the shared loop draining a deque (loop thread only)."""

    def __init__(self, engine: Engine, hook: Hook) -> None:
        super().__init__(engine, hook)
        self._items: deque[tuple[Client, Item]] = deque()
        self._task: asyncio.Task | None = None

    def pending(self) -> int:
        return len(self._items) + (1 if self._task and not self._task.done() else 0)

    def offer(self, client: Client, item: Item) -> bool:
        if len(self._items) >= QUEUE_MAX:
            return False
        self._items.append((client, item))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._work())
        return True

    async def _work(self) -> None:
        while self._items and not self.closed:
            client, item = self._items.popleft()
            ts, start = time.time(), time.perf_counter()
            outcome = await self.engine.call_async(self.hook, client, item)
            self.engine.record(self.hook, item, ts, time.perf_counter() - start, outcome)

    def close(self) -> None:
        self.closed = True
        self._items.clear()
        if self._task is not None:
            self._task.cancel()


class Engine:
    """Dispatches events to lanes, runs hooks, journals runs."""

    def __init__(self, host: Any, runs: Journal[Run], store: Callable[[], Store]) -> None:
        self.host = host
        self.runs = runs
        self._store = store
        self.lanes: dict[str, Lane] = {}
        self._watchdog: asyncio.Task | None = None

    # ---------------------------------------------------------------- dispatch (loop thread)
    def lane(self, hook: Hook) -> Lane:
        """The hook's lane, made on first use (sync or async after the hook's function)."""
        lane = self.lanes.get(hook.id)
        if lane is None or lane.hook is not hook:
            is_async = False
            if hook.loader is not None:
                try:
                    is_async = hook.loader.resolve()[1]
                except Exception:  # noqa: BLE001 - reported by the run itself
                    pass
            lane = (TaskLane if is_async else ThreadLane)(self, hook)
            if hook.persistent:
                lane.done.update(dict.fromkeys(self._store().done_keys(hook.id)))
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

    def dispatch(self, client: Client, events: list[Any]) -> None:
        """Hand each event to the lanes of the hooks attached to its node (loop thread)."""
        lookup = self.host.registry.lookup
        for event in events:
            hooks = lookup(event.account, event.service, event.node)
            if not hooks:
                continue
            item = Item(event)
            for hook in hooks:
                if event.kind not in hook.kinds:
                    continue
                if hook.publishers and (event.publisher or "").split("/")[0] not in hook.publishers:
                    continue
                self.offer(hook, client, item)

    def offer(self, hook: Hook, client: Client, item: Item, dedup: bool = True) -> bool:
        """Queue one item for one hook; False if it was already run or had to be dropped."""
        lane = self.lane(hook)
        event = item.event
        if dedup and event.item_id is not None:
            key = (event.service, event.node, event.item_id, event.kind)
            if not lane.claim(key) or (hook.persistent and not self._claim(hook, key)):
                return False
        if lane.offer(client, item):
            return True
        hook.dropped += 1
        self.record(hook, item, time.time(), 0.0,
                    Outcome("dropped", error=f"queue full ({QUEUE_MAX} items waiting)"))
        return False

    # ---------------------------------------------------------------- calling hooks
    def _resolve(self, hook: Hook) -> tuple[Callable[..., Any], bool, str | None]:
        if hook.loader is None:
            raise RuntimeError(f"hook failed to load: {hook.load_error}")
        return hook.loader.resolve()

    def call_sync(self, hook: Hook, client: Client, item: Item) -> Outcome:
        """Run a hook on a worker thread (an async function is run on the loop and waited)."""
        digest = hook.sha256
        try:
            fn, _is_async, digest = self._resolve(hook)
            result = fn(self.host, client, item)
            if inspect.isawaitable(result):
                result = asyncio.run_coroutine_threadsafe(_awaited(result), _loop.get_loop()).result()
            return Outcome("ok", result, digest=digest)
        except BaseException as exc:  # noqa: BLE001 - a hook's failure is recorded, never raised
            return _failure(exc, digest)

    async def call_async(self, hook: Hook, client: Client, item: Item) -> Outcome:
        """Run a hook on the loop with its timeout (a sync function goes to a thread)."""
        digest = hook.sha256
        try:
            fn, is_async, digest = self._resolve(hook)
            if is_async:
                result = await asyncio.wait_for(fn(self.host, client, item), hook.timeout)
            else:
                result = await asyncio.wait_for(asyncio.shield(asyncio.get_running_loop().run_in_executor(
                    None, fn, self.host, client, item)), hook.timeout)
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, hook.timeout)
            return Outcome("ok", result, digest=digest)
        except asyncio.TimeoutError as exc:
            return Outcome("timeout", error=f"timed out after {hook.timeout:g} s", digest=digest, exc=exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            return _failure(exc, digest)

    def record(self, hook: Hook, item: Item, ts: float, duration: float, outcome: Outcome) -> Run:
        """Journal one run and update the hook's counters (any thread)."""
        event = item.event
        result = None if outcome.result is None else _repr.repr(outcome.result)
        run = Run(hook.id, event.account, event.service, event.node, event.kind, event.item_id, ts,
                  duration, outcome.status, outcome.error, result, outcome.digest, outcome.tb)
        self.runs.append(run)
        if outcome.status != "dropped":
            hook.runs += 1
            hook.last_run = ts
        if outcome.status != "ok":
            hook.failures += 1
            hook.last_error = outcome.error
            if outcome.status == "timeout":
                hook.timeouts += 1
        return run

    def _claim(self, hook: Hook, key: tuple[str, str, str, str]) -> bool:
        """Claim a persistent hook's run in the store, so that two processes hooked on the same
        account (a notebook and ``hooknb run``) run each item once between them."""
        try:
            return self._store().claim(hook.id, key)
        except Exception as exc:  # noqa: BLE001 - a locked store must not stop hooks: run it
            hook.last_error = f"could not record the run in the store: {exc}"
            return True

    # ---------------------------------------------------------------- timeouts
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
                        ts, item = expired
                        error = f"timed out after {lane.hook.timeout:g} s"
                        self.record(lane.hook, item, ts, lane.hook.timeout,
                                    Outcome("timeout", error=error, digest=lane.hook.sha256))

    def pending(self, hook_id: str) -> int:
        """Items waiting or running for a hook."""
        lane = self.lanes.get(hook_id)
        return lane.pending() if lane is not None else 0

    async def idle(self, timeout: float = 10.0) -> bool:
        """Wait until no lane has work left (for tests, demos and clean shutdown)."""
        deadline = time.monotonic() + timeout
        while any(lane.pending() for lane in list(self.lanes.values())):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def call_inline(self, hook: Hook, client: Client, item: Item) -> tuple[Outcome, Run]:
        """Run a hook now (before/after hooks, "run once") and journal it; errors, including
        Veto, are in the outcome."""
        ts, start = time.time(), time.perf_counter()
        outcome = await self.call_async(hook, client, item)
        return outcome, self.record(hook, item, ts, time.perf_counter() - start, outcome)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
