"""Answers to the requests of ``Stream.ask`` taken by their id (no handler per request): the
answer as XML, counted for stream management; an answer from anyone but the service (or our
own server) is not taken; an error answer and no answer fail as slixmpp's do.  (The request is
sent with slixmpp's ``send``, which stream management tracks: tests/test_resumption.py.)"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest
from slixmpp.exceptions import IqError, IqTimeout

from hooknb.xmpp import loop as _loop
from hooknb.xmpp.client import Client

PUBSUB = "http://jabber.org/protocol/pubsub"


def stream():
    client = Client("hook@localhost", "secret")
    client.xmpp = xmpp = client._build()
    return xmpp


def answer(iq_id: str, sender: str, kind: str = "result", body: str = "") -> ET.Element:
    return ET.fromstring(f'<iq xmlns="jabber:client" type="{kind}" id="{iq_id}" from="{sender}" '
                         f'to="hook@localhost/r">{body}</iq>')


def ask_and_feed(xmpp, *answers_of, timeout: float = 5.0):
    """Ask for a node's items; feed what ``answers_of(iq_id)`` gives; the request's future."""
    async def go():
        iq = xmpp.Iq(sto="pubsub.localhost", stype="get")
        iq["pubsub"]["items"]["node"] = "n"
        future = xmpp.ask(iq, timeout)
        for make in answers_of:
            xmpp._spawn_event(make(iq["id"]))
        await asyncio.sleep(0)
        return future, iq
    return _loop.call(go())


def test_an_answer_is_taken_by_its_id_as_xml_and_counted_for_stream_management():
    xmpp = stream()
    plugin = xmpp.plugin["xep_0198"]
    plugin.enabled_in = True
    future, _iq = ask_and_feed(xmpp, lambda i: answer(i, "pubsub.localhost", body=f'<pubsub xmlns="{PUBSUB}">'
                                                       '<items node="n"><item id="a"/></items></pubsub>'))
    assert future.result().find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}items/{{{PUBSUB}}}item").get("id") == "a"
    assert plugin.handled == 1 and not xmpp._asked


def test_an_answer_from_another_sender_is_not_taken():
    xmpp = stream()
    future, _iq = ask_and_feed(xmpp, lambda i: answer(i, "mallory@localhost"))
    assert not future.done() and len(xmpp._asked) == 1   # still waiting for the service
    _loop.call(asyncio.sleep(0))
    _loop.call(_feed(xmpp, answer(next(iter(xmpp._asked)), "pubsub.localhost")))
    assert future.done() and future.result().get("from") == "pubsub.localhost"


async def _feed(xmpp, xml):
    xmpp._spawn_event(xml)


def test_an_error_answer_fails_with_slixmpps_iq_error():
    xmpp = stream()
    future, _iq = ask_and_feed(xmpp, lambda i: answer(i, "pubsub.localhost", "error", (
        '<error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>')))
    with pytest.raises(IqError) as caught:
        future.result()
    assert caught.value.condition == "item-not-found"


def test_no_answer_fails_with_slixmpps_timeout_and_is_forgotten():
    xmpp = stream()
    future, iq = ask_and_feed(xmpp, timeout=0.05)
    with pytest.raises(IqTimeout):
        _loop.call(asyncio.wait_for(asyncio.shield(future), 5))
    assert not xmpp._asked
