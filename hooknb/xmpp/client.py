"""The shared per-account XMPP client: connection, reconnection and incoming events.

A :class:`Client` wraps one slixmpp ``ClientXMPP`` running on hooknb's background loop (see
:mod:`hooknb.xmpp.loop`).  It connects, reconnects after a lost connection (restoring its
subscriptions), and takes incoming PubSub notifications, parsed into
:class:`~hooknb.xmpp.events.Event` objects handed on in batches on the loop thread.  Its PubSub
operations (publish, items, nodes, subscriptions) come from :class:`~hooknb.xmpp.pubsub.PubSub`.
Every operation exists twice: ``apublish(...)`` is awaitable from any loop (the kernel's, a
script's, or an async hook's) and ``publish(...)`` blocks until the result is in (for plain
code and sync hooks).

The client knows nothing about hooks.  It talks to the layer above through one
:class:`~hooknb.xmpp.operations.ClientHandler` given at construction: told before presence is sent,
when a session has started (subscriptions restored), of each batch of incoming events, and asked
to run every publish and retract (so before/after hooks can wrap them).  A publish larger than
the server takes (:attr:`Client.max_bytes`) is refused before it is sent.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import xml.etree.ElementTree as ET
from typing import Any

import slixmpp
from slixmpp import JID
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from . import connection, resumption
from . import loop as _loop
from .connection import ConnectOptions, split_jid
from ..errors import ConnectError, HooknbError
from .events import Event, parse_notification, payload_digest
from .operations import ClientHandler
from .pubsub import PubSub
from .resumption import Resumption
from .secret import Secret, hide
from .stream import Stream

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 20.0
RECONNECT_DELAYS = (0.2, 0.5, 1, 2, 5, 10, 30)
#: slixmpp's plugins each client registers (stream management's, xep_0198, where the server offers it)
PLUGINS = ("xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0199")
RECENT_PEP = 256  # PEP notifications remembered to drop a server's duplicate copies
TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
STARTTLS_REQUIRED = f"{{http://etherx.jabber.org/streams}}features/{{{TLS_NS}}}starttls/{{{TLS_NS}}}required"
#: xep_0060's handlers of pubsub#event messages, which hooknb's own handler replaces.
PUBSUB_EVENT_HANDLERS = ("Pubsub Event: Items", "Pubsub Event: Purge", "Pubsub Event: Delete",
                         "Pubsub Event: Configuration", "Pubsub Event: Subscription")

class Client(PubSub):
    """One account's connection (use :func:`hooknb.connect` rather than building one).

    ``state`` is one of ``disconnected``, ``connecting``, ``connected``, ``reconnecting``,
    ``failed``; ``last_error`` says why it last failed.
    """

    def __init__(self, jid: str, password: str | Secret, options: ConnectOptions | None = None,
                 handler: ClientHandler | None = None) -> None:
        password = hide(password)  # a traceback shows this frame's arguments (see hooknb.xmpp.secret)
        self.options = options or ConnectOptions()
        self.options.check(jid)
        parsed = split_jid(jid)
        self.jid = parsed.bare
        # a resource of its own per client: two processes on one account must not kick each other
        self.resource = parsed.resource or f"hooknb-{secrets.token_hex(4)}"
        # (None, None): the domain is looked up in DNS (SRV records)
        self.host, self.port = self.options.address(parsed.domain)
        self._password: Secret = password
        #: Subscriptions answered, ever (a start that keeps moving is waited for, see aconnect).
        self.progress = 0
        self._state = "disconnected"
        self._state_cv = threading.Condition()
        self.last_error: str | None = None
        self._address_error = "no address to connect to"  # why the latest address failed
        self.auto_reconnect = True
        self.reconnect_delays: tuple[float, ...] = RECONNECT_DELAYS
        self.handler = handler or ClientHandler()
        self._subscriptions: set[tuple[str, str]] = set()
        self._subscribing: set[tuple[str, str]] = set()  # asked for, not answered yet
        self.reconnects = 0
        self._closing = False
        self._reconnect_task: asyncio.Task | None = None
        self._session_ready: asyncio.Event | None = None
        self.xmpp: slixmpp.ClientXMPP | None = None
        self._lost_future: asyncio.Future | None = None
        self.resumption = Resumption()
        self._up = asyncio.Event()  # set while a session is up (used on the loop only)
        self._dropped = asyncio.Event()  # set when a connection is lost (see _reconnect_loop)
        self._recent: dict[tuple, None] = {}  # the latest PEP notifications, to drop copies
        self._incoming: list[Event] = []  # events read, not yet handed on (see _hand_on)

    @property
    def _lost(self) -> asyncio.Future:
        """Resolved, with why, when what was sent on the session can no longer be answered: the
        stream was cut and cannot be resumed (XEP-0198), or its resumption was refused."""
        if self._lost_future is None or self._lost_future.done():
            self._lost_future = asyncio.get_running_loop().create_future()
        return self._lost_future

    def __repr__(self) -> str:
        return f"<hooknb.Client {self.jid} {self.state}>"

    @property
    def state(self) -> str:
        """connecting, connected, reconnecting, disconnected or failed."""
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        with self._state_cv:
            self._state = value
            self._state_cv.notify_all()

    def wait_for_state(self, *states: str, timeout: float = 30.0) -> bool:
        """Block until the state is one of ``states`` (False on timeout)."""
        with self._state_cv:
            return self._state_cv.wait_for(lambda: self._state in states, timeout)

    # ------------------------------------------------------------------ connection
    def _build(self) -> slixmpp.ClientXMPP:
        xmpp = Stream(f"{self.jid}/{self.resource}", self._password, loop=_loop.get_loop(),
                      ssl_context=connection.tls_context(self.options))
        xmpp.on_notification = self._on_notification
        xmpp.on_read_end = self._hand_on
        connection.apply(xmpp, self.options)
        for plugin in PLUGINS:
            xmpp.register_plugin(plugin)
        resumption.enable(xmpp)  # stream management, where the server offers it
        self.resumption.watch(xmpp)
        # Notifications are taken before slixmpp makes stanza objects of them (Stream):
        # xep_0060's handlers of notifications go, they would never see one.
        for name in PUBSUB_EVENT_HANDLERS:
            xmpp.remove_handler(name)
        xmpp.add_event_handler("session_start", self._on_session_start)
        xmpp.add_event_handler("session_resumed", self._on_session_resumed)
        xmpp.add_event_handler("session_end", self._on_session_end)
        xmpp.add_event_handler("disconnected", self._on_disconnected)
        xmpp.add_event_handler("failed_all_auth", self._on_failed_auth)
        xmpp.add_event_handler("connection_failed", self._on_connection_failed)
        xmpp.add_event_handler("reconnect_delay", self._on_addresses_failed)
        xmpp.add_event_handler("ssl_invalid_chain", self._on_invalid_certificate)
        xmpp.add_event_handler("stream_error", self._on_stream_error)
        if self.options.plaintext:
            # slixmpp, told not to use TLS, waits out the timeout when the server requires it
            xmpp.register_handler(Callback("hooknb TLS required", MatchXPath(STARTTLS_REQUIRED),
                                           self._on_tls_required))
        xmpp.exception = self._on_exception  # slixmpp only logs handler exceptions
        return xmpp

    def _on_exception(self, exc: BaseException) -> None:
        log.error("error in an XMPP handler of %s: %r", self.jid, exc, exc_info=exc)

    @_loop.on_loop
    async def aconnect(self, timeout: float = CONNECT_TIMEOUT) -> Client:
        """Connect and wait until the session has started (the handler's ``session_started``
        included); :class:`ConnectError` with the reason if it cannot."""
        if self.state == "connected":
            return self
        self._closing = False
        self.state = "connecting"
        self.xmpp = self._build()
        self._session_ready = asyncio.Event()
        self._failure: asyncio.Future = asyncio.get_running_loop().create_future()
        self.xmpp.connect(self.host, self.port)
        waiter = asyncio.ensure_future(self._session_ready.wait())
        moved = self._moved()
        try:  # a start that keeps moving (thousands of nodes subscribed and caught up) is waited for
            while True:
                done, _ = await asyncio.wait({waiter, self._failure}, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                if done or self._moved() == moved:
                    break
                moved = self._moved()
        finally:
            waiter.cancel()
        if self._failure in done or not done:
            doing = self.handler.activity
            reason = self._failure.result() if self._failure.done() else (
                f"no session within {timeout:.0f} s" + (f" (still {doing})" if doing else ""))
            self.state, self.last_error = "failed", reason
            await self._drop()
            self.state = "failed"
            raise ConnectError(f"cannot connect {self.jid}: {reason}")
        return self

    def _moved(self) -> int:
        """How far a session's start has got: subscriptions answered, the handler's progress."""
        return self.progress + self.handler.progress

    async def _drop(self) -> None:
        self._closing = True
        if self.xmpp is not None:
            self.xmpp.cancel_connection_attempt()
            disconnected = self.xmpp.disconnected
            self.xmpp.disconnect(wait=0.5)
            try:
                await asyncio.wait_for(disconnected, 3)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - best effort
                self.xmpp.abort()
            # slixmpp cancels its send loop only when the object is collected, which leaves a
            # "Task was destroyed but it is pending" warning: end it here instead.
            sender = self.xmpp._run_out_filters
            if sender is not None and not sender.done():
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)

    def _fail(self, reason: str) -> None:
        failure = getattr(self, "_failure", None)
        if failure is not None and not failure.done():
            failure.set_result(reason)

    def _on_failed_auth(self, _event: Any) -> None:
        reason = "authentication failed (wrong JID or password)"
        if self.state == "reconnecting":  # the password changed while away: give up
            self.last_error = reason
            self.state = "failed"
            self._closing = True
            self._lose(f"the connection was lost before the server answered, and reconnecting failed: {reason}")
            if self._reconnect_task is not None:
                self._reconnect_task.cancel()
        self._fail(reason)

    def _on_connection_failed(self, error: Any) -> None:
        """One address failed; slixmpp tries the next (SRV records, A and AAAA records), and the
        attempt fails once all have (:meth:`_on_addresses_failed`)."""
        self._address_error = connection.describe_failure(error, self.jid.split("@")[-1], self._where)
        if self.state != "connecting":
            self.last_error = self._address_error

    @property
    def _where(self) -> str:
        """The address connected to, for messages: host:port, or the domain looked up in DNS."""
        return f"{self.host}:{self.port}" if self.host else self.jid.split("@")[-1]

    def _on_addresses_failed(self, _delay: Any) -> None:
        """slixmpp starts another round of connection attempts: every address has failed."""
        if self.state == "connecting":
            self._fail(self._address_error)

    def _on_invalid_certificate(self, error: Any) -> None:
        """The certificate presented after STARTTLS failed verification (handling this event
        tells slixmpp not to disconnect by itself)."""
        domain = self.jid.split("@")[-1]
        reason = connection.describe_failure(error, domain, self.host or domain)
        if self.state == "connecting":
            self._fail(reason)  # _aconnect drops the connection
        else:  # a reconnection: end this attempt, the reconnect loop tries again
            self.xmpp.disconnect_reason = reason
            self.xmpp.abort()

    def _on_tls_required(self, _features: Any) -> None:
        self._fail(f"{self._where} requires TLS (STARTTLS): drop --plaintext")

    def _on_stream_error(self, error: Any) -> None:
        """The server ended the stream before the session started (e.g. host-unknown)."""
        if self.state == "connecting" and error["condition"] != "see-other-host":
            text = f": {error['text']}" if error["text"] else ""
            self._fail(f"the server closed the stream ({error['condition']}{text})")

    async def _on_session_start(self, _event: Any) -> None:
        reconnected = self._session_ready is not None and self._session_ready.is_set()
        await self.handler.prepare_session(self)
        self.xmpp.send_presence()
        self.state = "connected"
        try:
            # a subscription refused now (its node was deleted meanwhile, say) is left out: the
            # handler sees its hooked nodes unsubscribed and deals with them
            restore, self._subscriptions = self._subscriptions, set()
            _added, refused = await self.asubscribe_missing(restore)
            for (service, node), error in refused.items():
                log.warning("%s: subscription to %s node %r not restored: %s", self.jid, service, node, error)
            await self.handler.session_started(self, reconnected)
        finally:  # connect() and reconnect() return once subscriptions and catch-up are done
            self._session_ready.set()
            self._set_up()

    async def _on_session_resumed(self, _stanza: Any) -> None:
        """The stream was resumed (XEP-0198): the session, its subscriptions with it, goes on;
        what the server queued meanwhile follows, and what it had not acknowledged of ours is
        sent again by slixmpp (answered on this stream)."""
        self.state = "connected"
        try:
            await self.handler.session_resumed(self)
        finally:
            self._set_up()

    def _set_up(self) -> None:
        """The session is taken up (the handler's work for it done): up, unless its connection
        was lost meanwhile, when the way back is a new attempt (see :meth:`_reconnect_loop`)."""
        if self.state == "connected":
            self._up.set()

    def _on_session_end(self, _event: Any) -> None:
        """The session is over: its stream closed, or its resumption refused (a new one follows)."""
        refusal = self.resumption.take_refusal()
        self._lose("the connection was lost before the server answered" + (
            f", and the server refused to resume the stream ({refusal}): it may or may not have been "
            "applied" if refusal else ""))

    def _lose(self, reason: str) -> None:
        """Fail the requests waiting for an answer on the current session (:meth:`_iq`)."""
        if self._lost_future is not None and not self._lost_future.done():
            self._lost_future.set_result(reason)

    def _on_disconnected(self, reason: Any) -> None:
        if self._closing or not (self.auto_reconnect and resumption.resumable(self.xmpp)):
            self._lose("the connection was lost before the server answered")
        self._up.clear()
        self._dropped.set()
        if self._closing:
            if self.state != "failed":
                self.state = "disconnected"
            return
        if self.state == "connecting" and self.xmpp.xml_root is None:
            self._fail(self._closed_before_stream())
        if self.state in ("connecting", "failed"):
            return
        self.state = "reconnecting"
        self.last_error = str(reason) if reason else "connection lost"
        if self.auto_reconnect:
            self._start_reconnecting()

    def _closed_before_stream(self) -> str:
        """Why the server closed the connection before opening its XMPP stream: a server waiting
        for a TLS handshake (a direct TLS port) drops a client that starts with XML at once."""
        if self.options.uses_direct_tls or "starttls" in self.xmpp.features:
            return f"{self._where} closed the connection before the XMPP stream began"
        return (f"{self._where} closed the connection before the XMPP stream began: is it a direct TLS "
                "port? (give --direct-tls)")

    def _start_reconnecting(self, first_delay: float | None = None) -> None:
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.ensure_future(self._reconnect_loop(first_delay))

    @_loop.on_loop
    async def areconnect(self) -> None:
        """Reconnect now after a lost connection (when ``auto_reconnect`` is off, or to skip the
        back-off wait); returns once the session is up again."""
        if self.state == "connected":
            return
        if self.state not in ("reconnecting", "failed") or self.xmpp is None:
            raise HooknbError(f"{self.jid} cannot reconnect from state {self.state!r}")
        self.state = "reconnecting"
        self._closing = False
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            self._reconnect_task = None
        self._start_reconnecting(first_delay=0)
        await asyncio.shield(self._reconnect_task)

    async def _reconnect_loop(self, first_delay: float | None = None) -> None:
        attempt = 0
        while not self._closing and self.state != "connected":
            delays = self.reconnect_delays
            delay = delays[min(attempt, len(delays) - 1)] if first_delay is None or attempt else first_delay
            await asyncio.sleep(delay)
            attempt += 1
            if self._closing:
                return
            self.reconnects += 1
            self._dropped.clear()
            self.xmpp.connect(self.host, self.port)
            # Back once the session is taken up; but a connection lost before that (cut again
            # while the handler still took up the session) ends this attempt too: the next one
            # follows, after its delay.  Waiting for the session alone, this task ended when the
            # handler was done, after the cut, and nothing reconnected (tests/test_resumption.py).
            up, dropped = (asyncio.ensure_future(event.wait()) for event in (self._up, self._dropped))
            try:
                await asyncio.wait((up, dropped), timeout=10 + delay, return_when=asyncio.FIRST_COMPLETED)
            finally:
                up.cancel()
                dropped.cancel()
            if self._up.is_set():
                return
            if not self._dropped.is_set():
                self.xmpp.cancel_connection_attempt()
                self.last_error = self.last_error or "reconnect timed out"

    async def _adisconnect(self) -> None:
        """Disconnect cleanly (unavailable presence, stream close)."""
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        await self._drop()
        self._lose("the client was disconnected before the server answered")
        self.state = "disconnected"

    # ------------------------------------------------------------------ incoming
    def _on_notification(self, xml: ET.Element) -> None:
        """A ``<message/>`` with a ``pubsub#event`` child, from :class:`Stream` (loop thread):
        its events join those of the stanzas read with it, handed on together at the end of the
        read (:meth:`_hand_on`)."""
        try:
            service = JID(xml.get("from", "")).bare
            events = parse_notification(self.jid, service, xml)
            if events and self.is_pep(service):
                events = [e for e in events if self._first_copy(e)]
        except Exception as exc:  # noqa: BLE001 - a bad notification must not stop the stream
            log.exception("a notification to %s could not be read: %r", self.jid, exc)
            return
        self._incoming.extend(events)

    def _hand_on(self) -> None:
        """Hand the events read since the last call to the handler, in one call, at the end of
        each read (:attr:`Stream.on_read_end`): one read from the socket holds many
        notifications, and the pipeline's cost per call (journal, inbox, lanes) is then paid
        once for all of them (loop thread)."""
        if not self._incoming:
            return
        events, self._incoming = self._incoming, []
        try:
            self.handler.on_events(self, events)
        except Exception as exc:  # noqa: BLE001 - a failing handler must not stop the stream
            log.exception("the notification handler of %s failed: %r", self.jid, exc)

    def _first_copy(self, event: Event) -> bool:
        """False for a second copy of a PEP notification: ejabberd sends the owner one copy to
        the bare JID (as a subscriber) and one to the full JID (for the +notify interest).  The
        payload is remembered by its digest, never itself (it may weigh megabytes)."""
        payload = None if event.payload is None else payload_digest(event.payload)
        key = (event.service, event.node, event.kind, event.item_id, payload)
        if key in self._recent:
            return False
        self._recent[key] = None
        if len(self._recent) > RECENT_PEP:
            del self._recent[next(iter(self._recent))]
        return True

    @_loop.on_loop
    async def adisconnect(self) -> None:
        """Close the connection cleanly."""
        await self._adisconnect()

    disconnect = _loop.blocking(adisconnect)
    reconnect = _loop.blocking(areconnect)
