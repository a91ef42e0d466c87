"""The size of a publish, measured before it is sent: never less than the stanza slixmpp sends,
and within the envelope of it; the options that set the limit."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import slixmpp
from hypothesis import given, settings
from hypothesis import strategies as st

from hooknb.xmpp.connection import DEFAULT_MAX_BYTES, ConnectOptions
from hooknb.errors import HooknbError
from hooknb.frontends.grammar import magic_parser, parse
from hooknb.frontends.options import connect_options
from hooknb.xmpp.operations import ENVELOPE_BYTES, Operation, parse_payload, publish_size

XMPP = slixmpp.ClientXMPP("alice@example.org/phone", "secret")
XMPP.register_plugin("xep_0060")


def sent_bytes(op: Operation) -> int:
    """The bytes of the publish stanza slixmpp sends for ``op``, built as ``xep_0060.publish``
    builds it and serialised as the stream serialises it."""
    iq = XMPP.Iq(sto=op.service, stype="set")
    iq["pubsub"]["publish"]["node"] = op.node
    if op.item_id is not None:
        iq["pubsub"]["publish"]["item"]["id"] = op.item_id
    if op.payload is not None:
        iq["pubsub"]["publish"]["item"]["payload"] = op.payload
    return len(slixmpp.xmlstream.tostring(iq.xml, xmlns=XMPP.default_ns, stream=XMPP, top_level=True).encode())


PAYLOADS = [
    "<entry xmlns='http://www.w3.org/2005/Atom'><title>hello</title></entry>",
    "<p xmlns='urn:t' a='&quot;&amp;&lt;'>&lt;&gt;&amp; ' \" é 漢字 😀</p>",
    "<p xmlns='urn:t'><![CDATA[<<<&&&>>>]]></p>",
    "<p:a xmlns:p='urn:p'><c><p:b/></c><c><p:b/></c></p:a>",
    "<big xmlns='urn:big'>" + "a" * 100_000 + "</big>",
]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("service, node, item_id", [
    ("pubsub.example.org", "news", None),
    ("alice@example.org", "urn:xmpp:microblog:0", "2025-01-01T00:00:00Z"),
    ("pubsub.example.org", "n & <odd> \"node\"", "id & 'quoted'"),
])
def test_the_size_is_never_less_than_what_is_sent_and_within_the_envelope(payload, service, node, item_id):
    op = Operation("publish", service, node, item_id, parse_payload(payload))
    size, sent = publish_size(op), sent_bytes(op)
    assert sent <= size < sent + ENVELOPE_BYTES


@settings(max_examples=60, deadline=None)
@given(text=st.text(), attr=st.text(st.characters(blacklist_categories=["Cs", "Cc"])),
       node=st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=40))
def test_any_text_is_counted_as_sent(text, attr, node):
    element = ET.Element("{urn:t}p", {"a": attr})
    element.text = "".join(c for c in text if c.isprintable())
    op = Operation("publish", "pubsub.example.org", node, "id", element)
    assert sent_bytes(op) <= publish_size(op)


def test_the_limit_is_an_option_of_the_connection():
    assert ConnectOptions().max_bytes == DEFAULT_MAX_BYTES == 1 << 20
    assert ConnectOptions(max_bytes=4096).max_bytes == 4096
    for bad in (0, -1, True, "1M", 1.5):
        with pytest.raises(HooknbError, match="is not a size: give a number of bytes"):
            ConnectOptions(max_bytes=bad)


def test_max_bytes_on_the_command_line():
    parser = magic_parser()
    args = parse(parser, "connect alice@example.org --max-bytes 4096")
    assert connect_options(args).max_bytes == 4096
    assert connect_options(parse(parser, "connect alice@example.org")).max_bytes == DEFAULT_MAX_BYTES
    with pytest.raises(HooknbError, match="max_bytes 0 is not a size"):
        connect_options(parse(parser, "connect alice@example.org --max-bytes 0"))
    with pytest.raises(HooknbError, match="argument --max-bytes: invalid int value: 'lots'"):
        parse(parser, "connect alice@example.org --max-bytes lots")
