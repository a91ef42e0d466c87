"""Typed events from synthetic notifications, built with slixmpp's stanza objects (xep_0060's
``pubsub_event`` plugin) and as raw XML: items, retract, purge, delete, configuration, publisher;
``serialise`` against slixmpp's ``tostring`` (hypothesis); the ``Event`` and ``Item`` views."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slixmpp import Message
from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem, EventRetract
from slixmpp.xmlstream import tostring

from hooknb.xmpp.events import (
    KINDS,
    XML_NS,
    Event,
    Item,
    as_record,
    parse_notification,
    serialise,
)

ME, SERVICE, TS = "alice@example.org", "pubsub.example.org", 1_700_000_000.25
ATOM = "http://www.w3.org/2005/Atom"


def entry(title: str) -> ET.Element:
    return ET.fromstring(f"<entry xmlns='{ATOM}'><title>{title}</title></entry>")


def notification() -> Message:
    message = Message()
    message["from"], message["to"] = SERVICE, ME
    return message


def items_message(node: str, *children: EventItem | EventRetract) -> Message:
    message = notification()
    items = message["pubsub_event"]["items"]
    items["node"] = node
    for child in children:
        items.append(child)
    return message


def item(item_id: str, payload: ET.Element | None = None, publisher: str | None = None) -> EventItem:
    stanza = EventItem()
    stanza["id"] = item_id
    if publisher:
        stanza["publisher"] = publisher
    if payload is not None:
        stanza["payload"] = payload
    return stanza


def retract(item_id: str) -> EventRetract:
    stanza = EventRetract()
    stanza["id"] = item_id
    return stanza


def events_of(message: Message | str) -> list[Event]:
    xml = ET.fromstring(message) if isinstance(message, str) else message.xml
    return parse_notification(ME, SERVICE, xml, ts=TS)


def test_several_items_in_one_message_are_one_event_each_in_order():
    message = items_message("news", item("1", entry("one"), "bob@example.org/phone"), item("2", entry("two")),
                            retract("0"))
    assert events_of(message) == [
        Event(ME, SERVICE, "news", "publish", "1", "bob@example.org/phone",
              f'<entry xmlns="{ATOM}"><title>one</title></entry>', TS),
        Event(ME, SERVICE, "news", "publish", "2", None,
              f'<entry xmlns="{ATOM}"><title>two</title></entry>', TS),
        Event(ME, SERVICE, "news", "retract", "0", None, None, TS),
    ]


def test_payload_is_what_slixmpp_tostring_gives():
    payload = ET.fromstring(f"<entry xmlns='{ATOM}' xml:lang='en'><title type='text'>a &amp; &lt;b&gt;</title>"
                            "<x xmlns='urn:x' k='&quot;q&apos;'/>tail</entry>")
    [event] = events_of(items_message("news", item("1", payload)))
    assert event.payload == tostring(payload)
    assert event.item.xml.findtext(f"{{{ATOM}}}title") == "a & <b>"


def test_an_empty_publisher_is_none_and_an_item_without_payload_has_none():
    [event] = events_of(f"<message xmlns='jabber:client' from='{SERVICE}'>"
                        "<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='n'>"
                        "<item id='bare' publisher=''/></items></event></message>")
    assert (event.kind, event.item_id, event.publisher, event.payload) == ("publish", "bare", None, None)
    assert event.item.xml is None


def test_only_the_first_child_of_an_item_is_its_payload():
    two = item("1", entry("first"))
    two.xml.append(entry("second"))
    [event] = events_of(items_message("news", two))
    assert event.payload == f'<entry xmlns="{ATOM}"><title>first</title></entry>'


def test_purge():
    message = notification()
    message["pubsub_event"]["purge"]["node"] = "news"
    assert events_of(message) == [Event(ME, SERVICE, "news", "purge", None, None, None, TS)]


def test_delete_with_a_redirect():
    message = notification()
    message["pubsub_event"]["delete"]["node"] = "news"
    message["pubsub_event"]["delete"]["redirect"] = "xmpp:pubsub.example.org?;node=news2"
    assert events_of(message) == [Event(ME, SERVICE, "news", "delete", None, None, None, TS)]


def test_configuration_carries_its_form_as_payload():
    message = notification()
    configuration = message["pubsub_event"]["configuration"]
    configuration["node"] = "news"
    form = configuration["form"]
    form["type"] = "result"
    form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#node_config")
    form.add_field(var="pubsub#title", value="News")
    [event] = events_of(message)
    assert (event.kind, event.node, event.item_id) == ("config", "news", None)
    assert event.payload == tostring(form.xml)
    title = event.item.xml.find("{jabber:x:data}field[@var='pubsub#title']")
    assert title.findtext("{jabber:x:data}value") == "News"


def test_configuration_without_a_form_has_no_payload():
    message = notification()
    message["pubsub_event"]["configuration"]["node"] = "news"
    assert events_of(message) == [Event(ME, SERVICE, "news", "config", None, None, None, TS)]


def test_raw_xml_and_stanza_objects_give_the_same_events():
    stanza = items_message("n", item("1", entry("one"), "bob@example.org"), retract("2"))
    assert events_of(str(stanza)) == events_of(stanza)


def test_every_kind_from_raw_xml():
    xml = (f"<message xmlns='jabber:client' from='{SERVICE}'>"
           "<event xmlns='http://jabber.org/protocol/pubsub#event'>"
           "<items node='a'><item id='1'><p xmlns='urn:t'/></item><retract id='2'/></items>"
           "<purge node='b'/><delete node='c'/><configuration node='d'/>"
           "<subscription node='e' jid='alice@example.org' subscription='subscribed'/>"
           "<collection node='f'><associate node='g'/></collection>"
           "</event></message>")
    assert [(e.kind, e.node, e.item_id) for e in events_of(xml)] == [
        ("publish", "a", "1"), ("retract", "a", "2"), ("purge", "b", None), ("delete", "c", None),
        ("config", "d", None)]
    assert {e.kind for e in events_of(xml)} == set(KINDS)


def test_a_message_without_a_pubsub_event_gives_nothing():
    message = notification()
    message["body"] = "hello"
    assert events_of(message) == []
    assert events_of("<message xmlns='jabber:client'><event xmlns='urn:other'><items node='n'>"
                     "<item id='1'/></items></event></message>") == []


def test_the_reception_time_defaults_to_now():
    before = datetime.now(timezone.utc).timestamp()
    [event] = parse_notification(ME, SERVICE, items_message("n", item("1")).xml)
    assert before <= event.ts <= datetime.now(timezone.utc).timestamp()


def test_a_payload_too_deep_to_serialise_arrives_without_it():
    deep = "<d xmlns='urn:deep'>" + "<a>" * 3000 + "</a>" * 3000 + "</d>"
    message = ET.fromstring(
        "<message xmlns='jabber:client' from='pubsub.localhost'>"
        "<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='n'>"
        f"<item id='deep'>{deep}</item><item id='fine'><ok xmlns='urn:t'/></item></items></event></message>")
    events = parse_notification("me@localhost", "pubsub.localhost", message)
    assert [(e.item_id, e.payload) for e in events] == [("deep", None), ("fine", '<ok xmlns="urn:t" />')]


def test_the_payload_is_the_payload_element_alone():
    [event] = events_of("<message xmlns='jabber:client'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                        "<items node='n'><item id='1'>\n  <p xmlns='urn:t'/>\n</item></items></event></message>")
    assert event.payload == '<p xmlns="urn:t" />'


def test_attributes_in_other_namespaces_survive_in_the_payload():
    [event] = events_of(f"<message xmlns='jabber:client'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                        f"<items node='n'><item id='1'><entry xmlns='{ATOM}' "
                        "xmlns:thr='http://purl.org/syndication/thread/1.0'><link rel='replies' thr:count='3'/>"
                        "</entry></item></items></event></message>")
    link = event.item.xml.find(f"{{{ATOM}}}link")
    assert link.get("{http://purl.org/syndication/thread/1.0}count") == "3"


# ------------------------------------------------------------------------------ Event and Item
def test_events_are_immutable_and_received_is_utc():
    event = Event(ME, SERVICE, "n", "publish", "1", ts=TS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.node = "other"  # type: ignore[misc]
    assert event.received == datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=timezone.utc)


def test_item_is_a_view_on_its_event():
    event = Event(ME, SERVICE, "n", "publish", "1", "bob@example.org", '<p xmlns="urn:t">hi</p>', TS)
    view = event.item
    assert isinstance(view, Item) and view.event is event
    assert (view.id, view.node, view.service, view.publisher, view.kind, view.payload) == (
        "1", "n", SERVICE, "bob@example.org", "publish", '<p xmlns="urn:t">hi</p>')
    assert view.xml.tag == "{urn:t}p" and view.xml.text == "hi" and view.xml is view.xml  # parsed once
    assert repr(view) == f"Item(id='1', node='n', service='{SERVICE}', kind='publish')"


def test_as_record_has_every_field_and_an_iso_time():
    event = Event(ME, SERVICE, "n", "retract", "1", ts=TS)
    assert as_record(event) == {"account": ME, "service": SERVICE, "node": "n", "kind": "retract",
                                "item_id": "1", "publisher": None, "payload": None,
                                "received": "2023-11-14T22:13:20.250000+00:00"}


# ------------------------------------------------------------------------------ serialise
NAMESPACES = ["", "urn:a", "urn:b", ATOM]
NAMES = st.sampled_from(["entry", "title", "x", "a-b", "item_1"])
TEXT = st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
                 st.sampled_from(["", " ", "a & b", "<tag>", "'quoted' \"twice\"", "é ✓"]))
ATTRIBUTE_NAMES = st.one_of(NAMES, st.sampled_from([f"{{{XML_NS}}}lang", "{urn:other}attr"]))


def element(ns: str, name: str, attrib: dict[str, str], text: str | None, tail: str | None,
            children: list[ET.Element]) -> ET.Element:
    made = ET.Element(f"{{{ns}}}{name}" if ns else name, attrib)
    made.text, made.tail = text, tail
    made.extend(children)
    return made


def trees(text: st.SearchStrategy, attribute_names: st.SearchStrategy) -> st.SearchStrategy[ET.Element]:
    """Element trees (up to a dozen leaves) of the given texts and attribute names."""

    def node(children: st.SearchStrategy) -> st.SearchStrategy[ET.Element]:
        return st.builds(element, st.sampled_from(NAMESPACES), NAMES,
                         st.dictionaries(attribute_names, text.filter(bool), max_size=3), text, text, children)

    return st.recursive(node(st.just([])), lambda kids: node(st.lists(kids, max_size=3)), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(trees(TEXT, NAMES | st.just(f"{{{XML_NS}}}lang")))
def test_serialise_matches_slixmpp_tostring(tree):
    """The same text, but for slixmpp's two losses: what follows the payload (its tail) and
    attributes in other namespaces (both tested above)."""
    tree.tail = None
    assert serialise(tree) == tostring(tree)


XML_TEXT = st.one_of(st.none(), st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF), max_size=12))


@settings(max_examples=100, deadline=None)
@given(trees(XML_TEXT, ATTRIBUTE_NAMES))
def test_a_serialised_payload_parses_back_to_the_same_tree(tree):
    tree.tail = None

    def shape(e: ET.Element) -> tuple:
        return e.tag, e.attrib, e.text or "", e.tail or "", [shape(c) for c in e]

    assert shape(ET.fromstring(serialise(tree))) == shape(tree)


def test_serialise_a_parsed_payload_and_none():
    parsed = ET.fromstring(f'<message xmlns="jabber:client"><entry xmlns="{ATOM}" xml:lang="en">'
                           '<title>a &amp; b</title><x xmlns="urn:x" k="&quot;"/></entry></message>')[0]
    assert serialise(parsed) == tostring(parsed)
    assert serialise(None) is None


def test_the_split_tags_serialise_remembers_are_bounded():
    # a stream of made-up tags fills the memory of split tags to its bound, not past it, and
    # each is still written as slixmpp writes it
    from hooknb.xmpp import events
    for n in range(events.TAGS_MAX + 500):
        made_up = ET.fromstring(f'<t{n} xmlns="urn:made-up:{n}"><c{n}/></t{n}>')
        assert serialise(made_up) == tostring(made_up)
    assert len(events._TAGS) == events.TAGS_MAX


@settings(max_examples=300, deadline=None)
@given(st.text(), st.booleans())
def test_the_escape_slixmpp_uses_matches_its_own(text, use_cdata):
    from hooknb.xmpp import stream

    assert stream._fast_escape(text, use_cdata) == stream._slixmpp_escape(text, use_cdata)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40), st.binary(max_size=32), st.integers(1, 64), st.sampled_from(["SHA-1", "SHA-256", "SHA-512"]))
def test_the_salted_password_of_scram_matches_slixmpps(password, salt, iterations, name):
    from slixmpp.util import hash as sasl_hash
    from slixmpp.util.sasl.mechanisms import SCRAM

    from hooknb.xmpp import stream

    mech = SCRAM.__new__(SCRAM)  # only what Hi reads: its hash
    mech.hash = sasl_hash(name)
    assert SCRAM.Hi is stream._fast_hi
    assert stream._fast_hi(mech, password, salt, iterations) == stream._slixmpp_hi(mech, password, salt, iterations)
