"""Typed, immutable PubSub events: one :class:`Event` per item of an incoming notification.

A notification message may carry several items; each becomes its own ``Event`` (so a hook runs
once per item).  Purge, node deletion and configuration changes carry no item and become one
event with ``item_id`` None.  Hooks receive an :class:`Item`, a light view on the event.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

NS_EVENT = "http://jabber.org/protocol/pubsub#event"
EVENT_TAG = f"{{{NS_EVENT}}}event"

#: Event kinds, in the order the toolkit documents them.
KINDS = ("publish", "retract", "purge", "delete", "config")
DEFAULT_KINDS = frozenset({"publish"})

_intern = sys.intern
log = logging.getLogger(__name__)
#: Payloads up to this many characters have their digest remembered (the latest 1,024): an
#: event's digest is asked for by its node's position, its inbox entry and its hook's lane.
#: Of longer ones only the latest is remembered, so that no more than 4 MiB of payloads and one
#: long payload are held for this.
DIGEST_CACHED = 4096
_last_long: tuple[str, str] = ("", "")  # the latest long payload and its digest


def payload_digest(payload: str) -> str:
    """The SHA-256 of a payload (of its UTF-8 encoding), in hexadecimal."""
    global _last_long
    if len(payload) <= DIGEST_CACHED:
        return _cached_sha256(payload)
    last, value = _last_long
    if last is not payload:
        value = _sha256(payload)
        _last_long = (payload, value)
    return value


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


_cached_sha256 = functools.lru_cache(maxsize=1024)(_sha256)


@dataclass(frozen=True, slots=True)
class Event:
    """One PubSub notification about one item (or one node-wide change).

    ``payload`` is the item's payload serialised as an XML string (None when there is none);
    ``ts`` is the reception time in seconds since the epoch (UTC); see :attr:`received`.
    """

    account: str
    service: str
    node: str
    kind: str
    item_id: str | None = None
    publisher: str | None = None
    payload: str | None = None
    ts: float = field(default_factory=time.time)

    @property
    def received(self) -> datetime:
        """Reception time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.ts, timezone.utc)

    @property
    def item(self) -> Item:
        """The view of this event handed to hooks."""
        return Item(self)


class Item:
    """What a hook receives as ``item``: the item's id, node, service, publisher, kind and
    payload, plus the :class:`Event` it came in (``item.event``) and its ``depth``: how many
    hooks' runs published the items that led to it (0 for an item published from outside any
    hook, see :mod:`hooknb.core.depth`)."""

    __slots__ = ("event", "_xml", "depth")

    def __init__(self, event: Event, xml: ET.Element | None = None, depth: int = 0) -> None:
        self.event = event
        self._xml = xml
        self.depth = depth

    id = property(lambda self: self.event.item_id, doc="the item id (None for purge/delete/config)")
    node = property(lambda self: self.event.node, doc="the PubSub node")
    service = property(lambda self: self.event.service, doc="the PubSub service JID")
    publisher = property(lambda self: self.event.publisher, doc="publisher JID, when the server says")
    kind = property(lambda self: self.event.kind, doc="publish, retract, purge, delete or config")
    payload = property(lambda self: self.event.payload, doc="the payload as an XML string, or None")

    @property
    def xml(self) -> ET.Element | None:
        """The payload parsed as an ElementTree element (None when there is no payload)."""
        if self._xml is None and self.event.payload is not None:
            self._xml = ET.fromstring(self.event.payload)
        return self._xml

    def __repr__(self) -> str:
        return f"Item(id={self.id!r}, node={self.node!r}, service={self.service!r}, kind={self.kind!r})"

    def _repr_html_(self) -> str:
        """JupyterLab's display: the item and its payload as indented, escaped XML."""
        from ..display import item_html

        return item_html(self)


XML_NS = "http://www.w3.org/XML/1998/namespace"
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;", '"': "&quot;"})


def escape(text: str) -> str:
    """slixmpp's escaping of text and attribute values (& < > ' "), done in C."""
    if "&" in text or "<" in text or ">" in text or "'" in text or '"' in text:
        return text.translate(_ESCAPES)
    return text


#: Element tags already split into (namespace, name): payloads repeat a few tags, and splitting
#: one anew cost a fifth of serialising.  Bounded: a stream of made-up tags fills it, then is split.
_TAGS: dict[str, tuple[str, str]] = {}
TAGS_MAX = 4096


def _split(tag: str) -> tuple[str, str]:
    """``{ns}name`` as (ns, name), remembered in :data:`_TAGS` while it has room."""
    if "}" in tag:
        ns, _, name = tag[1:].partition("}")
        split = (ns, name)
    else:
        split = ("", tag)
    if len(_TAGS) < TAGS_MAX:
        _TAGS[tag] = split
    return split


def _write(element: ET.Element, parent_ns: str, out: list[str]) -> None:
    """Append ``element`` (and its tail) to ``out`` as slixmpp's ``tostring`` writes it without a
    stream: a namespace declared where it differs from the parent's, childless empty elements as
    ``<a />``; but attributes in other namespaces than ``xml:``, which slixmpp leaves out, are
    kept, each with a prefix declared on its element (``xmlns:a0="..." a0:count="3"``)."""
    tag = element.tag
    ns, name = _TAGS.get(tag) or _split(tag)
    out.append(f'<{name} xmlns="{ns}"' if ns != parent_ns else "<" + name)
    if element.attrib:
        _write_attributes(element.attrib, out)
    text = element.text
    if len(element):
        out.append(">" + escape(text) if text else ">")
        for child in element:
            _write(child, ns, out)
        out.append(f"</{name}>")
    elif text:
        out.append(f">{escape(text)}</{name}>")
    else:
        out.append(" />")
    if element.tail:
        out.append(escape(element.tail))


def _write_attributes(attrib: dict[str, str], out: list[str]) -> None:
    """Append an element's attributes to ``out`` (see :func:`_write`)."""
    prefixes: dict[str, str] = {}
    for key, value in attrib.items():
        if "}" not in key:
            out.append(f' {key}="{escape(value)}"')
            continue
        key_ns, key_name = key[1:].split("}", 1)
        if key_ns == XML_NS:
            prefix = "xml"
        elif key_ns not in prefixes:
            prefix = prefixes[key_ns] = f"a{len(prefixes)}"
            out.append(f' xmlns:{prefix}="{escape(key_ns)}"')
        else:
            prefix = prefixes[key_ns]
        out.append(f' {prefix}:{key_name}="{escape(value)}"')


def serialise(payload: ET.Element | None) -> str | None:
    """A payload as an XML string, the same as slixmpp's ``tostring`` gives in a third of its
    time (it escapes text one character at a time); None when there is none or it nests too
    deeply to serialise (both are recursive): such an item still arrives, without its payload."""
    if payload is None:
        return None
    try:
        out: list[str] = []
        _write(payload, "", out)
        if payload.tail:  # what follows the payload inside <item/> is not part of it
            out.pop()
        return "".join(out)
    except RecursionError:
        log.warning("dropped the payload of an item nested too deeply to serialise")
        return None


def parse_notification(account: str, service: str, message_xml: ET.Element,
                       ts: float | None = None) -> list[Event]:
    """The events carried by one ``<message/>`` holding a ``pubsub#event`` element."""
    ts = time.time() if ts is None else ts
    root = message_xml.find(EVENT_TAG)
    if root is None:
        return []
    account, service = _intern(account), _intern(service)
    out: list[Event] = []
    for child in root:
        tag = child.tag.rpartition("}")[2]
        node = _intern(child.get("node", ""))
        if tag == "items":
            for entry in child:
                etag = entry.tag.rpartition("}")[2]
                if etag == "item":
                    out.append(Event(account, service, node, "publish", entry.get("id"),
                                     entry.get("publisher") or None, serialise(next(iter(entry), None)),
                                     ts))
                elif etag == "retract":
                    out.append(Event(account, service, node, "retract", entry.get("id"), None, None, ts))
        elif tag == "purge":
            out.append(Event(account, service, node, "purge", None, None, None, ts))
        elif tag == "delete":
            out.append(Event(account, service, node, "delete", None, None, None, ts))
        elif tag == "configuration":
            out.append(Event(account, service, node, "config", None, None,
                             serialise(next(iter(child), None)), ts))
    return out


def as_record(event: Event) -> dict[str, Any]:
    """A plain dict of the event's fields, with ``received`` as an ISO 8601 string."""
    return {"account": event.account, "service": event.service, "node": event.node,
            "kind": event.kind, "item_id": event.item_id, "publisher": event.publisher,
            "payload": event.payload, "received": event.received.isoformat()}
