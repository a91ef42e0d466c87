"""slixmpp's client as hooknb uses it (:class:`Stream`): what the socket gives parsed a slice at
a time and acknowledged at once (:func:`quick_ack`); PubSub notifications, and the answers to
the requests sent with :meth:`Stream.ask`, taken as XML before slixmpp looks at them, each one
counted for stream management (XEP-0198); the stanzas sent as a cut happens held until the
stream is resumed, and all sent on it in the order they were sent, or dropped with the session
(:meth:`Stream._hold_unwritable`); the password kept as a
:class:`~hooknb.xmpp.secret.Secret` until SASL reads it; and slixmpp's XML escaping and SCRAM's
salted password done in C (:func:`_fast_escape`, :func:`_fast_hi`, installed on import).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any, NamedTuple

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.stanza import Iq, Message, Presence
from slixmpp.util import bytes as _sasl_bytes
from slixmpp.util.sasl.mechanisms import SCRAM

from . import resumption
from .events import EVENT_TAG, escape
from .secret import Credentials

MESSAGE_TAG = "{jabber:client}message"
IQ_TAG = "{jabber:client}iq"
ACK_REQUEST_TAG = "{urn:xmpp:sm:3}r"  # stream management's (XEP-0198) request for our count
#: Bytes given to the XML parser at a time (see :meth:`Stream.data_received`).
SLICE = 16384
TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only (see quick_ack)

#: The stanzas stream management counts and resends (what a cut may hold, see Stream._hold_unwritable).
STANZAS = (Iq, Message, Presence)

_tostring = importlib.import_module("slixmpp.xmlstream.tostring")  # the module, not its function
_slixmpp_escape = _tostring.escape


def _fast_escape(text: str, use_cdata: bool = False) -> str:
    """slixmpp's ``escape``, done in C: slixmpp's own escapes every text one character at a
    time, a quarter of a second for each 300 kB published."""
    return _slixmpp_escape(text, use_cdata) if use_cdata else escape(text)


_tostring.escape = _fast_escape


_slixmpp_hi = SCRAM.Hi


def _fast_hi(mech: SCRAM, text: str | bytes, salt: bytes, iterations: int) -> bytes:
    """SCRAM's ``Hi`` (RFC 5802), which is PBKDF2 with one block of the hash's size, done in C:
    slixmpp's own computes the server's 4,096 HMACs in a Python loop, 15 to 40 ms of the loop's
    time (every account's notifications wait) at each connection and reconnection here."""
    return hashlib.pbkdf2_hmac(mech.hash().name, _sasl_bytes(text), salt, iterations)


SCRAM.Hi = _fast_hi


def quick_ack(transport: asyncio.BaseTransport | None) -> None:
    """Have TCP acknowledge what was just read at once, not after the kernel's delay (up to
    40 ms; Linux, each read: the setting does not last).

    A server with stream management writes its ack request ``<r/>`` right after each stanza, in
    a write of its own, and Prosody's sockets use Nagle's algorithm (its default): that write,
    and every stanza after it, waits until this side has acknowledged the first.  This side
    also writes (its answers), so the kernel takes the connection for an interactive one and
    delays its acknowledgements, hoping to send them with data.  With raw slixmpp and stream
    management on, items 5 ms apart: p99 from publish to handler 20-33 ms, against 3-4 ms with
    this (docs/performance.md)."""
    if TCP_QUICKACK is None or transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)
        except OSError:  # not TCP, or closing
            pass


class _Asked(NamedTuple):
    """A request sent with :meth:`Stream.ask`, waiting for its answer."""

    answer: asyncio.Future
    senders: frozenset[str]  # the ``from`` an answer may carry (as slixmpp's MatchIDSender)
    timer: asyncio.TimerHandle


class Stream(slixmpp.ClientXMPP):
    """slixmpp's client, with PubSub notifications taken as XML before slixmpp builds stanza
    objects of them (``on_notification``), and answers to :meth:`ask` too."""

    on_notification: Callable[[ET.Element], None]
    on_read_end: Callable[[], None] | None = None  # after each read's stanzas (see data_received)
    #: Told of each ``<r/>`` of the server as it is read (see resumption.Resumption.watch); the
    #: stream answers it at the end of the read.
    on_ack_request: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._asked: dict[str, _Asked] = {}
        self._ack_owed = False
        self._taken = 0  # stanzas taken in this read not counted yet (see _count_taken)
        self._unwritten: list[Iq | Message | Presence] = []  # held at a cut (see _hold_unwritable)
        # out_sync, before stream management's filter (its plugin is registered later): nothing
        # is awaited between this check and the write (xep_0115's out filter awaits a task for
        # each stanza, two loop turns or more, in which the socket can go)
        self.add_filter("out_sync", self._hold_unwritable)
        # before slixmpp's own handler, which lets the stanzas waiting for a session through
        self.del_event_handler("session_resumed", self._set_session_start)
        self.add_event_handler("session_resumed", self._order_waiting)
        self.add_event_handler("session_resumed", self._set_session_start)
        self.add_event_handler("session_end", self._drop_waiting)
        self.add_event_handler("session_start", lambda _event: self._unwritten.clear())

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
        #
        # Once the read's stanzas are all handled, ``on_read_end`` hands on the notifications
        # read together, and only then are the server's ack requests of the read answered (one
        # answer for them all): an answer is a write to the socket, about 0.1 ms on loopback
        # where the write does the server's side of TCP too, and it came between an isolated
        # item and its hooks (docs/performance.md).
        quick_ack(self.transport)
        try:
            if len(data) <= SLICE:
                super().data_received(data)
                return
            for start in range(0, len(data), SLICE):
                if self.parser is None:  # the stream ended or was cut meanwhile
                    return
                super().data_received(data[start:start + SLICE])
        finally:
            self._count_taken()
            if self.on_read_end is not None:
                self.on_read_end()
            if self._ack_owed:
                self._ack_owed = False
                self.plugin["xep_0198"].send_ack()

    def _spawn_event(self, xml: ET.Element) -> None:
        # slixmpp's step from an incoming top-level element to its handlers.  A notification is
        # handed over here, whole, as XML: slixmpp would make a Message object of it (its
        # event, items and item plugins: 13 us), match it against every handler (17 handlers:
        # 20 us), and even a placeholder in its place costs a stanza object and the ``in``
        # filters (14 us).  It is counted as handled for stream management, as slixmpp's own
        # counter (an ``in`` filter) would have, before any element slixmpp or the watcher of
        # ack requests sees after it (_count_taken).  Any other stanza goes the usual way.
        tag = xml.tag
        if tag == MESSAGE_TAG and xml.find(EVENT_TAG) is not None:
            self._taken += 1
            self.on_notification(xml)
            return
        if tag == IQ_TAG and self._asked and self._answer(xml):
            return
        # What comes next (the watcher of ack requests, stream management's own elements such as
        # <enabled/>, which sets the count to 0) sees the count so far.
        self._count_taken()
        if tag == ACK_REQUEST_TAG and self.on_ack_request is not None:
            # Prosody asks for our count after nearly every stanza it sends (12,000 times in a
            # start with 10,000 nodes): taken here, not built and matched against every handler
            # first, and answered once at the end of the read (data_received), with the
            # plugin's own send_ack, as its handler would.
            self.on_ack_request()
            self._ack_owed = True
            return
        super()._spawn_event(xml)

    def _hold_unwritable(self, stanza: Any) -> Any:
        # slixmpp's send queue goes on after a cut: a stanza handed to send() before the client
        # heard of it reaches this filter once stream management has stopped keeping stanzas for
        # resending, and its write fails.  A request among them was never answered: a hook
        # publishing at a cut waited its full 30 s and failed (CI, ejabberd).  Held here instead,
        # and sent on the resumed stream (_order_waiting); a session that ends instead
        # (resumption refused, or none), or a new one, drops them: the client fails their requests.
        if self.transport is None and isinstance(stanza, STANZAS):
            self._unwritten.append(stanza)
            return None
        return stanza

    def _order_waiting(self, _stanza: Any) -> None:
        # On <resumed/>, stream management puts what the server had not acknowledged behind the
        # stanzas slixmpp kept while the stream was cut (sent after the cut): those go out first,
        # and two publishes to one node land in the wrong order.  What is sent on the resumed
        # stream is put back in the order it was sent: what the server had not acknowledged (the
        # entries sent without filters), what was held at the cut, what was sent after it.
        held, self._unwritten = self._unwritten, []
        waiting = self._waiting()
        if waiting is None:  # kept by slixmpp with the others (no session yet): nothing lost
            for stanza in held:
                self.send(stanza)
            return
        resent = [entry for entry in waiting if not entry[1]]
        later = [entry for entry in waiting if entry[1]]
        waiting[:] = [*resent, *((stanza, True) for stanza in held), *later]

    def _drop_waiting(self, _event: Any) -> None:
        # The session ended (its resumption refused, or none): the client fails the requests
        # sent on it (Client._lose).  slixmpp would send those it kept during the cut on the next
        # session all the same: a publish reported failed would land.  Dropped, as the held ones.
        self._unwritten = []
        waiting = self._waiting()
        if waiting is not None:
            waiting[:] = [entry for entry in waiting if not isinstance(entry[0], STANZAS)]

    def _waiting(self) -> list[tuple[Any, bool]] | None:
        """slixmpp's list of stanzas sent while no session is up, sent when one is: it has no
        API for it, so its private name.  None in a slixmpp without it: what is held is then
        sent in slixmpp's order, and what it kept for a session that ended goes on the next
        (tests/unit/test_stream_cut.py fails)."""
        return getattr(self, "_XMLStream__queued_stanzas", None)

    def _count_taken(self) -> None:
        # The stanzas taken before slixmpp built them, counted as handled for stream management
        # together, at the end of the read or before the next element not taken: the plugin's
        # attributes go through its config lookups, and counting each stanza on its own cost
        # 3 us of a notification's 70.
        if self._taken:
            resumption.count_taken(self, self._taken)
            self._taken = 0

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
