"""The loop watchdog: how long an async hook held hooknb's event loop without letting go.

Async hooks run on the event loop every connection of the process shares: while one of them
computes or calls ``time.sleep`` between two ``await``, no event is read, no other hook runs and
no publish is sent.  :class:`Stepped` wraps a hook's coroutine and times each of its *steps*
(from the moment the loop resumes it until it yields control back), so the engine can journal a
run that held the loop more than :data:`BLOCK_LIMIT` against the very hook that did it
(status ``blocked_loop``, with the longest step as its duration).

A step's time counts what the hook's own code did: when it awaits something that runs another
hook's coroutine in the same step (a before hook of its publish), that hook's steps are timed
and counted for that hook, not twice.  Steps only run on the loop thread; a thread-local stack
keeps the nesting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Generator
from typing import Any

#: A step holding the event loop longer than this (seconds) is journaled as ``blocked_loop``.
BLOCK_LIMIT = 0.1

_nesting = threading.local()


def _stack() -> list[list[float]]:
    stack = getattr(_nesting, "stack", None)
    if stack is None:
        stack = _nesting.stack = []
    return stack


class Stepped:
    """Awaits ``awaitable`` step by step; :attr:`longest` is its longest step, in seconds, less
    the time nested :class:`Stepped` awaitables took within it."""

    __slots__ = ("_awaitable", "longest")

    def __init__(self, awaitable: Awaitable[Any]) -> None:
        self._awaitable = awaitable
        self.longest = 0.0

    @property
    def blocked(self) -> bool:
        """Whether a step held the loop longer than :data:`BLOCK_LIMIT`."""
        return self.longest > BLOCK_LIMIT

    async def run(self) -> Any:
        """The awaitable's result (a coroutine, for ``asyncio.wait_for`` and tasks)."""
        return await self

    def __await__(self) -> Generator[Any, Any, Any]:
        steps = self._awaitable.__await__()
        value: Any = None
        error: BaseException | None = None
        stack = _stack()
        while True:
            nested = [0.0]
            stack.append(nested)
            start = time.perf_counter()
            try:
                yielded = steps.send(value) if error is None else steps.throw(error)
            except StopIteration as stop:
                return stop.value
            finally:
                elapsed = time.perf_counter() - start
                stack.pop()
                if stack:
                    stack[-1][0] += elapsed
                self.longest = max(self.longest, elapsed - nested[0])
            try:
                value, error = (yield yielded), None
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - thrown in by the task: handed on
                value, error = None, exc
