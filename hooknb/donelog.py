"""The done log: each persistent run's end, recorded with one write to a file of this process.

Marking a run done in SQLite takes a transaction of its own (about 30 us, more as the WAL grows)
on the worker thread, before it takes its next item.  Instead the worker appends one line,
``SEQ WHEN``, to this process's log, and the inbox thread folds the lines into the store with
its next batch (one transaction for many marks).  A line is in the file before the worker takes
its next item, so a ``kill -9`` loses no mark: the operating system has the write.  (As with
SQLite's WAL at ``synchronous=NORMAL``, a power cut is not covered.)

The logs live in ``<store>-done/``, a private directory beside the store, one file per process
(``PID-TOKEN.log``) held under an exclusive ``flock`` while its process lives.  Whoever reads the
pending entries of an account (a start, a lease take-over) first folds every log it finds
(:func:`fold`): the lines of a live process's log are folded and the file left alone; the log
of a dead process is folded and removed.  A writer starts a new file once its current one passes
:data:`ROTATE` bytes and removes the old one once its lines are in the store.  A line is
written whole or the file is given up (a short write could join the next line into a wrong
one); a mark that cannot be written waits in the inbox's memory instead.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from . import trust

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)
ROTATE = 1 << 20  # bytes of a log before its writer starts a new one (about 40,000 marks)
Mark = tuple[int, float]  # (inbox seq, when the run ended)


def directory(store_path: str | os.PathLike) -> Path:
    """Where the done logs of the store at ``store_path`` are."""
    return Path(f"{os.fspath(store_path)}-done")


def _parse(data: bytes) -> list[Mark]:
    """The marks of whole lines (a last line without its newline is left out)."""
    marks = []
    for line in data.split(b"\n")[:-1]:
        fields = line.split()
        if len(fields) == 2:
            try:
                marks.append((int(fields[0]), float(fields[1])))
            except ValueError:
                continue
    return marks


class DoneLog:
    """This process's done log for one store (see the module docstring); thread-safe."""

    def __init__(self, store_path: str | os.PathLike) -> None:
        self.directory = directory(store_path)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
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
        line = b"%d %r\n" % (seq, when)
        with self._lock:
            try:
                if self._fd is None:
                    self._open()
                written = os.write(self._fd, line)
            except OSError as exc:
                self._give_up(exc)
                return None
            if written != len(line):
                self._give_up(OSError(f"short write ({written} of {len(line)} bytes)"))
                return None
            self._size += written
            self._marks.append((seq, when))
            return len(self._marks)

    def _open(self) -> None:
        trust.private_dir(self.directory)
        path = self.directory / f"{os.getpid()}-{secrets.token_hex(4)}.log"
        # locked before it is named a log: a reader finding it unlocked would take it for a
        # dead process's and remove it
        making = path.with_suffix(".new")
        fd = os.open(making, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(making, path)
        except OSError:
            os.close(fd)
            making.unlink(missing_ok=True)
            raise
        self._fd, self._path, self._size = fd, path, 0

    def _give_up(self, exc: OSError) -> None:
        """Stop writing the current file (its last line may be partial): the next mark opens a
        new one."""
        log.warning("done log %s: %s", self._path or self.directory, exc)
        self._retire()

    def _retire(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock: another process may fold it, harmlessly
            self._retired.append(self._path)
            self._fd, self._path = None, None

    def take(self) -> list[Mark]:
        """The marks written since the last take (the inbox thread folds them into the store,
        then calls :meth:`folded`); starts a new file if the current one is big."""
        with self._lock:
            marks, self._marks = self._marks, []
            if self._size >= ROTATE:
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
    logs of dead processes (and files this process gave up) are removed once folded.  Returns
    how many marks were read.  Raises :class:`~hooknb.errors.StoreError` if the store fails."""
    folder = directory(store.path)
    try:
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
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                dead = True
            except BlockingIOError:
                dead = False
            with os.fdopen(os.dup(fd), "rb") as f:
                marks = _parse(f.read())
            if marks:
                store.write_batch([], [], marks)
            count += len(marks)
            if dead:
                path.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return count
