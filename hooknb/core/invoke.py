"""The invoker: how a hook is called, and how each run is recorded and marked done.

The seam below the engine, as :class:`~hooknb.xmpp.operations.ClientHandler` is the one above
it.  The engine decides which hooks an item goes to and queues it in their lanes; lanes (a thread,
a task, a Dask or process lane) and replays then call the :class:`Invoker` only, never the engine:

* :meth:`Invoker.call_sync` / :meth:`Invoker.call_async`: resolve the hook's code (trust
  checks, reload of a changed file), call it with ``host``, ``client`` and ``item`` at the
  item's depth (:mod:`hooknb.core.depth`), await what it returns (an ``async def`` hook's steps
  timed by :mod:`hooknb.core.watchdog`), perform the :class:`~hooknb.core.publishing.Publish` /
  :class:`~hooknb.core.publishing.Retract` requests it returned, capture what it prints;
* :meth:`Invoker.record`: journal the run and count it in the hook's statistics (the only
  writer of those);
* :meth:`Invoker.begin`: note that a persistent hook's run starts (an attempt, if the process
  dies during it); :meth:`Invoker.finish` / :meth:`Invoker.afinish`: mark its inbox entry done;
* :meth:`Invoker.call_inline`: run and record now (before/after hooks, "run once", replays).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import reprlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..storage.journal import Journal, Run
from ..xmpp import loop as _loop
from ..xmpp.events import Item
from . import depth
from .capture import Capture
from .outcome import Outcome, failure
from .publishing import perform, requests
from .watchdog import Stepped

if TYPE_CHECKING:
    from ..xmpp.client import Client
    from .hooks import Hook
    from .inbox import Entry, Inbox

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 200


class Invoker:
    """Calls hooks, records their runs, marks persistent runs done (see the module docstring)."""

    def __init__(self, runs: Journal[Run], inbox: Inbox, context: Any = None) -> None:
        self.runs = runs
        self.inbox = inbox
        #: What hooks receive as ``host``.
        self.context = context
        #: What is done with poison items (:class:`hooknb.core.quarantine.Quarantine`, set by the
        #: engine): a lane whose worker process died with an item counts the attempt, and
        #: quarantines it at the limit.
        self.quarantine: Any = None

    # ---------------------------------------------------------------- calling hooks
    @staticmethod
    def resolve(hook: Hook, again: bool = False) -> tuple[Callable[..., Any], bool, str | None]:
        """The hook's function as its code is now (see :meth:`Loader.resolve`, and ``again``),
        whether it is a coroutine function, and the SHA-256 of that code; raises why it cannot run."""
        if hook.loader is None:
            raise RuntimeError(f"hook failed to load: {hook.load_error}")
        return hook.loader.resolve(again)

    def call_sync(self, hook: Hook, client: Client, item: Item, again: bool = False) -> Outcome:
        """Run a hook on a worker thread (an async function is run on the loop and waited),
        capturing what it prints (:mod:`hooknb.core.capture`); ``again``: straight after another run
        of the hook (see :meth:`Loader.resolve`)."""
        digest, capture = hook.sha256, Capture(hook.cell)
        try:
            with capture.active():
                fn, _is_async, digest = self.resolve(hook, again)
                with depth.running(item.depth):
                    result = fn(self.context, client, item)
                    if result is not None and inspect.isawaitable(result):
                        result = asyncio.run_coroutine_threadsafe(
                            self._stepped(hook, item, _awaited(result, capture)), _loop.get_loop()).result()
                    if result is not None and (wanted := requests(result)):
                        _loop.call(perform(client, wanted))  # at the item's depth: the loop guard sees it
            outcome = Outcome("ok", result, digest=digest)
        except BaseException as exc:  # noqa: BLE001 - a hook's failure is recorded, never raised
            outcome = failure(exc, digest)
        outcome.output = capture.close(hook.id, outcome.status, outcome.error)
        return outcome

    async def call_async(self, hook: Hook, client: Client, item: Item,
                         cell: dict[str, Any] | None = None) -> Outcome:
        """Run a hook on the loop with its timeout (a sync function goes to a thread), capturing
        what it prints (:mod:`hooknb.core.capture`): shown under ``cell``, else the hook's own."""
        digest, capture = hook.sha256, Capture(cell or hook.cell)
        try:
            with capture.active():
                fn, is_async, digest = self.resolve(hook)
                with depth.running(item.depth):
                    if is_async:
                        result = await self._stepped(hook, item, fn(self.context, client, item), hook.timeout)
                    else:
                        call = contextvars.copy_context().run  # the thread runs it at this depth, captured
                        result = await asyncio.wait_for(asyncio.shield(asyncio.get_running_loop().run_in_executor(
                            None, call, fn, self.context, client, item)), hook.timeout)
                    if inspect.isawaitable(result):
                        result = await self._stepped(hook, item, result, hook.timeout)
                    if result is not None and hook.phase == "event" and (wanted := requests(result)):
                        await perform(client, wanted)
            outcome = Outcome("ok", result, digest=digest)
        except asyncio.TimeoutError as exc:
            outcome = Outcome("timeout", error=f"timed out after {hook.timeout:g} s", digest=digest, exc=exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            outcome = failure(exc, digest)
        outcome.output = capture.close(hook.id, outcome.status, outcome.error)
        return outcome

    async def _stepped(self, hook: Hook, item: Item, awaitable: Any, timeout: float | None = None) -> Any:
        """Await a hook's coroutine (on the loop, within ``timeout``), journaling it as
        ``blocked_loop`` if one of its steps held the loop too long (see :mod:`hooknb.core.watchdog`)."""
        stepped = Stepped(awaitable)
        ts = time.time()
        try:
            return await asyncio.wait_for(stepped.run(), timeout)
        finally:
            if stepped.blocked:
                self.record(hook, item, ts, stepped.longest, Outcome(
                    "blocked_loop", error=f"held the event loop for {stepped.longest:.3f} s without awaiting: "
                                          "every hook and publish of the process waited (await instead of "
                                          "blocking, or make the hook a plain function)", digest=hook.sha256))

    @staticmethod
    def too_deep(hook: Hook, item: Item) -> Outcome:
        """The outcome of an item a hook does not run: the chain of hooks that led to it is as
        deep as the hook's ``max_depth`` (see :mod:`hooknb.core.depth`)."""
        return Outcome("loop", error=f"not run: {item.depth} hooks' runs published the items that led to "
                                     f"this one (a loop?); the hook stops chains at --max-depth {hook.max_depth}",
                       digest=hook.sha256)

    async def call_inline(self, hook: Hook, client: Client, item: Item, replay: bool = False,
                          cell: dict[str, Any] | None = None) -> tuple[Outcome, Run]:
        """Run a hook now (before/after hooks, "run once", replays: ``replay``, output shown
        under ``cell``) and journal it; errors, including Veto, are in the outcome."""
        ts, start = time.time(), time.perf_counter()
        if item.depth >= hook.max_depth:
            outcome = self.too_deep(hook, item)
        else:
            outcome = await self.call_async(hook, client, item, cell)
        return outcome, self.record(hook, item, ts, time.perf_counter() - start, outcome, replay)

    # ---------------------------------------------------------------- recording runs
    def record(self, hook: Hook, item: Item, ts: float, duration: float, outcome: Outcome,
               replay: bool = False, worker: str | None = None) -> Run:
        """Journal one run (a replay's when ``replay``; ``worker``: the Dask worker it ran on)
        and count it in the hook's statistics (any thread)."""
        event = item.event
        result = None if outcome.result is None else _repr.repr(outcome.result)
        changed = bool(hook.sha256 and outcome.digest and outcome.digest != hook.sha256)
        queued = max(0.0, ts - event.ts)
        run = Run(hook.id, event.account, event.service, event.node, event.kind, event.item_id, ts,
                  duration, outcome.status, outcome.error, result, outcome.digest, outcome.tb, changed,
                  outcome.output, replay, hook.spec.executor, worker, queued)
        self.runs.append(run)
        hook.stats.record(outcome.status, ts, outcome.error, outcome.output, worker, queued)
        return run

    def note(self, hook: Hook, item: Item, outcome: Outcome, entry: Entry | None = None,
             ts: float | None = None, duration: float = 0.0) -> None:
        """Journal an item the hook does not run, or whose run was given up (``skipped``,
        ``would_run``, ``dropped``, ``loop``, ``timeout``); its inbox entry, if given, is done
        through the inbox thread (not to run at the next start either)."""
        self.record(hook, item, time.time() if ts is None else ts, duration, outcome)
        if entry is not None:
            self.inbox.done_later(entry, time.time())

    def begin(self, entry: Entry) -> None:
        """Note that a persistent hook's run starts now in this process (on the worker thread
        that runs it): if the process dies before :meth:`finish`, the run counts as an attempt
        (:mod:`hooknb.core.quarantine`)."""
        self.inbox.attempt(entry)

    def finish(self, entry: Entry) -> None:
        """Mark a persistent hook's run done (on the worker thread that ran it)."""
        self.inbox.done(entry, time.time())

    async def afinish(self, entry: Entry) -> None:
        """Mark a persistent hook's run done (a run that ended on the loop)."""
        await self.inbox.adone(entry, time.time())


async def _awaited(awaitable: Any, capture: Capture) -> Any:
    with capture.active():
        return await awaitable
