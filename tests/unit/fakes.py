"""Stand-ins for the network side, for unit tests of the stages above the client."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hooknb.xmpp import loop as _loop
from hooknb.errors import HooknbError, PubSubError
from hooknb.xmpp.events import Event
from hooknb.xmpp.resumption import Resumption
from hooknb.host import Host

if TYPE_CHECKING:
    from hooknb.xmpp.client import Client

ACCOUNT = "alice@localhost"
SERVICE = "pubsub.localhost"


class FakeClient:
    """What the session and the engine use of a :class:`hooknb.xmpp.client.Client`: a JID, a state,
    the items each node holds (a node absent from ``nodes`` does not exist) and how many it
    keeps (``capacity``; the nodes asked are in ``rooms_asked``), subscriptions, ``last_error``;
    ``refused`` subscriptions fail with their error, and ``on_fetch`` is called as each fetch of
    items starts."""

    def __init__(self, jid: str = ACCOUNT) -> None:
        self.jid = jid
        self.state = "connected"
        self.last_error: str | None = None
        self.reconnects = 0
        self.resumption = Resumption()
        self.capacity: str | None = None
        self.rooms_asked: list[str] = []
        self.nodes: dict[tuple[str, str], list[Event]] = {}
        self.subscriptions: set[tuple[str, str]] = set()
        self.refused: dict[tuple[str, str], HooknbError] = {}
        self.on_fetch: Callable[[str], None] | None = None

    def hold(self, node: str, *item_ids: str, service: str = SERVICE) -> list[Event]:
        """Make ``node`` hold these items (oldest first); returns their events."""
        events = [event(node, i, service=service, account=self.jid) for i in item_ids]
        self.nodes.setdefault((service, node), []).extend(events)
        return events

    def missing(self, node: str, service: str = SERVICE) -> None:
        """Make subscriptions to ``node`` fail as the server does for a node that does not exist."""
        self.refused[(service, node)] = PubSubError(f"subscribe: node {node!r} not found on {service} "
                                                    "(item-not-found)", "item-not-found")

    async def aget_items(self, node: str, service: str | None = None, max_items: int | None = None) -> list[Event]:
        if self.on_fetch is not None:
            self.on_fetch(node)
        items = list(self.nodes.get((service or self.jid, node), []))
        return items[-max_items:] if max_items else items

    async def aitems_answer(self, node: str, service: str | None = None) -> list[Event]:
        return await self.aget_items(node, service)  # the answer, here: its events already

    @staticmethod
    def items_held(answer: list[Event]) -> int:
        return len(answer)

    @staticmethod
    def item_events(_service: str, _node: str, answer: list[Event]) -> list[Event]:
        return answer

    async def astored_items(self, node: str, service: str | None = None, last: int | None = None) -> list[Event]:
        return await self.aget_items(node, service, last)

    async def anode_field(self, node: str, var: str, service: str | None = None) -> str | None:
        if var != "pubsub#max_items":
            return None
        self.rooms_asked.append(node)
        return self.capacity

    def subscribed(self, service: str, node: str, pending: bool = True) -> bool:
        return (service, node) in self.subscriptions

    def drop_subscription(self, service: str, node: str) -> None:
        self.subscriptions.discard((service, node))

    async def asubscribe_missing(self, pairs: set[tuple[str, str]]) -> tuple[list, dict]:
        wanted = sorted(pairs - self.subscriptions)
        added = [p for p in wanted if p not in self.refused]
        self.subscriptions.update(added)
        return added, {p: self.refused[p] for p in wanted if p in self.refused}


def event(node: str, item_id: str | None, kind: str = "publish", service: str = SERVICE,
          account: str = ACCOUNT, publisher: str | None = None, payload: str | None = None) -> Event:
    """One synthetic event (payload ``<n xmlns='urn:test'>ID</n>`` by default)."""
    if payload is None and kind == "publish":
        payload = f'<n xmlns="urn:test">{item_id}</n>'
    return Event(account, service, node, kind, item_id, publisher, payload)


def on_loop(fn: Any, *args: Any) -> Any:
    """Call ``fn(*args)`` on hooknb's loop thread (where the pipeline runs) and return its result."""

    async def call() -> Any:
        return fn(*args)

    return _loop.call(call())


def make_host(tmp_path: Any) -> Host:
    """A Host on a scratch store, with no account connected."""
    return Host(store_path=str(tmp_path / "hooknb.sqlite3"))


STREAM_HEADER = (b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
                 b"from='localhost' id='s1' version='1.0'>")


def receive(client: Client, *reads: bytes) -> None:
    """Feed each of ``reads`` to the client's stream (built and opened if need be) as one read
    from its socket, through :meth:`hooknb.xmpp.stream.Stream.data_received` (on hooknb's loop)."""
    if client.xmpp is None:
        client.xmpp = client._build()
    xmpp = client.xmpp

    async def go() -> None:
        if xmpp.parser is None:
            xmpp.init_parser()
            xmpp.data_received(STREAM_HEADER)
        for data in reads:
            xmpp.data_received(data)
    _loop.call(go())


def read(client: Client, *reads: list[ET.Element]) -> None:
    """:func:`receive` each list of stanzas as one read."""
    receive(client, *(b"".join(ET.tostring(xml) for xml in stanzas) for stanzas in reads))
