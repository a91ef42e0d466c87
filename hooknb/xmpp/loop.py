"""The one background asyncio event loop, on its own thread, that every XMPP client shares.

Running the connection on a loop of its own keeps events arriving and hooks running while a
notebook cell computes (on the kernel's loop nothing is handled while a cell blocks).  Code on
other threads reaches it with :func:`call` (blocking) or :func:`acall` (awaitable from any
other loop); code already on it just awaits.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ..errors import HooknbError
from .secret import hider

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_shutdown_callbacks: list[Callable[[], Awaitable[None]]] = []
_exiting = False  # the interpreter is exiting: see to_thread


def get_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use in a daemon thread named ``hooknb-loop``."""
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            _thread = threading.Thread(target=run, name="hooknb-loop", daemon=True)
            _thread.start()
            ready.wait()
            _loop = loop
        return _loop


def on_loop_thread() -> bool:
    """Whether the caller runs on the shared loop's thread."""
    return _thread is not None and threading.current_thread() is _thread


def call(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the shared loop and wait for its result (from any other thread)."""
    if on_loop_thread():
        coro.close()
        raise HooknbError("a blocking call was made on hooknb's event loop; "
                          "in async hooks use the awaitable form (e.g. `await client.apublish(...)`)")
    future = asyncio.run_coroutine_threadsafe(coro, get_loop())
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise


async def acall(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the shared loop, from the shared loop or from any other loop."""
    loop = get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


def on_loop(coro_fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., Coroutine[Any, Any, T]]:
    """Decorate an ``async def`` so that its body runs on the shared loop, whoever awaits it (a
    ``password`` argument is held as a :class:`~hooknb.xmpp.secret.Secret` in this frame)."""
    hidden = hider(coro_fn)

    @functools.wraps(coro_fn)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        if hidden is not None:
            args, kwargs = hidden(args, kwargs)
        return await acall(coro_fn(*args, **kwargs))

    return wrapper


def blocking(amethod: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """The blocking twin ``name`` of an awaitable method ``aname`` (runs it on the shared loop; a
    ``password`` argument is held as a :class:`~hooknb.xmpp.secret.Secret` in this frame)."""
    hidden = hider(amethod)

    @functools.wraps(amethod)
    def method(*args: Any, **kwargs: Any) -> T:
        if hidden is not None:
            args, kwargs = hidden(args, kwargs)
        return call(amethod(*args, **kwargs))

    method.__name__ = amethod.__name__[1:]
    method.__qualname__ = amethod.__qualname__.rpartition(".")[0] + "." + method.__name__
    method.__doc__ = f"Blocking form of ``{amethod.__name__}``: {amethod.__doc__}"
    return method


async def to_thread(fn: Callable[..., T], *args: Any) -> T:
    """``asyncio.to_thread``, but called directly on the loop once the interpreter exits: by then
    Python's thread pools refuse new work (their own exit hook ran first), and a lease release
    or a last write sent to one would be lost without a word."""
    if _exiting:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


def at_shutdown(callback: Callable[[], Awaitable[None]]) -> None:
    """Register a coroutine function run on the loop when the interpreter exits."""
    _shutdown_callbacks.append(callback)


@atexit.register
def _shutdown() -> None:
    global _exiting
    if _loop is None or _loop.is_closed() or not _loop.is_running():
        return
    _exiting = True

    async def close_all() -> None:
        for cb in reversed(_shutdown_callbacks):
            try:
                await asyncio.wait_for(cb(), 5)
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    try:
        asyncio.run_coroutine_threadsafe(close_all(), _loop).result(10)
    except Exception:  # noqa: BLE001
        pass
    _loop.call_soon_threadsafe(_loop.stop)
