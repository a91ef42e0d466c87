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


def _parse(data: bytes, store_id: str) -> list[Mark] | None:
    """The marks of the whole lines after the header; None if the header names another store
    than ``store_id`` (a log left by a process of a store since replaced at this path)."""
    lines = data.split(b"\n")
    if lines[0] != b"store %s" % store_id.encode():
        return None
    marks = []
    for line in lines[1:-1]:  # a last line without its newline is left out
        fields = line.split()
        if len(fields) == 2:
            try:
                marks.append((int(fields[0]), float(fields[1])))
            except ValueError:
                continue
    return marks


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

    @property
    def waiting(self) -> int:
        """Marks written and not taken yet."""
        return len(self._marks)

    def append(self, seq: int, when: float) -> int | None:
        """Write one mark; the number of marks now waiting to be taken, or None if it could not
        be written (then it is not in the log: the caller keeps it)."""
        line = b"%d %r" % (seq, when)
        size = len(line) + 1
        with self._lock:
            if self._map is None or self._end + size > SIZE:
                if not self._open():
                    return None
            end = self._end
            # A memory copy into the file's pages, which the kernel keeps when the process dies:
            # no system call, and the GIL is not let go (a write would hand it to the busy loop
            # thread and wait to get it back).  The newline goes in last, so a line cut by a
            # kill has none and is not read.
            self._map[end:end + size - 1] = line
            self._map[end + size - 1] = 10
            self._end = end + size
            self._marks.append((seq, when))
            return len(self._marks)

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
            self._map[:len(self._header)] = self._header
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
        self._fd, self._path, self._end = fd, path, len(self._header)
        return True

    def _retire(self) -> None:
        if self._fd is not None:
            self._map.close()
            os.close(self._fd)  # releases the flock: another process may fold it, harmlessly
            self._retired.append(self._path)
            self._fd, self._map, self._path = None, None, None

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
                path.unlink(missing_ok=True)
                self._retired.remove(path)
            self._taken = []

    def close(self, folded: bool) -> None:
        """Stop writing; remove this process's files if ``folded`` (every mark taken is in the
        store) and no mark waits; else the next reader of the store folds them."""
        with self._lock:
            self._retire()
            if folded and not self._marks:
                for path in self._retired:
                    path.unlink(missing_ok=True)
                self._retired, self._taken = [], []


def fold(store: Store) -> int:
    """Write into ``store`` the marks of every done log beside it, this process's included; the
    logs of dead processes (and files this process gave up) are removed once folded.  Logs that
    name another store are not read (and removed once their process is dead); a directory or a
    file that others could have written is not read at all.  Returns how many marks were read.
    Raises :class:`~hooknb.errors.StoreError` if the store fails."""
    folder = directory(store.path)
    try:
        if trust.loose(os.stat(folder)):
            log.warning("done logs in %s not read: the directory is not private to you", folder)
            return 0
        paths = sorted(folder.glob("*.log"))
    except OSError:
        return 0
    count = 0
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # its writer removed it meanwhile: folded already
        try:
            if trust.loose(os.fstat(fd)):
                log.warning("done log %s not read: it is not private to you", path)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                dead = True
            except BlockingIOError:
                dead = False
            with os.fdopen(os.dup(fd), "rb") as f:
                marks = _parse(f.read(), store.id)
            if marks is None:
                log.warning("done log %s belongs to another store%s", path, ": removed" if dead else "")
            elif marks:
                store.write_batch([], [], marks)
                count += len(marks)
            if dead:
                path.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return count
