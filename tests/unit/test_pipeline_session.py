"""The session stage without a server: live events held during the catch-up, missed items
first and in order, positions, gaps, subscription refusals shown on the hooks, the lease, nodes
waited for until they exist."""

from __future__ import annotations

import asyncio
import threading

import pytest

from hooknb.xmpp import loop as _loop
from hooknb.core import catchup, lanes, lease, waiting
from hooknb.errors import HooknbError
from hooknb.core.hooks import HookSpec
from processes import wait_until
from unit.fakes import ACCOUNT, SERVICE, FakeClient, event, make_host, on_loop


@pytest.fixture(autouse=True)
def closed_sessions(host):
    """The sessions the test's ``host`` makes are kept and closed after the test (before the host)."""
    sessions = []
    host.session = lambda: sessions.append(host.new_session()) or sessions[-1]
    yield
    for session in sessions:
        _loop.call(session.close())


def persistent_hook(host, node="n"):
    spec = HookSpec.make(ACCOUNT, SERVICE, node, "python_code", "item.id", persistent=True)
    host.store.save_hook(spec.to_record())
    return spec


def start(session, client, reconnected=False):
    _loop.call(session.prepare_session(client))
    _loop.call(session.session_started(client, reconnected))


def ran(host):
    return [r.item_id for r in host.runs.snapshot()]


def test_missed_items_run_before_live_ones_held_meanwhile(host):
    persistent_hook(host)
    host.store.set_position(ACCOUNT, SERVICE, "n", "a")
    client = FakeClient()
    client.hold("n", "a", "b", "c")
    session = host.session()
    _loop.call(session.prepare_session(client))
    on_loop(session.on_events, client, [event("n", "live")])  # arrives during the catch-up
    assert len(host.events) == 0
    _loop.call(session.session_started(client, False))
    assert host.wait_runs(3, 5)
    assert ran(host) == ["b", "c", "live"] and client.subscriptions == {(SERVICE, "n")}


def test_a_first_look_notes_the_position_without_running_old_items(host):
    persistent_hook(host)
    client = FakeClient()
    client.hold("n", "old1", "old2")
    start(host.session(), client)
    assert host.inbox.flush()
    assert host.store.get_position(ACCOUNT, SERVICE, "n")[0] == "old2" and ran(host) == []


def test_a_node_that_lost_the_last_item_seen_is_a_recorded_gap(host):
    persistent_hook(host)
    host.store.set_position(ACCOUNT, SERVICE, "n", "gone")
    client = FakeClient()
    client.hold("n", "x", "y")
    start(host.session(), client)
    assert host.wait_runs(2, 5) and ran(host) == ["x", "y"]
    (gap,) = host.store.gaps()
    assert (gap["node"], gap["last_seen"], gap["fetched"]) == ("n", "gone", 2)
    assert "gap on" in client.last_error


def test_positions_follow_live_items_and_reach_the_store_with_the_inbox(host):
    persistent_hook(host, "kept")
    host.engine.install(HookSpec.make(ACCOUNT, SERVICE, "temp", "python_code", "1"))
    client = FakeClient()
    session = host.session()
    start(session, client)
    on_loop(session.on_events, client, [event("kept", "k1"), event("temp", "t1")])
    assert host.inbox.flush()
    assert host.store.get_position(ACCOUNT, SERVICE, "kept")[0] == "k1"
    assert host.store.get_position(ACCOUNT, SERVICE, "temp") is None
    assert host.positions.get((ACCOUNT, SERVICE, "temp"))[0] == "t1"


def test_a_refused_subscription_shows_on_the_hook_and_clears_when_accepted(host):
    spec = persistent_hook(host)
    client = FakeClient()
    client.refused[(SERVICE, "n")] = HooknbError("forbidden")
    session = host.session()
    start(session, client)
    assert host.registry.get(spec.id).last_error == "cannot subscribe: forbidden"
    client.refused.clear()
    assert _loop.call(session.subscribe_hooks(client)) == [(SERVICE, "n")]
    assert host.registry.get(spec.id).last_error is None


def test_an_unreadable_store_costs_the_catch_up_not_the_session(host, tmp_path):
    (tmp_path / "hooknb.sqlite3").write_bytes(b"this is not a database" * 100)
    client = FakeClient()
    start(host.session(), client)
    assert "persistent hooks not restored" in client.last_error


def test_a_node_seen_empty_that_is_now_full_is_a_gap(host):
    persistent_hook(host)
    host.store.set_position(ACCOUNT, SERVICE, "n", "")
    client = FakeClient()
    client.capacity = "3"
    client.hold("n", "x", "y", "z")
    start(host.session(), client)
    assert host.wait_runs(3, 5)
    (gap,) = [e for e in host.events.snapshot() if e.kind == "gap"]
    assert gap.node == "n" and "it was empty and now holds 3 items" in client.last_error
    assert host.store.gaps()[0]["fetched"] == 3


@pytest.mark.parametrize("held, room, asked, gaps", [
    (2, "5", [], 0),        # fewer than it kept when seen empty: none may have gone, not asked
    (3, "10", ["n"], 0),    # as many: asked again, and it keeps more now: no gap
    (3, "3", ["n"], 1),     # as many, and it keeps no more: a gap
])
def test_a_node_seen_empty_with_its_room_noted_is_asked_again_only_when_it_holds_that_many(
        host, held, room, asked, gaps):
    persistent_hook(host)
    host.store.set_position(ACCOUNT, SERVICE, "n", "", "room:3")
    client = FakeClient()
    client.capacity = room
    client.hold("n", *(f"i{k}" for k in range(held)))
    start(host.session(), client)
    assert host.wait_runs(held, 5)
    assert client.rooms_asked == asked and len(host.store.gaps()) == gaps
    wait_until(lambda: position(host, "n") == f"i{held - 1}", 5)


def test_a_persistent_hook_made_on_an_empty_node_notes_its_room_and_a_temporary_one_asks_nothing(host):
    persistent_hook(host, "kept")
    client = FakeClient()
    client.capacity = "7"
    client.hold("full", "x")
    session = host.session()
    start(session, client)
    client.nodes[(SERVICE, "kept")] = []
    for node, persistent in (("full", True), ("kept", True), ("temp", False)):  # (temp: no hook, pruned next)
        host.positions.reset((ACCOUNT, SERVICE, node), None)
        _loop.call(session.mark(client, SERVICE, node, persistent))
    assert client.rooms_asked == ["kept"]  # not a temporary hook's node, nor one that holds items
    assert host.inbox.flush()
    assert host.store.get_position(ACCOUNT, SERVICE, "kept") == ("", "room:7")
    assert host.positions.get((ACCOUNT, SERVICE, "temp")) == ("", "")


def test_a_question_of_room_never_answered_holds_a_hook_made_on_an_empty_node_back_no_longer_than_a_node_may(
        host, monkeypatch):
    from hooknb.core import session as session_module

    class Silent(FakeClient):
        async def anode_field(self, node, var, service=None):
            await asyncio.sleep(30)  # no answer, as Prosody for some PEP nodes

    monkeypatch.setattr(session_module, "NODE_TIMEOUT", 0.2)
    persistent_hook(host, "kept")
    client = Silent()
    session = host.session()
    start(session, client)
    client.nodes[(SERVICE, "kept")] = []
    _loop.call(session.mark(client, SERVICE, "kept", True), timeout=5)
    assert host.positions.get((ACCOUNT, SERVICE, "kept")) == ("", "")  # noted, its room not known


def test_a_live_item_noted_while_the_room_is_asked_is_not_overwritten_by_the_empty_answer(host):
    persistent_hook(host, "kept")
    session = host.session()

    class Live(FakeClient):
        async def anode_field(self, node, var, service=None):
            session.on_events(self, [event(node, "live")])  # published meanwhile (on the loop thread)
            return "7"

    client = Live()
    start(session, client)
    client.nodes[(SERVICE, "kept")] = []
    host.positions.reset((ACCOUNT, SERVICE, "kept"), None)
    _loop.call(session.mark(client, SERVICE, "kept", True))
    assert host.positions.get((ACCOUNT, SERVICE, "kept"))[0] == "live"
    assert host.inbox.flush() and position(host, "kept") == "live"


def test_the_room_of_a_node_seen_empty_is_read_back_only_from_a_mark_of_one():
    from hooknb.core.positions import empty, room_of

    assert empty(7.0) == ("", "room:7") and room_of(empty(7.0)) == 7.0
    assert empty(float("inf")) == empty(None) == empty(float("nan")) == empty(-1.0) == ("", "")
    assert room_of(("", "")) is None
    assert room_of(("a", "room:3")) is None and room_of(("", "room:many")) is None and room_of(None) is None


class RoomHeld(FakeClient):
    """A client whose nodes keep ``capacity`` items and that answers the question of room of the
    ``held`` nodes only once ``answer`` is set."""

    def __init__(self, capacity: str, held: frozenset[str]) -> None:
        super().__init__()
        self.capacity, self.held, self.answer = capacity, held, threading.Event()

    async def anode_field(self, node, var, service=None):
        if node in self.held:
            await _loop.to_thread(self.answer.wait, 10)
        return await super().anode_field(node, var, service)


def position(host, node: str) -> str:
    """The item id of ``node``'s position in the store ("" for a node seen empty)."""
    return host.store.noted_positions(ACCOUNT)[(SERVICE, node)][0]


def test_a_node_seen_empty_whose_room_is_not_answered_yet_holds_back_neither_its_runs_nor_the_next_nodes(host):
    """The question of room of a node seen empty goes to the server behind the next nodes'
    requests: the node's items and the next nodes' run meanwhile; its position is written only
    once the gap is recorded (a process that ends before asks again)."""
    client = RoomHeld("2", frozenset({"n0"}))
    for node in ("n0", "n1", "n2"):
        persistent_hook(host, node)
        host.store.set_position(ACCOUNT, SERVICE, node, "")
        client.hold(node, f"{node}-a", f"{node}-b")  # full: each is a gap
    session = host.session()
    _loop.call(session.prepare_session(client))
    started = asyncio.run_coroutine_threadsafe(session.session_started(client, False), _loop.get_loop())
    assert host.wait_runs(6, 5)  # n0's items too: they do not wait for its room
    assert not started.done()    # the catch-up waits for the room of n0 before it ends
    # (n1's and n2's gaps are written by threads of their own: in either order)
    assert position(host, "n0") == "" and sorted(g["node"] for g in host.store.gaps()) == ["n1", "n2"]
    client.answer.set()
    started.result(5)
    assert [g["node"] for g in host.store.gaps()][2:] == ["n0"]
    wait_until(lambda: position(host, "n0") == "n0-b", 5)  # written off the loop
    assert sorted(ran(host)) == sorted(f"{n}-{i}" for n in ("n0", "n1", "n2") for i in "ab")


def test_a_process_ending_before_the_room_of_a_node_seen_empty_came_asks_again_and_queues_nothing_twice(
        host, tmp_path):
    """The store as a process killed while the question of room was out leaves it (a copy of its
    files, the runs' done marks written): the next start takes the node's items in again, queues
    none of them (the inbox has each version), records the gap once and writes the position."""
    import shutil

    persistent_hook(host, "n0")
    host.store.set_position(ACCOUNT, SERVICE, "n0", "")
    first = RoomHeld("2", frozenset({"n0"}))
    first.hold("n0", "n0-a", "n0-b")
    session = host.session()
    _loop.call(session.prepare_session(first))
    started = asyncio.run_coroutine_threadsafe(session.session_started(first, False), _loop.get_loop())
    assert host.wait_runs(2, 5)
    wait_until(lambda: not session.inbox.pending(ACCOUNT), 5)  # the runs' done marks are written (else redone)
    killed = tmp_path / "killed"
    killed.mkdir()
    for path in tmp_path.glob("hooknb.sqlite3*"):
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, killed / path.name)
    first.answer.set()
    started.result(5)

    after = make_host(killed)
    try:
        second = FakeClient()
        second.capacity = "2"
        second.hold("n0", "n0-a", "n0-b")
        assert position(after, "n0") == ""  # still seen empty
        later = after.new_session()
        start(later, second)                     # the killed holder's lease has not expired yet:
        _loop.call(later.take_over(second))      # taken over, as a standby does once it has
        assert [g["node"] for g in after.store.gaps()] == ["n0"]
        wait_until(lambda: position(after, "n0") == "n0-b", 5)
        assert not after.wait_runs(1, 0.3) and after.inbox.pending(ACCOUNT) == []  # nothing queued again
        _loop.call(later.close())
    finally:
        after.close()


def test_only_the_lease_holder_runs_persistent_hooks_and_a_take_over_moves_them(host, tmp_path):
    persistent_hook(host)
    other = make_host(tmp_path)  # another process on the same store
    first, second = host.session(), other.new_session()
    client, other_client = FakeClient(), FakeClient()
    start(first, client)
    start(second, other_client)
    assert first.active and not second.active
    assert second.describe_lease().startswith(host.holder.partition(":")[0])
    on_loop(first.on_events, client, [event("n", "a")])
    on_loop(second.on_events, other_client, [event("n", "a")])
    assert host.wait_runs(1, 5) and not other.wait_runs(1, 0.2)
    _loop.call(second.take_over(other_client))
    assert second.active and ACCOUNT in other.engine.active
    on_loop(second.on_events, other_client, [event("n", "b")])
    assert other.wait_runs(1, 5) and [r.item_id for r in other.runs.snapshot()] == ["b"]
    _loop.call(second.close())
    other.close()


def test_the_last_item_seen_runs_again_in_a_catch_up_if_it_was_republished(host):
    from hooknb.core.inbox import digest

    persistent_hook(host)
    client = FakeClient()
    (old,) = client.hold("n", "same")
    host.store.set_position(ACCOUNT, SERVICE, "n", "same", digest(old))
    start(host.session(), client)                       # the same version: nothing to run
    assert not host.wait_runs(1, 0.3)
    client.nodes[(SERVICE, "n")] = [event("n", "same", payload='<n xmlns="urn:test">v2</n>')]
    start(host.session(), client, reconnected=True)
    assert host.wait_runs(1, 5) and ran(host) == ["same"]


def test_a_missing_node_is_waited_for_and_what_it_holds_once_it_appears_runs_first(host, monkeypatch):
    monkeypatch.setattr(waiting, "NODE_POLL", 0.05)
    spec = persistent_hook(host)
    client = FakeClient()
    client.missing("n")
    client.subscriptions.add((SERVICE, "other"))  # subscribed without a hook: journaled, not held
    session = host.session()
    start(session, client)
    hook = host.registry.get(spec.id)
    assert (hook.status, hook.last_error, session.waiting) == ("waiting for node", None, {(SERVICE, "n")})
    assert host.inbox.flush()
    assert host.store.get_position(ACCOUNT, SERVICE, "n")[0] == ""  # a missing node counts as seen empty

    def live_during_the_fetch(node):  # an item published while the session fetches the node
        client.on_fetch = None  # (this runs on the loop thread, as the client's events do)
        session.on_events(client, [event("n", "live"), event("other", "x")])

    client.on_fetch = live_during_the_fetch
    client.hold("n", "first", "second")  # the node appears, with two items
    client.refused.clear()
    assert host.wait_runs(3, 5)  # found by the poll: no call here
    assert ran(host) == ["first", "second", "live"]
    assert [e.item_id for e in host.events.snapshot()] == ["x", "first", "second", "live"]  # only n held
    assert (hook.status, session.waiting) == ("active", set())
    assert client.subscriptions == {(SERVICE, "n"), (SERVICE, "other")}


def test_a_node_still_missing_at_a_new_session_is_waited_for_again(host):
    spec = persistent_hook(host)
    client = FakeClient()
    client.missing("n")
    session = host.session()
    start(session, client)
    client.state = "reconnecting"  # the poll ends with the session
    start(session, client, reconnected=True)
    assert host.registry.get(spec.id).status == "waiting for node" and session.waiting == {(SERVICE, "n")}
    client.refused.clear()
    client.hold("n", "while-away")
    start(session, client, reconnected=True)  # the node appeared while the connection was down
    assert host.wait_runs(1, 5) and ran(host) == ["while-away"]
    assert host.registry.get(spec.id).status == "active" and session.waiting == set()


def test_a_node_refused_for_another_reason_is_not_waited_for(host):
    spec = persistent_hook(host)
    client = FakeClient()
    client.refused[(SERVICE, "n")] = HooknbError("forbidden")
    session = host.session()
    start(session, client)
    hook = host.registry.get(spec.id)
    assert (hook.status, hook.last_error, session.waiting) == ("active", "cannot subscribe: forbidden", set())


def test_a_copy_of_the_last_item_seen_is_not_run_again(host):
    """A server may send the last item again on subscription (ejabberd does): the same version
    as the position noted when the node was hooked, so not a new item."""
    persistent_hook(host)
    client = FakeClient()
    (old,) = client.hold("n", "old")
    session = host.session()
    start(session, client)                               # first look: position "old"
    on_loop(session.on_events, client, [old, event("n", "new")])
    assert host.wait_runs(1, 5) and not host.wait_runs(2, 0.3)
    assert ran(host) == ["new"] and [e.item_id for e in host.events.snapshot()] == ["new"]


class SlowFetches(FakeClient):
    """Answers a moment after each request, noting how many were in flight when each was sent;
    with ``fill``, the first request is answered at once and the others once ``fill`` are in
    flight (or after a second, if they never are)."""

    def __init__(self, fill: int | None = None) -> None:
        super().__init__()
        self.flying, self.seen, self.fill, self.filled = 0, [], fill, None
        self.on_ask = None

    async def aget_items(self, node, service=None, max_items=None):
        self.filled = self.filled or asyncio.Event()
        if self.on_ask is not None:
            self.on_ask(node)
        self.flying += 1
        self.seen.append(self.flying)
        try:
            if self.fill is None:
                await asyncio.sleep(0.002)
            elif len(self.seen) > 1:
                if self.flying >= self.fill:
                    self.filled.set()
                try:
                    await asyncio.wait_for(self.filled.wait(), 1)
                except asyncio.TimeoutError:
                    pass
            return await super().aget_items(node, service, max_items)
        finally:
            self.flying -= 1


def hold_nodes(host, client, count: int, items: int) -> list[str]:
    nodes = [f"n{i:02}" for i in range(count)]
    for node in nodes:
        persistent_hook(host, node)
        host.store.set_position(ACCOUNT, SERVICE, node, "a")
        client.hold(node, "a", *(f"{node}-{i:03}" for i in range(items)))
    return nodes


def test_the_catch_up_window_follows_the_size_of_the_answers():
    assert catchup.window(0, 0) == catchup.FIRST_WINDOW == 4   # before any answer
    assert catchup.window(5, 0) == catchup.window(10, 30) == catchup.PREFETCH + 1  # small answers
    assert catchup.window(4, 1000) == 4 and catchup.window(1, 100) == 10         # 250, 100 items each
    assert catchup.window(1, 5000) == 2                                          # never fewer than 2


def test_a_catch_up_asks_for_the_next_nodes_items_while_it_takes_in_those_before(host, monkeypatch):
    client, steps = SlowFetches(fill=catchup.PREFETCH + 1), []
    nodes = hold_nodes(host, client, catchup.PREFETCH + 8, 2)  # more nodes than fetches in flight
    client.on_ask = lambda node: steps.append(f"ask {node}")
    session = host.session()
    accept = session.accept
    monkeypatch.setattr(session, "accept", lambda c, events, skip=frozenset(), **kw:
                        steps.append(f"take {events[0].node}") or accept(c, events, skip, **kw))
    start(session, client)
    assert steps[:catchup.FIRST_WINDOW] == [f"ask {n}" for n in nodes[:catchup.FIRST_WINDOW]]
    assert max(client.seen) == catchup.PREFETCH + 1  # small answers: the window opened to 32
    assert [s for s in steps if s.startswith("take")] == [f"take {node}" for node in nodes]  # in node order
    assert host.wait_runs(2 * len(nodes), 5)
    for node in nodes:  # each hook's items in order
        assert [i for i in ran(host) if i.startswith(f"{node}-")] == [f"{node}-000", f"{node}-001"]


def test_nodes_refused_or_unanswered_do_not_keep_the_catch_up_window_small(host):
    class Refusing(SlowFetches):
        async def aget_items(self, node, service=None, max_items=None):
            await super().aget_items(node, service, max_items)
            raise HooknbError("forbidden")

    client = Refusing(fill=catchup.PREFETCH + 1)
    hold_nodes(host, client, catchup.PREFETCH + 8, 2)
    start(host.session(), client)
    assert max(client.seen) == catchup.PREFETCH + 1  # each refusal counts as an answer without items


def test_a_catch_up_of_large_answers_keeps_few_requests_in_flight(host):
    client = SlowFetches()
    nodes = hold_nodes(host, client, 12, 600)
    start(host.session(), client)
    # four asked before any answer; after the first (600 items), at most two in flight
    assert client.seen[:4] == [1, 2, 3, 4] and max(client.seen[4:]) <= 3 and len(client.seen) == len(nodes)
    assert host.wait_runs(600 * len(nodes), 20)


def test_a_catch_up_that_ends_early_cancels_the_fetches_asked_for_ahead(host):
    nodes = [f"n{i}" for i in range(4)]
    for node in nodes:
        persistent_hook(host, node)
        host.store.set_position(ACCOUNT, SERVICE, node, "a")
    cancelled, fetching = [], []

    class Client(FakeClient):
        async def aget_items(self, node, service=None, max_items=None):
            if node == "n0":
                raise RuntimeError("the session broke")
            fetching.append(node)
            try:
                await asyncio.Event().wait()  # never answered
            except asyncio.CancelledError:
                cancelled.append(node)
                raise

    session = host.session()
    client = Client()
    _loop.call(session.prepare_session(client))
    with pytest.raises(RuntimeError, match="the session broke"):
        _loop.call(session.session_started(client, False))
    for _ in range(100):  # a cancellation reaches the request a few loop turns later
        if len(cancelled) == 3:
            break
        _loop.call(asyncio.sleep(0.01))
    assert fetching == cancelled == ["n1", "n2", "n3"]
    assert session._held is None  # the live events held meanwhile were let go


def test_a_reconnection_does_not_queue_again_the_entries_the_lanes_hold(host, monkeypatch):
    import sys
    import threading
    import types

    gate = threading.Event()
    monkeypatch.setitem(sys.modules, "hooknb_test_gate", types.SimpleNamespace(gate=gate))
    spec = HookSpec.make(ACCOUNT, SERVICE, "n", "python_code", "import hooknb_test_gate as g\ng.gate.wait(5)\nitem.id",
                         persistent=True)
    host.store.save_hook(spec.to_record())
    session, client = host.session(), FakeClient()
    try:
        start(session, client)
        client.hold("n", "a", "b", "c")
        on_loop(session.on_events, client, [event("n", i) for i in "abc"])  # a slow hook: a backlog
        assert host.inbox.flush()
        start(session, client, reconnected=True)  # the connection dropped and came back
        gate.set()
        assert host.wait_runs(3, 5) and _loop.call(host.engine.idle(5))
        assert ran(host) == ["a", "b", "c"]
    finally:
        gate.set()


def test_a_lease_lost_at_a_reconnection_and_taken_back_queues_what_is_pending_again(host):
    spec = persistent_hook(host)
    session, client = host.session(), FakeClient()
    start(session, client)
    host.store.acquire_lease(ACCOUNT, "another process", lease.LEASE_TTL, force=True)
    from hooknb.core.inbox import Entry
    host.store.write_batch([Entry(spec.id, event("n", "left by the other")).row()])  # it died
    start(session, client, reconnected=True)  # the lease is the other's now: nothing runs here
    assert not session.active and ran(host) == []
    _loop.call(session.take_over(client))
    assert host.wait_runs(1, 5) and ran(host) == ["left by the other"]


def test_a_standby_that_saw_the_newest_item_live_runs_it_once_it_takes_the_lease(host):
    """The lease window of a restart: the item arrives while another process still holds the
    lease; this one sees it live (and runs nothing), then takes the lease: the item runs."""
    persistent_hook(host)
    host.store.set_position(ACCOUNT, SERVICE, "n", "a")
    host.store.acquire_lease(ACCOUNT, "a process that died", lease.LEASE_TTL, force=True)
    session, client = host.session(), FakeClient()
    client.hold("n", "a")
    start(session, client)
    assert not session.active
    client.hold("n", "newest")  # the node holds a, newest
    on_loop(session.on_events, client, [event("n", "newest")])  # seen live by the standby
    assert host.wait_events(1, 5) and ran(host) == []
    _loop.call(session.take_over(client))
    assert host.wait_runs(1, 5) and ran(host) == ["newest"]


def test_a_clean_close_frees_the_lease_for_the_next_process_at_once(host, tmp_path):
    persistent_hook(host)
    first, client = host.session(), FakeClient()
    start(first, client)
    assert first.active
    _loop.call(first.close())
    row = host.store.acquire_lease(ACCOUNT, "the next process", lease.LEASE_TTL, take=False)
    assert row is None, "released, not left to expire"


def test_a_lease_lost_at_a_reconnection_stops_the_lanes(host):
    persistent_hook(host)
    session, client = host.session(), FakeClient()
    start(session, client)
    on_loop(session.on_events, client, [event("n", "x")])
    assert host.wait_runs(1, 5)
    lane = next(iter(host.engine.lanes.values()))
    host.store.acquire_lease(ACCOUNT, "another process", lease.LEASE_TTL, force=True)
    start(session, client, reconnected=True)
    assert not session.active and lane.closed, "the new holder runs them, not this process's lanes"


def test_an_event_that_cannot_be_taken_in_costs_itself_only(host, monkeypatch):
    hook = host.engine.install(HookSpec.make(ACCOUNT, SERVICE, "n", "python_code", "item.id"))
    session, client = host.session(), FakeClient()
    start(session, client)
    accept = host.engine.accept

    def fails_on_bad(client, events, *args):
        if any(e.item_id == "bad" for e in events):
            raise RuntimeError("a bug")
        return accept(client, events, *args)

    monkeypatch.setattr(host.engine, "accept", fails_on_bad)
    on_loop(session.on_events, client, [event("n", "a"), event("n", "bad"), event("n", "c")])
    assert host.wait_runs(2, 5) and ran(host) == ["a", "c"] and hook.runs == 2


def test_entries_a_full_lane_cannot_take_wait_in_the_store_and_run_in_order(host, monkeypatch):
    monkeypatch.setattr(lanes, "QUEUE_MAX", 2)
    host.gate = threading.Event()
    spec = HookSpec.make(ACCOUNT, SERVICE, "n", "python_code", "host.gate.wait(5) and item.id", persistent=True)
    host.store.save_hook(spec.to_record())
    session, client = host.session(), FakeClient()
    start(session, client)
    ids = [f"i{k}" for k in range(10)]
    on_loop(session.on_events, client, [event("n", i) for i in ids[:4]])
    assert host.runs.wait_for(lambda: len(host.engine.spill) == 1, 5), "the lane is full: the rest wait"
    on_loop(session.on_events, client, [event("n", i) for i in ids[4:]])  # not ahead of those
    host.gate.set()
    assert host.wait_runs(10, 10)
    assert ran(host) == ids and {r.status for r in host.runs.snapshot()} == {"ok"}, "none dropped"
    assert _loop.call(host.engine.idle(5)) and len(host.engine.spill) == 0
    assert host.inbox.flush() and host.inbox.pending(ACCOUNT) == []


def test_the_inbox_thread_survives_an_unexpected_error_and_writes_the_batch(host, monkeypatch):
    persistent_hook(host)
    session, client = host.session(), FakeClient()
    start(session, client)
    write, failures = host.store.write_batch, []

    def fails_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise ValueError("a bug in a row")
        return write(*args, **kwargs)

    monkeypatch.setattr(host.store, "write_batch", fails_once)
    monkeypatch.setattr(host.inbox, "retry", 0.01)
    on_loop(session.on_events, client, [event("n", "kept")])
    assert host.wait_runs(1, 5) and ran(host) == ["kept"] and failures == [1]
    assert host.inbox.status is None, "recovered"
