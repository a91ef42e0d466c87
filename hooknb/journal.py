"""Bounded in-memory journals (events, hook runs).

A :class:`Journal` keeps the newest ``maxlen`` records (slotted dataclasses) and counts what
it has dropped.  Appends come from the event-loop thread, snapshots from the notebook's, so
both take a lock.  Their DataFrames are built by :mod:`hooknb.frames`.
"""

from __future__ import annotations

import ctypes
import gc
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")


def _untracker() -> Callable[[object], None]:
    """CPython's ``PyObject_GC_UnTrack`` (a no-op on other interpreters)."""
    try:
        untrack = ctypes.pythonapi.PyObject_GC_UnTrack
    except AttributeError:
        return lambda _obj: None
    untrack.argtypes, untrack.restype = [ctypes.py_object], None
    # An object the collector does not track (a str, a float) has no GC header to unlink:
    # untracking it would write outside it.
    return lambda obj: untrack(obj) if gc.is_tracked(obj) else None


#: Journal records hold only strings, numbers and None, so they cannot be part of a reference
#: cycle: the cycle collector is told to skip them, as CPython does on its own for tuples and
#: dicts of such values.  Tracked, 100,000 events and as many runs made every full collection
#: walk 200,000 more objects (75 ms each time, and under load one came every 5,000 events).
_untrack = _untracker()

@dataclass(frozen=True, slots=True)
class Run:
    """One run of a hook on one item: what ran, when, how long, and how it ended."""

    hook_id: str
    account: str
    service: str
    node: str
    kind: str
    item_id: str | None
    ts: float
    duration: float
    status: str  # ok | error | timeout | dropped | skipped | refused | loop | blocked_loop | would_run
    error: str | None = None
    result: str | None = None
    digest: str | None = None
    traceback: str | None = None
    code_changed: bool = False  # the code (digest) is not the code the hook was created with
    output: str | None = None  # what the run printed, bounded (see hooknb.capture)
    replay: bool = False  # a run over a node's stored items (hooknb.replay), not a live one


class Journal(Generic[R]):
    """The newest ``maxlen`` records of one kind (of strings, numbers and None), thread-safe."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._rows: deque[R] = deque(maxlen=maxlen)
        self._lock = threading.Condition()
        #: How many records were appended since the journal was made, kept or not: wait for
        #: ``n`` more with ``journal.wait(journal.total + n)`` (or ``host.wait_runs``).
        self.total = 0
        #: Called with each batch of new records, on the appending thread (e.g. a live counter).
        self.listeners: list[Callable[[list[R]], None]] = []

    @property
    def maxlen(self) -> int:
        """How many records are kept."""
        return self._rows.maxlen or 0

    def resize(self, maxlen: int) -> None:
        """Keep at most ``maxlen`` records from now on (the newest are kept)."""
        with self._lock:
            self._rows = deque(self._rows, maxlen=maxlen)

    @property
    def dropped(self) -> int:
        """How many records fell off the end since the journal was made."""
        return self.total - len(self._rows)

    def append(self, row: R) -> None:
        """Add one record."""
        _untrack(row)
        with self._lock:
            self._rows.append(row)
            self.total += 1
            self._lock.notify_all()
        for listener in self.listeners:
            listener([row])

    def extend(self, rows: Iterable[R]) -> None:
        """Add several records."""
        rows = list(rows)
        for row in rows:
            _untrack(row)
        with self._lock:
            self._rows.extend(rows)
            self.total += len(rows)
            self._lock.notify_all()
        for listener in self.listeners:
            listener(rows)

    def snapshot(self, last: int | None = None) -> list[R]:
        """A copy of the records, oldest first (only the ``last`` newest if given)."""
        with self._lock:
            if last is None or last >= len(self._rows):
                return list(self._rows)
            return self._tail(last)

    def _tail(self, count: int) -> list[R]:
        return [self._rows[i] for i in range(len(self._rows) - count, len(self._rows))]

    def since(self, total: int) -> tuple[list[R], int]:
        """The records appended after the first ``total`` (those still kept, oldest first) and
        the new total: a reader that passes back the total it got misses nothing still kept."""
        with self._lock:
            new = min(self.total - total, len(self._rows))
            return (self._tail(new) if new > 0 else []), self.total

    def wait(self, total: int, timeout: float | None = None) -> bool:
        """Block until ``total`` records have been appended in all (False on timeout)."""
        return self.wait_for(lambda: self.total >= total, timeout)

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Block until ``predicate()`` is true, checked after every append (False on timeout)."""
        with self._lock:
            return self._lock.wait_for(predicate, timeout)

    def latest(self) -> R | None:
        """The newest record, or None."""
        with self._lock:
            return self._rows[-1] if self._rows else None

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)
