"""What a hook prints: kept with its run, and shown under the cell that created the hook.

Hooks run on lane threads and, when async, as tasks on hooknb's loop, while the notebook runs
other cells.  Since ipykernel 7, output written from another thread lands in whichever cell is
executing at that moment (ipywidgets#4020).  So each run gets a :class:`Capture`:

* ``sys.stdout`` and ``sys.stderr`` are wrapped once by a :class:`Proxy` that hands a write to
  the capture of the run it comes from (a context variable: per thread and per asyncio task,
  so concurrent runs never mix), and passes every other write through untouched;
* the capture keeps the first :data:`OUTPUT_MAX` bytes of the run's output (then a marker
  saying how much was left out) for the runs journal (``output``);
* what goes on to the notebook (or console) is bounded too: the first :data:`shown_max` bytes
  of each run (``%config HookMagics.output_limit``), then, when the run ends, one line saying
  how much was cut and where the kept part is (``%hook output HOOK``), so that a hook printing
  megabytes cannot flood the notebook or the kernel's memory;
* a run that fails shows one line under the cell too (:meth:`Capture.close`): the error's type
  and message, cut to :data:`ERROR_LINE_MAX` characters, and where its traceback is;
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
#: Bytes (UTF-8) of a run's output passed on to the notebook (or console); the rest is counted
#: and named in one line at the end of the run.  Set by ``%config HookMagics.output_limit``.
shown_max = 64 * 1024
#: Characters of the one line that shows a run's failure under the cell.
ERROR_LINE_MAX = 300
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
        self._room = shown_max  # bytes still passed on (see ``shown``)
        self._hidden = 0  # bytes not passed on

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

    def shown(self, text: str) -> str:
        """The part of ``text`` that goes on to the notebook or console: what fits in the
        run's :data:`shown_max` bytes (the rest is counted, for the notice of :meth:`close`)."""
        data = text.encode("utf-8", "replace")
        with self._lock:
            if len(data) <= self._room:
                self._room -= len(data)
                return text
            head = data[:self._room].decode("utf-8", "ignore")
            self._room = 0
            self._hidden += len(data) - len(head.encode("utf-8"))
            return head

    def close(self, hook_id: str, status: str, error: str | None) -> str | None:
        """End the run: show (where its output goes) how much output was cut, and one line
        if it failed (``status`` other than ``ok``: type and message, where the traceback is);
        return what was kept for the journal (:meth:`text`)."""
        lines = []
        if self._hidden:
            lines.append(f"[hooknb: {self._hidden:,} more bytes of this run's output not shown (limit: "
                         f"%config HookMagics.output_limit = {shown_max}); its first {self.limit:,} "
                         f"bytes are kept: %hook output {hook_id}]")
        if status != "ok":
            lines.append(failure_line(hook_id, status, error))
        if lines and self.forward:
            with self.active():
                stream = sys.stderr
                stream = getattr(stream, "_stream", stream)  # past the Proxy: not the run's output
                type(stream).write(stream, "\n".join(lines) + "\n")
                stream.flush()
        return self.text()

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


def failure_line(hook_id: str, status: str, error: str | None) -> str:
    """One line for a run that did not end ``ok``: the error (type: message), cut to
    :data:`ERROR_LINE_MAX` characters, and where the traceback and the output are."""
    message = " ".join((error or status).split())
    head = f"hook {hook_id} {'failed' if status == 'error' else status}: "
    tail = f" (traceback: %hook runs; output: %hook output {hook_id})"
    room = max(20, ERROR_LINE_MAX - len(head) - len(tail))
    if len(message) > room:
        message = message[:room - 1] + "…"
    return head + message + tail


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
        if capture.forward and (shown := capture.shown(text)):
            stream = self._stream
            type(stream).write(stream, shown)  # the stream's own write, not a cell's replacement
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
