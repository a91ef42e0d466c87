"""Which Dask cluster ``dask`` hooks use, and what this process shipped to it (:class:`DaskCluster`).

Which cluster: the Dask client the notebook already has (``distributed.get_client()``), else one
connected to ``$HOOKNB_DASK_SCHEDULER`` (``hooknb run --dask-scheduler``), else a ``LocalCluster``
(a worker process per core, one thread each) started on first use and kept for the process.
A hook's code is shipped once per digest (a worker plugin, compiled once by every worker and by
every worker that joins later: :mod:`hooknb.executors.dask_worker`); workers say when they start
a task, so that the lane can journal the attempts a dead worker lost.

One :data:`CLUSTER` per process, shared by the lanes of every ``dask`` hook (:mod:`hooknb.executors.dask_lane`).
``distributed`` is imported only when a lane first needs a connection.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..errors import ExecutorError
from .remote import Code

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

ENV = "HOOKNB_DASK_SCHEDULER"
CONNECT_TIMEOUT = 5.0  # seconds to reach a scheduler (and to reconnect before a client closes)
#: Keys of this process's tasks start with it (workers' start events of other processes are ignored).
PREFIX = f"hooknb-{uuid.uuid4().hex[:8]}-"


def address(client: Client) -> str:
    """The address of ``client``'s scheduler ("?" when it has none)."""
    scheduler = getattr(client, "scheduler", None)
    return getattr(scheduler, "address", None) or "?"


class DaskCluster:
    """The Dask clients of this process's ``dask`` hooks, what their schedulers were sent, and the
    tasks workers said they started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held briefly: the tables below
        self._connecting = threading.Lock()  # held while this process's own client connects (seconds)
        self._own: dict[str, Any] = {}  # "client", "cluster": the ones this process made
        self._shipped: dict[Any, set[str]] = {}  # per Dask client: the code keys its scheduler has
        self._dashboards: dict[Any, str | None] = {}  # per Dask client used: its dashboard's address
        self._starts: dict[str, list[str]] = {}  # task key -> the workers that started it, in order
        #: How many times each code (:attr:`~hooknb.executors.remote.Code.key`: its digest, for code
        #: and files) was shipped (registered as a worker plugin) by this process.
        self.shipped: Counter[str] = Counter()

    def connection(self) -> Client:
        """The Dask client hook work goes to (see the module docstring), connected; an
        :class:`~hooknb.errors.ExecutorError` saying why not when its scheduler cannot be reached."""
        import distributed

        try:
            client = distributed.get_client()
        except ValueError:
            client = self._own_client()
        if client.status != "running":
            raise ExecutorError(f"the Dask scheduler {address(client)} cannot be reached (client {client.status})")
        return client

    def _own_client(self) -> Client:
        """This process's own client: to ``$HOOKNB_DASK_SCHEDULER``, else to a LocalCluster."""
        from distributed import Client, LocalCluster

        with self._connecting:
            client = self._own.get("client")
            if client is not None and client.status not in ("closing", "closed"):
                return client
            where = os.environ.get(ENV)
            try:
                if where:
                    client = Client(where, set_as_default=False, timeout=CONNECT_TIMEOUT)
                else:
                    cluster = self._own.get("cluster")
                    if cluster is None or cluster.status.name != "running":
                        log.warning("dask executor: starting a LocalCluster for this process's hooks")
                        cluster = self._own["cluster"] = LocalCluster(threads_per_worker=1, processes=True,
                                                                      dashboard_address=":0")
                    client = Client(cluster, set_as_default=False, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(f"the Dask scheduler {where or 'of the LocalCluster'} cannot be "
                                    f"reached: {exc}") from None
            self._own["client"] = client
            return client

    def dashboard_link(self) -> str | None:
        """The dashboard of the cluster in use (None before one is: nothing is started to answer)."""
        with self._lock:
            links = [link for client, link in self._dashboards.items() if link and client.status == "running"]
        return links[-1] if links else None

    def ship(self, client: Client, code: Code) -> None:
        """Make sure the workers of ``client``'s scheduler have ``code`` (once per digest: a worker
        plugin, set up on every worker and on every worker that joins later)."""
        from .dask_worker import STARTED, CodePlugin, plugin_name

        with self._lock:
            shipped = self._shipped.get(client)
            if shipped is None:
                client.subscribe_topic(STARTED, self._started)
                shipped = self._shipped[client] = set()
            if code.key in shipped:
                return
        if client not in self._dashboards:
            self._dashboards[client] = client.dashboard_link  # asks the scheduler: once per client
        client.register_plugin(CodePlugin(code), name=plugin_name(code))
        with self._lock:
            shipped.add(code.key)
            self.shipped[code.key] += 1

    def forget(self, client: Client | None) -> None:
        """Forget what ``client``'s scheduler was sent (it went away: a new one knows nothing)."""
        with self._lock:
            self._shipped.pop(client, None)

    def _started(self, event: tuple[float, dict[str, str]]) -> None:
        """A worker started a task (on the Dask client's thread): note it, if it is one of ours."""
        msg = event[1]
        if str(msg.get("key", "")).startswith(PREFIX):
            with self._lock:
                self._starts.setdefault(msg["key"], []).append(msg["worker"])

    def started(self) -> dict[str, list[str]]:
        """The tasks in flight that workers said they started: task key -> their addresses, in order."""
        with self._lock:
            return {key: list(workers) for key, workers in self._starts.items()}

    def lost_workers(self, key: str, final: str | None) -> list[str]:
        """The workers that started task ``key`` and died before it ended (``final`` ran it);
        forgets the task."""
        with self._lock:
            started = self._starts.pop(key, [])
        if final in started:
            started.remove(final)
        return started


#: This process's Dask connection and what it shipped.
CLUSTER = DaskCluster()


def dashboard_link() -> str | None:
    """The dashboard of the Dask cluster that ``dask`` hooks use, once one is in use (None before)."""
    return CLUSTER.dashboard_link()
