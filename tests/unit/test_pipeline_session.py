"""The session stage without a server: live events held during the catch-up, missed items
first and in order, positions, gaps, subscription refusals shown on the hooks, nodes waited for
until they exist."""

from __future__ import annotations

import pytest
from fakes import ACCOUNT, SERVICE, FakeClient, event, make_host, on_loop

from hooknb import loop as _loop
from hooknb import session as session_module
from hooknb.errors import HooknbError
from hooknb.hooks import HookSpec
from hooknb.session import Session


@pytest.fixture
def host(tmp_path):
    host = make_host(tmp_path)
    yield host
    host.close()


def persistent_hook(host, node="n"):
    spec = HookSpec.make(ACCOUNT, SERVICE, node, "python_code", "item.id", persistent=True)
    host.store.save_hook(spec.to_record())
    return spec


def start(session, client, reconnected=False):
    on_loop(session.prepare_session, client)
    _loop.call(session.session_started(client, reconnected))


def ran(host):
    return [r.item_id for r in host.runs.snapshot()]


def test_missed_items_run_before_live_ones_held_meanwhile(host):
    persistent_hook(host)
    host.store.set_seen(ACCOUNT, SERVICE, "n", "a")
    client = FakeClient()
    client.hold("n", "a", "b", "c")
    session = Session(host.engine, host.positions)
    on_loop(session.prepare_session, client)
    on_loop(session.on_events, client, [event("n", "live")])  # arrives during the catch-up
    assert len(host.events) == 0
    _loop.call(session.session_started(client, False))
    assert host.wait_runs(3, 5)
    assert ran(host) == ["b", "c", "live"] and client.subscriptions == {(SERVICE, "n")}


def test_a_first_look_notes_the_position_without_running_old_items(host):
    persistent_hook(host)
    client = FakeClient()
    client.hold("n", "old1", "old2")
    start(Session(host.engine, host.positions), client)
    assert host.store.get_seen(ACCOUNT, SERVICE, "n") == "old2" and ran(host) == []


def test_a_node_that_lost_the_last_item_seen_is_a_recorded_gap(host):
    persistent_hook(host)
    host.store.set_seen(ACCOUNT, SERVICE, "n", "gone")
    client = FakeClient()
    client.hold("n", "x", "y")
    start(Session(host.engine, host.positions), client)
    assert host.wait_runs(2, 5) and ran(host) == ["x", "y"]
    (gap,) = host.store.gaps()
    assert (gap["node"], gap["last_seen"], gap["fetched"]) == ("n", "gone", 2)
    assert "gap on" in client.last_error


def test_positions_follow_live_items_and_reach_the_store_for_persistent_nodes(host):
    persistent_hook(host, "kept")
    host.engine.install(HookSpec.make(ACCOUNT, SERVICE, "temp", "python_code", "1"))
    client = FakeClient()
    session = Session(host.engine, host.positions)
    start(session, client)
    on_loop(session.on_events, client, [event("kept", "k1"), event("temp", "t1")])
    on_loop(host.positions.flush)
    assert host.store.get_seen(ACCOUNT, SERVICE, "kept") == "k1"
    assert host.store.get_seen(ACCOUNT, SERVICE, "temp") is None
    assert host.positions.get((ACCOUNT, SERVICE, "temp")) == "t1"


def test_a_refused_subscription_shows_on_the_hook_and_clears_when_accepted(host):
    spec = persistent_hook(host)
    client = FakeClient()
    client.refused[(SERVICE, "n")] = HooknbError("forbidden")
    session = Session(host.engine, host.positions)
    start(session, client)
    assert host.registry.get(spec.id).last_error == "cannot subscribe: forbidden"
    client.refused.clear()
    assert _loop.call(session.subscribe_hooks(client)) == [(SERVICE, "n")]
    assert host.registry.get(spec.id).last_error is None


def test_an_unreadable_store_costs_the_catch_up_not_the_session(host, tmp_path):
    (tmp_path / "hooknb.sqlite3").write_bytes(b"this is not a database" * 100)
    client = FakeClient()
    start(Session(host.engine, host.positions), client)
    assert "persistent hooks not restored" in client.last_error


def test_a_missing_node_is_waited_for_and_what_it_holds_once_it_appears_runs_first(host, monkeypatch):
    monkeypatch.setattr(session_module, "NODE_POLL", 0.05)
    spec = persistent_hook(host)
    client = FakeClient()
    client.missing("n")
    session = Session(host.engine, host.positions)
    start(session, client)
    hook = host.registry.get(spec.id)
    assert (hook.status, hook.last_error, session.waiting) == ("waiting for node", None, {(SERVICE, "n")})
    assert host.store.get_seen(ACCOUNT, SERVICE, "n") == ""  # a missing node counts as seen empty

    def live_during_the_fetch(node):  # an item published while the session fetches the node
        client.on_fetch = None  # (this runs on the loop thread, as the client's events do)
        session.on_events(client, [event("n", "live"), event("other", "x")])

    client.on_fetch = live_during_the_fetch
    client.hold("n", "first", "second")  # the node appears, with two items
    client.refused.clear()
    assert host.wait_runs(3, 5)  # found by the poll: no call here
    assert ran(host) == ["first", "second", "live"]
    assert [e.item_id for e in host.events.snapshot()] == ["x", "first", "second", "live"]  # only n held
    assert (hook.status, session.waiting, client.subscriptions) == ("active", set(), {(SERVICE, "n")})


def test_a_node_still_missing_at_a_new_session_is_waited_for_again(host):
    spec = persistent_hook(host)
    client = FakeClient()
    client.missing("n")
    session = Session(host.engine, host.positions)
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
    session = Session(host.engine, host.positions)
    start(session, client)
    hook = host.registry.get(spec.id)
    assert (hook.status, hook.last_error, session.waiting) == ("active", "cannot subscribe: forbidden", set())
