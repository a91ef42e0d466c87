"""What a hook prints: kept with its run, and shown under the cell that created the hook.

Hooks run on lane threads and, when async, as tasks on hooknb's loop, while the notebook runs
other cells.  Since ipykernel 7, output written from another thread lands in whichever cell is
executing at that moment (ipywidgets#4020).  So each run gets a :class:`Capture`:

* ``sys.stdout`` and ``sys.stderr`` are wrapped once by a :class:`Proxy` that hands a write to
  the capture of the run it comes from (a context variable: per thread and per asyncio task,
  so concurrent runs never mix), and passes every other write through untouched;
* the capture keeps the first :data:`OUTPUT_MAX` bytes of the run's output (then a marker
  saying how much was left out) for the runs journal (``output``);
* while the run lasts, the kernel's parent header of the thread or task is set to the one of
  the cell that created the hook (:func:`cell`, taken at creation), so what the run prints or
  displays goes under that cell, live.  A hook with no such cell (restored from the store, made
  by another process) prints nowhere in a kernel: its output is in the journal, ``%hook output``
  and the hook manager.  Outside a kernel (a script, ``hooknb run``) output goes to the process's
  own stdout and stderr unless :data:`echo` is off (the runner logs it with each run instead).

Output written by threads a hook starts itself is not the run's (a new thread starts with an
empty context), and neither is output written at the file-descriptor level.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

#: Bytes (UTF-8) of a run's output kept in the journal; the rest is counted, not kept.
OUTPUT_MAX = 8 * 1024
#: Whether output of runs with no cell to go to is passed on to the process's own streams when
#: there is no kernel (the runner turns it off: its log carries the output).
echo = True

_current: contextvars.ContextVar[Capture | None] = contextvars.ContextVar("hooknb_capture", default=None)
_install_lock = threading.Lock()


def _shell() -> Any:
    """The kernel's shell when this process is an ipykernel kernel new enough to route output
    per thread (``set_thread_parent``), else None.  IPython is never imported here."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or getattr(shell, "kernel", None) is None or not hasattr(shell, "set_thread_parent"):
        return None
    return shell


def cell() -> dict[str, Any] | None:
    """The parent message of the cell executing on the calling thread (None outside a kernel):
    where the output of a hook created now goes."""
    shell = _shell()
    parent = shell.get_parent() if shell is not None else None
    return parent or None


class Capture:
    """The output of one run: kept (bounded) and shown under ``cell`` while the run lasts."""

    def __init__(self, cell: dict[str, Any] | None = None, limit: int = OUTPUT_MAX) -> None:
        self.cell = cell
        self.limit = limit
        self._parts: list[str] = []
        self._kept = 0
        self._left_out = 0
        self._lock = threading.Lock()
        self._shell = _shell()
        #: Whether writes go on to the stream too (under the cell in a kernel, to the console
        #: outside one): never to an unrelated cell.
        self.forward = cell is not None if self._shell is not None else echo

    def add(self, text: str) -> None:
        """Keep ``text`` while there is room (any thread)."""
        size = len(text.encode("utf-8", "replace"))
        with self._lock:
            room = self.limit - self._kept
            if size <= room:
                self._parts.append(text)
                self._kept += size
                return
            if room > 0:
                head = text.encode("utf-8", "replace")[:room].decode("utf-8", "ignore")
                self._parts.append(head)
                self._kept = self.limit
                size -= len(head.encode("utf-8"))
            self._left_out += size

    def text(self) -> str | None:
        """What was kept, with a last line saying how many bytes were left out; None if the run
        wrote nothing."""
        with self._lock:
            if not self._parts and not self._left_out:
                return None
            kept = "".join(self._parts)
            if self._left_out:
                kept += f"\n[… {self._left_out} more bytes of output not kept]\n"
            return kept

    def active(self) -> _Active:
        """A context within which writes of this thread or task go to this capture, and, in a
        kernel, what is printed or displayed goes under the hook's cell."""
        return _Active(self)


class _Active:
    """One activation of a capture (a class, not a generator: it is entered at every run)."""

    __slots__ = ("capture", "token", "tokens")

    def __init__(self, capture: Capture) -> None:
        self.capture = capture

    def __enter__(self) -> Capture:
        capture = self.capture
        install()
        self.token = _current.set(capture)
        shell = capture._shell  # noqa: SLF001
        self.tokens = shell.set_thread_parent(capture.cell) if shell is not None and capture.cell else None
        return capture

    def __exit__(self, *_exc: object) -> None:
        if self.tokens is not None:
            self.capture._shell.reset_thread_parent(self.tokens)  # noqa: SLF001
        _current.reset(self.token)


class Proxy:
    """Stands in for ``sys.stdout`` or ``sys.stderr``: a write made during a run goes to that
    run's capture (and on, if it forwards); any other write, and every other attribute, is the
    wrapped stream's.

    IPython tees each cell's own output into its history by replacing the stream's ``write``
    while the cell runs: here that replacement only ever sees writes made outside runs, so
    what a hook prints is never recorded as the output of the cell running at that moment.
    """

    def __init__(self, stream: TextIO) -> None:
        object.__setattr__(self, "_stream", stream)
        object.__setattr__(self, "_patched", None)

    @property
    def write(self) -> Callable[[str], Any]:
        """The write of whoever writes: a run's goes to its capture, anyone else's to the stream
        (through what replaced its ``write``, if anything did)."""
        if _current.get() is not None:
            return self._write_run
        return self._patched or self._stream.write

    @write.setter
    def write(self, value: Callable[[str], Any]) -> None:
        object.__setattr__(self, "_patched", None if value == self._stream.write else value)

    def _write_run(self, text: str) -> int:
        capture = _current.get()
        if capture is None:  # the run ended between the lookup and the call
            return self._stream.write(text)
        capture.add(text)
        if capture.forward:
            stream = self._stream
            type(stream).write(stream, text)  # the stream's own write, not a cell's replacement
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "write":
            object.__setattr__(self, name, value)  # the property's setter
        else:
            setattr(self._stream, name, value)


def install() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` in a :class:`Proxy` unless they are one already
    (cheap: called at every run, since a cell may have replaced them)."""
    if isinstance(sys.stdout, Proxy) and isinstance(sys.stderr, Proxy):
        return
    with _install_lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None and not isinstance(stream, Proxy):
                setattr(sys, name, Proxy(stream))
