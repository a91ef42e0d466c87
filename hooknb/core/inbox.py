"""The durable inbox of persistent hooks: an item is in the store before its run is queued.

For each item bound for a persistent hook the engine makes an :class:`Entry` and hands a batch
of them to the :class:`Inbox`, whose thread of its own writes the batch in one transaction
(with the positions of the nodes it covers) and then gives the entries that were new back to
the loop, to be queued.  When a run ends (ok, error, timeout) its entry is marked done: at once
on the worker thread that ran it, before that thread takes its next item, so that a run that
ended is never run again, by one line in this process's done log (:mod:`hooknb.storage.donelog`), which
the inbox thread folds into the store with its next batch; through the inbox thread for runs
that ended on the loop.  Pending entries are read through :meth:`Inbox.pending`, which folds
every done log beside the store first.

SQLite never runs on the event loop.  When the store fails (locked, disk full, read-only), the
batches and done marks wait in memory (up to ``memory_max`` entries and ``memory_bytes`` bytes
of payloads), retried every ``retry`` seconds; :attr:`Inbox.status` says why, and they are
written on recovery.

Delivery, stated exactly: every item bound for a persistent hook runs at least once (pending
entries run first at the next start); a run whose end was recorded is never repeated; only a
run in flight when the process died may run again.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ..xmpp import loop as _loop
from ..storage import donelog
from ..storage.donelog import DoneLog
from ..errors import HooknbError
from ..xmpp.events import Event, payload_digest

if TYPE_CHECKING:
    from ..storage.store import Store

log = logging.getLogger(__name__)
RETRY = 0.5  # seconds between attempts while the store fails
FOLD_EVERY = 0.2  # seconds at most between a done mark and its fold into the store
FOLD_MARKS = 1000  # done marks that wake the inbox thread at once to fold them
MEMORY_MAX = 100_000  # entries held in memory while the store fails
MEMORY_BYTES = 256 * 2**20  # bytes of their payloads (100,000 items of 1 MB would be 100 GB)
PRUNE_EVERY = 10_000  # entries written between two prunings of runs done (DONE_KEEP per hook)
Position = tuple[str, str, str, str, str]  # (account, service, node, item id, payload digest)


def digest(event: Event) -> str:
    """The version part of an item's identity: the SHA-256 of its payload ("" when it has none);
    a node-wide event (purge, delete, config) has no identity to share: a fresh token."""
    if event.item_id is None:
        return uuid.uuid4().hex
    return payload_digest(event.payload) if event.payload is not None else ""


class Entry:
    """One item bound for one persistent hook; ``seq`` once it is in the store; ``attempts``:
    its runs that ended with their process dying, as the store counted them when it was read
    (:mod:`hooknb.core.quarantine`)."""

    __slots__ = ("seq", "hook_id", "event", "digest", "attempts")

    def __init__(self, hook_id: str, event: Event, version: str | None = None, seq: int | None = None,
                 attempts: int = 0) -> None:
        self.hook_id, self.event, self.seq, self.attempts = hook_id, event, seq, attempts
        self.digest = digest(event) if version is None else version

    def row(self) -> tuple:
        """The inbox row (:data:`hooknb.storage.inbox_rows.INBOX_COLUMNS`)."""
        e = self.event
        return (self.hook_id, e.account, e.service, e.node, e.kind, e.item_id or "", self.digest,
                e.publisher, e.payload, e.ts)

    @classmethod
    def from_row(cls, row: tuple) -> Entry:
        """An entry from a pending inbox row (:data:`hooknb.storage.quarantine.ROW`)."""
        seq, hook_id, account, service, node, kind, item_id, version, publisher, payload, ts, attempts = row
        return cls(hook_id, Event(account, service, node, kind, item_id or None, publisher, payload, ts),
                   version, seq, attempts)


def _latest(positions: Iterable[Position]) -> list[Position]:
    """The last of ``positions`` for each node: one row per node per batch."""
    return list({p[:3]: p for p in positions}.values())


def _weight(entries: list[Entry]) -> int:
    """The memory the payloads of ``entries`` take, in bytes."""
    return sum(sys.getsizeof(e.event.payload) for e in entries)


def _hand_over(calls: list[tuple[Callable[[list[Entry]], None], list[Entry]]]) -> None:
    """Call each batch's ``then`` with its new entries (on the loop); one failing does not keep
    the others from theirs."""
    for then, accepted in calls:
        try:
            then(accepted)
        except Exception:  # noqa: BLE001 - as the loop would report a callback of its own
            log.exception("persistent hooks: queueing %d written entries failed", len(accepted))


class _Batch:
    __slots__ = ("entries", "positions", "then", "weight")

    def __init__(self, entries: list[Entry], positions: list[Position],
                 then: Callable[[list[Entry]], None] | None, weight: int) -> None:
        self.entries, self.positions, self.then = entries, positions, then
        self.weight = weight  # of the entries' payloads (_weight), counted in and out of _held_bytes


class Inbox:
    """The writer of the inbox (see the module docstring); one per process."""

    def __init__(self, store: Callable[[], Store], retry: float = RETRY, memory_max: int = MEMORY_MAX,
                 memory_bytes: int = MEMORY_BYTES) -> None:
        self._store = store
        self.retry = retry
        self.memory_max, self.memory_bytes = memory_max, memory_bytes
        self._cv = threading.Condition()
        self._batches: deque[_Batch] = deque()
        self._dones: list[tuple[int, float, Future | None]] = []
        self._held = 0  # entries in waiting batches
        self._held_bytes = 0  # the weight of their payloads
        self._thread: threading.Thread | None = None
        #: Why the store cannot be written right now (None when it can).
        self.status: str | None = None
        self._unpruned = 0  # entries written since the runs done were last pruned
        self._log: DoneLog | None = None
        self._fold_now = False  # flush: fold the done marks without waiting for more

    # ---------------------------------------------------------------- intake (loop thread)
    def submit(self, entries: list[Entry], positions: list[Position],
               then: Callable[[list[Entry]], None] | None = None) -> bool:
        """Write ``entries`` and ``positions`` in one transaction, then call ``then`` on the loop
        with the entries that were new (copies of versions already in the inbox are left out).
        False, and nothing kept, when entries wait already (for a failing store) and these would
        take them past ``memory_max`` entries or ``memory_bytes`` bytes of payloads."""
        weight = _weight(entries)
        with self._cv:
            if entries and self._held and (self._held + len(entries) > self.memory_max
                                           or self._held_bytes + weight > self.memory_bytes):
                return False
            self._batches.append(_Batch(entries, positions, then, weight))
            self._held += len(entries)
            self._held_bytes += weight
            self._wake()
        return True

    def pending(self, account: str, hook_id: str | None = None, first: int = 0, limit: int = -1) -> list[tuple]:
        """The entries of ``account`` (of one hook, from seq ``first``, at most ``limit``) not done
        yet, oldest first, as rows (seq, then :data:`~hooknb.storage.inbox_rows.INBOX_COLUMNS`): every
        done log beside the store is folded first, so that a run whose end was marked is never
        among them (any thread but the loop)."""
        store = self._store()
        donelog.fold(store)
        return store.pending(account, hook_id, first, limit)

    @property
    def busy(self) -> bool:
        """Whether batches or done marks wait to be written (or the entries of a written batch
        wait to be handed back to the loop)."""
        return bool(self._batches or self._dones or (self._log and self._log.waiting))

    # ---------------------------------------------------------------- runs that ended
    def done(self, entry: Entry, when: float) -> None:
        """Mark ``entry``'s run done, now, on the calling worker thread (never the loop): a line
        in the done log, folded into the store by the inbox thread; if the log cannot be written
        either, the mark waits in memory and is written on recovery."""
        waiting = self._done_log().append(entry.seq, when)
        if waiting is None:
            self.done_later(entry, when)
        elif waiting in (1, FOLD_MARKS):
            # the thread folds them within FOLD_EVERY, or at once when many wait: not a
            # transaction per run
            with self._cv:
                self._wake()

    def attempt(self, entry: Entry) -> None:
        """Note that ``entry``'s run starts now, on the worker thread about to run it: a line in
        the done log (a memory copy), counted as an attempt only if this process dies before the
        run's done mark (:mod:`hooknb.storage.donelog`)."""
        self._done_log().attempt(entry.seq)

    def _done_log(self) -> DoneLog:
        """This process's done log of the store."""
        if self._log is None:
            self._log = DoneLog(self._store())
        return self._log

    def done_later(self, entry: Entry, when: float) -> Future:
        """Mark ``entry``'s run done through the inbox thread; the future is resolved once the
        mark was written (or, while the store fails, kept in memory)."""
        future: Future = Future()
        if self._log is not None:
            self._log.settle(entry.seq)
        with self._cv:
            self._dones.append((entry.seq, when, future))
            self._wake()
        return future

    async def adone(self, entry: Entry, when: float) -> None:
        """:meth:`done_later`, awaited (for runs that ended on the loop)."""
        await asyncio.wrap_future(self.done_later(entry, when))

    # ---------------------------------------------------------------- the thread
    def _wake(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="hooknb-inbox", daemon=True)
            self._thread.start()
        self._cv.notify()

    def _failed(self, exc: HooknbError) -> None:
        if self.status != str(exc):
            log.error("persistent hooks: %s; items wait in memory", exc)
        self.status = str(exc)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not (self._batches or self._dones or self._fold_now):
                    marks = self._log.waiting if self._log is not None else 0
                    if marks:  # folded after FOLD_EVERY, or sooner with a batch or many marks
                        if marks < FOLD_MARKS:
                            self._cv.wait(FOLD_EVERY)
                        break
                    if not self._cv.wait(60.0) and not self.busy:
                        self._thread = None
                        return
                self._fold_now = False
                batches = list(self._batches)
                if self._log is not None:
                    self._dones.extend((seq, when, None) for seq, when in self._log.take())
                dones = list(self._dones)
            try:
                seqs = self._store().write_batch(
                    [e.row() for b in batches for e in b.entries],
                    _latest(p for b in batches for p in b.positions), [(s, w) for s, w, _ in dones])
            except Exception as exc:  # noqa: BLE001 - the thread lives on: the batch waits and is retried
                if not isinstance(exc, HooknbError):
                    log.exception("persistent hooks: writing a batch failed unexpectedly")
                    exc = HooknbError(f"writing to the store failed: {type(exc).__name__}: {exc}")
                self._failed(exc)
                for _seq, _when, future in dones:  # kept in memory: the caller need not wait
                    if future is not None and not future.done():
                        future.set_result(False)
                time.sleep(self.retry)
                continue
            if self.status is not None:
                log.warning("persistent hooks: the store can be written again")
                self.status = None
            if self._log is not None:
                self._log.folded()
            self._prune(len(seqs))
            for _seq, _when, future in dones:
                if future is not None and not future.done():
                    future.set_result(True)
            self._deliver(batches, iter(seqs))  # before they leave the queue: never idle between
            with self._cv:
                for _ in batches:
                    self._batches.popleft()
                self._held -= sum(len(b.entries) for b in batches)
                self._held_bytes -= sum(b.weight for b in batches)
                del self._dones[:len(dones)]

    def _prune(self, written: int) -> None:
        """Every ``PRUNE_EVERY`` entries, forget runs done beyond the newest ``DONE_KEEP`` of each
        hook, so that the inbox stays bounded (a failure is retried at the next round)."""
        self._unpruned += written
        if self._unpruned < PRUNE_EVERY:
            return
        try:
            self._store().prune()
            self._unpruned = 0
        except HooknbError as exc:
            log.warning("persistent hooks: runs done could not be pruned: %s", exc)

    @staticmethod
    def _deliver(batches: Iterable[_Batch], seqs: Any) -> None:
        """Number the entries of ``batches`` and hand the new ones back to the loop: in one
        call for all of them, since each call wakes the loop through a system call (which lets go
        of the GIL, and taking it back from the busy loop costs more than the call itself)."""
        calls = []
        for batch in batches:
            accepted = []
            for entry in batch.entries:
                entry.seq = next(seqs)
                if entry.seq is not None:
                    accepted.append(entry)
            if batch.then is not None and accepted:
                calls.append((batch.then, accepted))
        if calls:
            _loop.get_loop().call_soon_threadsafe(_hand_over, calls)

    def close(self) -> None:
        """Write what waits (:meth:`flush`) and close the done log."""
        written = self.flush()
        if self._log is not None:
            self._log.close(folded=written)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far was written (False on timeout)."""
        deadline = time.monotonic() + timeout
        if self._log is not None and self._log.waiting:
            with self._cv:
                self._fold_now = True
                self._wake()
        while self.busy:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True
