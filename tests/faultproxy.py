"""A TCP proxy between clients and an XMPP server that cuts connections on demand (the network
faults of stream resumption: a laptop asleep, Wi-Fi gone, a NAT table expired).

    with FaultProxy(server.port) as proxy:       # clients connect to proxy.port
        proxy.cut()                              # every connection reset at once (RST)
        proxy.cut(hold=True)                     # ... and new ones wait, accepted, not forwarded
        proxy.release()                          # ... until now
        proxy.hold()                             # new connections wait, open ones go on
        proxy.swallow()                          # client bytes dropped until the next cut

A cut resets both sides of every connection (``SO_LINGER`` 0: a TCP RST, no stream end), so the
client sees its connection reset and the server sees its client gone without ``</stream>``.
The proxy runs on an event loop thread of its own; its methods may be called from any thread.
Used by the tests (``tests/test_resumption.py``) and the bench (``benchmarks/bench.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"
CHUNK = 1 << 16


@dataclass(eq=False)
class _Link:
    """One client connection and, once forwarded, its server connection."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task] = field(default_factory=list)


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close ``writer``'s socket with a TCP RST (no FIN, nothing more sent)."""
    if writer is None or writer.transport.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """Forwards loopback connections on :attr:`port` to ``target_host:target_port``."""

    def __init__(self, target_port: int, target_host: str = LOOPBACK) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0  # connections accepted so far
        self.cuts = 0
        self.released_at: float | None = None  # time.monotonic() of the latest release
        self._links: set[_Link] = set()
        self._swallowing = False
        self.swallowed = 0  # client bytes dropped since swallow()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faultproxy", daemon=True)
        self._open: asyncio.Event | None = None
        self._server: asyncio.base_events.Server | None = None

    # ------------------------------------------------------------------ control (any thread)
    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def close(self) -> None:
        """Stop listening and reset every connection."""
        if self._thread.is_alive():
            self._call(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def cut(self, hold: bool = False) -> int:
        """Reset every connection, both sides; with ``hold``, connections accepted from now on
        wait (TCP connected, nothing forwarded) until :meth:`release`.  Returns how many client
        connections were reset."""
        return self._call(self._cut(hold))

    def hold(self) -> None:
        """Make connections accepted from now on wait until :meth:`release`; open ones go on."""
        self._call(self._hold())

    def release(self) -> float:
        """Forward the connections held and the new ones; returns the time (monotonic) of it."""
        return self._call(self._release())

    def swallow(self) -> None:
        """Drop what clients send from now on (the server never sees it) until the next cut."""
        self._call(self._set_swallow(True))

    @property
    def connections(self) -> int:
        """Client connections open now (forwarded or held)."""
        return len(self._links)

    @property
    def held(self) -> int:
        """Client connections accepted and waiting for :meth:`release`."""
        return sum(1 for link in list(self._links) if link.server is None)

    def wait(self, predicate, timeout: float = 15.0) -> bool:
        """Wait until ``predicate(self)`` holds (polled); False on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # ------------------------------------------------------------------ the proxy's loop
    async def _start(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        self._server.close()
        await self._cut(hold=False)
        self._open.set()

    async def _hold(self) -> None:
        self._open.clear()

    async def _cut(self, hold: bool) -> int:
        if hold:
            await self._hold()
        links, self._links = list(self._links), set()
        for link in links:
            _reset(link.client)
            _reset(link.server)
            for task in link.tasks:
                task.cancel()
        self._swallowing = False
        self.cuts += 1
        return len(links)

    async def _release(self) -> float:
        self.released_at = time.monotonic()
        self._open.set()
        return self.released_at

    async def _set_swallow(self, on: bool) -> None:
        self._swallowing, self.swallowed = on, 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(writer)
        self._links.add(link)
        link.tasks.append(asyncio.current_task())
        try:
            await self._open.wait()
            if link not in self._links:  # cut while held
                return
            up_reader, link.server = await asyncio.open_connection(*self.target)
            if link not in self._links:
                _reset(link.server)
                return
            link.tasks.append(asyncio.ensure_future(self._pump(up_reader, writer, link, upstream=False)))
            await self._pump(reader, link.server, link, upstream=True)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            if link in self._links:  # ended by a side, not cut: pass the end on
                self._links.discard(link)
                for w in (link.client, link.server):
                    if w is not None and not w.transport.is_closing():
                        w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link,
                    upstream: bool) -> None:
        try:
            while data := await reader.read(CHUNK):
                if upstream and self._swallowing:
                    self.swallowed += len(data)
                    continue
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            return
        finally:
            if link in self._links and not upstream:  # the server ended it: end the client too
                self._links.discard(link)
                if not link.client.transport.is_closing():
                    link.client.close()
