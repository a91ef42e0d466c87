"""The ``dask`` executor against a real Dask LocalCluster (worker processes) and the real local XMPP
server: results applied in item order (and as they finish with --unordered), the requests hooks
return performed, the runs in flight bounded, code shipped once, the magic, a worker killed mid-run,
and ``hooknb run`` with a scheduler that goes away and comes back, or with none named.

One LocalCluster of two workers (the notebook's own client, as ``distributed.get_client()`` sees
it) serves the tests of this module; the test that kills one of its workers comes last.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from distributed import Client, LocalCluster
from IPython.core.interactiveshell import InteractiveShell
from processes import hook_file, hooknb, publish, wait_until

from hooknb.executors import dask_cluster
from hooknb.storage.store import Store
from hooknb.frontends.widgets import HookManager

pytestmark = pytest.mark.integration

CLUSTER = Path(__file__).resolve().parent / "dask_cluster.py"


@pytest.fixture(scope="module")
def dask_client():
    """Two worker processes, one thread each, little memory; the default Dask client."""
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="512MiB",
                           dashboard_address=":0")
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def scene(make_host, connect, server, node, dask_client):
    """A receiving account (its hooks run on Dask) and a publisher: ``node`` is the publisher's,
    ``out`` the receiver's, which the publisher watches (what hooks ask to publish lands there)."""

    class Scene:
        service = server.pubsub
        host = make_host()
        client = connect(host)
        watcher = make_host()
        publisher = connect(watcher)

        def publish(self, *ids: str) -> None:
            publish(self.publisher, self.node, self.service, *ids)

        def runs(self, hooked) -> list:
            return [r for r in self.host.runs.snapshot() if r.hook_id == hooked.id]

        def published(self) -> list[str]:
            return [e.item_id for e in self.watcher.events.snapshot() if e.node == self.out]

    s = Scene()
    s.node, s.out = node, f"{node}-out"
    s.publisher.create_node(node, server.pubsub)
    s.client.create_node(s.out, server.pubsub)
    s.publisher.subscribe(s.out, server.pubsub)
    dask_client.wait_for_workers(2, timeout=30)
    s.workers = set(dask_client.scheduler_info()["workers"])
    return s


def test_results_are_applied_in_item_order_with_the_requests_they_return(scene, tmp_path):
    path = hook_file(tmp_path / "heavy.py", f"""
        import time
        import hooknb
        def hook(host, client, item):
            time.sleep(0.3 if item.id.endswith(("-0", "-4", "-8")) else 0.0)
            return hooknb.Publish({scene.out!r}, f"<done xmlns='urn:test'>{{item.id}}</done>", id=item.id,
                                  service={scene.service!r})
    """)
    hooked = scene.host.create_hook(scene.node, path, "python_file", service=scene.service, executor="dask",
                                  concurrency=4)
    ids = [f"i-{n}" for n in range(10)]
    scene.publish(*ids)
    wait_until(lambda: hooked.runs >= 10, 60)
    runs = scene.runs(hooked)
    assert [r.item_id for r in runs] == ids and {r.status for r in runs} == {"ok"}
    assert {r.executor for r in runs} == {"dask"} and {r.worker for r in runs} == scene.workers
    assert all(r.queued >= 0 for r in runs) and "Publish(node=" in runs[0].result
    ends = [r.ts + r.duration for r in runs]  # on the workers: later items finished first...
    assert any(ends[j] < ends[i] for i in range(len(ends)) for j in range(i + 1, len(ends)))
    wait_until(lambda: len(scene.published()) >= 10)
    assert scene.published() == ids  # ...and were applied after the earlier ones, in order
    manager = HookManager(scene.host)
    try:
        summary, rows = manager.content()
        cells = dict(zip(HookManager.COLUMNS, dict(rows)[hooked.id]))
        assert cells["executor"] == "dask" and cells["worker"] in scene.workers and cells["queue"].endswith(" ms")
        assert "; Dask dashboard: http://" in summary
    finally:
        manager.close()


def test_unordered_results_are_applied_as_they_finish(scene, tmp_path):
    path = hook_file(tmp_path / "slow_first.py", """
        import time
        def hook(host, client, item):
            time.sleep(1.0 if item.id == "u-0" else 0.0)
            return item.id
    """)
    hooked = scene.host.create_hook(scene.node, path, "python_file", service=scene.service, executor="dask",
                                  concurrency=4, ordered=False)
    ids = [f"u-{n}" for n in range(6)]
    scene.publish(*ids)
    wait_until(lambda: hooked.runs >= 6, 60)
    applied = [r.item_id for r in scene.runs(hooked)]
    assert sorted(applied) == ids and applied[0] != "u-0"  # the slow first item did not hold the rest


def test_concurrency_bounds_the_runs_in_flight(scene, tmp_path):
    def intervals(concurrency: int, tag: str) -> list[tuple[float, float]]:
        path = hook_file(tmp_path / f"sleepy{concurrency}.py", """
            import time
            def hook(host, client, item):
                time.sleep(0.15)
        """)
        hooked = scene.host.create_hook(scene.node, path, "python_file", service=scene.service,
                                      executor="dask", concurrency=concurrency)
        scene.publish(*[f"{tag}-{n}" for n in range(6)])
        wait_until(lambda: hooked.runs >= 6, 60)
        scene.host.delete_hook(hooked.id)
        return sorted((r.ts, r.ts + r.duration) for r in scene.runs(hooked))

    one = intervals(1, "c1")
    assert all(later[0] >= earlier[1] - 0.005 for earlier, later in zip(one, one[1:]))  # never two at once
    three = intervals(3, "c3")
    assert any(later[0] < earlier[1] for earlier, later in zip(three, three[1:]))  # both workers busy


def test_code_is_shipped_once_per_digest_not_per_item(scene, dask_client, tmp_path):
    loads = tmp_path / "loads"
    path = hook_file(tmp_path / "counted.py", f"""
        import os
        with open({str(loads)!r}, "a") as f:  # each time this file is executed, anywhere
            f.write(f"{{os.getpid()}}\\n")
        def hook(host, client, item):
            return item.id
    """)
    hooked = scene.host.create_hook(scene.node, path, "python_file", service=scene.service, executor="dask")
    scene.publish(*[f"s-{n}" for n in range(20)])
    wait_until(lambda: hooked.runs >= 20, 60)
    assert {r.status for r in scene.runs(hooked)} == {"ok"}
    workers = dask_client.run(os.getpid)  # address -> pid
    here_and_each_worker_once = {str(os.getpid()): 1, **{str(pid): 1 for pid in workers.values()}}
    assert collections.Counter(loads.read_text().split()) == here_and_each_worker_once
    assert dask_cluster.CLUSTER.shipped[hooked.sha256] == 1


def test_a_magic_creates_a_hook_that_runs_on_dask(scene, dask_client, tmp_path, capsys):
    path = hook_file(tmp_path / "heavy.py", """
        def hook(host, client, item):
            return sum(i * i for i in range(200_000))
    """)
    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("hooknb")
    magics = shell.magics_manager.registry["HookMagics"]
    magics.host = scene.host
    try:
        shell.run_line_magic("hook", f"create -s {scene.service} -n {scene.node} --executor dask "
                                     f"--concurrency 2 -t python_file {path}")
        assert (f"(python_file, temporary, on dask) on {scene.service} node {scene.node!r} created"
                in capsys.readouterr().out)
        scene.publish("m-1")
        assert scene.host.wait_runs(1, 60)
        run = scene.host.runs.latest()
        assert (run.status, run.executor, run.result) == ("ok", "dask", str(sum(i * i for i in range(200_000))))
        assert run.worker in scene.workers
        listing = shell.run_line_magic("hook", "list")
        assert list(listing["executor"]) == ["dask"] and list(listing["last_worker"]) == [run.worker]
    finally:
        magics.host = None


# ------------------------------------------------------------------------------ hooknb run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ClusterProcess:
    """``tests/dask_cluster.py``: a scheduler and its workers in a process of their own."""

    def __init__(self, port: int, workers: int = 1) -> None:
        self.proc = subprocess.Popen([sys.executable, str(CLUSTER), str(port), str(workers)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ready = self.proc.stdout.readline().split()
        assert ready[:1] == ["ready"], "the Dask cluster did not start"
        self.address = ready[1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


@pytest.fixture
def cluster_processes():
    started: list[ClusterProcess] = []

    def start(port: int) -> ClusterProcess:
        started.append(ClusterProcess(port))
        return started[-1]

    yield start
    for cluster in started:
        cluster.stop()


@pytest.fixture
def stored(account, connect, make_host, server, node, tmp_path):
    """An account whose node (open to publishers) has a persistent dask hook stored with the
    command line, and a publisher."""

    class Stored:
        jid, password = account("runner")
        publisher = connect(make_host())

    connect(make_host(), Stored.jid, Stored.password, resource="setup").create_node(
        node, server.pubsub, config={"publish_model": "open"})
    path = hook_file(tmp_path / "hook.py", "def hook(host, client, item):\n    return item.id\n")
    made = hooknb("pubsub", "hook", "create", "--jid", Stored.jid, "-s", server.pubsub, "-n", node, "-P",
                  "--executor", "dask", path)
    assert made.returncode == 0, made.stderr
    return Stored


def test_hooknb_run_waits_out_a_scheduler_that_goes_away(stored, runner, server, node, home,
                                                        cluster_processes):
    port = _free_port()
    cluster = cluster_processes(port)
    proc = runner(stored.jid, stored.password, "--log-format", "json", "--dask-scheduler", cluster.address)
    proc.wait_record("ready")
    publish(stored.publisher, node, server.pubsub, "a1", "a2", "a3")
    proc.wait_record("run", 3, status="ok", timeout=60)
    cluster.stop()
    publish(stored.publisher, node, server.pubsub, "b1", "b2", "b3")
    waiting = proc.wait_record("executor", timeout=30)
    assert waiting["error"] == (f"dask: the scheduler {cluster.address} cannot be reached; its items wait, "
                                "tried again every 1 s")
    time.sleep(1.5)  # items wait: nothing is journaled for them meanwhile
    assert [r["item"] for r in proc.records("run")] == ["a1", "a2", "a3"]
    assert proc.records("executor") == [waiting]  # one status line, however many attempts
    cluster_processes(port)  # the scheduler comes back on the same address
    proc.wait_record("run", 6, timeout=60)
    runs = proc.records("run")
    assert [(r["item"], r["status"], r["executor"]) for r in runs] == \
        [(i, "ok", "dask") for i in ("a1", "a2", "a3", "b1", "b2", "b3")]
    assert runs[-1]["worker"].startswith("tcp://127.0.0.1:") and runs[-1]["queued"] >= 0
    assert proc.wait_record("executor", 2)["error"] == "dask: the scheduler can be reached again"
    assert proc.stop() == 0
    assert proc.records("stopped")[0]["pending"] == 0
    assert Store(home / "hooknb.sqlite3").pending(stored.jid) == []


def test_hooknb_run_starts_a_local_cluster_when_no_scheduler_is_named(stored, runner, server, node,
                                                                     monkeypatch, tmp_path):
    monkeypatch.delenv(dask_cluster.ENV, raising=False)
    proc = runner(stored.jid, stored.password)
    proc.wait_record("ready")
    publish(stored.publisher, node, server.pubsub, "l1", "l2")
    proc.wait_record("run", 2, timeout=90)
    runs = proc.records("run")
    assert [(r["item"], r["status"]) for r in runs] == [("l1", "ok"), ("l2", "ok")]
    assert all(r["worker"].startswith("tcp://127.0.0.1:") for r in runs)
    assert proc.stop() == 0
    assert "dask executor: starting a LocalCluster" in Path(proc.err.name).read_text()


# ------------------------------------------------------------------------------ a worker killed (last)


def test_a_worker_killed_mid_run_is_journaled_and_every_item_applied_once(scene, dask_client, tmp_path):
    trace = tmp_path / "trace"
    path = hook_file(tmp_path / "traced.py", f"""
        import os, time
        def hook(host, client, item):
            with open({str(trace)!r}, "a") as f:
                f.write(f"start {{item.id}} {{os.getpid()}}\\n")
            time.sleep(0.4)
            with open({str(trace)!r}, "a") as f:
                f.write(f"end {{item.id}} {{os.getpid()}}\\n")
            return item.id
    """)
    hooked = scene.host.create_hook(scene.node, path, "python_file", service=scene.service, persistent=True,
                                  executor="dask", concurrency=2)
    workers = {pid: address for address, pid in dask_client.run(os.getpid).items()}
    ids = [f"k-{n}" for n in range(8)]
    scene.publish(*ids)

    def traced() -> list[tuple[str, str, int]]:
        return [(what, item, int(pid)) for what, item, pid in
                (line.split() for line in trace.read_text().splitlines())] if trace.exists() else []

    def running() -> tuple[str, int] | None:
        """A run in progress on a worker that has said so (its start event reached this process)."""
        lines = traced()
        ended = {(item, pid) for what, item, pid in lines if what == "end"}
        mid = [(item, pid) for what, item, pid in lines if what == "start" and (item, pid) not in ended]
        said = {worker for workers in dask_cluster.CLUSTER.started().values() for worker in workers}
        return len(ended) >= 2 and mid and workers[mid[-1][1]] in said and mid[-1]

    killed_item, pid = wait_until(running, 30)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: hooked.runs >= 8, 60)
    runs = scene.runs(hooked)
    assert [r.item_id for r in runs if r.status == "ok"] == ids  # each applied once, in order
    lost = [(r.item_id, r.worker) for r in runs if r.status == "lost"]
    assert (killed_item, workers[pid]) in lost and {worker for _item, worker in lost} == {workers[pid]}
    assert "was lost mid-run; the item runs again" in hooked.last_error and hooked.failures == len(lost)
    ended = collections.Counter(item for what, item, _pid in traced() if what == "end")
    assert set(ended) == set(ids)  # every item ran to its end (a result lost with its worker: twice)
    assert scene.host.inbox.flush() and scene.host.store.pending(scene.client.jid) == []
