"""What runs inside a Dask worker for hooknb: the plugin that brings a hook's code, the task that
runs it on one item.

Imported by the workers (and, when a ``dask`` hook first has work, by the process that sends it:
:mod:`hooknb.executors.dask_lane`), never by the rest of hooknb, so that ``distributed`` is imported
only where it is used.  The contract itself, without Dask, is :mod:`hooknb.executors.remote`.
"""

from __future__ import annotations

from distributed import WorkerPlugin, get_worker

from . import remote
from ..xmpp.events import Event
from ..core.loading import sha256

#: The topic of the event a worker logs when it starts a hooknb task: {"key", "worker"} (the
#: receiving process learns from it which worker a lost run was on).
STARTED = "hooknb-started"


class CodePlugin(WorkerPlugin):
    """A hook's code (:class:`~hooknb.executors.remote.Code`), compiled once on every worker, and on every
    worker that joins later: registered once per code digest (its name holds the digest)."""

    idempotent = True  # registered again under the same name (another process, a retry): ignored

    def __init__(self, code: remote.Code) -> None:
        self.code = code

    def setup(self, worker: object) -> None:
        remote.load(self.code)


def plugin_name(code: remote.Code) -> str:
    """The name the plugin of ``code`` is registered under (its key, shortened)."""
    return f"hooknb-code-{sha256(code.key)[:24]}"


def run(key: str, events: list[Event]) -> list[remote.Reply]:
    """The task: say it started (:data:`STARTED`), then run the hook on each of ``events``
    here, in order."""
    worker = get_worker()
    worker.log_event(STARTED, {"key": worker.get_current_task(), "worker": worker.address})
    return [remote.call(key, event, worker.address) for event in events]
