"""The ``process`` executor: a hook's runs go to a worker process of this machine, so that a run
that kills its process kills the worker, never the kernel or ``hooknb run``.

A hook created with ``--executor process`` gets a :class:`ProcessLane`: a thread of this process
that sends the hook's items, one at a time and in order, to a worker process of its own
(:mod:`hooknb.executors.process_worker`, started with ``forkserver``: a fresh interpreter, not a
fork of this process's threads).  What the hook's code receives and may return is the remote
contract of the Dask executor (:mod:`hooknb.executors.remote`): its code shipped once per digest,
``host`` and ``client`` offline stand-ins, :class:`~hooknb.core.publishing.Publish` /
:class:`~hooknb.core.publishing.Retract` returned and performed here; results are applied in item
order (:mod:`hooknb.executors.remote_lane`).

* **A worker that dies** during a run (``os._exit``, a segfault in a C extension, the
  out-of-memory killer; ``$HOOKNB_PROCESS_MEMORY_MB`` caps a worker's address space, so that a
  runaway allocation fails as ``MemoryError`` in the hook instead) is noticed at once (its pipe
  closes): the run is journaled ``lost`` with the reason (its exit code, or the signal that
  killed it), a new worker replaces it, and the item runs again.  Each death is an attempt of
  the item (counted in the store for a persistent hook's entry, :mod:`hooknb.core.quarantine`);
  at the attempts limit the item is quarantined instead, and the next item runs.
* **A run past the hook's timeout** is ended by killing its worker (a process, unlike a thread,
  can be stopped): journaled ``timeout``, the entry done, a new worker for the next item.
* The lane's worker is stopped when the lane is idle for ``IDLE_EXIT`` seconds, closed, or the
  process exits; ``--concurrency`` and ``--unordered`` are the Dask executor's (a process lane
  runs one item at a time).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from typing import TYPE_CHECKING, Any

from ..core.lanes import IDLE_EXIT
from ..core.outcome import Outcome
from .process_worker import serve
from .remote import Code, Reply
from .remote_lane import RemoteLane, apply

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from ..core.hooks import Hook
    from ..core.invoke import Invoker

log = logging.getLogger(__name__)
CONTEXT = "forkserver"
MEMORY_ENV = "HOOKNB_PROCESS_MEMORY_MB"  # a worker's address space, in MiB (unset: no limit)
_context = multiprocessing.get_context(CONTEXT)
_context.set_forkserver_preload(["hooknb.executors.process_worker"])


class Died(Exception):
    """The worker process ended during a run (the message says how)."""


class Worker:
    """One worker process and its pipe; the code keys it has loaded."""

    def __init__(self, name: str) -> None:
        memory = os.environ.get(MEMORY_ENV)
        ours, theirs = _context.Pipe()
        self.process = _context.Process(target=serve, name=name, daemon=True,
                                        args=(theirs, name, int(memory) * 2**20 if memory else None))
        self.process.start()
        theirs.close()
        self.conn: Connection = ours
        self.name = name
        self.loaded: set[str] = set()

    def call(self, code: Code, event: Any, timeout: float) -> Reply | None:
        """Run ``code`` on ``event`` in the worker: its reply, None past ``timeout`` seconds (the
        worker is then killed); :class:`Died` if the worker ended meanwhile."""
        try:
            if code.key not in self.loaded:
                self.conn.send(("load", code))
                self.loaded.add(code.key)
            self.conn.send(("call", code.key, event))
            if not self.conn.poll(timeout):
                self.stop()
                return None
            return self.conn.recv()
        except (EOFError, OSError) as exc:
            raise Died(self.death()) from exc

    def death(self) -> str:
        """How the worker ended: its exit code, or the signal that killed it."""
        self.process.join(5)
        code = self.process.exitcode
        self.conn.close()
        if code is None:
            self.stop()
            return "its pipe closed"
        if code < 0:
            try:
                return f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def stop(self) -> None:
        """End the worker now."""
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)


class ProcessLane(RemoteLane):
    """A ``process`` hook's lane (see the module docstring)."""

    executor = "process"

    def __init__(self, invoker: Invoker, hook: Hook) -> None:
        super().__init__(invoker, hook)
        self._running = 0  # 1 while an item is out of the queue and not applied
        self._worker: Worker | None = None
        self._started = 0  # workers started (their names)

    def pending(self) -> int:
        return len(self._items) + self._running

    def close(self) -> None:
        """Stop at once: the run in progress is ended with its worker, not applied."""
        self._cancel = True
        self.stop()
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()

    # ---------------------------------------------------------------- the lane's thread
    def _run(self) -> None:
        try:
            while True:
                with self._cv:
                    idle = time.monotonic() + IDLE_EXIT
                    while not self._items and not self.closed and time.monotonic() < idle:
                        self._cv.wait(max(0.0, idle - time.monotonic()))
                    if not self._items:
                        self._thread = None
                        break
                    client, item, entry = self._items.popleft()
                    self._running = 1
                try:
                    self._one(client, item, entry)
                finally:
                    self._running = 0
        finally:
            worker, self._worker = self._worker, None
            if worker is not None:
                worker.stop()

    def _one(self, client: Any, item: Any, entry: Any) -> None:
        """Run one item to its end: applied, timed out, or quarantined after its worker died
        ``max_attempts`` times (counting the deaths of earlier processes)."""
        hook, invoker = self.hook, self.invoker
        attempts = entry.attempts if entry is not None else 0
        while True:
            ts, start = time.time(), time.perf_counter()
            code = self.code()
            if isinstance(code, Outcome):
                apply(invoker, hook, client, item, entry, code, ts, 0.0, None)
                return
            worker = self._worker = self._worker or self._start()
            try:
                reply = worker.call(code, item.event, hook.timeout)
            except Died as exc:
                self._worker = None
                if self._cancel:  # closed: the lane ended it
                    return
                attempts += 1
                if self._lost(item, entry, worker.name, str(exc), attempts):
                    return
                continue
            if reply is None:
                self._worker = None
                timed_out = Outcome("timeout", error=f"timed out after {hook.timeout:g} s: its worker process "
                                    "was killed (a new one takes the next item)", digest=hook.sha256)
                apply(invoker, hook, client, item, entry, timed_out, ts, time.perf_counter() - start, worker.name)
                return
            if reply.outcome is None:  # the worker did not have the code: load it again
                worker.loaded.discard(code.key)
                continue
            apply(invoker, hook, client, item, entry, reply.outcome, reply.ts, reply.duration, reply.worker)
            return

    def _lost(self, item: Any, entry: Any, name: str, why: str, attempts: int) -> bool:
        """Journal a run whose worker died; count the attempt; quarantine the item at the limit
        (True: done with it), else it runs again (False)."""
        quarantine, hook = self.invoker.quarantine, self.hook
        limit = quarantine.max_attempts if quarantine is not None else 1
        again = attempts < limit
        self.invoker.record(hook, item, time.time(), 0.0, Outcome(
            "lost", error=f"its worker process died during the run ({why}); attempt {attempts} of {limit}"
                          + ("; the item runs again in a new worker" if again else ""), digest=hook.sha256),
            worker=name)
        log.warning("hook %s: worker %s died running item %s of node %r (%s)", hook.id, name, item.id, hook.node, why)
        if quarantine is None:
            return True
        if entry is not None and again:
            quarantine.count(entry)
        if not again:
            quarantine.put(hook, item, entry, attempts, f"its worker process died: {why}")
        return not again

    def _start(self) -> Worker:
        self._started += 1
        return Worker(f"process:{self.hook.id}-{os.getpid()}-{self._started}")
