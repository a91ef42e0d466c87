"""Lanes: one ordered queue per hook, drained by a thread (sync hooks) or a task (async ones).

* Each hook has its own lane, so a slow or stuck hook delays nobody else, and sees its items
  in arrival order.
* Sync hooks run on the lane's own worker thread; async hooks run as a task on hooknb's loop.
  The event loop itself never runs hook code that could block.
* A run longer than the hook's timeout is recorded as ``timeout``: an async run is cancelled;
  a sync run's thread is abandoned (Python cannot kill it) and a fresh thread carries on with
  the next items.  At most ``MAX_ABANDONED`` stuck threads per hook; at that cap the lane is
  ``stalled`` (its items wait) until one of them returns and takes the items again (see
  :mod:`hooknb.core.stalls`, which makes it visible).
* Lanes are bounded (``QUEUE_MAX`` items).  An item that does not fit is dropped, counted on
  the hook (``dropped``) and journaled as a run with status ``dropped``: never silently.
* A lane calls its invoker (:class:`hooknb.core.invoke.Invoker`) to run the hook, to record each run
  and, for a persistent hook, to mark its inbox entry done (:meth:`Invoker.finish`) before it
  takes the next item; it never sees the engine, and knows nothing about dispatch, phases or the store.
* A thread lane tells the engine's watchdog when it takes items (:attr:`Lane.watch`), and the
  watchdog looks at it until it is idle: not at every lane (with 10,000 idle lanes, a look at
  each every 50 ms took a quarter of a core).
* :meth:`Lane.stop` takes no more items and lets the run in progress end (a clean stop: what is
  left is pending in the inbox); :meth:`Lane.close` also cancels an async run.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..xmpp.events import Item
from .hooks import Hook
from ..storage.store import DONE_KEEP

if TYPE_CHECKING:
    from ..xmpp.client import Client
    from .invoke import Invoker
    from .inbox import Entry

Work = tuple["Client", Item, "Entry | None"]  # what a lane queues: the entry of a persistent hook
#: Makes the lane of a hook of an executor other than ``thread`` (the facade knows them).
LaneFactory = Callable[["Invoker", Hook], "Lane"]

QUEUE_MAX = 10_000
MAX_ABANDONED = 8
IDLE_EXIT = 60.0


def fitting(work: list[Any], queued: int, closed: bool) -> list[Any]:
    """The first of ``work`` that fit in a lane holding ``queued`` items (none if it is closed)."""
    return [] if closed else work[:max(0, QUEUE_MAX - queued)]


class Lane:
    """The ordered queue of one hook, with what is needed to skip items it already ran."""

    executor = "thread"  # the hook executor it serves (see hooknb.core.hooks.EXECUTORS)

    def __init__(self, invoker: Invoker, hook: Hook) -> None:
        self.invoker, self.hook = invoker, hook
        self.done: dict[tuple, None] = {}
        self.closed = False
        #: Told when a thread lane takes items (loop thread): the engine's watchdog.
        self.watch: Callable[[ThreadLane], None] = lambda _lane: None

    def claim(self, key: tuple) -> bool:
        """True the first time ``key`` (an item version) is seen by this hook."""
        if key in self.done:
            return False
        self.done[key] = None
        if len(self.done) > DONE_KEEP:
            for old in list(self.done)[: DONE_KEEP // 10]:
                del self.done[old]
        return True

    def offer(self, client: Client, work: list[tuple[Item, Entry | None]]) -> int:
        """Queue items (each with its inbox entry, for a persistent hook), in order, under one
        lock for them all; returns how many were taken: the rest did not fit (``QUEUE_MAX``), or
        the lane is stopped."""
        raise NotImplementedError

    def pending(self) -> int:
        """Items waiting or running."""
        raise NotImplementedError

    def waiting(self) -> int:
        """Items queued and not started."""
        raise NotImplementedError

    @property
    def stalled(self) -> bool:
        """Whether no worker takes the items (every thread it may have is stuck in a run)."""
        return False

    def stop(self) -> None:
        """Take no more items; the run in progress ends normally."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop at once (a deleted hook)."""
        self.stop()


class ThreadLane(Lane):
    """A sync hook's lane: a worker thread draining a deque."""

    def __init__(self, invoker: Invoker, hook: Hook) -> None:
        super().__init__(invoker, hook)
        self._items: deque[Work] = deque()
        self._cv = threading.Condition()
        self._gen = 0
        self._worker = False
        self.abandoned = 0
        self.current: tuple[int, float, float, Item, Entry | None] | None = None
        self._ending = False  # a run ended and is being recorded (and marked done)

    def pending(self) -> int:
        return len(self._items) + (1 if self.current or self._ending else 0)

    def waiting(self) -> int:
        return len(self._items)

    @property
    def stalled(self) -> bool:
        return self.abandoned >= MAX_ABANDONED and not self._worker and not self.closed

    def offer(self, client: Client, work: list[tuple[Item, Entry | None]]) -> int:
        with self._cv:
            taken = fitting(work, len(self._items), self.closed)
            self._items.extend((client, item, entry) for item, entry in taken)
            if taken and not self._worker:
                self._start()
            elif taken:
                self._cv.notify()
        if taken:
            self.watch(self)
        return len(taken)

    def idle(self) -> bool:
        """No item queued and none running (read under the lane's lock: a worker takes an item
        and starts its run in one step)."""
        with self._cv:
            return not self._items and self.current is None and not self._ending

    def _start(self) -> None:
        if self.abandoned >= MAX_ABANDONED or self.closed:
            return
        self._worker = True
        threading.Thread(target=self._work, args=(self._gen,), daemon=True,
                         name=f"hooknb-hook-{self.hook.id}").start()

    def _work(self, gen: int) -> None:
        invoker, hook = self.invoker, self.hook
        while True:
            again = True  # the next run comes straight after this one (see Loader.resolve)
            with self._cv:
                while not self._items and not self.closed:
                    again = False
                    if not self._cv.wait(IDLE_EXIT) and not self._items:
                        self._worker = False
                        return
                if self.closed:
                    self._worker = False
                    return
                client, item, entry = self._items.popleft()
                ts, start = time.time(), time.perf_counter()
                self.current = (gen, start, ts, item, entry)
            if entry is not None:
                invoker.begin(entry)
            outcome = invoker.call_sync(hook, client, item, again)
            duration = time.perf_counter() - start
            with self._cv:
                if gen != self._gen:  # the watchdog gave up on this run (timeout recorded)
                    self.abandoned -= 1
                    if self._worker or self.closed:
                        return
                    self._worker, gen = True, self._gen  # take over the lane again
                    continue
                self.current, self._ending = None, True  # pending until recorded and marked done
            invoker.record(hook, item, ts, duration, outcome)
            if entry is not None:
                invoker.finish(entry)
            self._ending = False

    def expire(self, now: float) -> tuple[float, Item, Entry | None] | None:
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
            return cur[2], cur[3], cur[4]

    def stop(self) -> None:
        with self._cv:
            self.closed = True
            self._items.clear()
            self._cv.notify_all()


class TaskLane(Lane):
    """An async hook's lane: a task on the shared loop draining a deque (loop thread only)."""

    def __init__(self, invoker: Invoker, hook: Hook) -> None:
        super().__init__(invoker, hook)
        self._items: deque[Work] = deque()
        self._task: asyncio.Task | None = None

    def pending(self) -> int:
        return len(self._items) + (1 if self._task and not self._task.done() else 0)

    def waiting(self) -> int:
        return len(self._items)

    def offer(self, client: Client, work: list[tuple[Item, Entry | None]]) -> int:
        taken = fitting(work, len(self._items), self.closed)
        self._items.extend((client, item, entry) for item, entry in taken)
        if taken and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._work())
        return len(taken)

    async def _work(self) -> None:
        while self._items and not self.closed:
            client, item, entry = self._items.popleft()
            ts, start = time.time(), time.perf_counter()
            if entry is not None:
                self.invoker.begin(entry)
            outcome = await self.invoker.call_async(self.hook, client, item)
            self.invoker.record(self.hook, item, ts, time.perf_counter() - start, outcome)
            if entry is not None:
                await self.invoker.afinish(entry)

    def stop(self) -> None:
        self.closed = True
        self._items.clear()

    def close(self) -> None:
        self.stop()
        if self._task is not None:
            self._task.cancel()
