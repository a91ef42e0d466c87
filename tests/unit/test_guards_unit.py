"""The three guards without a server: stalls (listing, hook manager, recovery, the store's rows
tied to the lease), the loop watchdog (steps timed, nesting, records) and the loop guard (depths
remembered, items too deep not run)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import replace

import pytest

from hooknb.core import depth, lanes, watchdog
from hooknb.xmpp import loop as _loop
from hooknb.xmpp.operations import Operation
from hooknb.errors import HookCreateError
from hooknb.core.hooks import HookSpec, check_action
from hooknb.storage.store import Store
from hooknb.frontends.widgets import HookManager
from unit.fakes import ACCOUNT, SERVICE, FakeClient, event, on_loop


def install(host, node, code, **options):
    return host.engine.install(HookSpec.make(ACCOUNT, SERVICE, node, "python_code", code, **options))


def feed(host, client, *events):
    on_loop(host.engine.accept, client, list(events))


def statuses(host, hook_id):
    return [(r.item_id, r.status) for r in host.runs.snapshot() if r.hook_id == hook_id]


# ------------------------------------------------------------------------------------ stalls
def test_a_stalled_hook_says_so_with_its_waiting_items_and_recovers(host, monkeypatch):
    monkeypatch.setattr(lanes, "MAX_ABANDONED", 2)
    host.gate = threading.Event()  # the hook sees it as `host`
    hook = install(host, "n", "host.gate.wait(10)\nitem.id", timeout=0.1)
    manager = HookManager(host)
    try:
        feed(host, FakeClient(), *[event("n", f"i{k}") for k in range(5)])
        assert host.runs.wait_for(lambda: hook.timeouts == 2, 5)
        assert _loop.call(_wait(lambda: hook.status == "stalled"))
        [row] = host.list_hooks()
        assert (row["status"], row["items_waiting"]) == ("stalled", 3)
        frame = host.hooks_frame()
        assert (frame.loc[0, "status"], frame.loc[0, "items_waiting"]) == ("stalled", 3)
        manager.refresh()
        [(_id, cells)] = manager.content()[1]
        assert cells[HookManager.COLUMNS.index("status")] == "stalled, 3 waiting"
        assert not host.runs.wait_for(lambda: len(host.runs) > 2, 0.3)  # nothing leaves meanwhile

        host.gate.set()  # the stuck runs return: the first takes the items again
        assert host.wait_runs(5, 5)
        assert _loop.call(_wait(lambda: hook.status == "active"))
        assert statuses(host, hook.id) == [("i0", "timeout"), ("i1", "timeout"), ("i2", "ok"), ("i3", "ok"),
                                           ("i4", "ok")]
        assert host.list_hooks()[0]["items_waiting"] == 0
        manager.refresh()
        assert manager.content()[1][0][1][HookManager.COLUMNS.index("status")] == "active"
    finally:
        host.gate.set()
        manager.close()


async def _wait(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def test_a_stall_in_the_store_counts_only_while_its_process_holds_the_lease(tmp_path):
    store = Store(tmp_path / "s.sqlite3")
    try:
        store.set_stall("h1", "a@x", 5.0)
        assert store.stalls(["a@x"], ttl=10) == set()                 # nobody holds the lease
        store.acquire_lease("a@x", "run:1", ttl=10)
        assert store.stalls(["a@x"], ttl=10) == {"h1"}                # this process holds it
        assert store.stalls(["b@y"], ttl=10) == set()
        with store._tx() as db:                                       # another process took it
            db.execute("UPDATE leases SET info = ?", (json.dumps({"pid": 1, "host": "elsewhere"}),))
        assert store.stalls(["a@x"], ttl=10) == set()
        store.acquire_lease("a@x", "run:2", ttl=0)                    # ours again, then stale
        with store._tx() as db:
            db.execute("UPDATE leases SET beat = beat - 60")
        assert store.stalls(["a@x"], ttl=10) == set()
        store.acquire_lease("a@x", "run:2", ttl=10)
        store.set_stall("h1", "a@x", None)                            # it recovered
        assert store.stalls(["a@x"], ttl=10) == set()
        store.set_stall("h2", "a@x", 6.0)
        store.save_hook({"id": "h2", "account": "a@x", "service": "s", "node": "n", "type": "python_code",
                         "arg": "1", "options": {}, "created": 1.0})
        store.delete_hooks(["h2"])                                    # a deleted hook's stall goes
        assert store.stalls(["a@x"], ttl=10) == set()
    finally:
        store.close()


# ------------------------------------------------------------------------------------ the loop watchdog
def _run(awaitable):
    return _loop.call(_awaited(awaitable))


async def _awaited(awaitable):
    return await awaitable


def test_steps_are_timed_and_nested_steps_counted_for_their_own():
    async def blocking(seconds):
        await asyncio.sleep(0)
        time.sleep(seconds)
        return seconds

    async def outer(inner):
        await asyncio.sleep(0)
        return await inner.run()  # the inner steps run inside one of outer's

    inner = watchdog.Stepped(blocking(0.15))
    wrapper = watchdog.Stepped(outer(inner))
    assert _run(wrapper.run()) == 0.15
    assert inner.longest >= 0.15 and inner.blocked
    assert wrapper.longest < 0.05 and not wrapper.blocked


def test_a_stepped_coroutine_passes_errors_and_cancellation_through():
    async def failing():
        await asyncio.sleep(0)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        _run(watchdog.Stepped(failing()).run())

    async def cancelled():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(watchdog.Stepped(asyncio.sleep(10)).run(), 0.05)
        return "cancelled in time"

    assert _run(cancelled()) == "cancelled in time"


def test_an_async_hook_blocking_the_loop_is_journaled_against_it(host):
    blocking = install(host, "n", "import time, asyncio\ntime.sleep(0.2)\nawait asyncio.sleep(0)\nitem.id")
    polite = install(host, "n", "import asyncio\nawait asyncio.sleep(0.2)\nitem.id")
    feed(host, FakeClient(), event("n", "a"))
    assert host.wait_runs(3, 5) and _loop.call(host.engine.idle(5))
    [blocked] = [r for r in host.runs.snapshot() if r.status == "blocked_loop"]
    assert (blocked.hook_id, blocked.item_id, blocked.duration >= 0.2) == (blocking.id, "a", True)
    assert statuses(host, blocking.id) == [("a", "blocked_loop"), ("a", "ok")]
    assert statuses(host, polite.id) == [("a", "ok")]
    assert (blocking.blocked_loop, blocking.runs, blocking.failures) == (1, 1, 0)
    assert blocking.last_error.startswith("held the event loop for 0.2")
    assert host.list_hooks()[0]["blocked_loop"] == 1


# ------------------------------------------------------------------------------------ the loop guard
def test_depths_are_given_to_items_published_from_a_run_only():
    depths = depth.Depths()
    outside = Operation("publish", SERVICE, "n")
    assert depths.note(outside) == 0 and outside.item_id is None and len(depths) == 0
    assert depth.current() is None
    with depth.running(3):
        chosen = Operation("publish", SERVICE, "n")
        assert depths.note(chosen) == 4 and chosen.item_id        # an id chosen before sending
        named = Operation("retract", SERVICE, "n", "x")
        assert depths.note(named) == 4 and named.item_id == "x"
    assert depth.current() is None
    assert depths.of(event("n", chosen.item_id)) == 4
    assert depths.of(event("n", "x", kind="retract")) == 4
    assert depths.of(event("n", "x")) == 0                         # a publish of x: not that one
    assert depths.of(event("other", chosen.item_id)) == 0


def test_depths_are_forgotten_after_a_while_and_beyond_their_bound():
    depths = depth.Depths(keep=0.05, keep_max=3)
    with depth.running(0):
        ops = [Operation("publish", SERVICE, "n", f"i{k}") for k in range(5)]
        for op in ops:
            depths.note(op)
    assert len(depths) == 3 and [depths.of(event("n", f"i{k}")) for k in range(5)] == [0, 0, 1, 1, 1]
    time.sleep(0.06)
    assert depths.of(event("n", "i4")) == 0


def test_an_item_as_deep_as_the_hooks_limit_is_not_run_but_journaled_as_loop(host):
    shallow = install(host, "n", "item.depth", max_depth=3)
    default = install(host, "n", "item.depth + 100")

    async def noted(level):  # as if a hook's run on an item of depth level - 1 had published it
        with depth.running(level - 1):
            host.engine.depths.note(Operation("publish", SERVICE, "n", f"d{level}"))

    for level in (2, 3):
        _loop.call(noted(level))
    feed(host, FakeClient(), event("n", "d0"), event("n", "d2"), event("n", "d3"))
    assert host.wait_runs(6, 5) and _loop.call(host.engine.idle(5))
    assert sorted((r.item_id, r.status, r.result) for r in host.runs.snapshot() if r.hook_id == shallow.id) == [
        ("d0", "ok", "0"), ("d2", "ok", "2"), ("d3", "loop", None)]  # the loop at once, at dispatch
    assert [r.result for r in host.runs.snapshot() if r.hook_id == default.id] == ["100", "102", "103"]
    assert (shallow.loops, shallow.failures, shallow.runs) == (1, 1, 2)
    assert "--max-depth 3" in shallow.last_error


def test_a_hooks_max_depth_is_stored_and_checked():
    spec = HookSpec.make(ACCOUNT, SERVICE, "n", "python_code", "1", max_depth=4)
    assert HookSpec.from_record(spec.to_record()) == replace(spec, persistent=True)
    assert HookSpec.from_record({**spec.to_record(), "options": {}}).max_depth == depth.MAX_DEPTH
    for bad in (0, -1, 2.5, True):
        with pytest.raises(HookCreateError, match="maximum depth"):
            check_action("n", "1", "python_code", "event", 1.0, None, bad)
