"""Payloads are serialised exactly as slixmpp's ``tostring`` would (hooknb has a faster twin), and
the faster escape hooknb gives slixmpp escapes exactly as slixmpp's own."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st
from slixmpp.xmlstream import tostring

from hooknb import client
from hooknb.events import XML_NS, serialise

NAMESPACES = ["", "urn:a", "urn:b", "http://www.w3.org/2005/Atom"]
NAMES = st.sampled_from(["entry", "title", "x", "a-b", "item_1"])
TEXT = st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
                 st.sampled_from(["", " ", "a & b", "<tag>", "'quoted' \"twice\"", "é ✓"]))
ATTRIBUTE_NAMES = st.one_of(NAMES, st.sampled_from([f"{{{XML_NS}}}lang", "{urn:other}attr"]))


@st.composite
def elements(draw: st.DrawFn, depth: int = 0) -> ET.Element:
    ns = draw(st.sampled_from(NAMESPACES))
    name = draw(NAMES)
    element = ET.Element(f"{{{ns}}}{name}" if ns else name,
                         draw(st.dictionaries(ATTRIBUTE_NAMES, TEXT.filter(bool), max_size=3)))
    element.text, element.tail = draw(TEXT), draw(TEXT)
    if depth < 3:
        element.extend(draw(st.lists(elements(depth + 1), max_size=3)))
    return element


@settings(max_examples=300, deadline=None)
@given(elements())
def test_serialise_matches_slixmpp_tostring(element):
    assert serialise(element) == tostring(element)


def test_serialise_a_parsed_payload_and_none():
    entry = ET.fromstring('<message xmlns="jabber:client"><entry xmlns="http://www.w3.org/2005/Atom" '
                          'xml:lang="en"><title>a &amp; b</title><x xmlns="urn:x" k="&quot;"/>'
                          '</entry></message>')[0]
    assert serialise(entry) == tostring(entry)
    assert serialise(None) is None


@settings(max_examples=300, deadline=None)
@given(st.one_of(TEXT.filter(bool), st.text()), st.booleans())
def test_the_escape_slixmpp_uses_matches_its_own(text, use_cdata):
    assert client._fast_escape(text, use_cdata) == client._slixmpp_escape(text, use_cdata)
