"""Faults against a real server: restarts, killed connections, gaps, stuck and failing hooks.

These tests start a server of their own (the session server must not be restarted under the
other tests).  Faults injected: a server stop/start, a killed TCP connection, a process restart.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from helpers import eventually

from hooknb import server as srv
from hooknb.host import Host

pytestmark = pytest.mark.integration  # own_server starts a server per test


@pytest.fixture
def own_server(tmp_path_factory, request) -> Iterator[srv.ServerInfo]:
    """A server of this test's own (of the kind the suite runs against), with persistent storage;
    parametrized (indirect), its stream resumption window."""
    directory = tmp_path_factory.mktemp("own-xmpp")
    info = srv.start(directory, ["alice", "bob", "carol"], kind=request.config.getoption("--server"),
                     resume_window=getattr(request, "param", None))
    yield info
    srv.stop(directory)


def _connect(host: Host, info: srv.ServerInfo, name: str):
    return host.connect(info.jid(name), info.accounts[name], host=info.host, port=info.port,
                        cafile=info.cafile)


def _publish(client, info, node, ids):
    for item_id in ids:
        client.publish(node, f"<n xmlns='urn:test'>{item_id}</n>", item_id=item_id, service=info.pubsub)


def _ran(host: Host, hook_id: str) -> list[str]:
    return [r.item_id for r in host.runs.snapshot() if r.hook_id == hook_id and r.status == "ok"]


def _hooked(make_host, info: srv.ServerInfo, node: str, **options):
    """(host, alice, hook, publisher): alice hooks a new node, bob's connection publishes."""
    host = make_host()
    alice = _connect(host, info, "alice")
    alice.create_node(node, info.pubsub, config=options.pop("config", None))
    hook = host.create_hook(node, "item.id", type="python_code", service=info.pubsub, **options)
    return host, alice, hook, _connect(make_host(), info, "bob")


def test_server_restart_every_item_runs_exactly_once(own_server, make_host, node):
    info = own_server
    host, alice, hook, first_publisher = _hooked(make_host, info, node)
    _publish(first_publisher, info, node, [f"a{i}" for i in range(5)])
    assert host.wait_runs(5, 10)

    srv.stop(info.dir)                                   # fault: the server goes away
    assert alice.wait_for_state("reconnecting", timeout=10)
    srv.start(info.dir)                                  # ... and comes back with its data
    publisher = _connect(make_host(), info, "bob")       # publishes while alice is still away
    _publish(publisher, info, node, [f"b{i}" for i in range(5)])
    assert alice.wait_for_state("connected", timeout=30)
    _publish(publisher, info, node, [f"c{i}" for i in range(5)])
    assert host.wait_runs(15, 15), _ran(host, hook.id)
    assert _ran(host, hook.id) == [f"{p}{i}" for p in "abc" for i in range(5)]  # once each, in order
    assert alice.reconnects >= 1


def test_killed_connection_catches_up_exactly_once(own_server, make_host, node):
    info = own_server
    host, alice, hook, publisher = _hooked(make_host, info, node)
    _publish(publisher, info, node, ["k0", "k1"])
    assert host.wait_runs(2, 10)

    alice.auto_reconnect = False        # hold the reconnection so the gap is certain
    alice.xmpp.transport.abort()        # fault: the TCP connection dies
    assert alice.wait_for_state("reconnecting", timeout=10)
    _publish(publisher, info, node, ["k2", "k3", "k4"])   # published while alice is away
    alice.reconnect()
    assert host.wait_runs(5, 10), _ran(host, hook.id)
    _publish(publisher, info, node, ["k5"])
    assert host.wait_runs(6, 10)
    assert _ran(host, hook.id) == ["k0", "k1", "k2", "k3", "k4", "k5"]
    assert not host.wait_runs(7, 0.3)   # and nothing twice


@pytest.mark.parametrize("own_server", [0], indirect=True)  # no resumption (else nothing is missed)
def test_gap_is_recorded_when_the_node_no_longer_holds_missed_items(own_server, make_host, node):
    info = own_server
    host, alice, hook, publisher = _hooked(make_host, info, node, config={"max_items": 2}, persistent=True)
    _publish(publisher, info, node, ["g0"])
    assert host.wait_runs(1, 10)
    alice.auto_reconnect = False
    alice.xmpp.transport.abort()
    assert alice.wait_for_state("reconnecting", timeout=10)
    _publish(publisher, info, node, ["g1", "g2", "g3", "g4"])  # the node keeps only g3, g4
    alice.reconnect()
    assert host.wait_runs(3, 10)
    assert _ran(host, hook.id) == ["g0", "g3", "g4"]
    gaps = host.gaps()
    assert list(gaps[["node", "last_seen", "fetched"]].itertuples(index=False, name=None)) == [
        (node, "g0", 2)]
    assert "gap on" in alice.last_error


def test_process_restart_runs_only_what_was_missed(own_server, make_host, home, node):
    info = own_server
    first = make_host()
    alice = _connect(first, info, "alice")
    alice.create_node(node, info.pubsub)
    hook = first.create_hook(node, "item.id", type="python_code", service=info.pubsub, persistent=True)
    publisher = _connect(make_host(), info, "bob")
    _publish(publisher, info, node, ["p0", "p1", "p2"])
    assert first.wait_runs(3, 10)
    first.disconnect()                                  # fault: the process goes away
    _publish(publisher, info, node, ["p3", "p4"])       # published while nobody listens
    second = make_host()                                # a new process, the same store
    _connect(second, info, "alice")
    assert second.wait_runs(2, 10)
    _publish(publisher, info, node, ["p5"])
    assert second.wait_runs(3, 10)
    assert _ran(second, hook.id) == ["p3", "p4", "p5"]
    assert not second.wait_runs(4, 0.3)


def test_stuck_failing_and_slow_hooks_leave_a_healthy_hook_alone(make_host, connect, server, node):
    host = make_host()
    watcher, publisher = connect(host), connect(make_host())
    watcher.create_node(node, server.pubsub)
    release = threading.Event()
    host.release = release
    stuck = host.create_hook(node, "host.release.wait()", type="python_code", service=server.pubsub,
                             timeout=0.2)
    failing = host.create_hook(node, "1 / 0", type="python_code", service=server.pubsub)
    slow = host.create_hook(node, "import time; time.sleep(0.3)", type="python_code",
                            service=server.pubsub, timeout=0.1)
    healthy = host.create_hook(node, "item.id", type="python_code", service=server.pubsub)
    ids = [f"h{i}" for i in range(12)]
    for item_id in ids:
        publisher.publish(node, "<n xmlns='urn:test'/>", item_id=item_id, service=server.pubsub)
    assert host.wait_events(12, 10)

    def statuses() -> dict[str, list[str]]:
        return {h: [r.status for r in host.runs.snapshot() if r.hook_id == h]
                for h in (stuck.id, failing.id, slow.id, healthy.id)}

    # healthy, failing and slow each see every item
    assert host.runs.wait_for(lambda: all(len(statuses()[h.id]) == 12 for h in (healthy, failing, slow)),
                              20), statuses()
    assert _ran(host, healthy.id) == ids
    statuses = statuses()
    assert statuses[failing.id] == ["error"] * 12
    assert set(statuses[slow.id]) == {"timeout"} and len(statuses[slow.id]) == 12
    assert statuses[stuck.id] and set(statuses[stuck.id]) == {"timeout"}
    listed = {h["id"]: h for h in host.list_hooks()}
    assert listed[slow.id]["timeouts"] == 12 and listed[healthy.id]["failures"] == 0
    release.set()


def test_two_processes_on_one_account_run_each_item_once(own_server, make_host, node):
    info = own_server
    notebook, runner = make_host(), make_host()  # two processes sharing the store
    alice = _connect(notebook, info, "alice")
    alice.create_node(node, info.pubsub)
    hook = notebook.create_hook(node, "item.id", type="python_code", service=info.pubsub, persistent=True)
    notebook.host_name = "notebook"
    runner_client = runner.connect(f"{info.jid('alice')}/runner", info.accounts["alice"], host=info.host,
                                   port=info.port, cafile=info.cafile)
    assert hook.id in runner.registry and (info.pubsub, node) in runner_client.subscriptions
    ids = [f"s{i}" for i in range(10)]
    _publish(_connect(make_host(), info, "bob"), info, node, ids)
    assert notebook.wait_events(10, 10) and runner.wait_events(10, 10)

    def ran() -> list[str]:
        return _ran(notebook, hook.id) + _ran(runner, hook.id)

    assert notebook.runs.wait_for(lambda: len(ran()) >= 10, 10) or len(ran()) >= 10
    assert runner.runs.wait_for(lambda: len(ran()) >= 10, 10)
    assert sorted(ran()) == sorted(ids)


def test_hook_stored_offline_catches_up_after_its_first_session(own_server, make_host, node):
    info = own_server
    setup = make_host()
    _connect(setup, info, "alice").create_node(node, info.pubsub)
    setup.disconnect()
    offline = make_host()  # like `hooknb pubsub hook create -P`: stored, never connected
    hook = offline.create_hook(node, "item.id", type="python_code", service=info.pubsub,
                               account=info.jid("alice"), persistent=True)
    publisher = _connect(make_host(), info, "bob")
    _publish(publisher, info, node, ["before"])          # before any session: not this hook's
    first = make_host()
    _connect(first, info, "alice")
    first.disconnect()                                   # one session, no event seen
    _publish(publisher, info, node, ["missed"])          # published while nobody listens
    second = make_host()
    _connect(second, info, "alice")
    assert second.wait_runs(1, 10)
    assert _ran(second, hook.id) == ["missed"]
    assert not second.wait_runs(2, 0.3)



def test_a_persistent_hooks_backlog_runs_once_across_a_killed_connection(own_server, make_host, node,
                                                                         monkeypatch):
    import sys
    import types

    from hooknb.xmpp import loop as _loop

    started, gate = threading.Event(), threading.Event()
    monkeypatch.setitem(sys.modules, "hooknb_test_gate", types.SimpleNamespace(started=started, gate=gate))
    info = own_server
    host = make_host()
    alice = _connect(host, info, "alice")
    alice.create_node(node, info.pubsub)
    hook = host.create_hook(node, "import hooknb_test_gate as g\ng.started.set()\ng.gate.wait(20)\nitem.id",
                            type="python_code", service=info.pubsub, persistent=True)
    publisher = _connect(make_host(), info, "bob")
    try:
        _publish(publisher, info, node, ["q0", "q1", "q2"])
        assert started.wait(10)             # q0 runs, slowly: q1 and q2 wait in the hook's lane
        assert eventually(lambda: host.engine.waiting(hook.id) == 2)  # (both arrived: a loaded
        alice.auto_reconnect = False        # server may send them a little after q0)
        alice.xmpp.transport.abort()        # fault: the TCP connection dies with a backlog queued
        assert alice.wait_for_state("reconnecting", timeout=10)
        alice.reconnect()                   # returns once the session started again (pending read)
        assert not gate.is_set() and host.engine.waiting(hook.id) == 2  # the backlog, not twice
        gate.set()
        assert host.wait_runs(3, 20), _ran(host, hook.id)
        assert _loop.call(host.engine.idle(10))
        assert _ran(host, hook.id) == ["q0", "q1", "q2"]   # once each, in order: none queued again
    finally:
        gate.set()
