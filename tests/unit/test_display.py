"""The rich displays of a hook and an item (:mod:`hooknb.display`): what they show, with every
outside text escaped and the payload indented as XML."""

from __future__ import annotations

import html

from hooknb import display
from hooknb.core.hooks import Hook, HookSpec
from hooknb.xmpp.events import Event, Item

PAYLOAD = ('<entry xmlns="http://www.w3.org/2005/Atom"><title>a &lt;b&gt; title</title>'
           '<content type="html">&lt;script&gt;alert(1)&lt;/script&gt;</content></entry>')


def test_an_item_shows_its_payload_as_indented_escaped_xml():
    item = Item(Event("a@x", "pubsub.x", "news", "publish", "i1", "bob@x", PAYLOAD, ts=0.0))
    shown = item._repr_html_()
    assert "<b>item i1</b>" in shown and "bob@x" in shown and "1970-01-01 00:00:00 UTC" in shown
    assert "<script>" not in shown and "<entry" not in shown, "the payload is text, never markup"
    pre = shown[shown.index("<pre>") + 5:shown.index("</pre>")]
    assert html.unescape(pre) == ('<entry xmlns="http://www.w3.org/2005/Atom">\n'
                                  '  <title>a &lt;b&gt; title</title>\n'
                                  '  <content type="html">&lt;script&gt;alert(1)&lt;/script&gt;</content>\n'
                                  '</entry>')
    retract = Item(Event("a@x", "pubsub.x", "news", "retract", "i1"))._repr_html_()
    assert "no payload" in retract and "not given by the service" in retract


def test_a_long_or_broken_payload_is_shown_cut_or_as_it_came():
    assert display.pretty_xml("<a>") == "<a>"
    long = display.pretty_xml("<a>" + "x" * 50_000 + "</a>")
    assert long.endswith("[… 33,623 more characters]") and len(long) < display.PAYLOAD_SHOWN + 40


def test_a_hook_shows_status_counters_last_error_and_code():
    hook = Hook(HookSpec.make("a@x", "pubsub.x", "news", "python_code", "print('<b>' & 1)"))
    hook.stats.record("ok", 10.0, None, "<i>printed</i>\n")
    hook.stats.record("error", 20.0, "TypeError: unsupported operand type(s) for &: 'str' and 'int'")
    shown = hook._repr_html_()
    assert f"<b>hook {hook.id}</b>" in shown and ">active</span>" in shown
    assert "2 runs, 1 failures, 0 timeouts" in shown and "1970-01-01 00:00:20 UTC" in shown
    assert "TypeError: unsupported operand type(s) for &amp;: &#x27;str&#x27; and &#x27;int&#x27;" in shown
    assert "&lt;i&gt;printed&lt;/i&gt;" in shown and "print(&#x27;&lt;b&gt;&#x27; &amp; 1)" in shown
    assert "<i>printed" not in shown
