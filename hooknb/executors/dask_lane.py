"""The ``dask`` executor: a hook's runs go to a Dask cluster; their results come back and are
applied here, in item order.

A hook created with ``--executor dask`` gets a :class:`DaskLane` instead of a thread or a task
(:mod:`hooknb.core.lanes`); what its code receives and may return is :mod:`hooknb.executors.remote`;
which cluster, and shipping the code, is :mod:`hooknb.executors.dask_cluster`.

A lane's thread:

* keeps at most the hook's ``concurrency`` tasks in flight, each carrying the events of one
  item, or, while more items wait than that, of several (about ``TASK_SECONDS`` of work, run
  one after another on the worker): Dask spends milliseconds of CPU on each task (scheduler,
  client, worker), which a hook of a few milliseconds would otherwise pay per item; the code
  is shipped once per digest first (:meth:`~hooknb.executors.dask_cluster.DaskCluster.ship`); the lane holds at most ``QUEUE_MAX`` items,
  in flight or waiting, as every lane;
* applies the results in item order (a reorder buffer; unordered hooks as they finish): it
  journals the run (executor, worker, queue time: from the item's reception to the run's start
  on the worker), performs the :class:`~hooknb.core.publishing.Publish` / :class:`~hooknb.core.publishing.Retract`
  requests it returned, then marks a persistent hook's inbox entry done, so that an item is done
  only once its result has been applied;
* a task whose worker dies is run again by the scheduler on another worker (up to
  ``distributed.scheduler.allowed-failures`` deaths, then it fails with ``KilledWorker``, journaled
  as an error); each lost attempt is journaled with status ``lost`` and the dead worker's address
  (workers say when they start a task: :data:`hooknb.executors.dask_worker.STARTED`); ``retries`` covers a
  task that fails outside the hook (whose own errors are its outcome, never retried);
* a task still not back ``timeout`` seconds per item after it was submitted is journaled as
  ``timeout`` for each of its items (and let go: the scheduler forgets it);
* when the scheduler cannot be reached, the runs in flight are taken back, in order, and wait
  with the queued items (nothing is journaled or marked done for them): ``hook.executor_error``
  says so, the hook's status is ``waiting for executor``, one warning is logged, and the lane
  tries again every ``RETRY`` seconds.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from ..errors import HooknbError
from ..core.lanes import IDLE_EXIT, Work
from ..core.outcome import Outcome, failure
from .dask_cluster import CLUSTER, ENV, PREFIX, address
from .remote_lane import RemoteLane, apply
from .remote import Code

if TYPE_CHECKING:
    from distributed import Client, Future

    from ..core.invoke import Invoker
    from ..core.hooks import Hook

log = logging.getLogger(__name__)

RETRY = 1.0  # seconds between attempts while the scheduler cannot be reached
RETRIES = 2  # Dask retries of a task that failed outside the hook
TASK_SECONDS = 0.5  # while items wait, a task carries about this much work...
MAX_BATCH = 64  # ...in at most this many items


# ------------------------------------------------------------------------------------ the lane
class Flight:
    """One task: the items it carries (in order), its future, or the outcome they got here."""

    __slots__ = ("works", "key", "future", "submitted", "outcome", "ts")

    def __init__(self, works: list[Work], key: str) -> None:
        self.works, self.key = works, key
        self.future: Future | None = None
        self.submitted = time.monotonic()
        self.outcome: Outcome | None = None  # set here: refused, failed to load, timed out
        self.ts = time.time()

    @property
    def landed(self) -> bool:
        """Whether there is something to apply (a result, an error, a cancellation, an outcome)."""
        return self.outcome is not None or (self.future is not None and self.future.done())


class DaskLane(RemoteLane):
    """A ``dask`` hook's lane: a thread submitting its items to Dask and applying their results
    (see the module docstring)."""

    executor = "dask"

    def __init__(self, invoker: Invoker, hook: Hook) -> None:
        super().__init__(invoker, hook)
        self._flight: deque[Flight] = deque()
        self._flying = 0  # items in the tasks of _flight
        self._retry_at = 0.0
        self._keys = itertools.count()
        self._dask: Client | None = None
        self._where: str | None = None  # the address of the scheduler last used
        self._mean: float | None = None  # seconds a run takes on a worker (moving average)

    def pending(self) -> int:
        return len(self._items) + self._flying

    def close(self) -> None:
        """Stop at once: the runs in flight are let go, not applied."""
        with self._cv:
            self.closed = self._cancel = True
            self._items.clear()
            self._cv.notify()

    # ---------------------------------------------------------------- the lane's thread
    def _run(self) -> None:
        while True:
            with self._cv:
                todo = self._next()
                if todo is None:
                    self._thread = None
                    return
            submit, ready = todo
            if submit:
                self._submit(submit)
            if ready:
                self._apply(ready)

    def _next(self) -> tuple[list[Flight], list[Flight]] | None:
        """(tasks to submit now, tasks whose results to apply now, in order), waiting until
        there are some; None when the lane ends (under the lock)."""
        idle = time.monotonic() + IDLE_EXIT
        while True:
            if self._cancel:
                for flight in self._flight:
                    self._drop(flight)
                self._flight.clear()
                self._flying = 0
                return None
            now = time.monotonic()
            self._check(now)
            ready = self._ready()
            submit = []
            if now >= self._retry_at:
                while self._items and len(self._flight) < self.hook.spec.concurrency:
                    size = self._batch()
                    flight = Flight([self._items.popleft() for _ in range(size)],
                                    f"{PREFIX}{self.hook.id}-{next(self._keys)}")
                    self._flight.append(flight)
                    self._flying += size
                    submit.append(flight)
            if submit or ready:
                return submit, ready
            if not self._flight and not self._items and (self.closed or now >= idle):
                return None
            self._cv.wait(self._wait_time(now, idle))

    def _batch(self) -> int:
        """How many waiting items the next task carries: one while no more wait than the hook
        has tasks in flight; else their share of the tasks, up to what takes ``TASK_SECONDS`` on
        a worker (and ``MAX_BATCH``), so that the items of a fast hook share Dask's cost per task
        (milliseconds of CPU in the scheduler, the client and the worker)."""
        share = -(-len(self._items) // self.hook.spec.concurrency)
        if share <= 1 or not self._mean:
            return 1
        return max(1, min(share, MAX_BATCH, int(TASK_SECONDS / self._mean)))

    def _wait_time(self, now: float, idle: float) -> float:
        deadlines = [idle, self._retry_at if self._items else idle]
        deadlines += [self._deadline(f) for f in self._flight if f.outcome is None]
        if self._flight:
            deadlines.append(now + RETRY)  # to notice a client that stopped being connected
        return max(0.0, min(deadlines) - now) + 0.001

    def _deadline(self, flight: Flight) -> float:
        return flight.submitted + self.hook.timeout * len(flight.works)

    def _ready(self) -> list[Flight]:
        """The tasks whose results can be applied now: the landed head, in order (or every
        landed one, for an unordered hook)."""
        if self.hook.spec.ordered:
            return list(itertools.takewhile(lambda f: f.landed, self._flight))
        return [f for f in self._flight if f.landed]

    def _check(self, now: float) -> None:
        """Time out tasks past the hook's timeout (for each of their items); take every task
        back if the client stopped being connected (under the lock)."""
        if self._flight and self._dask is not None and self._dask.status != "running":
            self._lost(f"the client is {self._dask.status}")
            return
        for flight in self._flight:
            if flight.outcome is None and flight.future is not None and not flight.future.done() \
                    and now > self._deadline(flight):
                flight.outcome = Outcome("timeout", error=f"timed out after {self.hook.timeout:g} s "
                                         "(from its submission to Dask)", digest=self.hook.sha256)
                self._drop(flight)

    @staticmethod
    def _drop(flight: Flight) -> None:
        """Let go of a task (released: the scheduler forgets it, and a worker running it drops
        its result) and of its start events; never blocks."""
        if flight.future is not None:
            flight.future.release()
        CLUSTER.lost_workers(flight.key, None)

    def _lost(self, reason: str, retry: float = RETRY, say: bool = True) -> None:
        """The scheduler went away (``reason`` says how), or forgot the code (not ``say``): every
        task in flight goes back to the head of the queue, its items in order, tried again in
        ``retry`` seconds; the hook's status line says so, the same line until it recovers (a
        stopped lane keeps none: a persistent hook's stay pending in the inbox) (under the lock)."""
        flights = list(self._flight)
        self._flight.clear()
        self._flying = 0
        for flight in flights:
            self._drop(flight)
        if not self.closed:
            self._items.extendleft(reversed([work for f in flights for work in f.works]))
        self._retry_at = time.monotonic() + retry
        if self._dask is not None:
            self._where = address(self._dask)
        CLUSTER.forget(self._dask)
        self._dask = None
        error = (f"dask: the scheduler {self._where or os.environ.get(ENV) or '?'} cannot be reached; "
                 f"its items wait, tried again every {RETRY:g} s")
        if say and self.hook.executor_error != error:
            log.warning("hook %s: %s (%s)", self.hook.id, error, reason)
            self.hook.executor_error = error

    def _submit(self, flights: list[Flight]) -> None:
        try:
            dask = self._dask = CLUSTER.connection()
            task = _run_task()
            for flight in flights:
                code = self._code(flight)
                if code is None:
                    continue
                CLUSTER.ship(dask, code)
                flight.future = future = dask.submit(task, code.key, [w[1].event for w in flight.works],
                                                     key=flight.key, pure=False, retries=RETRIES)
                future.add_done_callback(self._wake)
        except HooknbError as exc:
            self._take_back(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - the scheduler went away while we talked to it
            self._take_back(f"{type(exc).__name__}: {exc}")
            return
        if self.hook.executor_error is not None:
            log.warning("hook %s: dask: the scheduler can be reached again", self.hook.id)
            self.hook.executor_error = None

    def _take_back(self, reason: str) -> None:
        with self._cv:
            self._lost(reason)

    def _wake(self, _future: Any = None) -> None:
        with self._cv:
            self._cv.notify()

    def _code(self, flight: Flight) -> Code | None:
        """The hook's code as it is now, to ship; None (and the task's outcome set) when it cannot run."""
        code = self.code()
        if isinstance(code, Outcome):
            flight.outcome = code
            return None
        return code

    def _apply(self, ready: list[Flight]) -> None:
        """Journal each result, perform its requests and mark it done, in item order."""
        replies = self._gather([f for f in ready if f.outcome is None])
        if replies is None:
            return
        for flight in ready:
            got = replies.get(flight.key)
            if isinstance(got, list) and got and got[0].outcome is None:  # a new scheduler: ship again
                with self._cv:
                    self._lost("the workers did not have the hook's code", retry=0.1, say=False)
                return
            final = got[0].worker if isinstance(got, list) and got else _worker_of(got)
            lost = CLUSTER.lost_workers(flight.key, final)
            for index, (client, item, entry) in enumerate(flight.works):
                for worker in lost:
                    self.invoker.record(self.hook, item, time.time(), 0.0, Outcome(
                        "lost", error=f"worker {worker} was lost mid-run; the item runs again"), worker=worker)
                self._apply_one(client, item, entry, *self._outcome(flight, got, index))
            with self._cv:
                self._flight.remove(flight)
                self._flying -= len(flight.works)

    def _apply_one(self, client: Any, item: Any, entry: Any, outcome: Outcome, ts: float, duration: float,
                   worker: str | None) -> None:
        apply(self.invoker, self.hook, client, item, entry, outcome, ts, duration, worker)

    def _outcome(self, flight: Flight, got: Any, index: int) -> tuple[Outcome, float, float, str | None]:
        """(outcome, start, duration, worker) of item ``index`` of a task: its reply, the error
        the task failed with, or the outcome it got here."""
        if flight.outcome is not None:
            timed_out = flight.outcome.status == "timeout"
            return flight.outcome, flight.ts, self.hook.timeout if timed_out else 0.0, None
        if isinstance(got, list):
            reply = got[index]
            self._mean = reply.duration if self._mean is None else 0.9 * self._mean + 0.1 * reply.duration
            return reply.outcome, reply.ts, reply.duration, reply.worker
        if type(got).__name__ == "KilledWorker":
            outcome = Outcome("error", error=f"its worker died each time it ran ({got}); given up")
        else:
            outcome = failure(got, None)
        return outcome, flight.ts, 0.0, _worker_of(got)

    def _gather(self, flights: list[Flight]) -> dict[str, Any] | None:
        """The results of ``flights`` by key (a list of :class:`Reply`, or the exception of a
        task that failed); None when the scheduler went away (every task was taken back)."""
        if any(f.future.cancelled() for f in flights):
            self._take_back("its tasks were cancelled: the client lost the scheduler")
            return None
        done = [f for f in flights if f.future.status == "finished"]
        out: dict[str, Any] = {}
        try:
            if done:
                out.update(zip([f.key for f in done], self._dask.gather([f.future for f in done])))
            for flight in flights:
                if flight.key not in out:
                    out[flight.key] = flight.future.exception()
        except Exception as exc:  # noqa: BLE001 - the connection broke while gathering
            self._take_back(f"{type(exc).__name__}: {exc}")
            return None
        for flight in flights:
            flight.future.release()  # the scheduler forgets the task
            flight.future = None
        return out


def _worker_of(error: Any) -> str | None:
    """The address of the worker a failed task last ran on, when the error says."""
    return getattr(getattr(error, "last_worker", None), "address", None)


def _run_task() -> Any:
    from .dask_worker import run

    return run
