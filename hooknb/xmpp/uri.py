"""Parsing ``xmpp:`` URIs (RFC 5122, XEP-0147) that name a PubSub service and node.

Examples: ``xmpp:pubsub.example.org?;node=news``,
``xmpp:pubsub.example.org?pubsub;action=subscribe;node=news``,
``xmpp:juliet@example.com?;node=urn%3Axmpp%3Amicroblog%3A0``.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import unquote

from ..errors import HooknbError


class PubSubAddress(NamedTuple):
    """A service JID and a node (None when the URI names no node)."""

    service: str
    node: str | None


def _check_jid(jid: str, uri: str) -> str:
    from .connection import split_jid  # slixmpp's JID rules; imported late to keep this module light

    try:
        return str(split_jid(jid))
    except HooknbError:
        raise HooknbError(f"malformed xmpp: URI {uri!r}: {jid!r} is not a valid JID") from None


def parse_xmpp_uri(uri: str) -> PubSubAddress:
    """The (service, node) an ``xmpp:`` URI names; a one-line error if it is malformed."""
    if not isinstance(uri, str) or not uri.lower().startswith("xmpp:"):
        raise HooknbError(f"malformed xmpp: URI {uri!r}: it must start with 'xmpp:'")
    rest = uri[5:]
    if rest.startswith("//"):  # an authority (the account to use) is allowed and ignored
        rest = rest[2:]
        if "/" not in rest:
            raise HooknbError(f"malformed xmpp: URI {uri!r}: authority without a path")
        rest = rest.split("/", 1)[1]
    rest = rest.split("#", 1)[0]  # a fragment (RFC 3986) names nothing here
    path, _, query = rest.partition("?")
    jid = unquote(path)
    if not jid or any(c.isspace() for c in jid):
        raise HooknbError(f"malformed xmpp: URI {uri!r}: no service JID")
    service = _check_jid(jid, uri)
    node = None
    if query:
        parts = query.split(";")
        for part in parts[1:]:
            if not part:
                continue
            key, eq, value = part.partition("=")
            if not eq:
                raise HooknbError(f"malformed xmpp: URI {uri!r}: {part!r} is not key=value")
            if key == "node":
                node = unquote(value)
                if not node:
                    raise HooknbError(f"malformed xmpp: URI {uri!r}: empty node")
    return PubSubAddress(service, node)
