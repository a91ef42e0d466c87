"""A Dask LocalCluster in a process of its own, for the tests of a scheduler that goes away:

    python tests/dask_cluster.py PORT WORKERS

prints ``ready ADDRESS`` once its workers are up, and runs until SIGTERM (then closes)."""

from __future__ import annotations

import signal
import sys
import threading

from distributed import LocalCluster


def main() -> None:
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, scheduler_port=port,
                           dashboard_address=None, memory_limit="512MiB")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", cluster.scheduler_address, flush=True)
    while not stop.wait(0.1):
        pass
    cluster.close()


if __name__ == "__main__":
    main()
