"""The remote contract: what a hook run by another process (a Dask worker, a worker process) gets, and what it may ask for.

A hook created with ``--executor dask`` (:mod:`hooknb.executors.dask_lane`) runs in a Dask worker,
one created with ``--executor process`` (:mod:`hooknb.executors.process_lane`) in a worker process
of this machine, not in the process that received its item:

* ``item`` is an :class:`~hooknb.xmpp.events.Item` over a picklable copy of the event (``id``,
  ``node``, ``service``, ``publisher``, ``kind``, ``payload``; ``item.event`` also holds the
  account and the reception time); ``item.xml`` parses the payload on the worker.
* ``host`` and ``client`` are :class:`Offline` stand-ins: a worker has no live connection, and
  any use of them raises :class:`~hooknb.errors.RemoteError` saying so.
* A hook created with another system's calling convention (``--compat libervia``,
  :attr:`Code.compat`) is called with it here too (:mod:`hooknb.compat`): its ``item`` and
  ``client`` are built on the worker from the event.
* What the hook returns goes back to the receiving process (so it must pickle), with what it
  printed (:mod:`hooknb.core.capture`, on the worker); that process journals both (as for every run),
  shows the output under the cell that created the hook, and performs the requests it holds, in
  item order, with the account that received the item, at the item's depth (the loop guard,
  :mod:`hooknb.core.depth`, follows a chain through workers): a :class:`~hooknb.core.publishing.Publish` or a :class:`~hooknb.core.publishing.Retract`, or a list or
  tuple of them (see :func:`requests`).  A ``thread`` hook may return them too, so one hook
  runs unchanged on either executor.
* Its code is shipped once per code digest, never per item (:class:`Code`, installed on every
  worker by :mod:`hooknb.executors.dask_worker` and compiled there once, :func:`load`): the source of a
  ``python_code`` hook, the bytes of a ``python_file`` hook (the file need not exist on the
  workers), the name of a ``python`` module (which must be importable on the workers; the run
  records the SHA-256 of the module the worker has).

:func:`load` and :func:`call` run in the worker; :func:`requests` and :func:`perform` in the
receiving process.
"""

from __future__ import annotations

import asyncio
import inspect
import pickle
import time
from dataclasses import dataclass
from typing import Any

from .. import compat as _compat
from ..core.capture import Capture
from ..errors import HookCreateError, HooknbError, RemoteError
from ..xmpp.events import Event, Item
from ..core.outcome import Outcome, failure
from ..core.loading import CodeLoader, HookFn, ModuleLoader, file_function


class Offline:
    """What ``host`` and ``client`` are to a hook run by a Dask worker: any use says why not."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        raise RemoteError(f"{self._name}.{attr}: a hook run by a worker process (Dask or process executor) "
                          "has no live connection; "
                          "return hooknb.Publish(...) or hooknb.Retract(...) and the process that "
                          "received the item does it")

    def __repr__(self) -> str:
        return f"<{self._name}: not available in a worker process>"


HOST, CLIENT = Offline("host"), Offline("client")


@dataclass(frozen=True)
class Code:
    """A hook's code as shipped to the workers, once per :attr:`key` (see the module docstring);
    ``expected`` and ``pin`` as the hook has them (a pinned module that differs is refused)."""

    digest: str
    type: str
    arg: str
    source: bytes | None = None
    expected: str | None = None
    pin: bool = False
    compat: str | None = None

    @property
    def key(self) -> str:
        """What the workers know it by: the digest of the code; for a module, which the workers
        import themselves, also whether a change is refused (and from what); and the calling
        convention when it is not hooknb's (``--compat``, :mod:`hooknb.compat`)."""
        suffix = f"-{self.compat}" if self.compat else ""
        if self.type != "python":
            return self.digest + suffix
        return (f"{self.digest}-pinned-{self.expected}" if self.pin else f"{self.digest}-{self.arg}") + suffix


@dataclass(frozen=True, slots=True)
class Reply:
    """How one remote run went: its outcome (None when the worker did not have the code: it is
    shipped again and the item run again), when it started (the worker's clock), how long it
    took and the worker's address."""

    outcome: Outcome | None
    ts: float
    duration: float
    worker: str


#: The code loaded in this process (a worker), by key: (function, is async, digest of what
#: runs), or why it failed to load.
_loaded: dict[str, tuple[HookFn, bool, str | None] | HooknbError] = {}


def load(code: Code) -> None:
    """Compile ``code`` in this process, once (later calls with the same digest do nothing)."""
    if code.key in _loaded:
        return
    try:
        adapt = _compat.adapter(code.compat)
        if code.type == "python_file":
            fn, is_async = file_function(code.source or b"", code.arg)
            loaded = (fn, is_async, code.digest)
        elif code.type == "python_code":
            loaded = CodeLoader(code.arg, expected=code.digest).resolve()
        else:
            loaded = ModuleLoader(code.arg, code.expected, code.pin).resolve()
        _loaded[code.key] = (adapt(loaded[0]), *loaded[1:]) if adapt else loaded
    except HooknbError as exc:
        _loaded[code.key] = exc
    except Exception as exc:  # noqa: BLE001 - kept as what every run of it says
        _loaded[code.key] = HookCreateError(f"the hook's code failed to load on the worker: "
                                            f"{type(exc).__name__}: {exc}")


def call(key: str, event: Event, worker: str) -> Reply:
    """Run the hook whose code has ``key`` (:attr:`Code.key`) on ``event``, here (a worker
    named ``worker``)."""
    ts, start = time.time(), time.perf_counter()
    loaded = _loaded.get(key)
    if loaded is None:
        return Reply(None, ts, 0.0, worker)
    if isinstance(loaded, HooknbError):
        outcome = failure(loaded, getattr(loaded, "digest", None))
    else:
        fn, _is_async, ran = loaded
        capture = Capture()
        try:
            with capture.active():
                result = fn(HOST, CLIENT, Item(event))
                if inspect.isawaitable(result):
                    result = asyncio.run(_awaited(result))
        except BaseException as exc:  # noqa: BLE001 - a hook's failure is its outcome
            outcome = failure(exc, ran)
        else:
            outcome = _sendable(result, ran)
        outcome.output = capture.text()
    outcome.exc = None  # an exception may not pickle: its text and traceback are kept
    return Reply(outcome, ts, time.perf_counter() - start, worker)


def _sendable(result: Any, digest: str | None) -> Outcome:
    """The outcome of a run that returned ``result``: an error if it cannot go back (pickle)."""
    try:
        pickle.dumps(result)
    except Exception as exc:  # noqa: BLE001 - whatever pickling raises
        return Outcome("error", error=f"the return value cannot be sent back from the worker: "
                                      f"{type(exc).__name__}: {exc}", digest=digest)
    return Outcome("ok", result, digest=digest)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
