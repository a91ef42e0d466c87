"""The PubSub operations of a :class:`~hooknb.xmpp.client.Client` (XEP-0060, XEP-0163 PEP).

:class:`PubSub` is a mixin the client inherits: subscriptions (restored by the client on every
session start), publish and retract (run through the handler, so before/after hooks wrap
them, and refused above :attr:`PubSub.max_bytes`), items (paged with RSM, XEP-0059) and nodes
(created, configured with data forms, purged, deleted).  Every request waits for its answer or
for the connection to drop, whichever comes first (:meth:`PubSub._iq`), and fails with a
one-line :class:`~hooknb.errors.PubSubError`.  Each operation exists twice: ``apublish`` is
awaitable from any loop, ``publish`` blocks until the result is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import xml.etree.ElementTree as ET
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from . import loop as _loop
from . import resumption
from ..errors import ConnectionLostError, HooknbError, PayloadTooLargeError, PubSubError
from .connection import ConnectOptions, split_jid
from .events import Event, serialise
from .operations import ClientHandler, Operation, parse_payload, publish_size

if TYPE_CHECKING:
    import slixmpp

IQ_TIMEOUT = 30.0
RSM = "http://jabber.org/protocol/rsm"
PUBSUB = "http://jabber.org/protocol/pubsub"
PUBSUB_TAG, ITEM_TAG = f"{{{PUBSUB}}}pubsub", f"{{{PUBSUB}}}item"
ITEMS_PATH = f"{PUBSUB_TAG}/{{{PUBSUB}}}items"
FIELD_TAG, VALUE_TAG = "{jabber:x:data}field", "{jabber:x:data}value"
SUBSCRIBE_WINDOW = 32  # subscription requests in flight at a session start
RSM_PAGE = 100  # items asked for at a time where a service pages them (XEP-0059)


def _rsm_query(size: int, cursor: str | None, forward: bool) -> ET.Element:
    """An RSM ``<set/>`` asking for ``size`` items after ``cursor`` (``forward``) or before it
    (an empty ``before``: the newest)."""
    query = ET.Element(f"{{{RSM}}}set")
    ET.SubElement(query, f"{{{RSM}}}max").text = str(size)
    if forward and cursor is not None:
        ET.SubElement(query, f"{{{RSM}}}after").text = cursor
    elif not forward:
        ET.SubElement(query, f"{{{RSM}}}before").text = cursor or ""
    return query


def _items_request(xmpp: slixmpp.ClientXMPP, service: str, node: str, max_items: int | None) -> Any:
    """A request of ``node``'s items (its ``max_items`` newest, when given), not sent yet."""
    iq = xmpp.Iq(sto=service, stype="get")
    iq["pubsub"]["items"]["node"] = node
    if max_items is not None:
        iq["pubsub"]["items"]["max_items"] = max_items
    return iq


class PubSub:
    """PubSub requests over the client's session (a mixin of :class:`~hooknb.xmpp.client.Client`,
    which provides the attributes below)."""

    jid: str
    state: str
    options: ConnectOptions
    handler: ClientHandler
    xmpp: slixmpp.ClientXMPP | None
    _subscriptions: set[tuple[str, str]]
    _subscribing: set[tuple[str, str]]
    _lost: asyncio.Future
    _up: asyncio.Event
    auto_reconnect: bool

    @property
    def subscriptions(self) -> frozenset[tuple[str, str]]:
        """The (service, node) pairs this client receives notifications of (restored on every
        session start)."""
        return frozenset(self._subscriptions)

    def subscribed(self, service: str, node: str, pending: bool = True) -> bool:
        """Whether this client subscribed to ``node`` on ``service``, or (``pending``) is
        subscribing (a server may send the node's last item before it answers), without copying
        the set (:attr:`subscriptions` copies it: a cost per call that grows with the nodes)."""
        key = (service, node)
        return key in self._subscriptions or (pending and key in self._subscribing)

    def _service(self, service: str | None) -> str:
        if not service:
            return self.jid
        return split_jid(service).bare

    @staticmethod
    def is_pep(service: str) -> bool:
        """PEP services are user accounts (a JID with a local part)."""
        return "@" in service

    async def _iq(self, what: str, service: str, node: str, request: Awaitable[Any]) -> Any:
        lost, asked = self._lost, asyncio.ensure_future(request)
        try:
            done, _ = await asyncio.wait({asked, lost}, return_when=asyncio.FIRST_COMPLETED)
            answer = done.pop()
            if answer is lost:
                raise ConnectionLostError(f"{what} on {service} node {node!r}: {lost.result()}", "connection-lost")
            return answer.result()
        except IqError as exc:
            cond = exc.condition or "error"
            text = f": {exc.text}" if exc.text else ""
            if cond == "item-not-found":
                raise PubSubError(f"{what}: node {node!r} not found on {service} ({cond}{text})",
                                  cond) from None
            raise PubSubError(f"{what} on {service} node {node!r} refused: {cond}{text}", cond) from None
        except IqTimeout:
            cut = "" if self.state == "connected" else ": the connection was lost and did not come back in time"
            raise ConnectionLostError(f"{what} on {service} node {node!r}: no answer within "
                                      f"{IQ_TIMEOUT:.0f} s{cut}", "timeout") from None
        finally:
            asked.cancel()  # given up (the connection was lost, or the caller was cancelled)

    def _require_session(self) -> slixmpp.ClientXMPP:
        if self.xmpp is None or self.state not in ("connected", "connecting"):
            raise HooknbError(f"{self.jid} is not connected ({self.state})")
        return self.xmpp

    async def _session(self) -> slixmpp.ClientXMPP:
        """The stream to send on.  While a cut stream that can be resumed is reconnecting, wait
        (up to :data:`IQ_TIMEOUT`) for it to be resumed, or replaced by a new session, rather than
        fail: a hook publishing during a cut publishes once it is over."""
        if self.state == "reconnecting" and self.auto_reconnect and resumption.resumable(self.xmpp):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._up.wait(), IQ_TIMEOUT)
        return self._require_session()

    async def _subscribe_raw(self, service: str, node: str) -> None:
        self._subscribing.add((service, node))
        try:
            await self._subscribe_request(service, node)
        finally:
            self._subscribing.discard((service, node))

    async def _subscribe_request(self, service: str, node: str) -> None:
        xmpp = self.xmpp
        if self.is_pep(service):
            await self._notify_interest([node])
        else:
            iq = xmpp.Iq(sto=service, stype="set")
            iq["pubsub"]["subscribe"]["node"] = node
            iq["pubsub"]["subscribe"]["jid"] = xmpp.boundjid.bare
            await self._iq("subscribe", service, node, xmpp.ask(iq, IQ_TIMEOUT))

    async def _notify_interest(self, nodes: list[str]) -> None:
        """PEP (XEP-0163): a +notify interest in each node in our capabilities, then one update
        of them, made sure the server has processed it (it may query our disco#info first)."""
        disco = self.xmpp.plugin["xep_0030"]
        for node in nodes:
            disco.add_feature(f"{node}+notify")
        await self._refresh_caps()

    async def _refresh_caps(self) -> None:
        xmpp = self.xmpp
        queried = asyncio.Event()
        handler = Callback("hooknb caps query", MatchXPath(
            "{jabber:client}iq/{http://jabber.org/protocol/disco#info}query"),
            lambda iq: queried.set() if iq["type"] == "get" else None)
        xmpp.register_handler(handler)
        try:
            await xmpp.plugin["xep_0115"].update_caps(broadcast=True)
            await self._ping()
            if queried.is_set():  # the server asked for our features: let the answer land
                await asyncio.sleep(0)
                await self._ping()
        finally:
            xmpp.remove_handler("hooknb caps query")

    async def _ping(self) -> None:
        try:
            await self.xmpp.plugin["xep_0199"].ping(self.xmpp.boundjid.domain, timeout=10)
        except (IqError, IqTimeout):
            pass

    @_loop.on_loop
    async def asubscribe(self, node: str, service: str | None = None) -> None:
        """Receive notifications of ``node`` on ``service`` (default: own PEP)."""
        await self._session()
        service = self._service(service)
        await self._subscribe_raw(service, node)
        self._subscriptions.add((service, node))

    async def asubscribe_missing(self, pairs: set[tuple[str, str]]) -> tuple[list[tuple[str, str]],
                                                                            dict[tuple[str, str], HooknbError]]:
        """Subscribe to the (service, node) pairs not subscribed yet: returns those added and,
        for those refused, the error (loop thread, with a session).  They are asked for
        ``SUBSCRIBE_WINDOW`` at a time, and PEP nodes' interests in one update of the
        capabilities.  Each is asked for even if the service lists it among the account's
        subscriptions (XEP-0060 §5.6): Prosody 0.12 still lists a node deleted and made again,
        to which nothing is sent any more."""
        asked = sorted(pairs - self._subscriptions)
        pep = [pair for pair in asked if self.is_pep(pair[0])]
        failed: dict[tuple[str, str], HooknbError] = {}
        slots = asyncio.Semaphore(SUBSCRIBE_WINDOW)

        async def subscribe(service: str, node: str) -> None:
            async with slots:
                try:
                    await self._subscribe_raw(service, node)
                except HooknbError as exc:
                    failed[(service, node)] = exc
                self.progress += 1

        self._subscribing.update(pep)
        try:
            await asyncio.gather(*(subscribe(*pair) for pair in asked if pair not in pep),
                                 *([self._notify_interest([node for _s, node in pep])] if pep else []))
        finally:
            self._subscribing.difference_update(pep)
        added = [pair for pair in asked if pair not in failed]
        self._subscriptions.update(added)
        return added, failed

    def drop_subscription(self, service: str, node: str) -> None:
        """Forget a subscription the server ended (its node was deleted); loop thread."""
        self._subscriptions.discard((service, node))

    @_loop.on_loop
    async def aunsubscribe(self, node: str, service: str | None = None) -> None:
        """Stop receiving notifications of ``node`` on ``service``."""
        xmpp = await self._session()
        service = self._service(service)
        self._subscriptions.discard((service, node))
        if self.is_pep(service):
            xmpp.plugin["xep_0030"].del_feature(feature=f"{node}+notify")
            await self._refresh_caps()
        else:
            await self._iq("unsubscribe", service, node,
                           xmpp.plugin["xep_0060"].unsubscribe(service, node, timeout=IQ_TIMEOUT))

    @property
    def max_bytes(self) -> int:
        """The largest stanza this client sends: the limit the server advertises (XEP-0478), else
        ``options.max_bytes`` (default :data:`~hooknb.xmpp.connection.DEFAULT_MAX_BYTES`)."""
        advertised = self.xmpp.limits.max_bytes if self.xmpp is not None else None
        return advertised or self.options.max_bytes

    def _check_size(self, op: Operation) -> None:
        """Refuse a publish whose stanza is larger than :attr:`max_bytes`: sent, it would make
        the server close the stream (the connection drops, every operation in flight with it)."""
        size, advertised = publish_size(op), self.xmpp.limits.max_bytes
        limit = advertised or self.options.max_bytes
        if size > limit:
            whose = (f"that {self.jid.split('@')[-1]} advertises" if advertised else
                     "for servers that advertise none (raise it with --max-bytes or max_bytes=)")
            raise PayloadTooLargeError(f"publish to node {op.node!r} on {op.service} not sent: the item "
                                       f"takes {size:,} bytes, over the {limit:,}-byte limit {whose}")

    async def _send_publish(self, op: Operation) -> str:
        await self._session()  # before hooks may have run across a cut
        self._check_size(op)
        result = await self._iq("publish", op.service, op.node, self.xmpp.plugin["xep_0060"].publish(
            op.service, op.node, id=op.item_id, payload=op.payload, timeout=IQ_TIMEOUT))
        return result["pubsub"]["publish"]["item"]["id"] or op.item_id

    async def _send_retract(self, op: Operation) -> None:
        await self._session()
        await self._iq("retract", op.service, op.node, self.xmpp.plugin["xep_0060"].retract(
            op.service, op.node, op.item_id, notify=True, timeout=IQ_TIMEOUT))

    @_loop.on_loop
    async def apublish(self, node: str, payload: str | ET.Element | None, item_id: str | None = None,
                       service: str | None = None) -> str:
        """Publish ``payload`` (XML string or Element) as an item of ``node``; returns the item id."""
        await self._session()
        op = Operation("publish", self._service(service), node, item_id, parse_payload(payload))
        return await self.handler.intercept(self, op, self._send_publish)

    @_loop.on_loop
    async def aretract(self, node: str, item_id: str, service: str | None = None) -> None:
        """Retract (delete) item ``item_id`` from ``node``, notifying subscribers."""
        await self._session()
        op = Operation("retract", self._service(service), node, item_id)
        await self.handler.intercept(self, op, self._send_retract)

    @_loop.on_loop
    async def aget_items(self, node: str, service: str | None = None, max_items: int | None = None,
                         item_ids: list[str] | None = None) -> list[Event]:
        """The items stored in ``node`` (newest last), as ``publish`` events."""
        service = self._service(service)
        return self.item_events(service, node, await self.aitems_answer(node, service, max_items, item_ids))

    async def aitems_answer(self, node: str, service: str | None = None, max_items: int | None = None,
                            item_ids: list[str] | None = None) -> ET.Element:
        """The service's answer to a request of the items stored in ``node``, as XML, made into
        events by :meth:`item_events` (loop thread): a catch-up asks for the next nodes' items
        as soon as an answer comes, and makes its events only when it takes that node in."""
        xmpp = await self._session()
        service = self._service(service)
        iq = _items_request(xmpp, service, node, max_items)
        for item_id in item_ids or ():
            ET.SubElement(iq["pubsub"]["items"].xml, ITEM_TAG, id=item_id)
        return await self._iq("get items", service, node, xmpp.ask(iq, IQ_TIMEOUT))

    @staticmethod
    def items_held(answer: ET.Element) -> int:
        """How many items an answer of :meth:`aitems_answer` holds."""
        items = answer.find(ITEMS_PATH)
        return 0 if items is None else sum(item.tag == ITEM_TAG for item in items)

    def item_events(self, service: str, node: str, answer: ET.Element) -> list[Event]:
        """The items of an answer to a request of a node's items, as ``publish`` events."""
        items = answer.find(ITEMS_PATH)
        return [] if items is None else [
            Event(self.jid, service, node, "publish", item.get("id") or None, item.get("publisher") or None,
                  serialise(next(iter(item), None))) for item in items if item.tag == ITEM_TAG]

    @_loop.on_loop
    async def astored_items(self, node: str, service: str | None = None, last: int | None = None) -> list[Event]:
        """Every item ``node`` holds, or its ``last`` newest, oldest first, as ``publish`` events.

        Asks for pages of :data:`RSM_PAGE` items (XEP-0059): a service that pages (ejabberd) is
        followed page by page, forwards (``last`` backwards from the newest); one that does not
        (Prosody 0.12) answers with every item it holds in one reply, or the ``last`` newest
        (``max_items``, which ejabberd ignores when it pages).  The order is the service's:
        Prosody moves an item published again to the end, ejabberd keeps it where it was first
        published."""
        xmpp = await self._session()
        service = self._service(service)
        pages: list[list[Event]] = []
        held, cursor, seen = 0, None, set()
        while True:
            iq = _items_request(xmpp, service, node, last)
            iq["pubsub"].xml.append(_rsm_query(RSM_PAGE if last is None else min(RSM_PAGE, last - held),
                                               cursor, forward=last is None))
            result = await self._iq("get items", service, node, xmpp.ask(iq, IQ_TIMEOUT))
            events = self.item_events(service, node, result)
            answer = result.find(f"{PUBSUB_TAG}/{{{RSM}}}set")
            if answer is None:  # the service does not page: this is all it gives
                return events[-last:] if last is not None else events
            if last is None:
                pages.append(events)
            else:
                pages.insert(0, events)
            held += len(events)
            first, count = answer.find(f"{{{RSM}}}first"), answer.findtext(f"{{{RSM}}}count")
            cursor = answer.findtext(f"{{{RSM}}}last" if last is None else f"{{{RSM}}}first")
            done = (not events or cursor is None or cursor in seen
                    or (count is not None and count.isdigit() and held >= int(count))
                    or (last is not None and (held >= last or (first is not None and first.get("index") == "0"))))
            if done:
                flat = [event for page in pages for event in page]
                return flat[-last:] if last is not None else flat
            seen.add(cursor)

    @_loop.on_loop
    async def acreate_node(self, node: str, service: str | None = None,
                           config: dict[str, Any] | None = None) -> None:
        """Create ``node`` (optionally with ``pubsub#`` config fields, e.g. ``{"max_items": 5}``)."""
        xmpp = await self._session()
        service = self._service(service)
        form = self._config_form(config) if config else None
        await self._iq("create node", service, node,
                       xmpp.plugin["xep_0060"].create_node(service, node, config=form, timeout=IQ_TIMEOUT))

    def _config_form(self, config: dict[str, Any]) -> Any:
        """A node configuration form submitting ``config`` (``pubsub#`` prefixed when not)."""
        form = self.xmpp.plugin["xep_0004"].make_form(ftype="submit")
        form.add_field("FORM_TYPE", value="http://jabber.org/protocol/pubsub#node_config", ftype="hidden")
        for key, value in config.items():
            form.add_field(key if key.startswith("pubsub#") else f"pubsub#{key}", value=str(value))
        return form

    @_loop.on_loop
    async def anode_config(self, node: str, service: str | None = None) -> dict[str, Any]:
        """The configuration of ``node``, ``pubsub#`` field by field (its owner may ask)."""
        xmpp = await self._session()
        service = self._service(service)
        result = await self._iq("get node config", service, node,
                                xmpp.plugin["xep_0060"].get_node_config(service, node, timeout=IQ_TIMEOUT))
        fields = result["pubsub_owner"]["configure"]["form"].get_fields()
        return {name: f["value"] for name, f in fields.items() if name != "FORM_TYPE"}

    @_loop.on_loop
    async def anode_field(self, node: str, var: str, service: str | None = None) -> str | None:
        """The first value of one field of ``node``'s configuration, as text (None when the
        form has no such field; its owner may ask).  The answer is read as XML: slixmpp makes a
        data form of the whole configuration, 1.6 ms of the loop's time (about 70 items' worth),
        and a catch-up asks each node seen empty how many items it keeps."""
        xmpp = await self._session()
        service = self._service(service)
        iq = xmpp.Iq(sto=service, stype="get")
        iq["pubsub_owner"]["configure"]["node"] = node
        answer = await self._iq("get node config", service, node, xmpp.ask(iq, IQ_TIMEOUT))
        for field in answer.iter(FIELD_TAG):
            if field.get("var") == var:
                value = field.find(VALUE_TAG)
                return None if value is None else value.text or ""
        return None

    @_loop.on_loop
    async def aconfigure_node(self, node: str, config: dict[str, Any], service: str | None = None) -> None:
        """Change fields of ``node``'s configuration, e.g. ``{"max_items": 5}`` (its owner may)."""
        xmpp = await self._session()
        service = self._service(service)
        await self._iq("configure node", service, node, xmpp.plugin["xep_0060"].set_node_config(
            service, node, self._config_form(config), timeout=IQ_TIMEOUT))

    @_loop.on_loop
    async def adelete_node(self, node: str, service: str | None = None) -> None:
        """Delete ``node`` (subscribers get a ``delete`` event)."""
        xmpp = await self._session()
        service = self._service(service)
        await self._iq("delete node", service, node,
                       xmpp.plugin["xep_0060"].delete_node(service, node, timeout=IQ_TIMEOUT))

    @_loop.on_loop
    async def apurge(self, node: str, service: str | None = None) -> None:
        """Remove every item of ``node`` (subscribers get a ``purge`` event)."""
        xmpp = await self._session()
        service = self._service(service)
        await self._iq("purge", service, node,
                       xmpp.plugin["xep_0060"].purge(service, node, timeout=IQ_TIMEOUT))

    subscribe = _loop.blocking(asubscribe)
    unsubscribe = _loop.blocking(aunsubscribe)
    publish = _loop.blocking(apublish)
    retract = _loop.blocking(aretract)
    get_items = _loop.blocking(aget_items)
    stored_items = _loop.blocking(astored_items)
    create_node = _loop.blocking(acreate_node)
    node_config = _loop.blocking(anode_config)
    configure_node = _loop.blocking(aconfigure_node)
    delete_node = _loop.blocking(adelete_node)
    purge = _loop.blocking(apurge)
