"""What a client and the layer above it exchange, without the XMPP library.

* :class:`ClientHandler`: what a :class:`~hooknb.xmpp.client.Client` tells the layer above it (a
  session about to start, started, events arrived) and asks it to do (perform a publish or a
  retract, so that before/after hooks can wrap it);
* :class:`Operation`: a publish or retract on its way out, and :data:`Send`, what sends it;
* payloads: :func:`parse_payload` (an XML string or Element, checked) and :func:`publish_size`
  (the bytes of the stanza that publishes it, compared with the server's limit).

Nothing here imports slixmpp, so the layers above (session, engine, facade, command line) can
be imported without it: the commands that do not connect start faster.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import HooknbError
from .events import Event, escape, serialise

if TYPE_CHECKING:
    from .client import Client

MAX_DEPTH = 200  # deeper payloads cannot be serialised by slixmpp (recursive) and are refused
#: What a publish stanza adds around its payload and its names: ``<iq type id to>``,
#: ``<pubsub xmlns>``, ``<publish node>``, ``<item id>`` and their ends.  An upper bound (the
#: stanza slixmpp sends is about 170 bytes more than its payload and names; checked by a test).
ENVELOPE_BYTES = 512


@dataclass
class Operation:
    """A publish or retract about to be sent; before hooks may change ``payload``."""

    op: str
    service: str
    node: str
    item_id: str | None = None
    payload: ET.Element | None = None
    hook_data: dict[str, Any] = field(default_factory=dict)


Send = Callable[[Operation], Awaitable[Any]]


class ClientHandler:
    """What a :class:`~hooknb.xmpp.client.Client` tells the layer above it (every method runs on the
    loop thread).  This base does nothing but send operations, so a bare client works on its own."""

    #: What the handler is doing while a session starts, in words (a connection that does not
    #: come up in time says it), None when idle.
    activity: str | None = None
    #: A count the handler moves on as it gets on with a session's start (a node caught up): a
    #: connection whose start keeps moving is waited for past its timeout.
    progress: int = 0

    async def prepare_session(self, client: Client) -> None:
        """A session is about to send initial presence: no live event has arrived yet."""

    async def session_started(self, client: Client, reconnected: bool) -> None:
        """Presence is sent and subscriptions are restored; ``connect()`` returns after this."""

    async def session_resumed(self, client: Client) -> None:
        """A cut stream was resumed (XEP-0198): the session goes on, its subscriptions with it,
        and what the server queued meanwhile arrives as live events (nothing to catch up)."""

    def on_events(self, client: Client, events: list[Event]) -> None:
        """Notifications arrived, as events in the order they came: those of the notifications
        read from the socket together, in one call."""

    async def intercept(self, client: Client, op: Operation, send: Send) -> Any:
        """Perform a publish or retract: ``await send(op)`` sends it."""
        return await send(op)


def xml_depth(element: ET.Element) -> int:
    """How deeply an element nests (1 for a leaf), computed without recursion."""
    deepest, stack = 0, [(element, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node)
    return deepest


def parse_payload(payload: str | ET.Element | None) -> ET.Element | None:
    """An Element from an XML string (or the Element itself); a clear error if not well-formed
    or nested more than ``MAX_DEPTH`` levels."""
    if payload is None:
        return None
    if not isinstance(payload, ET.Element):
        try:
            payload = ET.fromstring(payload)
        except ET.ParseError as exc:
            raise HooknbError(f"the payload is not well-formed XML: {exc}") from None
    depth = xml_depth(payload)
    if depth > MAX_DEPTH:
        raise HooknbError(f"the payload nests {depth} levels deep; at most {MAX_DEPTH} can be sent")
    return payload


def publish_size(op: Operation) -> int:
    """The bytes (UTF-8) of the stanza that publishes ``op``: its payload as it is sent, its
    service, node and item id, and :data:`ENVELOPE_BYTES` (so never less than what is sent)."""
    names = sum(len(escape(name).encode()) for name in (op.service, op.node, op.item_id or ""))
    return ENVELOPE_BYTES + names + len((serialise(op.payload) or "").encode())
