"""The engine without a server: dispatch, filters, dedup, lanes, failures, timeouts, drops,
re-creation, store restore and the hooks' statistics."""

from __future__ import annotations

import threading
import time


from hooknb.core import lanes
from hooknb.xmpp import loop as _loop
from hooknb.core.hooks import HookSpec, HookStats
from unit.fakes import ACCOUNT, SERVICE, FakeClient, event, on_loop


def install(host, node, code, **options):
    return host.engine.install(HookSpec.make(ACCOUNT, SERVICE, node, "python_code", code, **options))


def feed(host, client, *events):
    on_loop(host.engine.accept, client, list(events))


def test_a_hook_runs_once_per_item_in_order_with_its_result(host):
    hook = install(host, "n", "item.id.upper()")
    feed(host, FakeClient(), event("n", "a"), event("n", "b"), event("other", "c"))
    assert host.wait_runs(2, 5)
    runs = host.runs.snapshot()
    assert [(r.item_id, r.status, r.result) for r in runs] == [("a", "ok", "'A'"), ("b", "ok", "'B'")]
    assert hook.runs == 2 and hook.failures == 0 and len(host.events) == 3


def test_kinds_and_publishers_filter_what_runs(host):
    install(host, "n", "item.kind", kinds=frozenset({"retract"}))
    install(host, "m", "item.id", publishers=frozenset({"bob@localhost"}))
    feed(host, FakeClient(), event("n", "p1"), event("n", "r1", kind="retract"),
         event("m", "x", publisher="carol@localhost/res"), event("m", "y", publisher="bob@localhost/res"))
    assert host.wait_runs(3, 5)
    assert _loop.call(host.engine.idle(5))
    assert sorted((r.item_id, r.status) for r in host.runs.snapshot()) == [
        ("r1", "ok"), ("x", "skipped"), ("y", "ok")]  # p1 is not a retract: not for that hook


def test_the_same_item_twice_runs_once(host):
    install(host, "n", "item.id")
    client = FakeClient()
    feed(host, client, event("n", "a"))
    feed(host, client, event("n", "a"), event("n", "b"))
    assert host.wait_runs(2, 5)
    assert [r.item_id for r in host.runs.snapshot()] == ["a", "b"]


def test_a_failing_hook_is_journaled_with_its_traceback(host):
    hook = install(host, "n", "raise ValueError('boom ' + item.id)")
    feed(host, FakeClient(), event("n", "a"))
    assert host.wait_runs(1, 5)
    run = host.runs.latest()
    assert (run.status, run.error) == ("error", "ValueError: boom a")
    assert "ValueError" in run.traceback and "engine.py" not in run.traceback
    assert (hook.failures, hook.last_error) == (1, "ValueError: boom a")


def test_a_sync_hook_past_its_timeout_is_recorded_and_the_lane_goes_on(host):
    install(host, "n", "import time\nif item.id == 'slow': time.sleep(2)\nitem.id", timeout=0.2)
    feed(host, FakeClient(), event("n", "slow"), event("n", "next"))
    assert host.wait_runs(2, 5)
    assert {r.item_id: r.status for r in host.runs.snapshot()} == {"slow": "timeout", "next": "ok"}


def test_an_async_hook_runs_on_the_loop(host):
    install(host, "n", "import asyncio\nawait asyncio.sleep(0)\nitem.id")
    feed(host, FakeClient(), event("n", "a"))
    assert host.wait_runs(1, 5)
    assert isinstance(host.engine.lanes[next(iter(host.engine.lanes))], lanes.TaskLane)
    assert host.runs.latest().result == "'a'"


def test_a_full_lane_drops_items_and_journals_each_drop(host, monkeypatch):
    monkeypatch.setattr(lanes, "QUEUE_MAX", 2)
    host.started, host.gate = threading.Event(), threading.Event()  # the hook sees them as `host`
    hook = install(host, "n", "host.started.set()\nhost.gate.wait(5)")
    client = FakeClient()
    feed(host, client, event("n", "i0"))
    assert host.started.wait(5)
    feed(host, client, *[event("n", f"i{k}") for k in range(1, 6)])
    # one running, two queued, three dropped
    assert host.runs.wait_for(lambda: hook.dropped == 3, 5)
    host.gate.set()
    assert host.wait_runs(6, 5)
    statuses = sorted(r.status for r in host.runs.snapshot())
    assert statuses == ["dropped"] * 3 + ["ok"] * 3


def test_creating_a_hook_again_keeps_the_object_and_its_counters(host):
    hook = install(host, "n", "item.id")
    feed(host, FakeClient(), event("n", "a"))
    assert host.wait_runs(1, 5)
    again = install(host, "n", "item.id", priority=5)
    assert again is hook and hook.priority == 5 and hook.runs == 1


def test_stored_hooks_are_restored_with_their_load_errors(host):
    good = HookSpec.make(ACCOUNT, SERVICE, "n", "python_code", "1", persistent=True)
    bad = HookSpec.make(ACCOUNT, SERVICE, "n", "python", "no_such_module_here", persistent=True)
    for spec in (good, bad):
        host.store.save_hook(spec.to_record())
    host.engine.restore(ACCOUNT)
    loaded = {h.id: h for h in host.registry.all(ACCOUNT)}
    assert loaded[good.id].loader is not None and loaded[good.id].load_error is None
    assert "cannot be imported" in loaded[bad.id].load_error
    host.store.delete_hooks([good.id])  # as another process would
    host.engine.restore(ACCOUNT)
    assert [h.id for h in host.registry.all(ACCOUNT)] == [bad.id]


def test_removing_a_persistent_hook_removes_it_from_the_store(host):
    spec = HookSpec.make(ACCOUNT, SERVICE, "n", "python_code", "1", persistent=True)
    host.store.save_hook(spec.to_record())
    host.engine.install(spec)
    assert [h.id for h in host.engine.remove([spec.id])] == [spec.id]
    assert host.store.load_hooks() == [] and len(host.registry) == 0


def test_statistics_count_every_run_from_many_threads():
    stats = HookStats()

    def record() -> None:
        for i in range(2_000):
            stats.record("ok" if i % 2 else "error", float(i), "e")

    threads = [threading.Thread(target=record) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (stats.runs, stats.failures) == (16_000, 8_000)


def test_a_disabled_hook_journals_would_run_only_where_it_would_run(host):
    temporary = install(host, "n", "item.id", disabled=True)
    stored = install(host, "n", "item.id.upper()", disabled=True, persistent=True)
    client = FakeClient()
    feed(host, client, event("n", "a"))  # this process does not run the account's persistent hooks
    assert host.wait_runs(1, 5)
    assert [(r.hook_id, r.status) for r in host.runs.snapshot()] == [(temporary.id, "would_run")]
    host.engine.active.add(ACCOUNT)
    feed(host, client, event("n", "b"))
    assert host.wait_runs(3, 5)
    assert sorted((r.hook_id, r.item_id, r.status) for r in host.runs.snapshot()[1:]) == sorted(
        [(temporary.id, "b", "would_run"), (stored.id, "b", "would_run")])
    assert host.inbox.flush() and host.store.pending(ACCOUNT) == [], "nothing waits to run"
    assert (temporary.runs, stored.runs, temporary.status) == (0, 0, "disabled")


def watchdog_ended(host, timeout: float = 5.0) -> bool:
    """Whether the engine's watchdog task ended (it does once no lane has work)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = host.engine._watchdog
        if task is not None and task.done():
            return True
        time.sleep(0.01)
    return False


def test_the_watchdog_looks_only_at_lanes_with_work_and_ends_when_none_has(host, monkeypatch):
    looked: list[str] = []
    expire = lanes.ThreadLane.expire
    monkeypatch.setattr(lanes.ThreadLane, "expire", lambda lane, now: looked.append(lane.hook.id) or expire(lane, now))
    hooks = [install(host, f"n{i}", "item.id") for i in range(200)]
    feed(host, FakeClient(), *(event(f"n{i}", "a") for i in range(200)))
    assert host.wait_runs(200, 10)
    assert _loop.call(host.engine.idle(5))
    assert watchdog_ended(host)                      # 200 idle lanes: nothing left to look at
    assert len(host.engine.lanes) == 200
    looked.clear()
    feed(host, FakeClient(), event("n7", "b"))
    assert host.wait_runs(201, 5)
    assert watchdog_ended(host)
    assert set(looked) == {hooks[7].id}              # only the lane given an item


def test_a_run_past_its_timeout_is_caught_after_the_watchdog_ended(host):
    install(host, "n", "import time\nif item.id == 'slow': time.sleep(2)\nitem.id", timeout=0.2)
    feed(host, FakeClient(), event("n", "first"))
    assert host.wait_runs(1, 5)
    assert watchdog_ended(host)
    feed(host, FakeClient(), event("n", "slow"), event("n", "next"))
    assert host.wait_runs(3, 5)
    assert {r.item_id: r.status for r in host.runs.snapshot()} == {"first": "ok", "slow": "timeout", "next": "ok"}
