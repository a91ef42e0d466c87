"""Libervia's calling convention without a server: the domish-like element compared with Twisted's
own ``domish`` on the same XML, the client's JID compared with Twisted's JID, the convention
applied by the loaders (all three types) and by the remote contract, and the option stored."""

from __future__ import annotations

import textwrap

import pytest
from twisted.words.protocols.jabber import jid as twisted_jid
from twisted.words.xish import domish as twisted_domish

from hooknb.compat import domish, libervia
from hooknb.core.hooks import HookSpec
from hooknb.core.loading import Adapted, make_loader, sha256
from hooknb.errors import CompatError, HookCreateError
from hooknb.executors import remote
from hooknb.xmpp.events import Item
from unit.fakes import ACCOUNT, event

ATOM = "http://www.w3.org/2005/Atom"
SAMPLES = [
    f"<entry xmlns='{ATOM}' xmlns:t='urn:t' t:k='v'><title type='text'>Hi &lt;there&gt; &apos;x'</title>"
    "  <t:tag a='1'/>tail<content>c &amp; d</content></entry>",
    "<n xmlns='urn:test'>p1</n>",
    "<x xmlns='urn:a'><y xmlns='urn:b'><z/></y><y>second</y>text</x>",
]


def twisted_item(xml: str) -> twisted_domish.Element:
    """What Libervia gets: the <item/> of a notification, parsed by Twisted's expat stream."""
    stream, got = twisted_domish.ExpatElementStream(), []
    stream.DocumentStartEvent = lambda _root: None
    stream.ElementEvent = got.append
    stream.DocumentEndEvent = lambda: None
    stream.parse(f"<stream xmlns='jabber:client'><message><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                 f"<items node='n'>{xml}</items></event></message>".encode())
    return next(got[0].event.items.elements())


def ours(xml: str) -> domish.Element:
    return domish.parse(f"<item xmlns='http://jabber.org/protocol/pubsub#event'{xml[5:]}"
                        if xml.startswith("<item") else xml)


def shape(el) -> object:
    """Everything the reading API says of an element, recursively, comparable across both."""
    if isinstance(el, str):
        return el
    return (el.uri, el.name, el.defaultUri, dict(el.attributes), dict(el.localPrefixes), str(el), el.toXml(),
            [shape(c) for c in el.children], [c.name for c in el.elements()],
            [c.name for c in el.elements(ATOM)], [c.name for c in el.elements(ATOM, "title")],
            [c.name for c in el.elements(None, "title")],
            None if el.firstChildElement() is None else el.firstChildElement().name)


@pytest.mark.parametrize("payload", SAMPLES)
def test_the_element_reads_as_twisteds_domish_reads_the_same_item(payload):
    xml = f"<item id='i&amp;1' publisher='bob@localhost/r'>{payload}</item>"
    theirs, mine = twisted_item(xml), ours(xml)
    assert shape(mine) == shape(theirs)
    assert mine["id"] == theirs["id"] == "i&1" and mine.getAttribute("nope", 3) == 3
    assert mine.hasAttribute("id") and mine.hasAttribute(("", "id")) and not mine.hasAttribute("x")
    assert mine.compareAttribute("publisher", "bob@localhost/r") and mine.parent is None
    first = mine.firstChildElement()
    assert first.parent is mine and first.toXml() == theirs.firstChildElement().toXml()
    assert mine.toXml(closeElement=0) == theirs.toXml(closeElement=0)


def test_child_by_name_text_and_namespaced_attributes_answer_as_twisteds():
    xml = f"<item id='1'>{SAMPLES[0]}</item>"
    theirs, mine = twisted_item(xml), ours(xml)
    assert str(mine.entry.title) == str(theirs.entry.title) == "Hi <there> 'x'"
    assert mine.entry.missing is None and theirs.entry.missing is None
    assert mine.entry[("urn:t", "k")] == theirs.entry[("urn:t", "k")] == "v"
    assert bytes(mine.entry.content) == bytes(theirs.entry.content) == b"c & d"
    with pytest.raises(AttributeError):
        mine._private  # noqa: B018 - as Twisted: an underscore name is not a child


@pytest.mark.parametrize("mutate", [
    lambda e: e.__setitem__("id", "2"), lambda e: e.__delitem__("id"), lambda e: e.addChild("x"),
    lambda e: e.addElement("x"), lambda e: e.addContent("x"), lambda e: setattr(e, "name", "x"),
])
def test_the_element_is_read_only_with_one_line(mutate):
    mine = ours("<item id='1'><n xmlns='urn:test'>p</n></item>")
    with pytest.raises(CompatError) as caught:
        mutate(mine)
    assert "read-only" in str(caught.value) and "\n" not in str(caught.value)
    assert mine["id"] == "1" and isinstance(mine.children, tuple)
    with pytest.raises(TypeError):
        mine.attributes["id"] = "2"  # a read-only mapping


@pytest.mark.parametrize("text", ["alice@example.org/phone", "alice@example.org", "pubsub.example.org",
                                  "example.org/res"])
def test_the_client_jid_answers_as_twisteds_jid(text):
    mine, theirs = libervia.JID(text), twisted_jid.JID(text)
    assert (mine.user, mine.host, mine.resource) == (theirs.user, theirs.host, theirs.resource)
    assert mine.full() == theirs.full() and mine.userhost() == theirs.userhost()
    assert mine.userhostJID().full() == theirs.userhostJID().full()


def test_other_client_attributes_raise_one_line_naming_them():
    client = libervia.Client("alice@example.org/r", "alice@example.org")
    with pytest.raises(CompatError) as caught:
        client.sendMessage  # noqa: B018
    assert str(caught.value).startswith("client.sendMessage: Libervia's client internals are not available")
    assert "\n" not in str(caught.value) and not hasattr(client, "_hooks")
    assert client.profile == "alice@example.org" and client.jid.resource == "r"


def test_the_item_element_of_each_event_kind():
    published = libervia.element(Item(event("n", "p1", publisher="bob@localhost")))
    assert (published.name, published["id"], published["publisher"]) == ("item", "p1", "bob@localhost")
    assert published.uri == "http://jabber.org/protocol/pubsub#event"
    assert published.firstChildElement().toXml() == "<n xmlns='urn:test'>p1</n>"
    retracted = libervia.element(Item(event("n", "p1", kind="retract")))
    assert (retracted.name, retracted["id"], retracted.children) == ("retract", "p1", ())
    purged = libervia.element(Item(event("n", None, kind="purge")))
    assert (purged.name, purged["node"]) == ("purge", "n")


class Conn:
    jid, resource = ACCOUNT, "nb"


CODE = "(item['id'], item.firstChildElement().name, client.jid.full(), client.profile)"


@pytest.mark.parametrize("type_", ["python_code", "python_file", "python"])
def test_every_hook_type_is_called_with_the_convention(type_, tmp_path, monkeypatch):
    body = f"def hook(host, client, item):\n    return {CODE}\n"
    arg = {"python_code": CODE}.get(type_)
    if type_ == "python_file":
        (tmp_path / "lib_hook.py").write_text(body)
        (tmp_path / "lib_hook.py").chmod(0o644)
        arg = str(tmp_path / "lib_hook.py")
    elif type_ == "python":
        (tmp_path / "lib_hook_mod.py").write_text(body)
        monkeypatch.syspath_prepend(str(tmp_path))
        arg = "lib_hook_mod"
    loader = make_loader(type_, arg, compat="libervia")
    plain = make_loader(type_, arg)
    assert isinstance(loader, Adapted) and loader.digest == plain.digest
    fn, _is_async, digest = loader.resolve()
    assert digest == plain.digest and loader.resolve()[0] is fn  # adapted once, not per run
    assert fn(None, Conn(), Item(event("n", "p1"))) == ("p1", "n", f"{ACCOUNT}/nb", ACCOUNT)
    with pytest.raises(TypeError):  # hooknb's Item has no item["id"]: the plain loader fails
        plain.resolve()[0](None, Conn(), Item(event("n", "p1")))


def test_an_unknown_convention_is_refused():
    with pytest.raises(HookCreateError, match="unknown calling convention 'zope'; choose libervia"):
        make_loader("python_code", "1", compat="zope")


def test_a_remote_run_gets_the_convention_with_the_bare_account():
    source = f"async def hook(host, client, item):\n    return {CODE}\n".encode()
    code = remote.Code(sha256(source), "python_file", "/nowhere/hook.py", source, compat="libervia")
    plain = remote.Code(sha256(source), "python_file", "/nowhere/hook.py", source)
    assert code.key != plain.key
    remote.load(code)
    reply = remote.call(code.key, event("n", "p1"), "w1")
    assert reply.outcome.status == "ok" and reply.outcome.result == ("p1", "n", ACCOUNT, ACCOUNT)
    script = textwrap.dedent("""
        def hook(host, client, item):
            return client.send
    """).encode()
    failing = remote.Code(sha256(script), "python_file", "/nowhere/h2.py", script, compat="libervia")
    remote.load(failing)
    assert "client.send: Libervia's client internals" in remote.call(failing.key, event("n", "p2"), "w1").outcome.error


def test_the_convention_is_stored_with_the_spec():
    spec = HookSpec.make(ACCOUNT, "pubsub.localhost", "n", "python_file", "/h.py", compat="libervia")
    assert HookSpec.from_record(spec.to_record()).compat == "libervia"
    assert HookSpec.from_record(HookSpec.make(ACCOUNT, "s", "n", "python_code", "1").to_record()).compat is None
