"""``xmpp:`` URIs naming a PubSub service and node (RFC 5122, XEP-0147): examples, malformed URIs
as one-line errors, and round trips (hypothesis)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hooknb.errors import HooknbError
from hooknb.xmpp.uri import PubSubAddress, parse_xmpp_uri


@pytest.mark.parametrize("uri, service, node", [
    ("xmpp:pubsub.example.org?;node=news", "pubsub.example.org", "news"),
    ("xmpp:pubsub.example.org?pubsub;action=subscribe;node=news", "pubsub.example.org", "news"),
    ("xmpp:juliet@example.com?;node=urn%3Axmpp%3Amicroblog%3A0", "juliet@example.com", "urn:xmpp:microblog:0"),
    ("xmpp://me@example.com/pubsub.example.org?;node=x", "pubsub.example.org", "x"),
    ("xmpp:pubsub.example.org", "pubsub.example.org", None),
    ("xmpp:pubsub.example.org?;node=news#latest", "pubsub.example.org", "news"),
    ("xmpp:pubsub.example.org?;node=a%3Bb%3Dc", "pubsub.example.org", "a;b=c"),
    ("xmpp:pubsub.example.org?;node=a=b", "pubsub.example.org", "a=b"),
    ("xmpp:pubsub.example.org?;node=first;node=second", "pubsub.example.org", "second"),
    ("xmpp:pubsub.example.org?;;node=n;", "pubsub.example.org", "n"),
    ("xmpp:juliet%40example.com?;node=n", "juliet@example.com", "n"),
])
def test_examples(uri, service, node):
    assert parse_xmpp_uri(uri) == PubSubAddress(service, node)


def test_scheme_is_case_insensitive_and_the_domain_normalised():
    assert parse_xmpp_uri("XMPP:PubSub.Example.ORG?;node=News") == ("pubsub.example.org", "News")


@pytest.mark.parametrize("uri, why", [
    ("http://example.org/", "it must start with 'xmpp:'"),
    ("", "it must start with 'xmpp:'"),
    ("xmpp:", "no service JID"),
    ("xmpp:?;node=n", "no service JID"),
    ("xmpp:pub sub.example.org", "no service JID"),
    ("xmpp://me@example.com", "authority without a path"),
    ("xmpp:pubsub.example.org?;node", "'node' is not key=value"),
    ("xmpp:pubsub.example.org?;node=", "empty node"),
    ("xmpp:a@b@c?;node=n", "is not a valid JID"),
    ("xmpp:@example.org?;node=n", "is not a valid JID"),
])
def test_malformed_uris_are_one_line_errors(uri, why):
    with pytest.raises(HooknbError) as info:
        parse_xmpp_uri(uri)
    message = str(info.value)
    assert message.startswith(f"malformed xmpp: URI {uri!r}: ") and why in message and "\n" not in message


def test_a_non_string_is_an_error():
    with pytest.raises(HooknbError, match="must start with 'xmpp:'"):
        parse_xmpp_uri(None)  # type: ignore[arg-type]


def test_a_fragment_without_a_query_is_ignored():
    assert parse_xmpp_uri("xmpp:pubsub.example.org#section") == ("pubsub.example.org", None)


label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
domains = st.lists(label, min_size=1, max_size=3).map(".".join)
jids = st.one_of(domains, st.tuples(label, domains).map(lambda t: f"{t[0]}@{t[1]}"))
nodes = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)


@given(jids, nodes, st.sampled_from(["?;node=", "?pubsub;action=subscribe;node="]))
def test_any_percent_encoded_node_round_trips(jid, node, query):
    uri = f"xmpp:{quote(jid, safe='@')}{query}{quote(node, safe='')}"
    assert parse_xmpp_uri(uri) == PubSubAddress(jid, node)


@given(st.text(max_size=80))
def test_any_text_parses_or_says_why(text):
    try:
        address = parse_xmpp_uri(text)
    except HooknbError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("malformed xmpp: URI")
    else:
        assert isinstance(address, PubSubAddress) and address.service
