"""The payload views registry without a server: built-in extractors, typed columns in the events
frame, and payloads or extractors that fail without breaking the frame."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest
from unit.fakes import event

from hooknb.xmpp import views

POST = """<entry xmlns="http://www.w3.org/2005/Atom">
  <title> Hello </title>
  <author><name>Alice</name><uri>xmpp:alice@localhost</uri></author>
  <published>2024-05-01T12:00:00+02:00</published>
  <updated>2024-05-01T10:30:00.250Z</updated>
  <link rel="replies" href="xmpp:alice@localhost?;node=comments"/>
  <link rel="alternate" type="text/html" href="https://blog.example/hello"/>
  <summary>A first post</summary>
</entry>"""
TUNE = """<tune xmlns="http://jabber.org/protocol/tune"><artist>Yes</artist><length>686</length>
  <rating>8</rating><source>Yessongs</source><title>Heart of the Sunrise</title><track>3</track></tune>"""
MOOD = '<mood xmlns="http://jabber.org/protocol/mood"><happy/><text>sunny day</text></mood>'
GEOLOC = """<geoloc xmlns="http://jabber.org/protocol/geoloc"><lat>45.44</lat><lon>12.33</lon>
  <accuracy>20</accuracy><country>Italy</country><locality>Venice</locality>
  <timestamp>2024-05-01T12:00:00Z</timestamp></geoloc>"""
UTC = timezone.utc


@pytest.fixture
def restore_registry():
    saved = views.registered()
    yield
    for tag in views.registered():
        views.register(tag, None)
    for tag, extractor in saved.items():
        views.register(tag, extractor)


def test_a_microblog_post_gives_typed_columns():
    assert views.extract(POST) == {
        "title": "Hello", "author": "Alice",
        "published": datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        "updated": datetime(2024, 5, 1, 10, 30, 0, 250000, tzinfo=UTC),
        "link": "https://blog.example/hello", "summary": "A first post"}


def test_a_bare_entry_gives_empty_columns_and_the_author_falls_back_to_the_uri():
    entry = ('<entry xmlns="http://www.w3.org/2005/Atom"><author><uri>xmpp:bob@localhost</uri></author>'
             '<link href="https://x.example/1"/><published>not a date</published></entry>')
    assert views.extract(entry) == {"title": None, "author": "xmpp:bob@localhost", "published": None,
                                    "updated": None, "link": "https://x.example/1", "summary": None}


def test_pep_payloads():
    assert views.extract(TUNE) == {"artist": "Yes", "title": "Heart of the Sunrise", "source": "Yessongs",
                                   "track": "3", "length": 686, "rating": 8}
    assert views.extract(MOOD) == {"mood": "happy", "mood_text": "sunny day"}
    assert views.extract('<mood xmlns="http://jabber.org/protocol/mood"/>') == {"mood": None, "mood_text": None}
    assert views.extract(GEOLOC) == {
        "lat": 45.44, "lon": 12.33, "alt": None, "accuracy": 20.0, "country": "Italy", "region": None,
        "locality": "Venice", "street": None, "description": None,
        "timestamp": datetime(2024, 5, 1, 12, 0, tzinfo=UTC)}


@pytest.mark.parametrize("payload", [None, "", "<unclosed>", '<x xmlns="urn:unknown"/>',
                                     "<entry>no namespace</entry>"])
def test_unknown_or_malformed_payloads_give_no_columns(payload):
    assert views.extract(payload) == {}


def test_helpers_return_none_for_malformed_values():
    assert views.timestamp("2024-05-01T12:00:00") == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert views.timestamp("yesterday") is views.number("north") is views.integer("3.5") is None


def test_register_validates_the_tag_and_replaces_or_removes(restore_registry):
    with pytest.raises(ValueError, match="'{namespace}name'"):
        views.register("entry", views.atom_entry)
    views.register("{urn:x}reading", lambda e: {"celsius": views.number(e.get("c"))})
    assert views.extract('<reading xmlns="urn:x" c="21.5"/>') == {"celsius": 21.5}
    views.register("{urn:x}reading", None)
    assert views.extract('<reading xmlns="urn:x" c="21.5"/>') == {}


def test_expanded_events_frame_types_columns_and_leaves_unknown_rows_empty(host, restore_registry):
    views.register("{urn:x}broken", lambda e: 1 / 0)
    views.register("{urn:x}clash", lambda e: {"node": "not me", "note": e.text})
    host.events.extend([
        event("blog", "p1", payload=POST), event("music", "t1", payload=TUNE),
        event("where", "g1", payload=GEOLOC), event("other", "u1"),  # urn:test: no extractor
        event("bad", "b1", payload='<broken xmlns="urn:x"/>'), event("blog", "p1", kind="retract"),
        event("x", "c1", payload='<clash xmlns="urn:x">n</clash>')])
    plain = host.events_frame()
    df = host.events_frame(expand=True)
    assert list(df.columns[:len(plain.columns)]) == list(plain.columns) and len(df) == 7
    assert list(df.columns[len(plain.columns):]) == [
        "title", "author", "published", "updated", "link", "summary", "artist", "source", "track",
        "length", "rating", "lat", "lon", "alt", "accuracy", "country", "region", "locality", "street",
        "description", "timestamp", "note"]
    assert str(df["published"].dtype).startswith("datetime64") and str(df["published"].dt.tz) == "UTC"
    assert df["published"][0] == pd.Timestamp("2024-05-01T10:00:00Z")
    assert df["lat"].dtype == "float64" and df["lat"][2] == 45.44
    assert df["length"].dtype == "Int64" and df["length"][1] == 686
    assert list(df["title"][:2]) == ["Hello", "Heart of the Sunrise"]
    assert df.loc[3:5, ["title", "lat", "published"]].isna().all().all()
    assert list(df["node"]) == list(plain["node"]) and df["note"][6] == "n"


def test_an_expanded_frame_without_known_payloads_has_no_extra_columns(host):
    host.events.extend([event("n", "1")])
    assert list(host.events_frame(expand=True).columns) == list(host.events_frame().columns)
    assert host.events_frame(expand=True, last=1, node="none").empty
