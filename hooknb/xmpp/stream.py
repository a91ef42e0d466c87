"""slixmpp's client as hooknb uses it (:class:`Stream`): what the socket gives parsed a slice at
a time; PubSub notifications, and the answers to the requests sent with :meth:`Stream.ask`,
taken as XML before slixmpp looks at them, each one counted for stream management (XEP-0198);
the password kept as a :class:`~hooknb.xmpp.secret.Secret` until SASL reads it; and slixmpp's
XML escaping done in C (:func:`_fast_escape`, installed on import).
"""

from __future__ import annotations

import asyncio
import importlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any, NamedTuple

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.stanza import Iq

from . import resumption
from .events import EVENT_TAG, escape
from .secret import Credentials

MESSAGE_TAG = "{jabber:client}message"
IQ_TAG = "{jabber:client}iq"
ACK_REQUEST_TAG = "{urn:xmpp:sm:3}r"  # stream management's (XEP-0198) request for our count
#: Bytes given to the XML parser at a time (see :meth:`Stream.data_received`).
SLICE = 16384

_tostring = importlib.import_module("slixmpp.xmlstream.tostring")  # the module, not its function
_slixmpp_escape = _tostring.escape


def _fast_escape(text: str, use_cdata: bool = False) -> str:
    """slixmpp's ``escape``, done in C: slixmpp's own escapes every text one character at a
    time, a quarter of a second for each 300 kB published."""
    return _slixmpp_escape(text, use_cdata) if use_cdata else escape(text)


_tostring.escape = _fast_escape


class _Asked(NamedTuple):
    """A request sent with :meth:`Stream.ask`, waiting for its answer."""

    answer: asyncio.Future
    senders: frozenset[str]  # the ``from`` an answer may carry (as slixmpp's MatchIDSender)
    timer: asyncio.TimerHandle


class Stream(slixmpp.ClientXMPP):
    """slixmpp's client, with PubSub notifications taken as XML before slixmpp builds stanza
    objects of them (``on_notification``), and answers to :meth:`ask` too."""

    on_notification: Callable[[ET.Element], None]
    on_ack_request: Callable[[], None] | None = None  # see resumption.Resumption.watch

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._asked: dict[str, _Asked] = {}

    @property
    def credentials(self) -> Credentials:
        """slixmpp's credentials, the password kept as a Secret until SASL reads it."""
        return self._credentials

    @credentials.setter
    def credentials(self, value: dict[str, Any]) -> None:
        self._credentials = Credentials(value)

    def data_received(self, data: bytes | str) -> None:
        # slixmpp feeds its parser all that one read gave (up to 256 KiB, hundreds of stanzas
        # in a burst), and only then looks at the elements built: they are all alive at once,
        # each collection of the garbage collector meanwhile walks them, and those that live
        # through one are promoted and make full collections come sooner.  Fed 16 KiB at a
        # time, the same stream takes a third less CPU to parse, and the collector's share of
        # a burst's item falls from about 12 us to 1 (docs/performance.md).  What slixmpp does
        # with each piece is unchanged.
        if len(data) <= SLICE:
            super().data_received(data)
            return
        for start in range(0, len(data), SLICE):
            if self.parser is None:  # the stream ended or was cut meanwhile
                return
            super().data_received(data[start:start + SLICE])

    def _spawn_event(self, xml: ET.Element) -> None:
        # slixmpp's step from an incoming top-level element to its handlers.  A notification is
        # handed over here, whole, as XML: slixmpp would make a Message object of it (its
        # event, items and item plugins: 13 us), match it against every handler (17 handlers:
        # 20 us), and even a placeholder in its place costs a stanza object and the ``in``
        # filters (14 us).  It is counted as handled for stream management, as slixmpp's own
        # counter (an ``in`` filter) would have.  Any other stanza goes the usual way.
        tag = xml.tag
        if tag == MESSAGE_TAG and xml.find(EVENT_TAG) is not None:
            resumption.count_taken(self)
            self.on_notification(xml)
            return
        if tag == IQ_TAG and self._asked and self._answer(xml):
            return
        if tag == ACK_REQUEST_TAG and self.on_ack_request is not None:
            # Prosody asks for our count after nearly every stanza it sends while requests and
            # answers alternate (12,000 times in a start with 10,000 nodes): answered here, not
            # built and matched against every handler first.
            self.on_ack_request()
            return
        super()._spawn_event(xml)

    def ask(self, iq: Iq, timeout: float) -> asyncio.Future:
        """Send ``iq`` (a get or a set); a future of its answer, as XML (an error answer:
        slixmpp's :class:`IqError`; none within ``timeout`` seconds: :class:`IqTimeout`).

        What ``iq.send()`` does, for the requests a start sends by the thousand (subscriptions,
        items): slixmpp would register a handler for each answer, which every incoming stanza
        is then matched against (32 requests in flight, 53 handlers), and make a stanza object
        of it; together about 40% of the loop's time per request.  The answer is matched here
        by its id in a dict, and from whom it may come as slixmpp's ``MatchIDSender`` does.
        The request is sent with :meth:`send`, so stream management keeps it until acked and
        sends it again on a resumed stream."""
        answer = self.loop.create_future()
        key, peer, me = iq["id"], iq["to"], self.boundjid
        senders = frozenset({"", me.bare, me.domain, peer.full, peer.bare, peer.domain})
        self._asked[key] = _Asked(answer, senders, self.loop.call_later(timeout, self._unanswered, key, iq))
        answer.add_done_callback(lambda _f: self._forget(key))
        self.send(iq)
        return answer

    def _answer(self, xml: ET.Element) -> bool:
        """Take ``xml`` if it answers a request of :meth:`ask` (True)."""
        key = xml.get("id")
        asked = self._asked.get(key) if key is not None else None
        if asked is None or xml.get("type") not in ("result", "error") or xml.get("from", "") not in asked.senders:
            return False
        resumption.count_taken(self)
        self._forget(key)
        if not asked.answer.done():
            if xml.get("type") == "result":
                asked.answer.set_result(xml)
            else:
                asked.answer.set_exception(IqError(Iq(self, xml=xml)))
        return True

    def _unanswered(self, key: str, iq: Iq) -> None:
        asked = self._asked.pop(key, None)
        if asked is not None and not asked.answer.done():
            asked.answer.set_exception(IqTimeout(iq))

    def _forget(self, key: str) -> None:
        asked = self._asked.pop(key, None)
        if asked is not None:
            asked.timer.cancel()
