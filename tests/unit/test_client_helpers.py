"""The client's helpers that need no connection: JIDs, loopback hosts, the plaintext rule, the
TLS context clients share, payloads parsed and measured, what a client is subscribed to."""

from __future__ import annotations

import ssl
import xml.etree.ElementTree as ET

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from hooknb.xmpp.client import Client
from hooknb.xmpp.connection import ConnectOptions, is_loopback, split_jid, tls_context
from hooknb.errors import HooknbError
from hooknb.xmpp.operations import MAX_DEPTH, parse_payload, xml_depth


def chain(depth: int) -> ET.Element:
    """An element nesting ``depth`` levels (built without recursion)."""
    root = inner = ET.Element("{urn:t}d")
    for _ in range(depth - 1):
        inner = ET.SubElement(inner, "{urn:t}d")
    return root


@pytest.mark.parametrize("jid, bare, resource", [
    ("alice@example.org/phone", "alice@example.org", "phone"),
    ("Alice@Example.ORG/Res", "alice@example.org", "Res"),
    ("pubsub.example.org", "pubsub.example.org", ""),
    ("alice@127.0.0.1", "alice@127.0.0.1", ""),
])
def test_split_jid(jid, bare, resource):
    parsed = split_jid(jid)
    assert (parsed.bare, parsed.resource) == (bare, resource)


@pytest.mark.parametrize("jid", ["", "@example.org", "a@b@c", "alice@", "a b@example.org", "alice@/x"])
def test_a_malformed_jid_is_a_one_line_error(jid):
    with pytest.raises(HooknbError) as info:
        split_jid(jid)
    assert str(info.value).startswith(f"not a valid JID: {jid!r}") and "\n" not in str(info.value)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.9.10", "::1"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["example.org", "10.0.0.1", "0.0.0.0", "::", "", None, "localhost.example.org",
                                  "127.0.0.1.example.org"])
def test_other_hosts_are_not_loopback(host):
    assert not is_loopback(host)


def test_plaintext_only_to_a_loopback_host():
    ConnectOptions(host="127.0.0.1", plaintext=True).check("a@example.org")
    ConnectOptions(plaintext=True).check("a@localhost")
    ConnectOptions(host="example.org").check("a@example.org")
    with pytest.raises(HooknbError, match=r"^--plaintext \(no TLS\) is only allowed to a loopback host, "
                                          r"not 'xmpp\.example\.org'$"):
        ConnectOptions(host="xmpp.example.org", plaintext=True).check("a@example.org")
    with pytest.raises(HooknbError, match="not 'example.org'$"):
        ConnectOptions(plaintext=True).check("a@example.org")


def _subjects(context) -> set:
    return {cert["serialNumber"] for cert in context.get_ca_certs()}


def test_clients_share_one_tls_context_per_ca_file_and_an_edited_file_is_read_again(tmp_path):
    first, second = trustme.CA(), trustme.CA()
    cafile = tmp_path / "ca.pem"
    first.cert_pem.write_to_path(str(cafile))
    options = ConnectOptions(host="localhost", port=5222, cafile=str(cafile))
    context = tls_context(options)
    assert tls_context(ConnectOptions(host="localhost", port=5222, cafile=str(cafile))) is context
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    trusted = _subjects(context)
    second.cert_pem.write_to_path(str(cafile))  # the CA file replaced: its new CA is trusted
    edited = tls_context(options)
    assert edited is not context and _subjects(edited) - trusted and not _subjects(context) - trusted
    assert tls_context(ConnectOptions(host="localhost", port=5222)) is tls_context(ConnectOptions())


@pytest.mark.parametrize("spoil, why", [
    (lambda path: path.unlink(), "not found"),
    (lambda path: path.write_text("not a certificate\n"), "holds no PEM certificate"),
])
def test_a_ca_file_spoilt_after_the_options_were_made_is_a_one_line_error(tmp_path, spoil, why):
    cafile = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(cafile))
    options = ConnectOptions(host="localhost", port=5222, cafile=str(cafile))
    spoil(cafile)
    with pytest.raises(HooknbError) as info:
        tls_context(options)
    assert why in str(info.value) and "\n" not in str(info.value)


def test_a_plaintext_client_gets_a_bare_tls_context():
    context = tls_context(ConnectOptions(host="127.0.0.1", port=5222, plaintext=True))
    assert context.get_ca_certs() == [] and context is not tls_context(ConnectOptions())


def test_parse_payload_from_text_an_element_or_none():
    parsed = parse_payload("<entry xmlns='http://www.w3.org/2005/Atom'><title>t</title></entry>")
    assert parsed.tag == "{http://www.w3.org/2005/Atom}entry" and parsed[0].text == "t"
    element = ET.Element("x")
    assert parse_payload(element) is element
    assert parse_payload(None) is None


@pytest.mark.parametrize("text, why", [
    ("<a>", "no element found: line 1, column 3"),
    ("not xml", "syntax error: line 1, column 0"),
    ("", "no element found"),
    ("<a></b>", "mismatched tag"),
    ("<a/><b/>", "junk after document element"),
])
def test_a_payload_that_is_not_xml_is_a_one_line_error(text, why):
    with pytest.raises(HooknbError) as info:
        parse_payload(text)
    assert str(info.value).startswith("the payload is not well-formed XML: ") and why in str(info.value)
    assert "\n" not in str(info.value)


def test_a_payload_may_nest_max_depth_levels_and_no_more():
    assert parse_payload(chain(MAX_DEPTH)) is not None
    with pytest.raises(HooknbError, match=f"nests {MAX_DEPTH + 1} levels deep; at most {MAX_DEPTH} can be sent"):
        parse_payload(chain(MAX_DEPTH + 1))
    text = "<d xmlns='urn:t'>" * (MAX_DEPTH + 1) + "</d>" * (MAX_DEPTH + 1)
    with pytest.raises(HooknbError, match="levels deep"):
        parse_payload(text)


def test_xml_depth_of_a_leaf_a_wide_tree_and_a_very_deep_one():
    assert xml_depth(ET.Element("x")) == 1
    wide = ET.fromstring("<a><b/><b><c/></b><b/></a>")
    assert xml_depth(wide) == 3
    assert xml_depth(chain(50_000)) == 50_000  # no recursion


def recursive_depth(element: ET.Element) -> int:
    return 1 + max((recursive_depth(child) for child in element), default=0)


def build(children: list[ET.Element]) -> ET.Element:
    element = ET.Element("e")
    element.extend(children)
    return element


trees = st.recursive(st.builds(ET.Element, st.just("leaf")),
                     lambda kids: st.builds(build, st.lists(kids, max_size=4)), max_leaves=30)


@given(trees)
def test_xml_depth_agrees_with_the_recursive_definition(tree):
    assert xml_depth(tree) == recursive_depth(tree)


def test_subscribed_counts_a_subscription_in_flight_unless_told_not_to():
    client = Client("hook@localhost", "secret")
    client._subscriptions.add(("pubsub.localhost", "done"))
    client._subscribing.add(("pubsub.localhost", "asked"))
    assert client.subscribed("pubsub.localhost", "done") and client.subscribed("pubsub.localhost", "asked")
    assert client.subscribed("pubsub.localhost", "done", pending=False)
    assert not client.subscribed("pubsub.localhost", "asked", pending=False)
    assert not client.subscribed("pubsub.localhost", "other")
