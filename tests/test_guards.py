"""Hooks that cannot silently stall, block the event loop or loop for ever, against the real server:
a stalled hook is listed (command line and host), logged and recovers; an async hook blocking the
loop is journaled by name; chains of hooks publishing to their own or each other's nodes stop at
their depth limit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from processes import hooknb, publish, wait_until

from hooknb.xmpp import loop as _loop
from hooknb.core.depth import MAX_DEPTH
from hooknb.core.lanes import MAX_ABANDONED
from hooknb.core.watchdog import BLOCK_LIMIT

pytestmark = pytest.mark.integration


def create(jid: str, service: str, node: str, code: str, *options: str) -> str:
    """Store a persistent python_code hook with the command line; its id."""
    made = hooknb("pubsub", "hook", "create", "--jid", jid, "-s", service, "-n", node, "-P",
                  "-t", "python_code", *options, code)
    assert made.returncode == 0, made.stderr
    return made.stdout.split()[1]


def listed(jid: str) -> dict[str, dict[str, Any]]:
    """``hooknb pubsub hook list -O json``, by hook id."""
    result = hooknb("pubsub", "hook", "list", "--jid", jid, "-O", "json")
    assert result.returncode == 0, result.stderr
    return {row["id"]: row for row in json.loads(result.stdout)}


def _runs(host, hook_id: str, status: str = "ok") -> list:
    return [r for r in host.runs.snapshot() if r.hook_id == hook_id and r.status == status]


# ------------------------------------------------------------------------------------ stalls
def test_a_hook_at_its_cap_of_stuck_threads_is_stalled_listed_logged_and_recovers(
        runner, account, pubsub_node, server, make_host, tmp_path):
    publisher, node = pubsub_node
    jid, password = account("stall")
    release = tmp_path / "release"  # the stuck runs return once it exists
    hook_id = create(jid, server.pubsub, node,
                     f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.02)\nitem.id",
                     "--timeout", "0.5")
    proc = runner(jid, password)
    proc.wait_record("ready")
    extra = 3
    ids = [f"s{i}" for i in range(MAX_ABANDONED + extra)]
    publish(publisher, node, server.pubsub, *ids)  # in well under 8 timeouts of 0.5 s

    stalled = proc.wait_record("stalled", hook=hook_id, timeout=30)
    assert stalled["waiting"] == extra and stalled["node"] == node
    runs = proc.records("run", hook=hook_id)
    assert [(r["item"], r["status"]) for r in runs] == [(i, "timeout") for i in ids[:MAX_ABANDONED]]
    row = wait_until(lambda: (r := listed(jid)[hook_id])["status"] == "stalled" and r)
    assert row["items_waiting"] == extra                       # the command line, another process
    [hosted] = make_host().list_hooks(jid)                     # a host that does not run it
    assert (hosted["status"], hosted["items_waiting"], hosted["timeouts"]) == ("stalled", extra, 0)
    assert not proc.records("run", item=ids[-1])               # nothing ran meanwhile

    release.touch()                                            # the stuck runs return
    recovered = proc.wait_record("recovered", hook=hook_id, timeout=15)
    assert recovered["stalled_for"] > 0
    proc.wait_record("run", count=len(ids), hook=hook_id, timeout=15)
    runs = proc.records("run", hook=hook_id)
    assert sorted(r["item"] for r in runs) == sorted(ids)      # every item has its record
    assert [(r["item"], r["status"]) for r in runs[MAX_ABANDONED:]] == [(i, "ok") for i in ids[MAX_ABANDONED:]]
    row = wait_until(lambda: (r := listed(jid)[hook_id])["status"] == "active" and r)
    assert row["items_waiting"] == 0


# ------------------------------------------------------------------------------------ the loop watchdog
def test_an_async_hook_blocking_the_loop_is_journaled_by_name_and_logged(
        runner, account, pubsub_node, server):
    publisher, node = pubsub_node
    jid, password = account("block")
    blocking = create(jid, server.pubsub, node, "import asyncio, time\ntime.sleep(0.5)\nawait asyncio.sleep(0)\n"
                                                "item.id")
    polite = create(jid, server.pubsub, node, "import asyncio\nawait asyncio.sleep(0.5)\nitem.id")
    proc = runner(jid, password)
    proc.wait_record("ready")
    publish(publisher, node, server.pubsub, "b1")
    proc.wait_record("run", hook=blocking, status="ok")
    proc.wait_record("run", hook=polite, status="ok")
    [blocked] = proc.records("run", status="blocked_loop")
    assert blocked["hook"] == blocking and blocked["item"] == "b1" and blocked["duration"] >= 0.5
    assert "held the event loop for 0.5" in blocked["error"]
    assert not proc.records("run", hook=polite, status="blocked_loop")
    row = listed(jid)[blocking]
    assert row["status"] == "active"


def test_the_blocked_time_is_counted_against_the_hook_that_blocked(make_host, connect, server, node):
    """An async hook whose publish runs an async before hook that blocks: the before hook is
    named, not the hook that awaited the publish."""
    host = make_host()
    client = connect(host)
    other = f"{node}-out"
    for name in (node, other):
        client.create_node(name, server.pubsub)
    before = host.create_hook(other, "import asyncio, time\ntime.sleep(0.3)\nawait asyncio.sleep(0)",
                              type="python_code", service=server.pubsub, phase="before")
    outer = host.create_hook(node, f"await client.apublish({other!r}, \"<n xmlns='urn:test'/>\", "
                                   f"service={server.pubsub!r})\nitem.id", type="python_code",
                             service=server.pubsub)
    client.publish(node, "<n xmlns='urn:test'/>", item_id="n1", service=server.pubsub)
    assert host.runs.wait_for(lambda: _runs(host, outer.id), 10), host.runs.snapshot()
    blocked = [r for r in host.runs.snapshot() if r.status == "blocked_loop"]
    assert [(r.hook_id, r.duration >= 0.3) for r in blocked] == [(before.id, True)]
    assert (before.blocked_loop, outer.blocked_loop) == (1, 0) and BLOCK_LIMIT == 0.1


# ------------------------------------------------------------------------------------ the loop guard
def test_a_hook_publishing_to_its_own_node_stops_at_depth_16(make_host, connect, server, node):
    host = make_host()
    client = connect(host)
    client.create_node(node, server.pubsub)
    hook = host.create_hook(node, "client.publish(item.node, \"<n xmlns='urn:test'/>\", service=item.service)\n"
                                  "item.depth", type="python_code", service=server.pubsub)
    client.publish(node, "<n xmlns='urn:test'/>", item_id="start", service=server.pubsub)
    assert host.runs.wait_for(lambda: _runs(host, hook.id, "loop"), 30), host.runs.snapshot()[-3:]
    assert _loop.call(host.engine.idle(10))                    # the run that published it ends
    ok = _runs(host, hook.id)
    assert len(ok) == MAX_DEPTH == 16                           # one publish per run: 16 publishes
    assert [r.result for r in ok] == [repr(d) for d in range(MAX_DEPTH)]
    [stopped] = _runs(host, hook.id, "loop")
    assert f"--max-depth {MAX_DEPTH}" in stopped.error and stopped.node == node
    assert not host.wait_events(MAX_DEPTH + 2, 1.0)             # the start and 16 published: no more
    assert len([e for e in host.events.snapshot() if e.node == node]) == MAX_DEPTH + 1
    assert (hook.loops, hook.failures) == (1, 1)
    assert client.state == "connected"


def test_a_chain_across_two_nodes_stops_too(make_host, connect, server, node):
    host = make_host()
    client = connect(host)
    ping, pong = f"{node}-a", f"{node}-b"
    for name in (ping, pong):
        client.create_node(name, server.pubsub)
    code = "await client.apublish({!r}, \"<n xmlns='urn:test'/>\", service=item.service)\nitem.depth"
    a = host.create_hook(ping, code.format(pong), type="python_code", service=server.pubsub)
    b = host.create_hook(pong, code.format(ping), type="python_code", service=server.pubsub)
    client.publish(ping, "<n xmlns='urn:test'/>", item_id="start", service=server.pubsub)
    assert host.runs.wait_for(lambda: _runs(host, a.id, "loop") or _runs(host, b.id, "loop"), 30)
    assert _loop.call(host.engine.idle(10))                    # the run that published it ends
    assert [r.result for r in _runs(host, a.id)] == [repr(d) for d in range(0, MAX_DEPTH, 2)]
    assert [r.result for r in _runs(host, b.id)] == [repr(d) for d in range(1, MAX_DEPTH, 2)]
    assert len(_runs(host, a.id)) + len(_runs(host, b.id)) == MAX_DEPTH  # 16 publishes in all
    assert [r.node for r in _runs(host, a.id, "loop")] == [ping] and not _runs(host, b.id, "loop")
    assert not host.wait_events(MAX_DEPTH + 2, 1.0)


def test_max_depth_is_a_hooks_own_and_the_runner_logs_the_loop(runner, account, pubsub_node, server):
    publisher, node = pubsub_node
    jid, password = account("deep")
    hook_id = create(jid, server.pubsub, node, "client.publish(item.node, \"<n xmlns='urn:test'/>\", "
                                               "service=item.service)", "--max-depth", "3")
    assert listed(jid)[hook_id]["status"] == "active"
    proc = runner(jid, password)
    proc.wait_record("ready")
    publish(publisher, node, server.pubsub, "start")
    stopped = proc.wait_record("run", hook=hook_id, status="loop", timeout=20)
    assert "--max-depth 3" in stopped["error"]
    # the third run's record may follow the stop: its publish is seen before the run returns
    proc.wait_record("run", count=3, hook=hook_id, status="ok")
    assert proc.stop() == 0
    assert len(proc.records("run", hook=hook_id, status="ok")) == 3  # 3 publishes
    assert proc.records("stopped")[0]["pending"] == 0            # the stopped item is done, not pending
