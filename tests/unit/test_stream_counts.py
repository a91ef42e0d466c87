"""Stream management's counts without a server: the notifications the client takes before
slixmpp builds stanzas are counted as handled (or the server would send them again on
resumption), and the stanzas between ``<resumed/>`` and the server's ``<r/>`` are the replay."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hooknb.xmpp.client import Client
from hooknb.xmpp.operations import ClientHandler

from .fakes import read

SM = "urn:xmpp:sm:3"


class Recorder(ClientHandler):
    def __init__(self) -> None:
        self.ids: list[str | None] = []

    def on_events(self, client, events) -> None:
        self.ids.extend(e.item_id for e in events)


def notification(item_id: str) -> ET.Element:
    return ET.fromstring('<message xmlns="jabber:client" from="pubsub.localhost"><event xmlns='
                         '"http://jabber.org/protocol/pubsub#event"><items node="n">'
                         f'<item id="{item_id}"><p xmlns="urn:test"/></item></items></event></message>')


def chat() -> ET.Element:
    return ET.fromstring('<message xmlns="jabber:client" from="bob@localhost" type="chat"><body>hi</body></message>')


def feed(client: Client, *stanzas: ET.Element) -> None:
    """Hand ``stanzas`` to the client's stream as one read from its socket."""
    read(client, list(stanzas))


def sm(tag: str, **attrs: str) -> ET.Element:
    return ET.Element(f"{{{SM}}}{tag}", attrs)


def test_taken_notifications_count_as_handled_only_while_stream_management_is_on():
    handler = Recorder()
    client = Client("hook@localhost", "secret", handler=handler)
    client.xmpp = client._build()
    plugin = client.xmpp.plugin["xep_0198"]
    feed(client, notification("before"))
    assert plugin.handled == 0                       # not enabled yet: nothing counted
    plugin.enabled_in = True
    feed(client, notification("a"), chat(), notification("b"))
    assert plugin.handled == 3                       # two taken, one built by slixmpp
    assert handler.ids == ["before", "a", "b"]


def test_notifications_are_counted_before_the_next_element_not_taken_in_the_same_read():
    # counted together, but never after an element that changes the count: a notification read
    # before <enabled/> is not counted (the server counts from <enabled/>), one after it is
    client = Client("hook@localhost", "secret", handler=Recorder())
    client.xmpp = client._build()
    plugin = client.xmpp.plugin["xep_0198"]
    feed(client, notification("before"), sm("enabled", id="id1", resume="true"), notification("a"),
         notification("b"))
    assert (plugin.enabled_in, plugin.handled) == (True, 2)


def test_the_stanzas_between_resumed_and_the_servers_ack_request_are_the_replay():
    client = Client("hook@localhost", "secret", handler=Recorder())
    client.xmpp = client._build()
    plugin = client.xmpp.plugin["xep_0198"]
    plugin.enabled_in, plugin.sm_id, plugin.handled = True, "id1", 7
    feed(client, sm("resumed", h="0", previd="id1"), notification("q1"), notification("q2"), chat(),
         sm("r"), notification("live"))
    resumption = client.resumption
    assert (resumption.resumed, resumption.replayed, resumption.replayed_total) == (1, 3, 3)
    assert plugin.handled == 11


def test_a_resumption_cut_before_the_servers_ack_request_is_counted_at_the_cut():
    # ejabberd sends <r/> apart from <resumed/>: a cut in between ends the replay, or the next
    # resumption took its mark and this one was never counted (tests/test_resumption.py, CI)
    client = Client("hook@localhost", "secret", handler=Recorder())
    client.auto_reconnect = False
    client.xmpp = client._build()
    plugin = client.xmpp.plugin["xep_0198"]
    plugin.enabled_in, plugin.sm_id, plugin.handled = True, "id1", 7
    feed(client, sm("resumed", h="0", previd="id1"), notification("q1"))
    client.xmpp.event("disconnected", "cut")
    resumption = client.resumption
    assert (resumption.resumed, resumption.replayed) == (1, 1)
    feed(client, sm("resumed", h="0", previd="id1"), notification("q2"), notification("q3"), sm("r"))
    assert (resumption.resumed, resumption.replayed, resumption.replayed_total) == (2, 2, 3)


def test_a_refused_resumption_is_counted_with_the_servers_condition():
    client = Client("hook@localhost", "secret", handler=Recorder())
    client.xmpp = client._build()
    plugin = client.xmpp.plugin["xep_0198"]
    plugin.sm_id = "id1"
    failed = sm("failed")
    ET.SubElement(failed, "{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found")
    feed(client, failed)
    assert (client.resumption.refused, client.resumption.take_refusal()) == (1, "item-not-found")
    assert client.resumption.take_refusal() is None



def test_the_servers_ack_requests_are_answered_once_a_read_after_its_notifications_are_handed_on():
    handler = Recorder()
    client = Client("hook@localhost", "secret", handler=handler)
    client.xmpp = client._build()
    plugin = client.xmpp.plugin["xep_0198"]
    plugin.enabled_in = True
    answers: list[tuple[int, list]] = []
    plugin.send_ack = lambda: answers.append((plugin.handled, list(handler.ids)))
    feed(client, sm("r"), notification("a"), notification("b"), sm("r"))
    assert answers == [(2, ["a", "b"])]          # one answer, with the count at the end of the read
    feed(client, notification("c"))
    assert answers == [(2, ["a", "b"])]          # no request, no answer
    feed(client, sm("r"))
    assert answers[-1] == (3, ["a", "b", "c"])


def test_the_notifications_of_one_read_are_handed_on_together_at_its_end():
    batches: list[list] = []

    class Batches(ClientHandler):
        def on_events(self, client, events) -> None:
            batches.append([e.item_id for e in events])

    client = Client("hook@localhost", "secret", handler=Batches())
    client.xmpp = client._build()
    feed(client, notification("a"), chat(), notification("b"))
    feed(client, notification("c"))
    assert batches == [["a", "b"], ["c"]]
