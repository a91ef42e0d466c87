"""slixmpp's client as hooknb uses it (:class:`Stream`): what the socket gives parsed a slice at
a time, PubSub notifications taken as XML before slixmpp looks at them, each one taken counted
for stream management (XEP-0198), the password kept as a :class:`~hooknb.xmpp.secret.Secret`
until SASL reads it; and slixmpp's XML escaping done in C (:func:`_fast_escape`, installed on
import).
"""

from __future__ import annotations

import importlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import slixmpp

from . import resumption
from .events import EVENT_TAG, escape
from .secret import Credentials

MESSAGE_TAG = "{jabber:client}message"
#: Bytes given to the XML parser at a time (see :meth:`Stream.data_received`).
SLICE = 16384

_tostring = importlib.import_module("slixmpp.xmlstream.tostring")  # the module, not its function
_slixmpp_escape = _tostring.escape


def _fast_escape(text: str, use_cdata: bool = False) -> str:
    """slixmpp's ``escape``, done in C: slixmpp's own escapes every text one character at a
    time, a quarter of a second for each 300 kB published."""
    return _slixmpp_escape(text, use_cdata) if use_cdata else escape(text)


_tostring.escape = _fast_escape


class Stream(slixmpp.ClientXMPP):
    """slixmpp's client, with PubSub notifications taken as XML before slixmpp builds stanza
    objects of them (``on_notification``)."""

    on_notification: Callable[[ET.Element], None]

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
        if xml.tag == MESSAGE_TAG and xml.find(EVENT_TAG) is not None:
            resumption.count_taken(self)
            self.on_notification(xml)
            return
        super()._spawn_event(xml)
