"""The hook engine against the real local server: types, persistence, delete/list, isolation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from hooknb.errors import HookCreateError, HooknbError


@pytest.fixture
def pubsub(make_host, connect, server, node):
    """(host, watcher client, publisher client, node): a node on the pubsub component."""
    host = make_host()
    watcher = connect(host)
    publisher = connect(make_host())
    watcher.create_node(node, server.pubsub)
    return host, watcher, publisher, node


def publish(client, node, server, *ids):
    for item_id in ids:
        client.publish(node, f"<n xmlns='urn:test'>{item_id}</n>", item_id=item_id, service=server.pubsub)


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    path.chmod(0o644)
    return path


def test_python_code_hook_gets_host_client_and_item(pubsub, server):
    host, watcher, publisher, node = pubsub
    host.bucket = []
    hook = host.create_hook(node, "host.bucket.append((host, client, item.id, item.payload, item.kind))",
                            type="python_code", service=server.pubsub)
    publish(publisher, node, server, "a1")
    assert host.wait_runs(1, 10)
    assert host.bucket == [(host, watcher, "a1", '<n xmlns="urn:test">a1</n>', "publish")]
    run = host.runs.latest()
    assert (run.hook_id, run.status, run.item_id, run.node) == (hook.id, "ok", "a1", node)


def test_python_module_hook_sync_and_async(pubsub, server, tmp_path, monkeypatch):
    host, watcher, publisher, node = pubsub
    write(tmp_path / "synchook.py", """
        import threading
        def hook(host, client, item):
            return ("sync", item.id, item.service, client.jid, threading.current_thread().name)
    """)
    write(tmp_path / "asynchook.py", """
        import asyncio
        async def hook(host, client, item):
            await asyncio.sleep(0)
            return ("async", item.id, item.publisher is not None)
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    sync_hook = host.create_hook(node, "synchook", service=server.pubsub)  # type inferred
    assert host.last_inferred == "python"
    async_hook = host.create_hook(node, "asynchook", type="python", service=server.pubsub)
    publish(publisher, node, server, "m1")
    assert host.wait_runs(2, 10)
    results = {r.hook_id: r.result for r in host.runs.snapshot()}
    assert results[sync_hook.id] == repr(("sync", "m1", server.pubsub, watcher.jid,
                                          f"hooknb-hook-{sync_hook.id}"))
    assert results[async_hook.id] == repr(("async", "m1", True))


def test_python_file_hook_loaded_once_and_again_when_changed(pubsub, server, tmp_path):
    host, watcher, publisher, node = pubsub
    path = write(tmp_path / "filehook.py", """
        LOADS = globals().setdefault("LOADS", 0) + 1
        def hook(host, client, item):
            return ("v1", item.id)
    """)
    hook = host.create_hook(node, str(path), service=server.pubsub)
    assert host.last_inferred == "python_file" and hook.arg == str(path.resolve())
    publish(publisher, node, server, "f1", "f2")
    assert host.wait_runs(2, 10)
    assert hook.loader.loads == 1
    write(path, """
        def hook(host, client, item):
            return ("v2", item.id, len("changed"))
    """)
    publish(publisher, node, server, "f3")
    assert host.wait_runs(3, 10)
    assert [r.result for r in host.runs.snapshot()] == [
        repr(("v1", "f1")), repr(("v1", "f2")), repr(("v2", "f3", 7))]
    assert hook.loader.loads == 2
    digests = [r.digest for r in host.runs.snapshot()]
    assert digests[0] == digests[1] != digests[2]


def test_hook_runs_once_per_item_and_in_arrival_order(pubsub, server):
    host, watcher, publisher, node = pubsub
    host.bucket = []
    host.create_hook(node, "host.bucket.append(item.id)", type="python_code", service=server.pubsub)
    ids = [f"o{i}" for i in range(30)]
    publish(publisher, node, server, *ids)
    assert host.wait_runs(30, 10)
    assert host.bucket == ids


def test_kinds_on_request(pubsub, server):
    host, watcher, publisher, node = pubsub
    host.bucket = []
    host.create_hook(node, "host.bucket.append((item.kind, item.id))", type="python_code",
                     service=server.pubsub, on="retract,purge")
    publish(publisher, node, server, "k1")
    publisher.retract(node, "k1", service=server.pubsub)
    watcher.purge(node, server.pubsub)
    assert host.wait_runs(2, 10)
    assert host.bucket == [("retract", "k1"), ("purge", None)]


def test_creating_the_same_hook_twice_makes_one(pubsub, server):
    host, *_, node = pubsub
    first = host.create_hook(node, "pass", type="python_code", service=server.pubsub)
    second = host.create_hook(node, "pass", type="python_code", service=server.pubsub)
    assert first is second
    assert len(host.list_hooks()) == 1


def test_list_with_zero_hooks_and_fields(make_host, connect, server, node):
    host = make_host()
    connect(host)
    assert host.list_hooks() == []
    frame = host.hooks_frame()
    assert list(frame.columns[:5]) == ["service", "node", "type", "arg", "persistent"]
    assert frame.empty


def test_delete_with_and_without_type_and_arg(pubsub, server, tmp_path):
    host, watcher, publisher, node = pubsub
    path = write(tmp_path / "h.py", "def hook(host, client, item):\n    pass\n")
    host.create_hook(node, "pass", type="python_code", service=server.pubsub)
    host.create_hook(node, "1 + 1", type="python_code", service=server.pubsub)
    host.create_hook(node, str(path), type="python_file", service=server.pubsub, persistent=True)
    assert host.delete_hooks(node, server.pubsub, type="python_code", arg="pass") == 1
    assert host.delete_hooks(node, server.pubsub, type="python_code", arg="pass") == 0
    host.create_hook(node, "pass", type="python_code", service=server.pubsub)
    assert len(host.list_hooks()) == 3
    assert host.delete_hooks(node, server.pubsub) == 3  # empty type and arg: every hook
    assert host.list_hooks() == [] and host.store.load_hooks() == []


@pytest.mark.parametrize("type_, arg, message", [
    ("bogus", "x", "unknown hook type"),
    ("python_file", "/nonexistent/hook.py", "does not exist"),
    ("python", "no_such_module_hooknb", "cannot be imported"),
    ("python", "json", "has no `hook` function"),
    ("python_code", "def broken(:\n", "syntax error in hook code, line 1"),
    ("python_code", "   ", "empty"),
])
def test_bad_input_is_refused_and_nothing_stored(pubsub, server, type_, arg, message):
    host, *_, node = pubsub
    with pytest.raises(HookCreateError, match=message):
        host.create_hook(node, arg, type=type_, service=server.pubsub, persistent=True)
    assert host.list_hooks() == [] and host.store.load_hooks() == []


def test_bad_files_are_refused(pubsub, server, tmp_path):
    host, *_, node = pubsub
    nohook = write(tmp_path / "nohook.py", "x = 1\n")
    with pytest.raises(HookCreateError, match="has no `hook` function"):
        host.create_hook(node, str(nohook), service=server.pubsub)
    writable = write(tmp_path / "writable.py", "def hook(h, c, i):\n    pass\n")
    writable.chmod(0o666)
    with pytest.raises(HookCreateError, match="world-writable"):
        host.create_hook(node, str(writable), service=server.pubsub)
    bad = write(tmp_path / "bad.py", "def hook(:\n")
    with pytest.raises(HookCreateError, match="line 1"):
        host.create_hook(node, str(bad), service=server.pubsub)
    with pytest.raises(HookCreateError, match="does not exist"):
        host.create_hook(node, str(tmp_path / "missing.py"), service=server.pubsub)
    assert host.list_hooks() == []


def test_raising_hook_does_not_stop_another(pubsub, server):
    host, watcher, publisher, node = pubsub
    host.bucket = []
    bad = host.create_hook(node, "raise ValueError('boom ' + item.id)", type="python_code",
                           service=server.pubsub)
    host.create_hook(node, "host.bucket.append(item.id)", type="python_code", service=server.pubsub)
    publish(publisher, node, server, "r1", "r2")
    assert host.wait_runs(4, 10)
    assert host.bucket == ["r1", "r2"]
    errors = [r for r in host.runs.snapshot() if r.hook_id == bad.id]
    assert [r.status for r in errors] == ["error", "error"]
    assert errors[0].error == "ValueError: boom r1" and "ValueError" in errors[0].traceback
    listed = {h["id"]: h for h in host.list_hooks()}[bad.id]
    assert (listed["runs"], listed["failures"], listed["last_error"]) == (2, 2, "ValueError: boom r2")
    assert watcher.state == "connected"


def test_blocking_hook_does_not_delay_another_node(make_host, connect, server, node):
    host = make_host()
    watcher, publisher = connect(host), connect(make_host())
    other = node + "-other"
    for n in (node, other):
        watcher.create_node(n, server.pubsub)
    slow = host.create_hook(node, "import time; time.sleep(2)", type="python_code", service=server.pubsub)
    fast = host.create_hook(other, "pass", type="python_code", service=server.pubsub)
    publish(publisher, node, server, "slow")
    assert host.wait_events(1, 10)
    publish(publisher, other, server, "fast")
    assert host.wait_runs(1, 10)
    run = host.runs.latest()
    fast_event = [e for e in host.events.snapshot() if e.node == other][0]
    assert run.hook_id == fast.id
    assert run.ts - fast_event.ts < 0.1
    assert host.engine.pending(slow.id) == 1


@pytest.mark.integration  # a second Python process
def test_persistent_hook_survives_disconnect_and_a_new_process(make_host, connect, account, server,
                                                               node, tmp_path, home):
    jid, password = account("p")
    host = make_host()
    watcher = connect(host, jid, password)
    watcher.create_node(node, server.pubsub)
    out = tmp_path / "out.txt"
    path = write(tmp_path / "persist.py", f"""
        def hook(host, client, item):
            with open({str(out)!r}, "a") as f:
                f.write(item.id + "\\n")
    """)
    persistent = host.create_hook(node, str(path), service=server.pubsub, persistent=True)
    temporary = host.create_hook(node, "pass", type="python_code", service=server.pubsub)
    host.disconnect(jid)
    assert [h["id"] for h in host.list_hooks()] == [persistent.id]
    assert temporary.id not in host.registry

    script = textwrap.dedent(f"""
        import json, sys
        from hooknb.host import Host
        host = Host()
        client = host.connect({jid!r}, {password!r}, host={server.host!r}, port={server.port},
                              cafile={server.cafile!r})
        print(json.dumps(host.list_hooks()), flush=True)
        sys.stdin.readline()
        ok = host.wait_runs(1, 10)
        print(json.dumps([ok, [r.item_id for r in host.runs.snapshot()]]), flush=True)
        host.disconnect()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "HOOKNB_HOME": str(home)})
    listed = json.loads(proc.stdout.readline())
    assert [(h["id"], h["persistent"], h["type"]) for h in listed] == [
        (persistent.id, True, "python_file")]
    publish(connect(make_host()), node, server, "after-restart")
    proc.stdin.write("\n")
    proc.stdin.flush()
    ok, ran = json.loads(proc.stdout.readline())
    assert proc.wait(20) == 0
    assert ok and ran == ["after-restart"]
    assert out.read_text().split() == ["after-restart"]


def test_hook_that_fails_to_load_is_kept_reported_and_deletable(make_host, connect, account, server,
                                                                node, tmp_path):
    jid, password = account("f")
    host = make_host()
    watcher = connect(host, jid, password)
    watcher.create_node(node, server.pubsub)
    path = write(tmp_path / "vanishing.py", "def hook(host, client, item):\n    pass\n")
    hook = host.create_hook(node, str(path), service=server.pubsub, persistent=True)
    host.disconnect(jid)
    path.unlink()
    again = make_host()
    connect(again, jid, password)
    listed = again.list_hooks()
    assert [h["id"] for h in listed] == [hook.id]
    assert "does not exist" in listed[0]["last_error"]
    publish(connect(make_host()), node, server, "x1")
    assert again.wait_runs(1, 10)
    assert again.runs.latest().status == "error"
    assert again.delete_hooks(node, server.pubsub, type="python_file", arg=str(path)) == 1
    assert again.list_hooks() == [] and again.store.load_hooks() == []


def test_journals_as_dataframes_with_dtypes(pubsub, server):
    host, watcher, publisher, node = pubsub
    host.create_hook(node, "item.id", type="python_code", service=server.pubsub)
    publish(publisher, node, server, "d1", "d2")
    assert host.wait_runs(2, 10)
    events, runs = host.events_frame(), host.runs_frame()
    assert str(events["received"].dtype) == "datetime64[ns, UTC]"
    assert isinstance(events["node"].dtype, pd.CategoricalDtype)
    assert isinstance(events["kind"].dtype, pd.CategoricalDtype)
    assert list(events["item_id"]) == ["d1", "d2"]
    assert str(runs["start"].dtype) == "datetime64[ns, UTC]"
    assert isinstance(runs["status"].dtype, pd.CategoricalDtype)
    assert list(runs["status"]) == ["ok", "ok"]
    assert (runs["duration"] >= 0).all()
    assert len(host.events_frame(node=node, last=1)) == 1


def test_temporary_hook_needs_a_connection(make_host, home, node):
    host = make_host()
    with pytest.raises(HooknbError, match="no account"):
        host.create_hook(node, "pass", type="python_code")
    with pytest.raises(HooknbError, match="not connected"):
        host.create_hook(node, "pass", type="python_code", account="nobody@localhost")
    stored = host.create_hook(node, "pass", type="python_code", account="nobody@localhost", persistent=True)
    assert host.store.load_hooks("nobody@localhost")[0]["id"] == stored.id


def test_a_full_lane_of_a_persistent_hook_drops_nothing_its_items_wait_in_the_store(pubsub, server, monkeypatch):
    """The same burst for a persistent hook: what does not fit its lane waits in the inbox and is
    queued again, in order, when the lane has room (hooknb.core.spill)."""
    from hooknb.core import lanes

    monkeypatch.setattr(lanes, "QUEUE_MAX", 3)
    host, watcher, publisher, node = pubsub
    import threading

    host.gate, host.started = threading.Event(), threading.Event()
    hook = host.create_hook(node, "host.started.set(); host.gate.wait(10)", type="python_code",
                            service=server.pubsub, persistent=True)
    publish(publisher, node, server, "q0")
    assert host.started.wait(10)
    publish(publisher, node, server, *[f"q{i}" for i in range(1, 8)])
    assert host.wait_events(8, 10)
    assert host.runs.wait_for(lambda: len(host.engine.spill) == 1, 5), "the lane is full: the rest wait"
    host.gate.set()
    assert host.runs.wait_for(lambda: hook.runs == 8, 20)
    assert [r.item_id for r in host.runs.snapshot()] == [f"q{i}" for i in range(8)]
    assert hook.dropped == 0 and {r.status for r in host.runs.snapshot()} == {"ok"}


def test_full_lane_drops_are_counted_and_journaled(pubsub, server, monkeypatch):
    from hooknb.core import lanes

    monkeypatch.setattr(lanes, "QUEUE_MAX", 3)
    host, watcher, publisher, node = pubsub
    import threading

    host.gate, host.started = threading.Event(), threading.Event()
    hook = host.create_hook(node, "host.started.set(); host.gate.wait(10)", type="python_code",
                            service=server.pubsub)
    publish(publisher, node, server, "q0")
    assert host.started.wait(10)
    publish(publisher, node, server, *[f"q{i}" for i in range(1, 8)])
    assert host.wait_events(8, 10)
    # one item running, three waiting, four dropped (each journaled as such)
    assert host.runs.wait_for(lambda: hook.dropped == 4, 5)
    dropped = [r.item_id for r in host.runs.snapshot() if r.status == "dropped"]
    assert len(dropped) == 4
    assert {h["id"]: h for h in host.list_hooks()}[hook.id]["dropped"] == 4
    host.gate.set()
    assert host.runs.wait_for(lambda: hook.runs == 4, 10)
    ran = [r.item_id for r in host.runs.snapshot() if r.status == "ok"]
    assert ran == sorted(ran) and sorted(ran + dropped) == [f"q{i}" for i in range(8)]


def test_dispatch_is_indexed_by_node(pubsub, server):
    host, watcher, publisher, node = pubsub
    mine = host.create_hook(node, "pass", type="python_code", service=server.pubsub)
    from hooknb.core.hooks import Hook, HookSpec

    for i in range(500):  # hooks on other nodes are never looked at for this node
        other = f"other-{i}"
        host.registry.add(Hook(HookSpec.make(watcher.jid, server.pubsub, other, "python_code", "pass")))
    assert host.registry.lookup(watcher.jid, server.pubsub, node) == (mine,)
    assert len(host.registry.lookup(watcher.jid, server.pubsub, "other-7")) == 1
