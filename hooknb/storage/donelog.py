"""The done log: each persistent run's end, recorded by a memory copy into a file of this process.

Marking a run done in SQLite takes a transaction of its own (about 30 us, more as the WAL grows)
on the worker thread, before it takes its next item.  Instead the worker copies one line,
``SEQ WHEN``, into this process's log, a file mapped in memory (``mmap``), and the inbox thread
folds the lines into the store with its next batch (one transaction for many marks).  The line
is in the file's pages, which the kernel owns, before the worker takes its next item, so a
``kill -9`` loses no mark.  (As with SQLite's WAL at ``synchronous=NORMAL``, a power cut is not
covered.)  A file's space is allocated when it is made; if that fails (a full disk), no log is
used for a second and marks wait in the inbox's memory, to be written through the store.

The logs live in ``<store>-done/``, a private directory beside the store, one file per process
(``PID-TOKEN.log``, :data:`SIZE` bytes: a first line naming the store's id, the marks, zeros)
held under an exclusive ``flock`` while its process writes it.  Whoever reads the pending
entries of an account (a start, a lease take-over) first folds every log it finds
(:func:`fold`): the lines of a live process's log are folded and the file left alone; the log
of a dead process is folded and removed.  A writer starts a new file once its current one passes :data:`ROTATE` bytes (or is full) and
removes the old one once its lines are in the store.  A log naming another store (one since
replaced at this path, whose row numbers mean other entries) is never folded, and a directory
or file that others could write is neither written nor read.

**Attempts** (poison items, :mod:`hooknb.storage.quarantine`): before a run starts on a thread of
this process, its worker copies ``a SEQ`` into the log too (the same memory copy, no system
call).  A run that ends writes its done mark; so a log whose process died holds an attempt
without a done mark exactly for the runs in flight when it died (the hook may have killed
it).  :func:`fold` counts one attempt for each such entry, per dead process, once the done
marks of every log were written (a run's attempt and done marks may be in two files of its
process); a live process's attempts are never counted.  So that no attempt is lost when a
file is given up while its run goes on, a new file starts with the attempts still in flight,
and a file given up stays locked until removed.  (Counting each attempt in the store before
the run instead would be a transaction per run; counting every pending entry at each start
would also count the entries that only waited in a queue when the process ended.)
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import trust

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)
SIZE = 1 << 18  # bytes of a log file (about 10,000 marks)
ROTATE = SIZE // 2  # bytes written after which the inbox thread's next take starts a new file
RETRY = 1.0  # seconds after a file could not be made before trying again
Mark = tuple[int, float]  # (inbox seq, when the run ended)
ATTEMPT = b"a"  # the first field of an attempt line: ``a SEQ``


def directory(store_path: str | os.PathLike) -> Path:
    """Where the done logs of the store at ``store_path`` are."""
    return Path(f"{os.fspath(store_path)}-done")


def _allocate(fd: int, size: int) -> None:
    """Give the file ``size`` bytes of disk now (zeros), so that no write through a map needs
    space later (which would kill the process with SIGBUS on a full disk)."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)
    else:
        os.pwrite(fd, bytes(size), 0)


def _parse(data: bytes, store_id: str) -> tuple[list[Mark], set[int]] | None:
    """The done marks and the attempted seqs of the whole lines after the header; None if the
    header names another store than ``store_id`` (a log left by a process of a store since
    replaced at this path)."""
    lines = data.split(b"\n")
    if lines[0] != b"store %s" % store_id.encode():
        return None
    marks, attempts = [], set()
    for line in lines[1:-1]:  # a last line without its newline is left out
        fields = line.split()
        if len(fields) == 2:
            try:
                if fields[0] == ATTEMPT:
                    attempts.add(int(fields[1]))
                else:
                    marks.append((int(fields[0]), float(fields[1])))
            except ValueError:
                continue
    return marks, attempts


class DoneLog:
    """This process's done log for one store (see the module docstring); thread-safe."""

    def __init__(self, store: Store) -> None:
        self.directory = directory(store.path)
        self._header = b"store %s\n" % store.id.encode()
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        self._path: Path | None = None
        self._end = 0  # where the next line goes
        self._retry_at = 0.0  # after a failure, no new file before then
        self._marks: list[Mark] = []  # written, not taken by the inbox thread yet
        self._retired: list[Path] = []  # files of ours no longer written, to remove once folded
        self._taken: list[Path] = []  # those whose every line was taken
        self._locks: dict[Path, int] = {}  # their descriptors, held (locked) until they are removed
        self._running: dict[int, None] = {}  # seqs whose attempt was written and done mark not yet

    @property
    def waiting(self) -> int:
        """Marks written and not taken yet."""
        return len(self._marks)

    def append(self, seq: int, when: float) -> int | None:
        """Write one mark; the number of marks now waiting to be taken, or None if it could not
        be written (then it is not in the log: the caller keeps it)."""
        with self._lock:
            if not self._line(b"%d %r" % (seq, when)):
                return None
            self._running.pop(seq, None)
            self._marks.append((seq, when))
            return len(self._marks)

    def attempt(self, seq: int) -> bool:
        """Write that entry ``seq``'s run starts now (see the module docstring); False if it
        could not be written (then a death during this run is not counted)."""
        with self._lock:
            if not self._line(b"%s %d" % (ATTEMPT, seq)):
                return False
            self._running[seq] = None
            return True

    def settle(self, seq: int) -> None:
        """Entry ``seq``'s run ended and its done mark goes through the store, not this log."""
        with self._lock:
            self._running.pop(seq, None)

    def _line(self, line: bytes) -> bool:
        """Copy one line into the log (under the lock); False if no file can take it."""
        size = len(line) + 1
        if self._map is None or self._end + size > SIZE:
            if not self._open():
                return False
        end = self._end
        # A memory copy into the file's pages, which the kernel keeps when the process dies:
        # no system call, and the GIL is not let go (a write would hand it to the busy loop
        # thread and wait to get it back).  The newline goes in last, so a line cut by a
        # kill has none and is not read.
        self._map[end:end + size - 1] = line
        self._map[end + size - 1] = 10
        self._end = end + size
        return True

    def _open(self) -> bool:
        """Start a new file (retiring the current one), its space allocated up front so that
        filling it through the map cannot fail; False (and a warning) if that cannot be done."""
        self._retire()
        if time.monotonic() < self._retry_at:
            return False
        path = self.directory / f"{os.getpid()}-{secrets.token_hex(4)}.log"
        # locked before it is named a log: a reader finding it unlocked would take it for a
        # dead process's and remove it
        making = path.with_suffix(".new")
        fd = None
        try:
            trust.private_dir(self.directory)
            if trust.loose(os.stat(self.directory)):  # others could add marks, or remove ours
                raise OSError(f"{self.directory} is not private to you")
            fd = os.open(making, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _allocate(fd, SIZE)
            self._map = mmap.mmap(fd, SIZE)
            # the attempts still in flight go on in the new file (an old one may be removed first)
            head = self._header + b"".join(b"%s %d\n" % (ATTEMPT, seq) for seq in self._running)
            if len(head) > SIZE // 2:  # bounded: those of long runs beyond it are not carried over
                head = head[:head.rindex(b"\n", 0, SIZE // 2) + 1]
            self._map[:len(head)] = head
            os.rename(making, path)
        except OSError as exc:
            if self._map is not None:
                self._map.close()
                self._map = None
            if fd is not None:
                os.close(fd)
                making.unlink(missing_ok=True)
            self._retry_at = time.monotonic() + RETRY
            log.warning("done log in %s: %s (runs are marked done through the store)", self.directory, exc)
            return False
        self._fd, self._path, self._end = fd, path, len(head)
        return True

    def _retire(self) -> None:
        if self._fd is not None:
            self._map.close()
            # still locked: another process folds its done marks, not its attempts of runs in flight
            self._locks[self._path] = self._fd
            self._retired.append(self._path)
            self._fd, self._map, self._path = None, None, None

    def _remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        fd = self._locks.pop(path, None)
        if fd is not None:
            os.close(fd)

    def take(self) -> list[Mark]:
        """The marks written since the last take (the inbox thread folds them into the store,
        then calls :meth:`folded`); starts a new file if the current one is big."""
        with self._lock:
            marks, self._marks = self._marks, []
            if self._end >= ROTATE:
                self._retire()
            self._taken = list(self._retired)
            return marks

    def folded(self) -> None:
        """Everything taken so far is in the store: remove the files given up before the take."""
        with self._lock:
            for path in self._taken:
                self._remove(path)
                self._retired.remove(path)
            self._taken = []

    def close(self, folded: bool) -> None:
        """Stop writing; remove this process's files if ``folded`` (every mark taken is in the
        store) and no mark waits; else the next reader of the store folds them."""
        with self._lock:
            self._retire()
            if folded and not self._marks:
                for path in self._retired:
                    self._remove(path)
                self._retired, self._taken = [], []
            for fd in self._locks.values():  # the next reader of the store folds them
                os.close(fd)
            self._locks = {}


def fold(store: Store) -> int:
    """Write into ``store`` the marks of every done log beside it, this process's included, then
    count the attempts of the entries whose run was in flight when a process died (one per dead
    process); the logs of dead processes are removed once folded.  Logs that name another store
    are not read (and removed once their process is dead); a directory or a file that others
    could have written is not read at all.  Returns how many marks were read.  Raises
    :class:`~hooknb.errors.StoreError` if the store fails."""
    folder = directory(store.path)
    try:
        if trust.loose(os.stat(folder)):
            log.warning("done logs in %s not read: the directory is not private to you", folder)
            return 0
        paths = sorted(folder.glob("*.log"))
    except OSError:
        return 0
    count = 0
    dead: list[tuple[Path, int]] = []  # held locked until their attempts are counted and they are removed
    attempts: dict[str, set[int]] = {}  # per dead process: the seqs it had in flight
    try:
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # its writer removed it meanwhile: folded already
            held = False
            try:
                if trust.loose(os.fstat(fd)):
                    log.warning("done log %s not read: it is not private to you", path)
                    continue
                held = _lock_dead(path, fd)
                if held:
                    dead.append((path, fd))
                with os.fdopen(os.dup(fd), "rb") as f:
                    parsed = _parse(f.read(), store.id)
                if parsed is None:
                    log.warning("done log %s belongs to another store%s", path, ": removed" if held else "")
                else:
                    if parsed[0]:
                        store.write_batch([], [], parsed[0])
                        count += len(parsed[0])
                    if held:
                        attempts.setdefault(path.name.split("-")[0], set()).update(parsed[1])
            finally:
                if not held:
                    os.close(fd)
        counts: dict[int, int] = {}
        for seqs in attempts.values():
            for seq in seqs:
                counts[seq] = counts.get(seq, 0) + 1
        store.add_attempts(counts)  # after every done mark: a run that ended is done, not counted
        for path, _fd in dead:
            path.unlink(missing_ok=True)
    finally:
        for _path, fd in dead:
            os.close(fd)
    return count


def _lock_dead(path: Path, fd: int) -> bool:
    """Whether the log open as ``fd`` is a dead process's (then it is now locked by us): no one
    holds its lock, and it is still the file at ``path`` (not removed by another reader that
    folded it meanwhile)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
