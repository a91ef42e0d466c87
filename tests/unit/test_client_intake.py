"""The client's intake of notifications, without a server: the events of the notifications read
together from the socket are handed on in one call, in order; one that cannot be read is logged
and the others go on; a failing handler does not stop the next read; a PEP copy is dropped."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

from hooknb.xmpp.client import Client
from hooknb.xmpp.operations import ClientHandler

from .fakes import read


class Recorder(ClientHandler):
    """Records each call of ``on_events``: the (node, item id) of its events."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[tuple[str, str | None]]] = []
        self.fail = fail

    def on_events(self, client, events) -> None:
        self.calls.append([(e.node, e.item_id) for e in events])
        if self.fail:
            raise RuntimeError("the handler failed")


def notification(node: str, *ids: str, service: str = "pubsub.localhost") -> ET.Element:
    items = "".join(f'<item id="{i}"><p xmlns="urn:test">{i}</p></item>' for i in ids)
    return ET.fromstring(f'<message xmlns="jabber:client" from="{service}"><event xmlns='
                         f'"http://jabber.org/protocol/pubsub#event"><items node="{node}">{items}</items>'
                         '</event></message>')


def test_notifications_read_together_are_handed_on_in_one_call_in_order():
    handler = Recorder()
    client = Client("hook@localhost", "secret", handler=handler)
    read(client, [notification("a", "1", "2"), notification("b", "3")], [notification("a", "4")])
    assert handler.calls == [[("a", "1"), ("a", "2"), ("b", "3")], [("a", "4")]]


def test_a_notification_that_cannot_be_read_is_logged_and_the_others_go_on(caplog):
    handler = Recorder()
    client = Client("hook@localhost", "secret", handler=handler)
    with caplog.at_level(logging.ERROR, "hooknb.xmpp.client"):
        read(client, [notification("a", "1"), notification("a", "2", service="bad@@jid"), notification("a", "3")])
    assert handler.calls == [[("a", "1"), ("a", "3")]]
    assert "could not be read" in caplog.text


def test_a_failing_handler_is_logged_and_the_next_read_is_handed_on(caplog):
    handler = Recorder(fail=True)
    client = Client("hook@localhost", "secret", handler=handler)
    with caplog.at_level(logging.ERROR, "hooknb.xmpp.client"):
        read(client, [notification("a", "1")], [notification("a", "2")])
    assert handler.calls == [[("a", "1")], [("a", "2")]]
    assert caplog.text.count("the notification handler of hook@localhost failed") == 2


def test_a_second_copy_of_a_pep_notification_in_the_same_read_is_dropped():
    handler = Recorder()
    client = Client("hook@localhost", "secret", handler=handler)
    pep = "hook@localhost"
    read(client, [notification("urn:xmpp:microblog:0", "x", service=pep),
                  notification("urn:xmpp:microblog:0", "x", service=pep)])
    assert handler.calls == [[("urn:xmpp:microblog:0", "x")]]
