"""The foundation against the real local server: connect, subscribe, typed events, errors."""

from __future__ import annotations

import asyncio
import socket
from asyncio import trsock
from datetime import datetime, timezone

import pytest

import hooknb
from hooknb import server as srv
from hooknb.xmpp.client import Client
from hooknb.errors import HooknbError, PubSubError
from hooknb.xmpp.stream import TCP_QUICKACK

ATOM = "http://www.w3.org/2005/Atom"
MICROBLOG = "urn:xmpp:microblog:0"


def test_connect_returns_one_shared_client_per_account(make_host, connect, account, server):
    host = make_host()
    jid, password = account("a")
    client = connect(host, jid, password)
    assert isinstance(client, Client) and client.state == "connected"
    again = host.connect(jid, password, host=server.host, port=server.port, cafile=server.cafile)
    assert again is client
    assert host.default_account == jid


def test_publish_by_another_connection_arrives_as_a_typed_event(make_host, connect, server, node):
    alice_host, bob_host = make_host(), make_host()
    alice, bob = connect(alice_host), connect(bob_host)
    alice.create_node(node, server.pubsub)
    alice.subscribe(node, server.pubsub)
    before = datetime.now(timezone.utc)
    item_id = bob.publish(node, "<x xmlns='urn:test'>hello</x>", service=server.pubsub, item_id="i-1")
    assert item_id == "i-1"
    assert alice_host.wait_events(1, 10)
    event = alice_host.events.latest()
    assert (event.account, event.service, event.node, event.kind, event.item_id) == (
        alice.jid, server.pubsub, node, "publish", "i-1")
    assert event.payload == '<x xmlns="urn:test">hello</x>'
    assert before <= event.received <= datetime.now(timezone.utc)
    assert event.publisher.split("/")[0] == bob.jid  # both local servers expose the publisher
    item = event.item
    assert (item.id, item.node, item.service, item.kind, item.event) == ("i-1", node, server.pubsub,
                                                                         "publish", event)
    assert item.xml.text == "hello"


@pytest.mark.skipif(TCP_QUICKACK is None, reason="TCP_QUICKACK is Linux's")
def test_what_the_client_reads_is_acknowledged_at_once(make_host, connect, server, node, monkeypatch):
    """TCP_QUICKACK on each read, over TLS too: else the server's ack requests and the stanzas
    after them wait for the kernel's delayed acknowledgement (Nagle's algorithm on its side)."""
    alice_host, bob_host = make_host(), make_host()
    alice, bob = connect(alice_host), connect(bob_host)
    alice.create_node(node, server.pubsub)
    alice.subscribe(node, server.pubsub)
    options: list[tuple[int, tuple]] = []
    setsockopt = trsock.TransportSocket.setsockopt
    monkeypatch.setattr(trsock.TransportSocket, "setsockopt",
                        lambda sock, *args: options.append((sock.fileno(), args)) or setsockopt(sock, *args))
    bob.publish(node, "<x xmlns='urn:test'>hello</x>", service=server.pubsub, item_id="i-1")
    assert alice_host.wait_events(1, 10)
    fd = alice.xmpp.transport.get_extra_info("socket").fileno()
    assert (fd, (socket.IPPROTO_TCP, TCP_QUICKACK, 1)) in options


def test_retract_purge_and_delete_notifications(make_host, connect, server, node):
    alice_host, bob_host = make_host(), make_host()
    alice, bob = connect(alice_host), connect(bob_host)
    alice.create_node(node, server.pubsub)
    alice.subscribe(node, server.pubsub)
    bob.publish(node, "<x xmlns='urn:test'/>", service=server.pubsub, item_id="gone")
    bob.retract(node, "gone", service=server.pubsub)
    alice.purge(node, server.pubsub)
    alice.delete_node(node, server.pubsub)
    assert alice_host.wait_events(4, 10), alice_host.events.snapshot()
    kinds = [(e.kind, e.item_id) for e in alice_host.events.snapshot()]
    assert kinds == [("publish", "gone"), ("retract", "gone"), ("purge", None), ("delete", None)]
    assert {e.node for e in alice_host.events.snapshot()} == {node}


def test_pep_publish_from_another_resource(make_host, connect, account):
    jid, password = account("pep")
    watcher_host, writer_host = make_host(), make_host()
    watcher = connect(watcher_host, jid, password, resource="watch")
    watcher.subscribe(MICROBLOG)  # own PEP: the service defaults to the bare JID
    writer = connect(writer_host, jid, password, resource="write")
    writer.publish(MICROBLOG, f"<entry xmlns='{ATOM}'><title>first post</title></entry>", item_id="p1")
    assert watcher_host.wait_events(1, 10)
    event = watcher_host.events.latest()
    assert (event.service, event.node, event.item_id, event.kind) == (jid, MICROBLOG, "p1", "publish")
    assert "first post" in event.payload
    items = watcher.get_items(MICROBLOG)
    assert [e.item_id for e in items] == ["p1"]


def test_awaitable_api_from_another_loop(make_host, connect, server, node):
    host = make_host()
    client = connect(host)

    async def scenario() -> list[str]:
        await client.acreate_node(node, server.pubsub)
        await client.asubscribe(node, server.pubsub)
        await client.apublish(node, "<a xmlns='urn:test'/>", item_id="one", service=server.pubsub)
        return [e.item_id for e in await client.aget_items(node, server.pubsub)]

    assert asyncio.run(scenario()) == ["one"]
    assert host.wait_events(1, 10)


def test_wrong_password_is_a_clear_error(make_host, account, server):
    jid, _ = account("pw")
    with pytest.raises(HooknbError, match="authentication failed"):
        make_host().connect(jid, "wrong", host=server.host, port=server.port, cafile=server.cafile)


def test_unreachable_server_is_a_clear_error(make_host):
    port = srv.free_port()
    with pytest.raises(HooknbError, match="unreachable"):
        make_host().connect("nobody@localhost", "x", host="127.0.0.1", port=port, timeout=10)


def test_missing_node_is_a_clear_error(make_host, connect, server, node):
    client = connect(make_host())
    with pytest.raises(PubSubError, match="not found") as info:
        client.get_items(node, server.pubsub)
    assert info.value.condition == "item-not-found"


@pytest.mark.parametrize("host", ["example.org", "10.1.2.3", None])
def test_plaintext_to_a_non_loopback_host_is_refused(host):
    with pytest.raises(HooknbError, match="only allowed to a loopback host"):
        hooknb.connect("alice@example.org", "secret", host=host, plaintext=True)


def test_bad_payload_and_jid_are_clear_errors(make_host, connect, server, node):
    client = connect(make_host())
    with pytest.raises(HooknbError, match="not well-formed XML"):
        client.publish(node, "<unclosed>", service=server.pubsub)
    with pytest.raises(HooknbError, match="not a valid JID"):
        client.publish(node, "<a/>", service="bad@@jid")


def test_disconnect_is_clean(make_host, connect):
    host = make_host()
    client = connect(host)
    host.disconnect(client.jid)
    assert client.state == "disconnected"
    with pytest.raises(HooknbError, match="not connected"):
        host.client(client.jid)
