"""What the lanes of hooks run in other processes share (the ``dask`` and ``process`` executors).

:class:`RemoteLane`: the queue of a hook's items, drained by a thread of the lane's own, the
hook's code as it is shipped (:class:`~hooknb.executors.remote.Code`, or why it cannot run).
:func:`apply`: what a hook run in another process returned comes back as an :class:`~hooknb.core.outcome.Outcome`
(:mod:`hooknb.executors.remote`); its lane calls :func:`apply` for each item, in item order: what
the run printed is shown under the cell that created the hook, the
:class:`~hooknb.core.publishing.Publish` / :class:`~hooknb.core.publishing.Retract` requests it
returned are performed (at the item's depth: the loop guard follows them), the run is journaled,
and a persistent hook's inbox entry is marked done, so that an item is done only once its result
has been applied.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from ..core.capture import Capture
from ..core.lanes import Lane, Work, fitting
from ..core.outcome import Outcome, failure
from ..core.publishing import perform_at, requests
from ..errors import HooknbError
from .remote import Code

if TYPE_CHECKING:
    from ..core.hooks import Hook
    from ..core.invoke import Invoker


class RemoteLane(Lane):
    """A lane whose thread (``_run``, the subclass's) sends the hook's items to other processes."""

    def __init__(self, invoker: Invoker, hook: Hook) -> None:
        super().__init__(invoker, hook)
        self._items: deque[Work] = deque()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._cancel = False  # closed: the runs in flight are let go, not applied

    def waiting(self) -> int:
        return len(self._items)

    def offer(self, client: Any, work: list[tuple[Any, Any]]) -> int:
        with self._cv:
            taken = fitting(work, self.pending(), self.closed)
            self._items.extend((client, item, entry) for item, entry in taken)
            if taken and self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"hooknb-{self.executor}-{self.hook.id}")
                self._thread.start()
            elif taken:
                self._cv.notify()
        return len(taken)

    def stop(self) -> None:
        """Take no more items; the runs in flight come back and are applied."""
        with self._cv:
            self.closed = True
            self._items.clear()
            self._cv.notify()

    def _run(self) -> None:
        raise NotImplementedError

    def code(self) -> Code | Outcome:
        """The hook's code as it is now, to ship; the outcome of its runs when it cannot run:
        refused (pinned code changed, a file others may write) or failed to load."""
        hook = self.hook
        try:
            _fn, _is_async, digest = self.invoker.resolve(hook)  # trust checks, reload if changed
        except Exception as exc:  # noqa: BLE001 - journaled as the runs' outcome
            return failure(exc, hook.sha256)
        source = getattr(hook.loader, "source", None) if hook.type == "python_file" else None
        return Code(digest or "", hook.type, hook.arg, source, hook.sha256, hook.pin, hook.spec.compat)


def apply(invoker: Invoker, hook: Hook, client: Any, item: Any, entry: Any, outcome: Outcome, ts: float,
          duration: float, worker: str | None) -> None:
    """Show what the run printed, perform its requests, journal it, mark it done (any thread but the loop)."""
    if outcome.output and hook.cell is not None:
        with Capture(hook.cell).active():
            sys.stdout.write(outcome.output)
    if outcome.status == "ok" and (wanted := requests(outcome.result)):
        try:
            perform_at(client, wanted, item.depth)
        except HooknbError as exc:
            outcome = Outcome("error", outcome.result, f"a request it returned failed: {exc}",
                              digest=outcome.digest, output=outcome.output)
    invoker.record(hook, item, ts, duration, outcome, worker=worker)
    if entry is not None:
        invoker.finish(entry)
