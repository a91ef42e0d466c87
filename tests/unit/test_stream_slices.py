"""The stream's reads parsed a slice at a time (``Stream.data_received``): a read of many
stanzas, stanzas and multi-byte characters cut by a slice's edge, and other stanzas among the
notifications, all come out whole and in order; and the stream's end inside a read stops it."""

from __future__ import annotations

from hooknb.xmpp.client import Client
from hooknb.xmpp.operations import ClientHandler
from hooknb.xmpp.stream import SLICE

from .fakes import receive


class Recorder(ClientHandler):
    def __init__(self) -> None:
        self.events = []

    def on_events(self, client, events) -> None:
        self.events.extend(events)


def notification(n: int, text: str) -> bytes:
    return (f"<message from='pubsub.localhost' to='hook@localhost'><event xmlns='http://jabber.org/"
            f"protocol/pubsub#event'><items node='n'><item id='i{n}'><p xmlns='urn:test'>{text}</p>"
            "</item></items></event></message>").encode()


def opened() -> tuple[Client, Recorder, list[str]]:
    """A client whose stream was opened (no socket): what is fed to it is as if read."""
    handler = Recorder()
    client = Client("hook@localhost", "secret", handler=handler)
    client.xmpp = xmpp = client._build()
    chats: list[str] = []
    xmpp.add_event_handler("message", lambda msg: chats.append(msg["body"]))
    receive(client)
    return client, handler, chats


def test_one_read_of_many_stanzas_cut_anywhere_comes_out_whole_and_in_order():
    client, handler, chats = opened()
    text = "é€𝄞 " * 40  # 1 to 4 bytes a character: some slice edges fall inside one
    stanzas = [notification(n, f"{n} {text}") for n in range(300)]
    stanzas.insert(150, b"<message from='bob@localhost' type='chat'><body>hello</body></message>")
    data = b"".join(stanzas)
    assert len(data) > 10 * SLICE
    receive(client, data)
    assert [e.item_id for e in handler.events] == [f"i{n}" for n in range(300)]
    assert all(e.payload == f'<p xmlns="urn:test">{n} {text}</p>' for n, e in enumerate(handler.events))
    assert chats == ["hello"]  # the chat went the usual way, to slixmpp's handlers


def test_the_streams_end_inside_a_read_stops_what_follows_it():
    client, handler, _ = opened()
    tail = b"".join(notification(n, "x" * 200) for n in range(1, 200))
    receive(client, notification(0, "x") + b"</stream:stream>" + tail)
    assert [e.item_id for e in handler.events] == ["i0"]

