"""Poison items and the ``process`` executor, against the real local XMPP server over TLS.

* A ``--executor process`` hook whose run calls ``os._exit(1)`` or segfaults (``ctypes.string_at(0)``)
  kills its worker process, never this one: each death is journaled ``lost`` with its exit code or
  signal, a new worker takes the item again, and after ``max_attempts`` deaths the item is
  quarantined (journaled, listed, retried, discarded) while the next item runs: for a temporary
  and a persistent hook.
* ``hooknb run`` with such a hook stays up, names the quarantined item in its log, and says
  ``exit`` with its code when stopped.
* A persistent thread hook (``%%hook``'s ``python_code``) whose body is ``os._exit(1)`` kills
  ``hooknb run`` itself; restarted as a service manager would, the runner counts each death as an
  attempt (the done log of the dead process says which run was in flight), and after at most 3
  deaths the next runner quarantines the item and stays up, naming it.
"""

from __future__ import annotations

import pytest
from processes import hook_file, hooknb, publish, wait_until

from IPython.core.interactiveshell import InteractiveShell

from hooknb.frontends.magics import HookMagics
from hooknb.frontends.widgets import HookManager

pytestmark = pytest.mark.integration

KILLERS = {"exit": ("os._exit(1)", "exit code 1"),
           "segfault": ("ctypes.string_at(0)", "killed by signal SIGSEGV")}


def killer(path, how: str) -> str:
    """A hook file: item ``bad*`` kills the process running it (``how``), others return their id."""
    return hook_file(path, f"""
        import ctypes, os
        def hook(host, client, item):
            if item.id.startswith("bad"):
                {KILLERS[how][0]}
            return "ran " + item.id
    """)


def said_quarantined(line: str) -> bool:
    """Whether a ``hooknb run`` log line (text or JSON) is a run record of a quarantined item."""
    return "status=quarantined" in line or '"status": "quarantined"' in line


def runs_of(host, hook) -> list:
    return [r for r in host.runs.snapshot() if r.hook_id == hook.id]


@pytest.mark.parametrize("persistent", [False, True], ids=["temporary", "persistent"])
@pytest.mark.parametrize("how", sorted(KILLERS))
def test_a_hook_that_kills_its_worker_is_quarantined_and_the_next_item_runs(make_host, connect, pubsub_node,
                                                                              server, tmp_path, how, persistent,
                                                                              capsys):
    publisher, node = pubsub_node
    host = make_host()
    client = connect(host)
    hook = host.create_hook(node, killer(tmp_path / "killer.py", how), service=server.pubsub,
                            persistent=persistent, executor="process")
    publish(publisher, node, server.pubsub, "bad1", "ok1")
    wait_until(lambda: any(r.item_id == "ok1" for r in runs_of(host, hook)), timeout=60)
    statuses = [(r.item_id, r.status) for r in runs_of(host, hook)]
    assert statuses == [("bad1", "lost")] * 3 + [("bad1", "quarantined"), ("ok1", "ok")]
    lost = [r for r in runs_of(host, hook) if r.status == "lost"]
    assert all(KILLERS[how][1] in r.error for r in lost), lost[0].error
    assert len({r.worker for r in lost}) == 3, "a new worker each time"
    assert runs_of(host, hook)[-1].result == "'ran ok1'"
    assert client.state == "connected" and host.hook(hook.id).runs == 1
    if not persistent:
        assert host.quarantined() == [], "a temporary hook's item is journaled only"
        return
    assert [(q["hook"], q["item"], q["attempts"]) for q in host.quarantined()] == [(hook.id, "bad1", 2)]
    assert [r["quarantined"] for r in host.list_hooks() if r["id"] == hook.id] == [1]
    assert host.status()["quarantined"].tolist() == [1]
    summary, rows = HookManager(host).content()
    assert "1 item(s) quarantined" in summary and "1 quarantined" in dict(rows)[hook.id][7]
    assert host.pending_entries(client.jid) == 0, "quarantined: not pending"
    # retried: it runs again (and dies again three times), then discarded
    assert host.quarantine("retry", hook.id, "bad1") == 1
    wait_until(lambda: sum(r.status == "quarantined" for r in runs_of(host, hook)) == 2, timeout=60)
    assert sum(r.status == "lost" for r in runs_of(host, hook)) == 6
    magics = HookMagics(InteractiveShell.instance(), host=host, max_attempts=5)  # the %hook magics' class
    assert host.max_attempts == 5, "%config HookMagics.max_attempts sets the host's"
    magics.hook(f"discard {hook.id}")
    assert "1 quarantined item(s) discarded" in capsys.readouterr().out
    assert host.quarantined() == [] and host.pending_entries(client.jid) == 0


def test_a_process_hook_past_its_timeout_has_its_worker_killed(make_host, connect, pubsub_node, server, tmp_path):
    publisher, node = pubsub_node
    host = make_host()
    connect(host)
    path = hook_file(tmp_path / "slow.py", """
        import time
        def hook(host, client, item):
            if item.id == "slow":
                time.sleep(60)
            return item.id
    """)
    hook = host.create_hook(node, path, service=server.pubsub, executor="process", timeout=1)
    publish(publisher, node, server.pubsub, "slow", "fast")
    wait_until(lambda: len(runs_of(host, hook)) == 2, timeout=30)
    assert [(r.item_id, r.status) for r in runs_of(host, hook)] == [("slow", "timeout"), ("fast", "ok")]


def test_hooknb_run_stays_up_and_names_the_quarantined_item(account, runner, server, pubsub_node, tmp_path):
    publisher, node = pubsub_node
    jid, password = account("r")
    made = hooknb("pubsub", "hook", "create", "--jid", jid, "-s", server.pubsub, "-n", node, "-P",
                  "--executor", "process", killer(tmp_path / "killer.py", "segfault"))
    assert made.returncode == 0, made.stderr
    proc = runner(jid, password)
    proc.wait_record("ready", timeout=30)
    publish(publisher, node, server.pubsub, "bad1", "ok1")
    done = proc.wait_record("run", item="ok1", timeout=60)
    assert done["status"] == "ok"
    runs = [(r["item"], r["status"]) for r in proc.records("run")]
    assert runs == [("bad1", "lost")] * 3 + [("bad1", "quarantined"), ("ok1", "ok")]
    quarantined = proc.records("run", status="quarantined")[0]
    assert (quarantined["node"], quarantined["hook"]) == (node, made.stdout.split()[1])
    assert "retry" in quarantined["error"]
    assert proc.proc.poll() is None, "the runner is up"
    listed = hooknb("pubsub", "hook", "list", "--jid", jid, "-O", "json")
    assert [r["quarantined"] for r in __import__("json").loads(listed.stdout)] == [1]
    assert proc.stop() == 0
    assert proc.records()[-1]["event"] == "exit" and proc.records()[-1]["code"] == 0


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_thread_hook_that_kills_the_runner_is_quarantined_after_three_deaths(account, runner, server,
                                                                               pubsub_node, fmt):
    publisher, node = pubsub_node
    jid, password = account("r")
    made = hooknb("pubsub", "hook", "create", "--jid", jid, "-s", server.pubsub, "-n", node, "-P",
                  "-t", "python_code", "import os\nif item.id == 'bad': os._exit(1)\nitem.id")
    assert made.returncode == 0, made.stderr
    hook_id = made.stdout.split()[1]
    deaths = 0
    for attempt in range(4):
        proc = runner(jid, password, "--log-format", fmt)
        if attempt == 0:
            wait_until(lambda: any(" ready " in f" {line} " or '"ready"' in line for line in proc.lines), 30)
            publish(publisher, node, server.pubsub, "bad")
        # dies running it, or (at the limit) quarantines it and stays up
        wait_until(lambda: proc.proc.poll() is not None or any(map(said_quarantined, proc.lines)), 60)
        if proc.proc.poll() is not None:
            assert proc.proc.returncode == 1
            deaths += 1
            continue
        break
    assert deaths <= 3 and proc.proc.poll() is None, "the runner that quarantined it stays up"
    line = next(filter(said_quarantined, proc.lines))
    assert hook_id in line and node in line and "bad" in line
    publish(publisher, node, server.pubsub, "good")
    wait_until(lambda: any("good" in line and "ok" in line for line in proc.lines), 30)
    assert proc.stop() == 0
    assert "exit" in proc.lines[-1] and ("code=0" in proc.lines[-1] or '"code": 0' in proc.lines[-1])


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_hooknb_run_never_ends_silently(account, runner, fmt):
    jid, _password = account("r")
    proc = runner(jid, "not-the-password", "--log-format", fmt)
    assert proc.proc.wait(60) == 1
    proc.reader.join(5)
    last = proc.lines[-1]
    if fmt == "json":
        record = __import__("json").loads(last)
        assert (record["event"], record["code"]) == ("exit", 1) and "ConnectError" in record["error"]
    else:
        assert " exit code=1 error=" in last and "ConnectError" in last
