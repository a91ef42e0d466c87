"""Network cuts against a real server: stream management (XEP-0198) resumes the stream, and what
cannot be resumed falls back to a new session, a catch-up and a reported gap.

The hooked account reaches the server through :class:`~faultproxy.FaultProxy`, which resets
every connection at once (a TCP RST both ways: no stream end) and can hold reconnections; the
publisher connects directly.  Each test's server is of the kind the suite runs against, with
the resumption window it needs (``resume_window``: Prosody's ``smacks_hibernation_time``,
ejabberd's ``resume_timeout``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from faultproxy import FaultProxy
from processes import wait_until

from hooknb import server as srv
from hooknb.errors import PubSubError
from hooknb.host import Host
from hooknb.xmpp import loop as _loop
from hooknb.xmpp.client import Client
from hooknb.xmpp.connection import ConnectOptions
from hooknb.xmpp.events import Event
from hooknb.xmpp.operations import ClientHandler

pytestmark = pytest.mark.integration  # the servers here are the module's own

WINDOW = 30  # seconds: far longer than any cut made within it
SHORT_WINDOW = 2  # seconds: a cut of SHORT_WINDOW + 2 s outlasts it


@pytest.fixture(scope="module")
def servers(tmp_path_factory, request) -> Iterator[Callable[[int], srv.ServerInfo]]:
    """``servers(window)``: a server of the suite's kind whose cut streams can be resumed for
    ``window`` seconds (0: never), started on first use and kept for the module."""
    started: dict[int, srv.ServerInfo] = {}

    def get(window: int) -> srv.ServerInfo:
        if window not in started:
            directory = tmp_path_factory.mktemp(f"resume-{window}")
            started[window] = srv.start(directory, ["alice", "bob", "carol"], resume_window=window,
                                        kind=request.config.getoption("--server"))
        return started[window]

    yield get
    for info in started.values():
        srv.stop(info.dir)


@pytest.fixture
def proxied(make_host) -> Iterator[Callable[[srv.ServerInfo], tuple[Host, Client, FaultProxy]]]:
    """``proxied(info)``: (host, alice's client through a fault proxy, the proxy)."""
    proxies: list[FaultProxy] = []

    def make(info: srv.ServerInfo) -> tuple[Host, Client, FaultProxy]:
        proxy = FaultProxy(info.port).start()
        proxies.append(proxy)
        host = make_host()
        client = host.connect(info.jid("alice"), info.accounts["alice"], host=info.host, port=proxy.port,
                              cafile=info.cafile)
        if info.resume_window:  # <enabled/> may come after the session started
            wait_until(lambda: client.xmpp.plugin["xep_0198"].sm_id)
        return host, client, proxy

    yield make
    for proxy in proxies:
        proxy.close()


class Collector(ClientHandler):
    """Every event of ``node`` a client receives, as it arrives (no catch-up, no deduplication):
    carol stays subscribed to the nodes of earlier tests, whose last items ejabberd sends her
    again at each connection."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.events: list[Event] = []

    def on_events(self, client: Client, events: list[Event]) -> None:
        self.events.extend(e for e in events if e.node == self.node)


def _publisher(make_host, info: srv.ServerInfo, name: str = "bob") -> Client:
    return make_host().connect(info.jid(name), info.accounts[name], host=info.host, port=info.port,
                               cafile=info.cafile)


def _watcher(info: srv.ServerInfo, node: str) -> tuple[Client, Collector]:
    """carol, connected directly with a collecting handler, subscribed to ``node``."""
    collector = Collector(node)
    client = Client(info.jid("carol"), info.accounts["carol"],
                    ConnectOptions(host=info.host, port=info.port, cafile=info.cafile), handler=collector)
    _loop.call(client.aconnect())
    client.subscribe(node, info.pubsub)
    return client, collector


def _publish(client: Client, info: srv.ServerInfo, node: str, ids: list[str], rate: float | None = None) -> None:
    start = time.monotonic()
    for n, item_id in enumerate(ids):
        if rate is not None:  # a steady rate: item n leaves at n / rate seconds
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
        client.publish(node, f"<n xmlns='urn:test'>{item_id}</n>", item_id=item_id, service=info.pubsub)


def _cut_while_publishing(publisher: Client, info: srv.ServerInfo, node: str, ids: list[str], client: Client,
                          proxy: FaultProxy, cuts: int, spacing: float) -> None:
    """Publish ``ids`` at 20/s while ``client``'s connection is cut ``cuts`` times, ``spacing``
    seconds after each resumption (items flow between the cuts)."""
    publishing = threading.Thread(target=_publish, args=(publisher, info, node, ids, 20.0))
    publishing.start()
    try:
        for _ in range(cuts):
            resumed = client.resumption.resumed
            time.sleep(spacing)
            assert proxy.cut() == 1                      # fault: the connection is reset
            wait_until(lambda: client.resumption.resumed == resumed + 1, 15)
    finally:
        publishing.join()


def _in_flight(coro) -> concurrent.futures.Future:
    """Start ``coro`` on hooknb's loop without waiting for it."""
    return asyncio.run_coroutine_threadsafe(coro, _loop.get_loop())


def _done_within(future: concurrent.futures.Future, seconds: float) -> bool:
    try:
        future.result(seconds)
    except concurrent.futures.TimeoutError:
        return False
    return True


def _ran(host: Host, hook_id: str) -> list[str]:
    return [r.item_id for r in host.runs.snapshot() if r.hook_id == hook_id and r.status == "ok"]


def _hooked(host: Host, client: Client, info: srv.ServerInfo, node: str, keep: int = 1):
    client.create_node(node, info.pubsub, config={"max_items": keep})
    return host.create_hook(node, "item.id", type="python_code", service=info.pubsub, persistent=True)


def test_five_cuts_lose_nothing_on_a_node_keeping_one_item(servers, proxied, make_host, node):
    """100 items at 20/s while alice's connection is cut 5 times: each runs once, in order, no gap."""
    info = servers(WINDOW)
    host, alice, proxy = proxied(info)
    hook = _hooked(host, alice, info, node)
    bob = _publisher(make_host, info)
    ids = [f"i{n:03d}" for n in range(100)]
    _cut_while_publishing(bob, info, node, ids, alice, proxy, cuts=5, spacing=0.7)
    wait_until(lambda: len(_ran(host, hook.id)) >= 100, 30)
    assert _ran(host, hook.id) == ids                    # once each, in order
    assert not host.wait_runs(101, 0.3)                  # and nothing twice
    assert host.gaps().empty
    assert (alice.resumption.resumed, alice.resumption.refused) == (5, 0)
    row = host.status().iloc[0]
    assert (row["resumed"], row["gaps"]) == (5, 0) and row["replayed"] == alice.resumption.replayed_total


def test_without_resumption_a_cut_reports_the_gap(servers, proxied, make_host, node):
    """Resumption disabled on the server (window 0): a new session, a catch-up and the gap."""
    info = servers(0)
    host, alice, proxy = proxied(info)
    hook = _hooked(host, alice, info, node)
    bob = _publisher(make_host, info)
    _publish(bob, info, node, ["g0"])
    assert host.wait_runs(1, 10)
    proxy.cut(hold=True)                                 # fault: cut, and reconnections held
    _publish(bob, info, node, ["g1", "g2", "g3", "g4"])  # the node keeps only g4
    assert proxy.wait(lambda p: p.held >= 1)
    proxy.release()
    assert host.wait_runs(2, 15)
    assert _ran(host, hook.id) == ["g0", "g4"]
    gaps = host.gaps()
    assert list(gaps[["node", "last_seen", "fetched"]].itertuples(index=False, name=None)) == [(node, "g0", 1)]
    assert alice.resumption.resumed == 0 and alice.state == "connected"


def test_publishes_across_cuts_land_once(servers, proxied, make_host, node):
    """A publish the server never acknowledged is sent again on resumption and answered once; a
    hook publishing while cuts happen publishes every item once."""
    info = servers(WINDOW)
    host, alice, proxy = proxied(info)
    copies = f"{node}-copies"
    alice.create_node(copies, info.pubsub, config={"max_items": 1000})
    carol, seen = _watcher(info, copies)
    try:
        proxy.swallow()                                  # the next publish never reaches the server
        answer = _in_flight(alice.apublish(copies, "<n xmlns='urn:test'/>", item_id="unacked",
                                           service=info.pubsub))
        assert proxy.wait(lambda p: p.swallowed > 0)
        proxy.cut()                                      # fault: cut with the publish unanswered
        assert answer.result(15) == "unacked"            # sent again on the resumed stream
        assert alice.resumption.resumed == 1

        proxy.cut(hold=True)                             # fault: a publish made during the cut ...
        assert proxy.wait(lambda p: p.held >= 1) and alice.state == "reconnecting"
        answer = _in_flight(alice.apublish(copies, "<n xmlns='urn:test'/>", item_id="during",
                                           service=info.pubsub))
        assert not _done_within(answer, 0.3)             # ... waits for the stream
        proxy.release()
        assert answer.result(15) == "during"
        assert alice.resumption.resumed == 2

        alice.create_node(node, info.pubsub, config={"max_items": 1})
        source = host.create_hook(node, f"client.publish({copies!r}, '<c xmlns=\"urn:test\"/>', "
                                        f"item_id='copy-' + item.id, service={info.pubsub!r})",
                                  type="python_code", service=info.pubsub)
        bob = _publisher(make_host, info)
        ids = [f"h{n:02d}" for n in range(40)]
        _cut_while_publishing(bob, info, node, ids, alice, proxy, cuts=3, spacing=0.5)  # the hook publishes
        wait_until(lambda: len(seen.events) >= 42, 30)
        assert not wait_until_more(seen, 42)
        assert [e.item_id for e in seen.events] == ["unacked", "during", *(f"copy-{i}" for i in ids)]  # once each
        assert [r.status for r in host.runs.snapshot() if r.hook_id == source.id] == ["ok"] * 40
    finally:
        carol.disconnect()


def wait_until_more(collector: Collector, count: int, quiet: float = 0.5) -> bool:
    """Whether more than ``count`` events arrive within ``quiet`` seconds."""
    deadline = time.monotonic() + quiet
    while time.monotonic() < deadline:
        if len(collector.events) > count:
            return True
        time.sleep(0.02)
    return False


def test_a_cut_longer_than_the_window_catches_up_reports_the_gap_and_fails_the_unacked(
        servers, proxied, make_host, node):
    """Past the window the server refuses to resume: a publish it never acknowledged fails with
    one clear error, a new session catches up and the gap is reported."""
    info = servers(SHORT_WINDOW)
    host, alice, proxy = proxied(info)
    hook = _hooked(host, alice, info, node)
    bob = _publisher(make_host, info)
    _publish(bob, info, node, ["w0"])
    assert host.wait_runs(1, 10)
    proxy.swallow()
    answer = _in_flight(alice.apublish(node, "<n xmlns='urn:test'/>", item_id="lost", service=info.pubsub))
    assert proxy.wait(lambda p: p.swallowed > 0)
    proxy.cut(hold=True)                                 # fault: a cut outlasting the window
    _publish(bob, info, node, ["w1", "w2", "w3"])
    time.sleep(SHORT_WINDOW + 2)                         # the fault's length, not a synchronisation
    proxy.release()
    with pytest.raises(PubSubError, match=r"^publish on .*: the connection was lost before the server "
                                          r"answered, and the server refused to resume the stream "
                                          r"\(item-not-found\)"):
        answer.result(15)
    assert host.wait_runs(2, 15)
    assert _ran(host, hook.id) == ["w0", "w3"]
    gaps = host.gaps()
    assert list(gaps[["node", "last_seen"]].itertuples(index=False, name=None)) == [(node, "w0")]
    assert (alice.resumption.resumed, alice.resumption.refused) == (0, 1)
    assert alice.state == "connected"


def test_a_cut_while_the_session_is_being_taken_up_again_is_reconnected_too(servers, proxied, make_host, node):
    # fault: the connection is cut again while the client is still taking up the resumed session
    # (its handler's work after <resumed/>, which may wait on the server): the attempt that
    # resumed must not count as the way back, or nothing reconnects after the second cut
    info = servers(WINDOW)
    host, alice, proxy = proxied(info)
    hook = _hooked(host, alice, info, node, keep=10)
    taking_up, go_on = threading.Event(), asyncio.Event()
    session = alice.handler
    original = session.session_resumed

    async def slow(client):
        taking_up.set()
        await go_on.wait()
        await original(client)

    session.session_resumed = slow
    assert proxy.cut() == 1                      # first cut: resumed, and held in the handler
    assert taking_up.wait(15)
    assert proxy.cut() == 1                      # second cut, before the session was taken up
    session.session_resumed = original
    _loop.get_loop().call_soon_threadsafe(go_on.set)
    wait_until(lambda: alice.resumption.resumed == 2 and alice.state == "connected", 15)
    _publish(_publisher(make_host, info), info, node, ["after"])
    assert host.wait_runs(1, 15) and _ran(host, hook.id) == ["after"]


def test_the_runner_logs_a_resumed_stream(servers, runner, make_host, node):
    """``hooknb run`` says when its stream was resumed, and how many stanzas the server replayed."""
    info = servers(WINDOW)
    setup = make_host()
    alice = setup.connect(info.jid("alice"), info.accounts["alice"], host=info.host, port=info.port,
                          cafile=info.cafile)
    _hooked(setup, alice, info, node, keep=10)
    setup.close()
    bob = _publisher(make_host, info)
    with FaultProxy(info.port) as proxy:
        proc = runner(info.jid("alice"), info.accounts["alice"], info=dataclasses.replace(info, port=proxy.port))
        proc.wait_record("ready")
        _publish(bob, info, node, ["r0"])
        proc.wait_record("run", item="r0")           # the runner's stream is up
        assert proxy.cut(hold=True) == 1             # fault: cut, reconnections held
        _publish(bob, info, node, ["r1", "r2"])      # queued by the server for the runner's session
        assert proxy.wait(lambda p: p.held >= 1)
        proxy.release()
        record = proc.wait_record("resumed")
        assert record["account"] == info.jid("alice") and record["resumed"] == 1 and record["replayed"] >= 2
        proc.wait_record("run", item="r2")
        assert [r["item"] for r in proc.records("run")] == ["r0", "r1", "r2"]
        assert proc.stop() == 0


async def _cut_as_publishing(client: Client, info: srv.ServerInfo, node: str, item_id: str) -> asyncio.Future:
    """Reset ``client``'s connection and start a publish whose first step, which hands the
    request to slixmpp, runs before the client hears of the cut (two loop turns with TLS)."""
    client.xmpp.transport.abort()                        # fault: the connection is reset
    return asyncio.ensure_future(client.apublish(node, "<n xmlns='urn:test'/>", item_id=item_id,
                                                 service=info.pubsub))


def test_a_publish_sent_as_the_cut_is_noticed_is_sent_on_the_resumed_stream(servers, proxied, node):
    """A request handed to slixmpp between the socket's loss and the client's hearing of it
    reached slixmpp's writer once stream management had stopped keeping stanzas for resending,
    and was lost: a hook's publish waited its full 30 s (CI, ejabberd).  It is sent on the
    resumed stream, and lands once."""
    info = servers(WINDOW)
    _host, alice, _proxy = proxied(info)
    alice.create_node(node, info.pubsub, config={"max_items": 10})
    carol, seen = _watcher(info, node)
    try:
        answer = _loop.call(_cut_as_publishing(alice, info, node, "at-cut"))
        assert _loop.call(asyncio.wait_for(asyncio.shield(answer), 15)) == "at-cut"
        assert alice.resumption.resumed == 1
        wait_until(lambda: seen.events, 10)
        assert not wait_until_more(seen, 1)
        assert [e.item_id for e in seen.events] == ["at-cut"]
    finally:
        carol.disconnect()


def test_a_publish_held_at_a_cut_the_server_will_not_resume_fails_and_is_never_sent(servers, proxied, node):
    """The same publish, when the server refuses to resume: it fails with the refusal, and is
    not sent later, not even on a stream resumed after a later cut."""
    info = servers(SHORT_WINDOW)
    _host, alice, proxy = proxied(info)
    alice.create_node(node, info.pubsub, config={"max_items": 10})
    carol, seen = _watcher(info, node)
    try:
        proxy.hold()                                     # the way back waits ...
        answer = _loop.call(_cut_as_publishing(alice, info, node, "at-cut"))
        assert proxy.wait(lambda p: p.held >= 1)
        time.sleep(SHORT_WINDOW + 2)                     # ... past the window (the fault's length)
        proxy.release()
        with pytest.raises(PubSubError, match=r"^publish on .*: the connection was lost before the server "
                                              r"answered, and the server refused to resume the stream"):
            _loop.call(asyncio.wait_for(asyncio.shield(answer), 15))
        wait_until(lambda: alice.state == "connected" and alice.xmpp.plugin["xep_0198"].sm_id, 15)
        assert proxy.cut() == 1                          # fault: a later cut, resumed
        wait_until(lambda: alice.resumption.resumed == 1, 15)
        alice.publish(node, "<n xmlns='urn:test'/>", item_id="after", service=info.pubsub)
        wait_until(lambda: seen.events, 10)
        assert not wait_until_more(seen, 1)
        assert [e.item_id for e in seen.events] == ["after"]
    finally:
        carol.disconnect()
