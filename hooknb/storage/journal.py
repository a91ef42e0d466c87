"""Bounded in-memory journals (events, hook runs).

A :class:`Journal` keeps the newest records (slotted dataclasses) that fit both its bounds:
``maxlen`` records and ``max_bytes`` bytes (128 MiB by default), and counts what it has
dropped.  A record's weight is an estimate of the memory it holds: the record and its strings
(``sys.getsizeof``).  A string field longer than :data:`FIELD_MAX` characters (64 KiB) is kept
cut, followed by its full length and SHA-256 (:func:`cut`): an event's payload of a megabyte is
journaled as its first 64 KiB, while the hooks received it whole.  Appends come from the
event-loop thread and the hooks' threads, snapshots from the notebook's, so all take a lock.
Their DataFrames are built by :mod:`hooknb.frames`.
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import operator
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..xmpp.events import payload_digest

#: How many bytes of records a journal keeps by default (events and runs: 256 MiB together).
MAX_BYTES = 128 * 2**20
#: How many characters of one string field of a record a journal keeps (more are cut).
FIELD_MAX = 64 * 2**10
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
    status: str  # ok | error | timeout | dropped | skipped | refused | loop | blocked_loop | would_run | lost
    error: str | None = None
    result: str | None = None
    digest: str | None = None
    traceback: str | None = None
    code_changed: bool = False  # the code (digest) is not the code the hook was created with
    output: str | None = None  # what the run printed, bounded (see hooknb.core.capture)
    replay: bool = False  # a run over a node's stored items (hooknb.core.replay), not a live one
    executor: str = "thread"  # thread | dask
    worker: str | None = None  # the Dask worker's address (dask runs); lost: the worker that died
    queued: float | None = None  # seconds from the item's reception to the run's start


_SHAPES: dict[type, tuple[Callable[[Any], tuple] | None, int] | None] = {}
getsizeof = sys.getsizeof
STR_OVERHEAD = sys.getsizeof("")  # a str object's header, before its characters


def cut(text: str, keep: int = FIELD_MAX) -> str:
    """``text`` itself when it has at most ``keep`` characters; else as many of its first as fit
    in ``keep`` with ``... [cut: N characters in all, sha256 HEX]`` after them (the SHA-256 of
    the whole text in UTF-8: for a payload, the digest of the item's version)."""
    if len(text) <= keep:
        return text
    digest = payload_digest(text)
    tail = f"... [cut: {len(text):,} characters in all, sha256 {digest}]"
    return text[:max(keep - len(tail), 0)] + tail


def fit(row: R) -> tuple[R, int]:
    """``row`` with its long strings :func:`cut` (a copy, if any is), and its weight in bytes:
    the record's ``sys.getsizeof``, a string's per field (or 24 bytes for a number or None),
    and the characters of its text fields (one byte each: ASCII, as XML mostly is)."""
    shape = _SHAPES.get(type(row), False)
    if shape is False:
        shape = _SHAPES[type(row)] = _shape(row)
    if shape is None:  # not a dataclass (a str, a number): as it is
        return row, getsizeof(row)
    texts, base = shape
    if texts is None:
        return row, base
    chars = sum(map(len, filter(None, texts(row))))  # None and "" weigh nothing more
    if chars > FIELD_MAX:
        names = [f.name for f in dataclasses.fields(row)]
        long = {name: cut(value) for name in names
                if type(value := getattr(row, name)) is str and len(value) > FIELD_MAX}
        if long:
            row = dataclasses.replace(row, **long)
            chars = sum(map(len, filter(None, texts(row))))
    return row, base + chars


def _shape(row: Any) -> tuple[Callable[[Any], tuple] | None, int] | None:
    """(a getter of the text fields as a tuple, the weight of the rest) of a dataclass record's
    type; None for other types."""
    if not dataclasses.is_dataclass(row):
        return None
    base = getsizeof(row)
    fields = dataclasses.fields(row)
    texts = [f.name for f in fields if "str" in str(f.type)]  # str, str | None
    base += STR_OVERHEAD * len(texts) + 24 * (len(fields) - len(texts))
    if not texts:
        return None, base
    getter = operator.attrgetter(*texts)
    return (getter if len(texts) > 1 else lambda r: (getter(r),)), base


class Journal(Generic[R]):
    """The newest records of one kind (of strings, numbers and None) within ``maxlen`` records
    and ``max_bytes`` bytes (the newest record is kept whatever its weight), thread-safe."""

    def __init__(self, maxlen: int = 100_000, max_bytes: int = MAX_BYTES) -> None:
        self._rows: deque[R] = deque()
        self._sizes: deque[int] = deque()
        self._maxlen, self._max_bytes = maxlen, max_bytes
        self._lock = threading.Condition()
        #: How many records were appended since the journal was made, kept or not: wait for
        #: ``n`` more with ``journal.wait(journal.total + n)`` (or ``host.wait_runs``).
        self.total = 0
        #: The weight of the records kept, in bytes (see :func:`fit`).
        self.bytes = 0
        #: Called with each batch of new records, on the appending thread (e.g. a live counter).
        self.listeners: list[Callable[[list[R]], None]] = []
        self._wanted: list[int] = []  # the totals :meth:`wait` calls wait for
        self._watching = 0  # :meth:`wait_for` calls waiting: woken after every append

    @property
    def maxlen(self) -> int:
        """How many records are kept at most."""
        return self._maxlen

    @property
    def max_bytes(self) -> int:
        """How many bytes of records are kept at most."""
        return self._max_bytes

    def resize(self, maxlen: int | None = None, max_bytes: int | None = None) -> None:
        """Keep at most ``maxlen`` records and ``max_bytes`` bytes from now on (each unchanged
        when None; the newest are kept)."""
        with self._lock:
            self._maxlen = self._maxlen if maxlen is None else maxlen
            self._max_bytes = self._max_bytes if max_bytes is None else max_bytes
            self._trim()

    def _trim(self) -> None:
        rows, sizes = self._rows, self._sizes
        while len(rows) > self._maxlen or (self.bytes > self._max_bytes and len(rows) > 1):
            rows.popleft()
            self.bytes -= sizes.popleft()

    @property
    def dropped(self) -> int:
        """How many records fell off the end since the journal was made."""
        return self.total - len(self._rows)

    def append(self, row: R) -> None:
        """Add one record."""
        self.extend([row])

    def extend(self, rows: Iterable[R]) -> None:
        """Add several records (long strings cut, see :func:`fit`)."""
        kept, sizes = [], []
        for row in rows:
            row, size = fit(row)
            _untrack(row)
            kept.append(row)
            sizes.append(size)
        with self._lock:
            self._rows.extend(kept)
            self._sizes.extend(sizes)
            self.bytes += sum(sizes)
            self.total += len(kept)
            self._trim()
            # A waiter is woken only when what it waits for may have come: woken by each run,
            # a thread waiting for the 5,000th made the hooks' threads queue for this lock and
            # took half the CPU of a catch-up's runs.
            if self._watching or (self._wanted and self.total >= min(self._wanted)):
                self._lock.notify_all()
        for listener in self.listeners:
            listener(kept)

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
        with self._lock:
            self._wanted.append(total)
            try:
                return self._lock.wait_for(lambda: self.total >= total, timeout)
            finally:
                self._wanted.remove(total)

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Block until ``predicate()`` is true, checked after every append (False on timeout)."""
        with self._lock:
            self._watching += 1
            try:
                return self._lock.wait_for(predicate, timeout)
            finally:
                self._watching -= 1

    def latest(self) -> R | None:
        """The newest record, or None."""
        with self._lock:
            return self._rows[-1] if self._rows else None

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._rows.clear()
            self._sizes.clear()
            self.bytes = 0

    def __len__(self) -> int:
        return len(self._rows)
