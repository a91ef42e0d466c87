"""slixmpp's client as hooknb uses it (:class:`Stream`): PubSub notifications taken as XML
before slixmpp builds stanza objects of them, the placeholder left in their place dropped by an
``in`` filter (:func:`drop_taken`), each one taken counted for stream management (XEP-0198), the
password kept as a :class:`~hooknb.xmpp.secret.Secret` until SASL reads it; and slixmpp's XML
escaping done in C (:func:`_fast_escape`, installed on import).
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
TAKEN_TAG = "{urn:hooknb:internal}taken"  # what slixmpp gets in place of a notification

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

    def incoming_filter(self, xml: ET.Element) -> ET.Element:
        # slixmpp's override point for incoming XML, before it makes a stanza object of it.  A
        # notification is handed over here, whole, and slixmpp goes on with an empty placeholder,
        # which drop_taken removes before any handler sees it.  The Message object, with its
        # event, items and item plugins, cost 13 us a notification; matching it against every
        # handler (17) 20 us: together half of the loop thread's time per item.
        if xml.tag == MESSAGE_TAG and xml.find(EVENT_TAG) is not None:
            resumption.count_taken(self)  # handled, though no stanza object is built of it
            self.on_notification(xml)
            return ET.Element(TAKEN_TAG)
        return xml


def drop_taken(stanza: slixmpp.xmlstream.StanzaBase) -> slixmpp.xmlstream.StanzaBase | None:
    """The ``in`` filter: the placeholder of a notification taken by :class:`Stream` goes no
    further; any other stanza goes on to slixmpp's handlers."""
    return None if stanza.xml.tag == TAKEN_TAG else stanza
