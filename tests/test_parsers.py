"""Property-based tests (hypothesis) of the xmpp: URI parser and the shared argument grammar."""

from __future__ import annotations

import argparse
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from hooknb import grammar
from hooknb.errors import HooknbError
from hooknb.uri import PubSubAddress, parse_xmpp_uri

label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
domains = st.lists(label, min_size=1, max_size=3).map(".".join)
jids = st.one_of(domains, st.tuples(label, domains).map(lambda t: f"{t[0]}@{t[1]}"))
nodes = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)


@given(st.text(max_size=80))
def test_uri_parser_answers_or_says_why(text):
    try:
        address = parse_xmpp_uri(text)
    except HooknbError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("malformed xmpp: URI")
    else:
        assert isinstance(address, PubSubAddress) and address.service


@given(jids, nodes, st.sampled_from(["?;node=", "?pubsub;action=subscribe;node="]))
def test_uri_round_trip(jid, node, query):
    uri = f"xmpp:{quote(jid, safe='@')}{query}{quote(node, safe='')}"
    assert parse_xmpp_uri(uri) == PubSubAddress(jid, node)


def test_uri_examples():
    assert parse_xmpp_uri("xmpp:pubsub.example.org?;node=news") == ("pubsub.example.org", "news")
    assert parse_xmpp_uri("xmpp:juliet@example.com?;node=urn%3Axmpp%3Amicroblog%3A0") == (
        "juliet@example.com", "urn:xmpp:microblog:0")
    assert parse_xmpp_uri("xmpp://me@example.com/pubsub.example.org?;node=x") == ("pubsub.example.org", "x")
    assert parse_xmpp_uri("xmpp:pubsub.example.org") == ("pubsub.example.org", None)


tokens = st.one_of(
    st.sampled_from(["create", "delete", "list", "events", "runs", "publish", "subscribe", "connect",
                     "-n", "-s", "-u", "-t", "-a", "-P", "-O", "--on", "--last", "--timeout", "--from",
                     "--phase", "json", "table", "python", "python_file", "python_code", "--help",
                     "xmpp:pubsub.example.org?;node=n", "publish,retract", "0", "-1", "x.py"]),
    st.text(max_size=10))


@settings(max_examples=300)
@given(st.lists(tokens, max_size=8))
def test_grammar_parses_or_raises_one_clear_error(argv):
    parser = grammar.magic_parser()
    try:
        args = grammar.parse(parser, argv)
        if args.command in ("create", "delete", "subscribe", "unsubscribe", "publish"):
            grammar.target(args)
    except grammar.HelpRequested as help_:
        assert help_.text.startswith("usage:")
    except HooknbError as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip()
    else:
        assert isinstance(args, argparse.Namespace)


@given(st.text(max_size=40))
def test_magic_lines_split_or_raise(line):
    try:
        assert isinstance(grammar.split(line), list)
    except grammar.GrammarError as exc:
        assert "cannot parse" in str(exc)


def test_seed_examples_parse():
    parser = grammar.magic_parser()
    args = grammar.parse(parser, "create -n urn:xmpp:microblog:0 -t python_file --persistent "
                                 "~/do_something_neat.py")
    assert (args.node, args.type, args.persistent, args.arg) == (
        "urn:xmpp:microblog:0", "python_file", True, "~/do_something_neat.py")
    args = grammar.parse(parser, "delete -n urn:xmpp:microblog:0 -t python_file --arg ~/x.py")
    assert (args.type, args.arg) == ("python_file", "~/x.py")
    assert grammar.parse(parser, "list -O json").output == "json"
