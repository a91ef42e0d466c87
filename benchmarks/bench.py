"""Benchmark hooknb against raw slixmpp in one run, on a local server, and check the targets.

    python benchmarks/bench.py [--quick] [--json] [--only GROUP ...]

Starts its own Prosody (the PubSub component on in-memory storage, so the server is not the
bottleneck) and a publisher in a separate process: a raw slixmpp client publishing to nodes of
``pubsub.localhost`` with at most ``WINDOW`` requests in flight (its start-up heap frozen, so
that its garbage collections do not delay items).  Prints one table (scenario,
baseline, hooknb, ratio, target, pass/fail), or the same rows as JSON with ``--json``; progress
goes to stderr.  ``--quick`` is a small run (for CI, which checks that it runs, not the numbers);
``--only`` runs some groups: cli, throughput, tls, persistent, python_file, latency, journal,
kernel, widget, dask, resume, hooks, start, floor.

How the rows are measured:

* throughput: the receiver stops reading its socket, the publisher publishes a burst to the
  receiver's node and waits for every answer (so every notification is queued at the server),
  then the receiver reads again and the clock runs until the last item is counted (baseline: a
  raw slixmpp client whose ``pubsub_publish`` handler only counts) or hooked (hooknb: a no-op
  ``python_file`` hook, the clock stopping when its last run is journaled).  This measures what
  each receiver can take, not what the publisher can send.  Both receivers are connected
  throughout, each subscribed to its own node: the baseline in a process of its own (so that
  the garbage collector's work on hooknb's journals is not charged to it), hooknb in this one;
  rounds alternate (ABBA) and the medians are compared.  The "100 nodes" row adds a no-op hook
  on each of 100 other nodes (each run once, so its lane and thread exist) while the traffic
  stays on the measured node.  These rows run without TLS (plain text on loopback, so that TLS
  costs do not hide hooknb's own).
* throughput_tls: the same rounds on a second Prosody that requires TLS, with a publisher, a
  raw slixmpp receiver and hooknb all connected over STARTTLS with the server's CA: hooknb over
  TLS against slixmpp over TLS.
* cli_start: wall-clock time of ``hooknb pubsub hook list`` on an empty scratch store (the
  console script as a process, from start to exit), against ``python -c pass``; rounds
  alternate and the medians are compared.
* python_file: per-event cost of running a realistic 50-line hook file through the engine
  (``Engine.call_sync``: the loader's change check, the call, the outcome) against reading,
  compiling and executing the file and calling its ``hook`` for every event.
* latency: the publisher publishes at a steady 200 items/s with its send time (monotonic clock,
  shared by the processes) in the payload; the time from there to the start of the hook
  function (baselines: to the start of the raw handler); p50 and p99 as ratios to slixmpp's with
  stream management (:func:`manage`, as hooknb's stream), plain slixmpp's in the notes.
* catch_up: items/s of a host coming back after an outage (connect, fetch, inbox, runs)
  against raw slixmpp coming back (a connection with stream management and quick acks as
  hooknb's, :func:`manage`, then fetching the same nodes with as many requests in flight as
  hooknb keeps for answers of that size, ``catchup.window``); ABBA rounds, each from the same
  state, hooknb's host each time in a new process (:func:`fresh`), as ``hooknb run`` comes
  back, its first runs included (what its client imports on its first connection imported
  before the clock, :func:`warm_imports`, as the baselines' processes have it).
* hooks (``hooks_10k``, ``memory_*``, ``dispatch_10k``): a host of its own account makes one
  temporary no-op hook on each of ``scale_nodes`` nodes (created beforehand by the publisher,
  pipelined) through ``Host.create_hook``: the time per hook of the last tenth against the
  first tenth.  Then, traced by tracemalloc, a tenth more nodes hooked (bytes per hooked node,
  its hook included) and a second hook on each of those (bytes per hook).  Then throughput
  rounds (as above) of that host's own node, with every other node hooked, against the
  1-hook hooknb receiver.
* start (``start_10k``): a store holding ``scale_nodes`` persistent hooks on as many nodes; a
  host in a new process (:func:`fresh`, as ``hooknb run`` starts) connects (taking the lease,
  subscribing, catching up) until ``connect`` returns,
  against raw slixmpp with stream management subscribing and fetching the same nodes with
  ``WINDOW`` requests in flight; plain slixmpp doing the same, and a second start of the same
  store (everything subscribed already), in the notes.
* floor (``parse_floor``): a receiver that only parses the stream with expat into elements
  (``scale.ParseOnly`` in a slixmpp process, in place of slixmpp's reader) drains the same
  bursts as the throughput rows; hooknb's no-op hook as a fraction of it.  Printed after the
  table (and in the JSON, ``stages``): the CPU time per item of each of hooknb's threads
  during those rounds (thread CPU clocks).
* journal: building the events DataFrame of 100,000 events; memory retained per event beyond
  its payload string (tracemalloc, events parsed from notification XML and journaled).
* kernel: round trip of a trivial cell (execute request to reply) in a real ipykernel through
  jupyter_client, idle (baseline) and while 500 items/s are hooked in that kernel.
* widget: redraws per second of an ``EventFeed`` in that kernel while 1,000 items/s arrive,
  read from the feed itself between two readings taken during the arrival; the baseline is
  the arrival rate (what a feed redrawing on every event would do).
* dask: a hook taking 20 ms of pure-Python CPU per item (``time.thread_time``), drained as in
  the throughput rows (a burst queued at the server, then read) by one hooknb process with the
  hook on two nodes: ``--executor thread`` (baseline) and ``--executor dask`` on a LocalCluster
  of worker processes (one thread each) started by the bench as the default Dask client;
  rounds alternate (ABBA) with 2 workers, then one round with 1 worker (in the notes).
* resume: back from a network cut (a fault proxy resets the connection and holds the
  reconnection while 20 items are published), the time from the proxy letting it through to the
  first item run: a stream resumed (XEP-0198) against a new session and its catch-up (another
  account on the same node, resumption turned off); see ``benchmarks/bench_resume.py``.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import gc
import json
import math
import multiprocessing
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import cached_property
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import bench_resume
import scale
import slixmpp
from slixmpp.exceptions import IqError

from hooknb import server as srv
from hooknb.core import catchup
from hooknb.core.hooks import HookSpec
from hooknb.errors import HooknbError
from hooknb.host import Host
from hooknb.xmpp import client as hooknb_client
from hooknb.xmpp import loop as _loop
from hooknb.xmpp.events import Event, Item, parse_notification
from hooknb.xmpp.stream import quick_ack

WINDOW = 32  # publish requests in flight (each pending IQ costs every incoming stanza a match)
LATENCY_RATE = 200
KERNEL_RATE = 500
WIDGET_RATE = 1000
ACCOUNTS = ("pub", "raw", "rawsm", "hook", "kern", *bench_resume.ACCOUNTS, "scale", "start", "startraw", "startsm", "floor")
ATOM = "http://www.w3.org/2005/Atom"
ENTRY = (f'<entry xmlns="{ATOM}"><id>urn:hooknb:bench:{{n}}</id><title>Reading {{n}} of room-12'
         '</title><updated>2026-01-01T12:00:00Z</updated><summary>temperature 21.5 C, humidity '
         '40 %, battery 87 %</summary><content type="text">{t:.6f}</content></entry>')
SENT_AT = f"{{{ATOM}}}content"
GROUPS = ("cli", "throughput", "tls", "persistent", "python_file", "latency", "journal", "kernel", "widget",
          "dask", "resume", "hooks", "start", "floor")

NOOP_HOOK = '''\
"""A hook that does nothing."""


def hook(host, client, item):
    return None
'''

CPU_HOOK = '''\
"""20 ms of pure-Python CPU per item (CPU time: as long under contention)."""

import time


def hook(host, client, item):
    end = time.thread_time() + 0.020
    spins = 0
    while time.thread_time() < end:
        spins += 1
    return spins
'''

RECORDING_HOOK = '''\
"""Notes when each run starts (the benchmark reads STARTS)."""

import time

STARTS = []


def hook(host, client, item):
    STARTS.append((time.monotonic(), item))
'''

REALISTIC_HOOK = '''\
"""Keep a rolling summary of the sensor readings published as Atom entries on a node.

Each entry's summary reads "temperature 21.5 C, humidity 40 %, battery 87 %".  The hook
remembers the last readings, flags sudden jumps and low batteries, and returns one line.
"""

import re
from collections import deque
from datetime import datetime, timezone

READING = re.compile(r"temperature (?P<temp>-?[0-9.]+) C, humidity (?P<hum>[0-9]+) %, "
                     r"battery (?P<battery>[0-9]+) %")
TITLE = re.compile(r"<title>([^<]*)</title>")
WINDOW = 20
JUMP = 3.0
LOW_BATTERY = 15

recent = deque(maxlen=WINDOW)
alerts = []


def reading(payload):
    """The (temperature, humidity, battery) carried by a payload, or None."""
    match = READING.search(payload or "")
    if match is None:
        return None
    return float(match["temp"]), int(match["hum"]), int(match["battery"])


def title(payload):
    """The entry's title, or an empty string."""
    match = TITLE.search(payload)
    return match.group(1) if match else ""


def status(temp, battery):
    """ok, jump (far from the recent mean) or battery."""
    if battery < LOW_BATTERY:
        return "battery"
    if recent and abs(temp - sum(recent) / len(recent)) > JUMP:
        return "jump"
    return "ok"


def hook(host, client, item):
    values = reading(item.payload)
    if values is None:
        return None
    temp, humidity, battery = values
    state = status(temp, battery)
    recent.append(temp)
    if state != "ok":
        alerts.append((datetime.now(timezone.utc), item.id, state))
    return f"{title(item.payload)}: {temp:.1f} C {humidity} % {state}"
'''


@dataclass(frozen=True)
class Sizes:
    """How big a run is."""

    burst: int  # items per throughput round
    rounds: int  # throughput rounds per side
    other_nodes: int  # hooked nodes besides the measured one
    latency_rounds: int  # per side
    latency_seconds: float  # per round and side
    file_events: int  # python_file: events per timed batch
    journal_events: int
    kernel_rounds: int  # per side (idle, loaded)
    kernel_seconds: float  # per round and side
    widget_seconds: float
    catch_up_items: int  # published while away, over 20 nodes
    catch_up_rounds: int  # per side (ABBA), each from the same state
    cli_runs: int  # cli_start: timed runs per side
    cpu_items: int  # dask: items per round of the 20 ms CPU hook
    cpu_rounds: int  # dask: rounds per executor, with 2 workers
    resume_rounds: int  # resume: cuts per side
    scale_nodes: int  # hooks, start: hooked nodes
    scale_rounds: int  # dispatch_10k: throughput rounds per side (its two sides run in one process)


FULL = Sizes(burst=5000, rounds=8, other_nodes=100, latency_rounds=10, latency_seconds=2.0,
             file_events=1000, journal_events=100_000, kernel_rounds=4, kernel_seconds=5.0,
             widget_seconds=8.0, catch_up_items=5000, catch_up_rounds=12, cli_runs=20, cpu_items=300, cpu_rounds=4, resume_rounds=8,
             scale_nodes=10_000, scale_rounds=16)
QUICK = Sizes(burst=300, rounds=1, other_nodes=100, latency_rounds=1, latency_seconds=1.0,
              file_events=100, journal_events=10_000, kernel_rounds=1, kernel_seconds=1.5,
              widget_seconds=2.0, catch_up_items=400, catch_up_rounds=1, cli_runs=5, cpu_items=30, cpu_rounds=1, resume_rounds=2,
              scale_nodes=1000, scale_rounds=1)


@dataclass
class Row:
    """One line of the table."""

    id: str
    scenario: str
    unit: str
    baseline: float | None
    hooknb: float
    ratio: float | None
    target: str
    passed: bool | None
    notes: str = ""


def at_least(row_id: str, scenario: str, unit: str, baseline: float, hooknb: float, minimum: float,
             notes: str = "") -> Row:
    """A row whose hooknb/baseline ratio must be at least ``minimum``."""
    ratio = hooknb / baseline
    return Row(row_id, scenario, unit, baseline, hooknb, ratio, f"ratio >= {minimum:g}",
               ratio >= minimum, notes)


def speedup(row_id: str, scenario: str, unit: str, baseline: float, hooknb: float, minimum: float,
            notes: str = "") -> Row:
    """A row whose baseline/hooknb ratio (a speed-up, lower values being better) must be at least
    ``minimum``."""
    ratio = baseline / hooknb
    return Row(row_id, scenario, unit, baseline, hooknb, ratio, f"{minimum:g}x faster", ratio >= minimum,
               notes)


def at_most(row_id: str, scenario: str, unit: str, baseline: float | None, hooknb: float,
            maximum: float | None, notes: str = "") -> Row:
    """A row whose hooknb value must be at most ``maximum`` (None: no target, shown for context)."""
    ratio = hooknb / baseline if baseline else None
    target = "-" if maximum is None else f"<= {maximum:g} {unit}"
    return Row(row_id, scenario, unit, baseline, hooknb, ratio, target,
               None if maximum is None else hooknb <= maximum, notes)


def ratio_at_most(row_id: str, scenario: str, unit: str, baseline: float, hooknb: float, maximum: float,
                  notes: str = "") -> Row:
    """A row whose hooknb/baseline ratio (lower values being better) must be at most ``maximum``."""
    ratio = hooknb / baseline
    return Row(row_id, scenario, unit, baseline, hooknb, ratio, f"ratio <= {maximum:g}", ratio <= maximum, notes)


def log(text: str) -> None:
    """Progress, on stderr."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# ------------------------------------------------------------------------------- raw slixmpp

def raw_client(jid: str, password: str, loop: asyncio.AbstractEventLoop,
               cafile: str | None = None) -> slixmpp.ClientXMPP:
    """A plain slixmpp client for the loopback server with XEP-0060, sending presence at session
    start (nothing is delivered to a bare-JID subscription before): without TLS, or with
    ``cafile`` over STARTTLS trusting that CA."""
    xmpp = slixmpp.ClientXMPP(jid, password, loop=loop,
                              plugin_config={"feature_mechanisms": {"unencrypted_scram": True}})
    xmpp.enable_direct_tls = False
    xmpp.enable_starttls = cafile is not None
    xmpp.enable_plaintext = cafile is None
    if cafile is not None:
        xmpp.ca_certs = Path(cafile)
    xmpp.register_plugin("xep_0060")
    xmpp.add_event_handler("session_start", lambda _event: xmpp.send_presence())
    return xmpp


def manage(xmpp: slixmpp.ClientXMPP) -> None:
    """Stream management (XEP-0198) on a raw client, as hooknb's streams have it, and each read
    acknowledged at once, as hooknb's are (:func:`hooknb.xmpp.stream.quick_ack`): the server then
    does the same work for both sides."""
    xmpp.register_plugin("xep_0198")
    received = xmpp.data_received

    def data_received(data: bytes) -> None:
        quick_ack(xmpp.transport)
        received(data)
    xmpp.data_received = data_received


def sent_at(payload: ET.Element) -> float:
    """The send time (monotonic clock) a bench payload carries."""
    return float(next(payload.iter(SENT_AT)).text)


class RawPeer:
    """The raw slixmpp side, in a process of its own: the publisher, or the baseline receiver
    whose ``pubsub_publish`` handler only counts (or, for latency, notes the time)."""

    COMMANDS = frozenset({"create", "publish", "subscribe", "arm", "pause", "drain", "record",
                          "recorded", "latencies", "fetch", "come_back", "parse_only"})

    def __init__(self, xmpp: slixmpp.ClientXMPP, service: str, address: tuple[str, int],
                 cafile: str | None) -> None:
        self.xmpp, self.service, self.address, self.cafile = xmpp, service, address, cafile
        self.pubsub = xmpp.plugin["xep_0060"]
        self.count = self.target = 0
        self.finished = 0.0
        self.done = asyncio.Event()
        self.starts: list[tuple[float, ET.Element]] = []
        xmpp.add_event_handler("pubsub_publish", self._count)

    def _count(self, _msg: slixmpp.Message) -> None:
        self.count += 1
        if self.count == self.target:
            self.finished = time.time()
            self.done.set()

    def _note(self, msg: slixmpp.Message) -> None:
        self.starts.append((time.monotonic(), msg.xml))

    async def create(self, nodes: list[str]) -> dict[str, Any]:
        """Create the nodes (those that exist are fine), ``WINDOW`` requests in flight."""
        async def one(node: str) -> None:
            try:
                await self.pubsub.create_node(self.service, node, timeout=60)
            except IqError as exc:
                if exc.condition != "conflict":
                    raise

        await scale.pipelined([lambda node=node: one(node) for node in nodes], WINDOW)
        return {}

    async def publish(self, nodes: list[str], count: int, tag: str,
                      rate: float | None = None) -> dict[str, Any]:
        """Publish ``count`` items round-robin over ``nodes``: as fast as the server answers, or
        at a steady ``rate`` a second; each payload carries its send time (monotonic clock)."""
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(WINDOW)
        failures: list[str] = []

        def done(future: asyncio.Future) -> None:
            slots.release()
            if future.cancelled() or future.exception() is not None:
                failures.append(repr(None if future.cancelled() else future.exception()))

        futures = []
        start = loop.time()
        for i in range(count):
            if rate:
                delay = start + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await slots.acquire()
            payload = ET.fromstring(ENTRY.format(n=i, t=time.monotonic()))
            future = self.pubsub.publish(self.service, nodes[i % len(nodes)], id=f"{tag}-{i}",
                                         payload=payload, timeout=60)
            future.add_done_callback(done)
            futures.append(future)
        await asyncio.gather(*futures, return_exceptions=True)
        if failures:
            raise HooknbError(f"{len(failures)} publish requests failed, first: {failures[0]}")
        return {"seconds": loop.time() - start}

    async def fetch(self, nodes: list[str], window: int = 1) -> dict[str, Any]:
        """Fetch every item of the nodes (what a catch-up must do), ``window`` requests in flight."""
        start = time.perf_counter()
        results = await scale.pipelined([lambda node=node: self.pubsub.get_items(self.service, node, timeout=60)
                                         for node in nodes], window)
        items = sum(len(result["pubsub"]["items"]["substanzas"]) for result in results)
        return {"seconds": time.perf_counter() - start, "items": items}

    async def come_back(self, nodes: list[str], window: int) -> dict[str, Any]:
        """What a client does when it comes back after an outage, timed: a second connection of
        this account, with stream management (XEP-0198) and quick acks as hooknb's (:func:`manage`),
        connects and fetches every item of the nodes, ``window`` requests in flight.  (Its TLS
        context is made before the clock starts, as hooknb makes its own once per process.)"""
        xmpp = raw_client(str(self.xmpp.boundjid.bare), self.xmpp.password, asyncio.get_running_loop(), self.cafile)
        manage(xmpp)
        start = time.perf_counter()
        xmpp.connect(*self.address)
        await xmpp.wait_until("session_start", 20)
        results = await scale.pipelined([lambda node=node: xmpp.plugin["xep_0060"].get_items(self.service, node,
                                                                                           timeout=60)
                                         for node in nodes], window)
        seconds = time.perf_counter() - start
        await xmpp.disconnect(wait=1.0)
        sender = xmpp._run_out_filters  # slixmpp ends its send loop only when collected (as hooknb's _drop)
        if sender is not None and not sender.done():
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        return {"seconds": seconds, "items": sum(len(r["pubsub"]["items"]["substanzas"]) for r in results)}

    async def subscribe(self, nodes: list[str], window: int = 1) -> dict[str, Any]:
        """Subscribe (bare JID) to the nodes, ``window`` requests in flight."""
        start = time.perf_counter()
        await scale.pipelined([lambda node=node: self.pubsub.subscribe(self.service, node, timeout=60)
                               for node in nodes], window)
        return {"seconds": time.perf_counter() - start}

    async def parse_only(self) -> dict[str, Any]:
        """From now on only parse what the socket gives, counting messages (the floor): the
        stream is idle, so at a stanza boundary."""
        self.xmpp.data_received = scale.ParseOnly(lambda: self._count(None)).feed
        return {}

    async def arm(self, count: int) -> dict[str, Any]:
        """Expect ``count`` items from now on."""
        self.count, self.target = 0, count
        self.done.clear()
        return {}

    async def pause(self) -> dict[str, Any]:
        """Stop reading the socket (the server queues what it sends)."""
        self.xmpp.transport.pause_reading()
        return {}

    async def drain(self, timeout: float) -> dict[str, Any]:
        """Read again; items/s until the expected items were all handled, and the CPU seconds
        this (the loop's) thread took meanwhile."""
        start, cpu = time.time(), time.thread_time()
        self.xmpp.transport.resume_reading()
        try:
            await asyncio.wait_for(self.done.wait(), timeout)
        except asyncio.TimeoutError:
            raise HooknbError(f"slixmpp: {self.count} of {self.target} items "
                              f"within {timeout:g} s") from None
        return {"rate": self.target / (self.finished - start), "cpu": time.thread_time() - cpu}

    async def record(self, on: bool) -> dict[str, Any]:
        """Note the start time of each handler call from now on (afresh), or stop."""
        self.starts.clear()
        change = self.xmpp.add_event_handler if on else self.xmpp.del_event_handler
        change("pubsub_publish", self._note)
        return {}

    async def recorded(self) -> dict[str, Any]:
        """How many handler calls were noted."""
        return {"count": len(self.starts)}

    async def latencies(self) -> dict[str, Any]:
        """Publish to handler start, in ms."""
        return {"ms": [(t - sent_at(xml)) * 1000 for t, xml in self.starts]}


async def _serve(conn: Connection, host: str, port: int, jid: str, password: str, service: str,
                 freeze: bool, cafile: str | None, managed: bool = False) -> None:
    loop = asyncio.get_running_loop()
    xmpp = raw_client(jid, password, loop, cafile)
    if managed:
        manage(xmpp)
    xmpp.connect(host, port)
    await xmpp.wait_until("session_start", 20)
    peer = RawPeer(xmpp, service, (host, port), cafile)
    if freeze:
        gc.freeze()
    conn.send({"ready": True})
    while True:
        command, kwargs = await loop.run_in_executor(None, conn.recv)
        if command not in RawPeer.COMMANDS:
            break
        try:
            answer = await getattr(peer, command)(**kwargs)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        conn.send(answer)
    await xmpp.disconnect(wait=1.0)


def _raw_main(conn: Connection, *args: Any) -> None:
    asyncio.run(_serve(conn, *args))


class RawProcess:
    """A :class:`RawPeer` in a process of its own (account ``name``), driven through a pipe.

    With ``freeze`` the process moves its start-up heap out of the garbage collector's sight
    (``gc.freeze``): the publisher does, so that its own full collections, which would hold
    back items already timestamped, do not add to the latency of either side.
    """

    def __init__(self, info: srv.ServerInfo, name: str, freeze: bool = False, managed: bool = False) -> None:
        ctx = multiprocessing.get_context("spawn")  # this process has threads: no fork
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_raw_main, daemon=True, name=f"hooknb-bench-{name}",
                                 args=(child, info.host, info.port, info.jid(name),
                                       info.accounts[name], info.pubsub, freeze, info.cafile, managed))
        self._proc.start()
        child.close()
        self.result(60)

    def send(self, command: str, **kwargs: Any) -> None:
        """Start a command; :meth:`result` waits for its answer."""
        self._conn.send((command, kwargs))

    def result(self, timeout: float = 300) -> dict[str, Any]:
        """The answer to the last command (raises if it failed)."""
        try:
            if not self._conn.poll(timeout):
                raise HooknbError(f"{self._proc.name} did not answer within {timeout:g} s")
            answer = self._conn.recv()
        except EOFError:
            self._proc.join(5)
            raise HooknbError(f"{self._proc.name} ended (exit code {self._proc.exitcode})") from None
        if "error" in answer:
            raise HooknbError(f"{self._proc.name}: {answer['error']}")
        return answer

    def run(self, command: str, **kwargs: Any) -> dict[str, Any]:
        """Run a command and return its answer."""
        self.send(command, **kwargs)
        return self.result()

    def close(self) -> None:
        """Stop the process."""
        if self._proc.is_alive():
            try:
                self._conn.send(("stop", {}))
            except OSError:
                pass
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(5)


def coming_back(store: str, jid: str, password: str, connect: dict[str, Any], runs: int) -> dict[str, Any]:
    """A host starting on ``store`` (run by :func:`fresh`): ``Host.connect`` (lease, subscriptions,
    catch-up), then, if ``runs``, until that many runs are done; seconds from the call of connect
    to its return (``connected``) and to the end of the last run (``done``).  What the client
    imports on its first connection is imported before (:func:`warm_imports`)."""
    host = Host(store_path=store)
    warm_imports()
    try:
        start = time.time()
        host.connect(jid, password, timeout=600, **connect)  # (default: 20 s)
        connected = time.time() - start
        if runs and not host.wait_runs(runs, 120):
            raise HooknbError(f"{host.runs.total} of {runs} runs")
        last = host.runs.latest() if runs else None
        return {"connected": connected, "done": last.ts + last.duration - start if last else connected,
                "subscribed": len(host.clients[jid].subscriptions)}
    finally:
        host.close()


def warm_imports() -> None:
    """Import what hooknb's client imports on its first connection (slixmpp's stream features and
    the plugins it registers: 10-20 ms in a new process), as the baselines' processes have them
    before their clocks start."""
    loop = asyncio.new_event_loop()
    try:
        xmpp = slixmpp.ClientXMPP("warm@localhost", "", loop=loop)
        for plugin in (*hooknb_client.PLUGINS, "xep_0198"):
            xmpp.register_plugin(plugin)
    finally:
        loop.close()


def fresh(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``function(*args)`` in a new process, as ``hooknb run`` starts, and as the baselines run in
    processes of their own: without this process's heap (every row's sides and hosts), whose
    full garbage collections would otherwise be charged to hooknb."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result(timeout=900)


# ------------------------------------------------------------------------------ the receivers

class RawSide:
    """The baseline receiver: a :class:`RawPeer` in its own process (so that the garbage
    collector's work on hooknb's journals is not charged to it); ``managed``: with stream
    management (see :func:`manage`)."""

    def __init__(self, info: srv.ServerInfo, node: str, latency_node: str, account: str = "raw",
                 managed: bool = False) -> None:
        self.name = "slixmpp+sm" if managed else "slixmpp"
        self.node, self.latency_node = node, latency_node
        self.peer = RawProcess(info, account, managed=managed)
        self.peer.run("subscribe", nodes=[node, latency_node])
        self.expected = 0
        self.cpu: list[float] = []  # CPU seconds per item of each drain

    def arm(self, count: int) -> None:
        """Expect ``count`` items from now on."""
        self.peer.run("arm", count=count)
        self.expected = count

    def pause(self) -> None:
        """Stop reading the socket."""
        self.peer.run("pause")

    def drain(self, timeout: float) -> float:
        """Read again; items/s until the expected items were all handled."""
        answer = self.peer.run("drain", timeout=timeout)
        self.cpu.append(answer["cpu"] / self.expected)
        return answer["rate"]

    def record(self, on: bool) -> None:
        """Note the start time of each handler call from now on (afresh), or stop."""
        self.peer.run("record", on=on)

    def recorded(self) -> int:
        """How many handler calls were noted."""
        return self.peer.run("recorded")["count"]

    def latencies(self) -> list[float]:
        """Publish to handler start, in ms."""
        return self.peer.run("latencies")["ms"]

    def close(self) -> None:
        """Stop the process."""
        self.peer.close()


async def _reading(xmpp: slixmpp.ClientXMPP, on: bool) -> float:
    """Pause or resume reading the client's socket; the wall-clock time it happened."""
    if on:
        xmpp.transport.resume_reading()
    else:
        xmpp.transport.pause_reading()
    return time.time()


class HooknbSide:
    """hooknb, in this process: a Host with a no-op python_file hook (``persistent``: through the
    inbox, as ``hooknb run`` runs it), and a recording hook for latency; over STARTTLS when the
    server has a CA, else without TLS."""

    name = "hooknb"

    def __init__(self, info: srv.ServerInfo, directory: Path, node: str, latency_node: str,
                 persistent: bool = False, account: str = "hook") -> None:
        self.info, self.account = info, account
        self.node, self.latency_node = node, latency_node
        store = f"{account}{'-tls' if info.cafile else ''}{'-persistent' if persistent else ''}.sqlite3"
        self.host = Host(store_path=str(directory / store))
        security = {"cafile": info.cafile} if info.cafile else {"plaintext": True}
        self.client = self.host.connect(info.jid(account), info.accounts[account], host=info.host,
                                        port=info.port, **security)
        self.noop = write_hook(directory / "noop_hook.py", NOOP_HOOK)
        self.host.create_hook(node, str(self.noop), "python_file", service=info.pubsub, persistent=persistent)
        recording = write_hook(directory / "recording_hook.py", RECORDING_HOOK)
        self.recorder = self.host.create_hook(latency_node, str(recording), "python_file",
                                              service=info.pubsub)
        self.target = self.expected = 0

    @property
    def starts(self) -> list[tuple[float, Item]]:
        """What the recording hook noted."""
        return self.recorder.loader.fn.__globals__["STARTS"]

    def hook_nodes(self, nodes: list[str]) -> None:
        """A no-op hook on each of ``nodes``."""
        for node in nodes:
            self.host.create_hook(node, str(self.noop), "python_file", service=self.info.pubsub)

    def arm(self, count: int) -> None:
        """Expect ``count`` more runs from now on."""
        self.expected, self.target = count, self.host.runs.total + count

    def pause(self) -> None:
        """Stop reading the socket."""
        _loop.call(_reading(self.client.xmpp, False))

    def drain(self, timeout: float) -> float:
        """Read again; items/s until the expected runs had all been journaled."""
        start = _loop.call(_reading(self.client.xmpp, True))
        deadline = time.monotonic() + timeout
        while self.host.runs.total < self.target:  # polled: waiting on the journal would wake
            if time.monotonic() > deadline:       # this thread (and take the GIL) at every run
                raise HooknbError(f"hooknb: {self.host.runs.total} of {self.target} runs "
                                  f"within {timeout:g} s")
            time.sleep(0.02)
        bad = [h for h in self.host.registry.all() if h.failures or h.dropped]
        if bad:
            raise HooknbError(f"hooknb: hook {bad[0].id} failed or dropped items: {bad[0].last_error}")
        last = self.host.runs.latest()
        return self.expected / (last.ts + last.duration - start)

    def record(self, on: bool) -> None:
        """Start afresh the list of run start times."""
        self.starts.clear()

    def recorded(self) -> int:
        """How many runs were noted."""
        return len(self.starts)

    def latencies(self) -> list[float]:
        """Publish to hook start, in ms."""
        return [(t - sent_at(item.xml)) * 1000 for t, item in self.starts]

    def close(self) -> None:
        """Disconnect."""
        self.host.disconnect(self.info.jid(self.account))


class CpuSide:
    """One hook of the dask group (executor ``thread`` or ``dask``) on its own node, in a Host
    shared by both: drained like the throughput sides, the clock stopping when its last run of
    the round has been journaled (a dask run once its result was applied here)."""

    def __init__(self, host: Host, node: str, executor: str, path: Path, service: str) -> None:
        self.host, self.node, self.name = host, node, executor
        self.hook = host.create_hook(node, str(path), "python_file", service=service, executor=executor)
        self.target = self.expected = 0

    def arm(self, count: int) -> None:
        """Expect ``count`` more runs of the hook."""
        self.expected, self.target = count, self.hook.runs + count

    def pause(self) -> None:
        """Stop reading the socket (of both sides: one connection)."""
        _loop.call(_reading(self.host.clients[self.hook.account].xmpp, False))

    def drain(self, timeout: float) -> float:
        """Read again; items/s until the expected runs had all been journaled."""
        start = _loop.call(_reading(self.host.clients[self.hook.account].xmpp, True))
        if not self.host.runs.wait_for(lambda: self.hook.runs >= self.target, timeout):
            raise HooknbError(f"{self.name}: {self.hook.runs} of {self.target} runs within {timeout:g} s")
        end = time.time()
        if self.hook.failures or self.hook.dropped:
            raise HooknbError(f"{self.name}: the CPU hook failed or dropped items: {self.hook.last_error}")
        return self.expected / (end - start)


def write_hook(path: Path, source: str) -> Path:
    """Write a hook file readable and writable by its owner only."""
    path.write_text(source)
    path.chmod(0o600)
    return path


def copy_into(paths: Iterable[Path], directory: Path) -> None:
    """Copy files and directories (a store, its done logs) into ``directory``."""
    for path in paths:
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, directory / path.name)


def alternate(rounds: int, sides: tuple[Any, ...]) -> Iterable[tuple[int, Any]]:
    """(round, side) in ABBA order (ABCCBA for three), so that drift over the run hits every side
    alike."""
    for r in range(rounds):
        for side in (sides if r % 2 == 0 else sides[::-1]):
            yield r, side


def drain_round(publisher: RawProcess, side: RawSide | HooknbSide, count: int, tag: str) -> float:
    """Items/s one receiver takes: a burst queued at the server while it does not read, then drained."""
    side.arm(count)
    side.pause()
    publisher.run("publish", nodes=[side.node], count=count, tag=tag)
    return side.drain(60 + count / 100)


# --------------------------------------------------------------------------------- the bench

class Bench:
    """One run: the server, the publisher, the receivers (each made on first use), the rows."""

    def __init__(self, sizes: Sizes, directory: Path) -> None:
        self.sizes, self.directory = sizes, directory
        self.rows: list[Row] = []
        self.stages: list[dict[str, Any]] = []  # the floor group's table of time per item
        self._closers: list[Callable[[], None]] = []
        log("starting Prosody (memory storage for pubsub.localhost)")
        self.info = srv.start(directory / "server", ACCOUNTS, storage="memory", tls=False)
        self._closers.append(lambda: srv.stop(directory / "server"))

    def close(self) -> None:
        """Stop everything that was started, newest first."""
        for close in reversed(self._closers):
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - keep closing the rest
                log(f"cleanup: {type(exc).__name__}: {exc}")

    @cached_property
    def publisher(self) -> RawProcess:
        log("starting the publisher process")
        publisher = RawProcess(self.info, "pub", freeze=True)
        self._closers.append(publisher.close)
        return publisher

    @cached_property
    def sides(self) -> tuple[RawSide, HooknbSide]:
        nodes = ["raw-tp", "raw-lat", "hooknb-tp", "hooknb-lat"]
        self.publisher.run("create", nodes=nodes)
        log("connecting the slixmpp and hooknb receivers")
        raw = RawSide(self.info, "raw-tp", "raw-lat")
        self._closers.append(raw.close)
        hooked = HooknbSide(self.info, self.directory, "hooknb-tp", "hooknb-lat")
        self._closers.append(hooked.close)
        return raw, hooked

    @cached_property
    def managed(self) -> RawSide:
        """The baseline of the latency rows: slixmpp with stream management, as hooknb."""
        self.publisher.run("create", nodes=["rawsm-tp", "rawsm-lat"])
        side = RawSide(self.info, "rawsm-tp", "rawsm-lat", "rawsm", managed=True)
        self._closers.append(side.close)
        return side

    # ---------------------------------------------------------------- throughput
    def throughput(self) -> None:
        sides = self.sides
        self._throughput("throughput_1_hook", "throughput, 1 no-op hook", 0.90)
        others = [f"other-{i}" for i in range(self.sizes.other_nodes)]
        log(f"hooking {len(others)} other nodes")
        self.publisher.run("create", nodes=others)
        sides[1].hook_nodes(others)
        before = sides[1].host.runs.total
        self.publisher.run("publish", nodes=others, count=len(others), tag="warm")
        if not sides[1].host.wait_runs(before + len(others), 30):
            raise HooknbError("the hooks on the other nodes did not all run")
        self._throughput("throughput_100_nodes", f"throughput, {len(others)} other nodes hooked", 0.85)

    def _throughput(self, row_id: str, scenario: str, minimum: float) -> None:
        self.rows.append(self._rates(row_id, scenario, self.sides, minimum))

    def _rates(self, row_id: str, scenario: str, sides: tuple[RawSide, HooknbSide], minimum: float,
               publisher: RawProcess | None = None, rounds: int | None = None) -> Row:
        """The row of a throughput scenario: medians of ABBA rounds (``rounds``, default
        ``sizes.rounds``) of each side draining a burst (published by ``publisher``, default the
        one of the plain-text server)."""
        publisher, rounds = publisher or self.publisher, rounds or self.sizes.rounds
        log(f"{scenario}: {rounds} rounds of {self.sizes.burst} items per side")
        for side in sides:  # warm up
            drain_round(publisher, side, min(200, self.sizes.burst), f"{row_id}-warm-{side.name}")
        rates: dict[str, list[float]] = {side.name: [] for side in sides}
        for r, side in alternate(rounds, sides):
            rate = drain_round(publisher, side, self.sizes.burst, f"{row_id}-{r}-{side.name}")
            rates[side.name].append(rate)
            log(f"  round {r} {side.name}: {rate:,.0f} items/s")
        spread = ", ".join(f"{name} {min(v):,.0f}-{max(v):,.0f}" for name, v in rates.items())
        return at_least(row_id, scenario, "items/s", statistics.median(rates[sides[0].name]),
                        statistics.median(rates[sides[1].name]), minimum,
                        f"medians of {rounds} rounds of {self.sizes.burst} items; ranges {spread}")

    def throughput_tls(self) -> None:
        """``throughput_1_hook`` over TLS: a second server, requiring STARTTLS, and everyone on it
        connected with its CA."""
        log("starting a second Prosody, requiring TLS (memory storage for pubsub.localhost)")
        directory = self.directory / "server-tls"
        info = srv.start(directory, ACCOUNTS, storage="memory", tls=True)
        self._closers.append(lambda: srv.stop(directory))
        publisher = RawProcess(info, "pub", freeze=True)
        self._closers.append(publisher.close)
        publisher.run("create", nodes=["raw-tls", "raw-tls-lat", "hooknb-tls", "hooknb-tls-lat"])
        log("connecting the slixmpp and hooknb receivers over STARTTLS")
        raw = RawSide(info, "raw-tls", "raw-tls-lat")
        self._closers.append(raw.close)
        hooked = HooknbSide(info, self.directory, "hooknb-tls", "hooknb-tls-lat")
        self._closers.append(hooked.close)
        self.rows.append(self._rates("throughput_tls", "throughput over TLS, 1 no-op hook", (raw, hooked),
                                     0.90, publisher))

    # ---------------------------------------------------------------- command line
    def cli_start(self) -> None:
        """Seconds from starting ``hooknb pubsub hook list`` on an empty store to its exit."""
        home = self.directory / "cli-home"
        home.mkdir(mode=0o700)
        env = {**os.environ, "HOOKNB_HOME": str(home)}
        script = shutil.which("hooknb", path=str(Path(sys.executable).parent))
        commands = {"python": [sys.executable, "-c", "pass"],
                    "hooknb": [*([script] if script else [sys.executable, "-m", "hooknb"]),
                               "pubsub", "hook", "list"]}
        n = self.sizes.cli_runs
        log(f"cli_start: {n} runs of each command")

        def timed(name: str) -> float:
            start = time.perf_counter()
            result = subprocess.run(commands[name], env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - start
            if result.returncode != 0:
                raise HooknbError(f"{' '.join(commands[name])} failed: {result.stderr.strip()}")
            return elapsed

        timed("hooknb")  # makes the store: the runs measured list an empty one
        seconds: dict[str, list[float]] = {"python": [], "hooknb": []}
        for _r, name in alternate(n, ("python", "hooknb")):
            seconds[name].append(timed(name))
        self.rows.append(at_most("cli_start", "command line: hooknb pubsub hook list, empty store", "s",
                                 statistics.median(seconds["python"]), statistics.median(seconds["hooknb"]),
                                 0.3, f"median of {n} runs, best {min(seconds['hooknb']):.3f} s; "
                                      "baseline: python -c pass"))

    # ---------------------------------------------------------------- latency
    def latency(self) -> None:
        """Publish to hook (or handler) start, items at a steady rate.  The baseline is slixmpp
        with stream management: the server's own work for it (a copy of each stanza kept for
        resending, an ack request after it) lengthens every item's way to either client, and
        hooknb's streams must have it; plain slixmpp's figures are in the notes."""
        plain, hooked = self.sides
        sides = (plain, self.managed, hooked)
        count = int(LATENCY_RATE * self.sizes.latency_seconds)
        rounds = self.sizes.latency_rounds
        log(f"latency: {rounds} rounds of {count} items at {LATENCY_RATE}/s per side")
        samples: dict[str, list[float]] = {side.name: [] for side in sides}
        for r, side in alternate(rounds, sides):
            side.record(True)
            try:
                self.publisher.run("publish", nodes=[side.latency_node], count=count,
                                   rate=LATENCY_RATE, tag=f"lat-{r}")
                deadline = time.monotonic() + 10
                while (arrived := side.recorded()) < count:
                    if time.monotonic() > deadline:
                        raise HooknbError(f"{side.name}: {arrived} of {count} items arrived")
                    time.sleep(0.01)
                samples[side.name] += side.latencies()
            finally:
                side.record(False)
        raw, managed, hooks = (samples[side.name] for side in sides)
        notes = f"{len(hooks)} items per side at {LATENCY_RATE}/s; baseline slixmpp with stream management"
        for p, row_id, maximum in ((50, "latency_p50", 1.2), (99, "latency_p99", 1.5)):
            base, ours, bare = percentile(managed, p), percentile(hooks, p), percentile(raw, p)
            extra = f"; max {max(managed):.1f} / {max(hooks):.1f} ms" if p == 99 else ""
            self.rows.append(ratio_at_most(row_id, f"latency p{p}, publish -> hook start", "ms", base, ours,
                                           maximum, f"{notes}; plain slixmpp {bare:.2f} ms, hooknb "
                                                    f"{ours / bare:.2f}x of it{extra}"))

    # ---------------------------------------------------------------- python_file
    def python_file(self) -> None:
        n = self.sizes.file_events
        log(f"python_file: {n} events per batch")
        path = write_hook(self.directory / "realistic_hook.py", REALISTIC_HOOK)
        lines = len(REALISTIC_HOOK.splitlines())
        host = Host(store_path=str(self.directory / "file.sqlite3"))
        hook = host.engine.install(HookSpec.make("hook@localhost", "pubsub.localhost", "n", "python_file",
                                                 str(path)))

        def reference(items: list[Item]) -> None:
            for item in items:
                namespace = {"__name__": "hook", "__file__": str(path)}
                exec(compile(path.read_bytes(), str(path), "exec"), namespace)  # noqa: S102
                namespace["hook"](host, None, item)

        def hooknb(items: list[Item]) -> None:
            for item in items:
                outcome = host.engine.invoker.call_sync(hook, None, item)
                if outcome.status != "ok":
                    raise HooknbError(f"the realistic hook failed: {outcome.error}")

        costs: dict[str, list[float]] = {"reference": [], "hooknb": []}
        body = hook.loader.fn
        for r, run in alternate(7, (reference, hooknb)):  # (hooknb's batches are short: a pause weighs)
            items = [e.item for e in synthetic_events(n, f"file{r}")]
            start = time.perf_counter()
            run(items)
            costs[run.__name__].append((time.perf_counter() - start) / n * 1e6)
        items = [e.item for e in synthetic_events(n, "body")]
        start = time.perf_counter()
        for item in items:
            body(host, None, item)
        floor = (time.perf_counter() - start) / n * 1e6
        self.rows.append(speedup("python_file", f"python_file hook ({lines} lines), per event", "us",
                                 statistics.median(costs["reference"]),
                                 statistics.median(costs["hooknb"]),
                                 20, f"the hook's own body takes {floor:.1f} us of that"))

    # ---------------------------------------------------------------- journal
    def journal(self) -> None:
        n = self.sizes.journal_events
        log(f"journal: {n:,} events")
        host = Host(events_max=n, store_path=str(self.directory / "journal.sqlite3"))
        messages = [notification(i, f"j{i}") for i in range(n)]
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for text in messages:
            host.events.extend(parse_notification("hook@localhost", "pubsub.localhost",
                                                  ET.fromstring(text)))
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        del messages
        events = host.events.snapshot()
        payloads = sum(sys.getsizeof(e.payload) for e in events)
        per_event = (retained - payloads) / len(events)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            df = host.events_frame()
            times.append(time.perf_counter() - start)
        if len(df) != n:
            raise HooknbError(f"the events DataFrame has {len(df)} rows, not {n}")
        self.rows.append(at_most("journal_frame", f"journal: events DataFrame of {n:,} events", "s",
                                 None, statistics.median(times), 0.3,
                                 f"median of 3; best {min(times):.3f} s"))
        self.rows.append(at_most("journal_memory", "journal: memory per event beyond its payload",
                                 "bytes", None, per_event, 1024,
                                 f"tracemalloc; payloads average {payloads / len(events):.0f} bytes"))

    # ---------------------------------------------------------------- kernel and widget
    @cached_property
    def kernel(self) -> Kernel:
        log("starting an ipykernel")
        self.publisher.run("create", nodes=["kernel-tp"])
        kernel = Kernel(self.info, self.directory, "kernel-tp")
        self._closers.append(kernel.close)
        return kernel

    def kernel_rows(self) -> None:
        kernel, seconds = self.kernel, self.sizes.kernel_seconds
        count = int(KERNEL_RATE * seconds)
        log(f"kernel: {self.sizes.kernel_rounds} rounds of {seconds:g} s idle and at "
            f"{KERNEL_RATE} items/s")
        rtts: dict[str, list[float]] = {"idle": [], "loaded": []}
        hooked, elapsed = 0, 0.0
        for r, phase in alternate(self.sizes.kernel_rounds, ("idle", "loaded")):
            if phase == "idle":
                rtts[phase] += kernel.round_trips(seconds)
                continue
            runs = kernel.value("host.runs.total")
            self.publisher.send("publish", nodes=[kernel.node], count=count, rate=KERNEL_RATE,
                                tag=f"kern-{r}")
            rtts[phase] += kernel.round_trips(seconds)
            elapsed += self.publisher.result()["seconds"]
            kernel.wait("host.runs.total", runs + count)
            hooked += kernel.value("host.runs.total") - runs
        self.rows.append(at_most("kernel_p99", "kernel: trivial cell round trip p99", "ms",
                                 percentile(rtts["idle"], 99), percentile(rtts["loaded"], 99), 50.0,
                                 f"baseline idle; {len(rtts['loaded'])} cells while {hooked} items "
                                 f"were hooked at {hooked / elapsed:,.0f}/s; p50 "
                                 f"{percentile(rtts['idle'], 50):.1f} / "
                                 f"{percentile(rtts['loaded'], 50):.1f} ms"))

    def widget(self) -> None:
        kernel, seconds = self.kernel, self.sizes.widget_seconds
        count = int(WIDGET_RATE * seconds)
        log(f"widget: EventFeed while {WIDGET_RATE} items/s arrive for {seconds:g} s")
        kernel.execute("from hooknb.frontends.widgets import EventFeed\nfeed = EventFeed(host)")
        probe = "(feed.redraws, host.events.total, time.time())"
        events = kernel.value("host.events.total")
        self.publisher.send("publish", nodes=[kernel.node], count=count, rate=WIDGET_RATE, tag="widget")
        time.sleep(0.5)
        redraws0, events0, t0 = kernel.value(probe)
        time.sleep(seconds - 1.0)
        redraws1, events1, t1 = kernel.value(probe)
        self.publisher.result()
        kernel.wait("host.events.total", events + count)
        kernel.execute("feed.close()")
        rate, arrived = (redraws1 - redraws0) / (t1 - t0), (events1 - events0) / (t1 - t0)
        self.rows.append(at_most("widget_redraws",
                                 f"widget: feed redraws while {WIDGET_RATE:,} items/s arrive",
                                 "redraws/s", arrived, rate, 10.0,
                                 f"baseline: one redraw per arriving item ({arrived:,.0f} items/s "
                                 f"arrived); {redraws1 - redraws0} redraws in {t1 - t0:.1f} s"))

    # ---------------------------------------------------------------- persistent hooks
    def persistent(self) -> None:
        """A persistent hook through the inbox against raw slixmpp; then a catch-up after an
        outage of ``catch_up_items`` items over 20 nodes."""
        raw, _hooked = self.sides
        self.publisher.run("create", nodes=["hooknb-persist"])
        durable = HooknbSide(self.info, self.directory, "hooknb-persist", "hooknb-lat", persistent=True)
        self._closers.append(durable.close)
        self.rows.append(self._rates("throughput_persistent", "throughput, 1 persistent no-op hook (inbox)",
                                     (raw, durable), 0.90))
        durable.close()
        self._catch_up()

    def _catch_up(self) -> None:
        """hooknb coming back after an outage (connect, fetch, inbox, every run) against raw
        slixmpp coming back (connect with stream management, fetch): ABBA rounds, each from the
        same state (hooknb's store copied back), the medians compared."""
        total, nodes = self.sizes.catch_up_items, [f"catch-{i}" for i in range(20)]
        log(f"catch_up: {total} items over {len(nodes)} nodes published while the hooks' process is away")
        setup = self.sides[1].client
        for node in nodes:  # the component's nodes keep 20 items unless told (room for all: no gap)
            setup.create_node(node, self.info.pubsub, config={"max_items": 2 * total // len(nodes)})
        store = self.directory / "catch-up.sqlite3"
        account = (self.info.jid("hook"), self.info.accounts["hook"])
        connect = dict(host=self.info.host, port=self.info.port, plaintext=True)
        before = Host(store_path=str(store))
        before.connect(*account, **connect)
        for node in nodes:
            before.create_hook(node, str(self.sides[1].noop), "python_file", service=self.info.pubsub,
                               persistent=True)
        before.close()                                          # the outage
        self.publisher.run("publish", nodes=nodes, count=total, tag="catch-up")
        away = self.directory / "catch-up-away"                 # the state each round starts from
        away.mkdir()
        copy_into(self.directory.glob("catch-up.sqlite3*"), away)
        window = catchup.window(1, total // len(nodes))          # hooknb's, once the first answer came
        seconds: dict[str, list[float]] = {"slixmpp": [], "hooknb": []}
        for _round, side in alternate(self.sizes.catch_up_rounds, ("slixmpp", "hooknb")):
            if side == "slixmpp":
                back = self.publisher.run("come_back", nodes=nodes, window=window)
                if back["items"] != total:
                    raise HooknbError(f"catch_up: slixmpp fetched {back['items']} of {total} items")
                seconds[side].append(back["seconds"])
                continue
            for path in self.directory.glob("catch-up.sqlite3*"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            copy_into(away.iterdir(), self.directory)
            seconds[side].append(fresh(coming_back, str(store), *account, connect, total)["done"])
        raw, hooked = (statistics.median(seconds[side]) for side in ("slixmpp", "hooknb"))
        fetch = self.publisher.run("fetch", nodes=nodes, window=catchup.PREFETCH + 1)  # for the notes
        self.rows.append(at_least("catch_up", f"catch-up after an outage of {total} items on 20 nodes", "items/s",
                                  total / raw, total / hooked, 0.9,
                                  f"medians of {len(seconds['hooknb'])} rounds per side (ABBA), each from the "
                                  f"same state; slixmpp: a client with stream management and quick acks (as hooknb's) "
                                  f"connecting and fetching the items, {window} requests in flight (hooknb's "
                                  "window for these answers); hooknb, in a new process each round: connect, fetch, "
                                  "write to the inbox and run them all (a no-op python_file hook); ranges slixmpp "
                                  f"{total / max(seconds['slixmpp']):,.0f}-{total / min(seconds['slixmpp']):,.0f}, "
                                  f"hooknb {total / max(seconds['hooknb']):,.0f}-{total / min(seconds['hooknb']):,.0f}; "
                                  f"the connected publisher alone, without stream management, fetching with "
                                  f"{catchup.PREFETCH + 1} in flight: {fetch['items'] / fetch['seconds']:,.0f} items/s"))

    # ---------------------------------------------------------------- dask
    def dask(self) -> None:
        """The 20 ms CPU hook on the thread executor against the dask executor: 2 workers in
        ABBA rounds (the row), then 1 worker (the notes)."""
        from distributed import Client, LocalCluster

        log("dask: starting a LocalCluster of 1 worker process")
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
        dask_client = Client(cluster)  # the default client: what a notebook's would be
        self._closers.append(cluster.close)
        self._closers.append(dask_client.close)
        nodes = ["cpu-thread", "cpu-dask"]
        self.publisher.run("create", nodes=nodes)
        host = Host(store_path=str(self.directory / "dask.sqlite3"))
        host.connect(self.info.jid("hook"), self.info.accounts["hook"], host=self.info.host,
                     port=self.info.port, plaintext=True)
        self._closers.append(host.close)
        path = write_hook(self.directory / "cpu_hook.py", CPU_HOOK)
        sides = tuple(CpuSide(host, node, executor, path, self.info.pubsub)
                      for node, executor in zip(nodes, ("thread", "dask")))
        count = self.sizes.cpu_items
        for side in sides:  # warm up: the thread, the code shipped to the worker
            drain_round(self.publisher, side, 10, f"cpu-warm-{side.name}")
        one = drain_round(self.publisher, sides[1], count, "cpu-1-worker")
        log(f"  1 worker: {one:,.1f} items/s; scaling to 2 workers")
        cluster.scale(2)
        dask_client.wait_for_workers(2, timeout=60)
        drain_round(self.publisher, sides[1], 10, "cpu-warm-2")  # the new worker gets the code
        rates: dict[str, list[float]] = {"thread": [], "dask": []}
        for r, side in alternate(self.sizes.cpu_rounds, sides):
            rate = drain_round(self.publisher, side, count, f"cpu-{r}-{side.name}")
            rates[side.name].append(rate)
            log(f"  round {r} {side.name}: {rate:,.1f} items/s")
        thread, dask = statistics.median(rates["thread"]), statistics.median(rates["dask"])
        self.rows.append(at_least("dask_cpu_hook", "hook of 20 ms CPU: dask (2 workers) vs thread",
                                  "items/s", thread, dask, 1.7,
                                  f"medians of {self.sizes.cpu_rounds} rounds of {count} items; 1 worker: "
                                  f"{one:,.1f} items/s ({one / thread:.2f}x); ranges thread "
                                  f"{min(rates['thread']):,.1f}-{max(rates['thread']):,.1f}, dask "
                                  f"{min(rates['dask']):,.1f}-{max(rates['dask']):,.1f}"))

    # ---------------------------------------------------------------- resume
    def resume(self) -> None:
        rounds, items = self.sizes.resume_rounds, 20
        log(f"resume: {rounds} cuts per side, {items} items published during each")
        fresh, resumed, counts = bench_resume.measure(self.info, self.directory, "pub", rounds, items,
                                                      self._closers)
        fresh_median, resumed_median, ranges = bench_resume.summary(fresh, resumed)
        self.rows.append(speedup("resume", "back from a cut: first item run, resumed vs new session + catch-up",
                                 "s", fresh_median, resumed_median, 1.0,
                                 f"medians of {rounds} cuts per side (ABBA), {items} items published during "
                                 f"each; {ranges}; resumed {counts['resumed']}, refused {counts['refused']}, "
                                 f"{counts['replayed']} stanzas replayed"))

    # ---------------------------------------------------------------- ten thousand feeds
    @cached_property
    def feeds(self) -> list[str]:
        """``scale_nodes`` nodes (and a tenth more, for the memory rows), created pipelined."""
        n = self.sizes.scale_nodes
        nodes = [f"feed-{i:05}" for i in range(n + n // 10)]
        log(f"creating {len(nodes):,} nodes ({WINDOW} requests in flight)")
        self.publisher.run("create", nodes=[*nodes, "scale-tp", "scale-lat"])
        return nodes

    def hooks(self) -> None:
        """hooks_10k, the memory rows, dispatch_10k (see the module docstring)."""
        n, nodes = self.sizes.scale_nodes, self.feeds
        tenth = n // 10
        side = HooknbSide(self.info, self.directory, "scale-tp", "scale-lat", account="scale")
        side.name = "hooknb, many nodes hooked"
        self._closers.append(side.close)
        host, noop, service = side.host, str(side.noop), self.info.pubsub
        log(f"hooks_10k: {n:,} temporary hooks, one per node, through Host.create_hook")
        gc.collect()
        for node in nodes[n + tenth - WINDOW:]:  # warm-up (code paths, caches), not counted
            host.create_hook(node, noop, "python_file", service=service)
        rss, blocks = scale.rss(), []
        for start in range(0, n, tenth):
            began = time.perf_counter()
            for node in nodes[start:start + tenth]:
                host.create_hook(node, noop, "python_file", service=service)
            blocks.append((time.perf_counter() - began) / tenth * 1000)
            log(f"  {start + tenth:,} hooks: {blocks[-1]:.2f} ms per hook")
        gc.collect()
        rss = scale.rss() - rss
        self.rows.append(ratio_at_most("hooks_10k", f"create {n:,} temporary hooks on {n:,} nodes, per hook: "
                                       f"at {n:,} vs at {tenth:,}", "ms", blocks[0], blocks[-1], 1.5,
                                       f"ms per hook by thousand: {' '.join(f'{b:.2f}' for b in blocks)}; "
                                       f"RSS grew {rss / 2**20:.0f} MiB ({rss / n:,.0f} bytes per hooked node)"))
        second = write_hook(self.directory / "noop_hook_2.py", NOOP_HOOK)
        extra = nodes[n:n + tenth - WINDOW]
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for node in extra:
            host.create_hook(node, noop, "python_file", service=service)
        gc.collect()
        hooked = tracemalloc.get_traced_memory()[0]
        for node in extra:
            host.create_hook(node, str(second), "python_file", service=service)
        gc.collect()
        both = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        per_node, per_hook = (hooked - before) / len(extra), (both - hooked) / len(extra)
        notes = f"tracemalloc, {len(extra):,} more nodes hooked with {n:,} hooked already"
        self.rows.append(at_most("memory_per_hooked_node", "memory per hooked node (its subscription, "
                                 "position and one hook)", "bytes", None, per_node, 16384, notes))
        self.rows.append(at_most("memory_per_hook", "memory per hook (a second hook on a hooked node)",
                                 "bytes", None, per_hook, 8192, notes))
        self.rows.append(self._rates("dispatch_10k", f"throughput, 1 node's items, {len(host.registry):,} "
                                     "hooks on other nodes vs 1 hook", (self.sides[1], side), 0.9,
                                     rounds=self.sizes.scale_rounds))
        side.close()

    def start(self) -> None:
        """start_10k (see the module docstring)."""
        n, nodes = self.sizes.scale_nodes, self.feeds[:self.sizes.scale_nodes]
        log(f"start_10k: a store with {n:,} persistent hooks on {n:,} nodes")
        jid, service = self.info.jid("start"), self.info.pubsub
        noop = str(write_hook(self.directory / "noop_hook.py", NOOP_HOOK))
        store = str(self.directory / "start.sqlite3")
        seed = Host(store_path=store)
        seed.change_hooks([HookSpec.make(jid, service, node, "python_file", noop, persistent=True)
                           for node in nodes], [])
        seed.close()
        connect = dict(host=self.info.host, port=self.info.port, plaintext=True)
        times = []
        for _ in range(2):  # the first start subscribes every node; the second finds them subscribed
            started = fresh(coming_back, store, jid, self.info.accounts["start"], connect, 0)
            times.append(started["connected"])
            if started["subscribed"] != n:
                raise HooknbError(f"start_10k: {started['subscribed']} of {n} nodes subscribed")
            log(f"  start: {times[-1]:.2f} s")
        baseline: dict[str, tuple[float, float]] = {}
        for account, managed in (("startraw", False), ("startsm", True)):
            raw = RawProcess(self.info, account, managed=managed)
            try:
                baseline[account] = (raw.run("subscribe", nodes=nodes, window=WINDOW)["seconds"],
                                     raw.run("fetch", nodes=nodes, window=WINDOW)["seconds"])
            finally:
                raw.close()
        (plain_sub, plain_fetch), (subscribed, fetched) = baseline["startraw"], baseline["startsm"]
        self.rows.append(ratio_at_most("start_10k", f"start with {n:,} persistent hooks on {n:,} nodes, to live",
                                       "s", subscribed + fetched, times[0], 1.5,
                                       f"baseline: raw slixmpp with stream management (as hooknb's) subscribing "
                                       f"({subscribed:.2f} s) and fetching ({fetched:.2f} s), {WINDOW} requests in "
                                       f"flight; plain slixmpp {plain_sub:.2f} + {plain_fetch:.2f} s, hooknb "
                                       f"{times[0] / (plain_sub + plain_fetch):.2f}x of it; hooknb: Host.connect in a new process "
                                       f"(lease, subscriptions, catch-up); started again: {times[1]:.2f} s"))

    def floor(self) -> None:
        """parse_floor and the stage table (see the module docstring)."""
        hooked = self.sides[1]
        self.publisher.run("create", nodes=["floor-tp", "floor-lat"])
        side = RawSide(self.info, "floor-tp", "floor-lat", account="floor")
        side.name = "parse only"
        side.peer.run("parse_only")
        self._closers.append(side.close)
        spent: dict[str, float] = {}  # CPU seconds per kind of thread, over hooknb's rounds
        counted = [0]  # items of those rounds
        meter, original = scale.CpuMeter(), hooked.drain
        session = hooked.host.sessions[hooked.client.jid]

        def timed_drain(timeout: float) -> float:
            before, runs = scale.thread_clocks(), hooked.host.runs.total
            with meter.wrap(hooked.client.xmpp, "on_notification", "notification to events (client)"), \
                    meter.wrap(session, "on_events", "session and engine: journal, positions, to the lanes"):
                rate = original(timeout)
            for kind, seconds in scale.thread_clocks().items():
                spent[kind] = spent.get(kind, 0.0) + seconds - before.get(kind, 0.0)
            counted[0] += hooked.host.runs.total - runs
            return rate

        hooked.drain = timed_drain
        try:
            row = self._rates("parse_floor", "throughput, 1 no-op hook vs a parse-only receiver", (side, hooked),
                              0.25)
        finally:
            del hooked.drain
        row.notes += "; the parse-only receiver: expat into elements, no client"
        self.rows.append(row)
        self.stages = scale.stage_table(spent, meter.spent, counted[0], counted[0] / row.hooknb,
                                        statistics.median(side.cpu))
        side.close()

    def run(self, groups: Iterable[str]) -> list[Row]:
        """Run the scenario groups, in a fixed order, each after a full garbage collection (so
        that none pays for the garbage the one before left)."""
        actions = {"cli": self.cli_start, "throughput": self.throughput, "tls": self.throughput_tls,
                   "persistent": self.persistent,
                   "python_file": self.python_file,
                   "latency": self.latency, "journal": self.journal, "kernel": self.kernel_rows,
                   "widget": self.widget, "dask": self.dask, "resume": self.resume, "hooks": self.hooks,
                   "start": self.start, "floor": self.floor}
        for group in GROUPS:
            if group in groups:
                gc.collect()
                actions[group]()
        return self.rows


def notification(i: int, item_id: str, node: str | None = None) -> str:
    """The XML of a notification message carrying one item, as a PubSub service sends it."""
    node = node or f"node-{i % 20}"
    return (f'<message xmlns="jabber:client" from="pubsub.localhost" to="hook@localhost" id="m{i}">'
            f'<event xmlns="http://jabber.org/protocol/pubsub#event"><items node="{node}">'
            f'<item id="{item_id}" publisher="sensor{i % 3}@localhost">'
            f'{ENTRY.format(n=i, t=time.monotonic())}</item></items></event></message>')


def synthetic_events(count: int, tag: str) -> list[Event]:
    """Events parsed from ``count`` notification messages, as the client parses them."""
    return [e for i in range(count)
            for e in parse_notification("hook@localhost", "pubsub.localhost",
                                        ET.fromstring(notification(i, f"{tag}-{i}")))]


class Kernel:
    """A real ipykernel (through jupyter_client) with hooknb connected and a no-op hook on ``node``."""

    def __init__(self, info: srv.ServerInfo, directory: Path, node: str) -> None:
        from jupyter_client.manager import start_new_kernel

        home = directory / "kernel-home"
        home.mkdir(exist_ok=True)
        self.node = node
        self.km, self.kc = start_new_kernel(kernel_name="python3",
                                            env={**os.environ, "HOOKNB_HOME": str(home)})
        noop = write_hook(directory / "kernel_noop_hook.py", NOOP_HOOK)
        self.execute(f"""
import time
import hooknb
host = hooknb.get_host()
client = hooknb.connect({info.jid('kern')!r}, {info.accounts['kern']!r}, host={info.host!r},
                        port={info.port}, plaintext=True)
host.create_hook({node!r}, {str(noop)!r}, "python_file", service={info.pubsub!r})
""")

    def _reply(self, msg_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            reply = self.kc.get_shell_msg(timeout=max(0.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]

    def _drain_iopub(self) -> None:
        while True:
            try:
                self.kc.get_iopub_msg(timeout=0)
            except queue.Empty:
                return

    def execute(self, code: str, timeout: float = 60) -> dict[str, Any]:
        """Run a cell; its reply content (raises if the cell failed)."""
        content = self._reply(self.kc.execute(code), timeout)
        self._drain_iopub()
        if content["status"] != "ok":
            raise HooknbError(f"kernel cell failed: {content.get('ename')}: {content.get('evalue')}")
        return content

    def value(self, expression: str) -> Any:
        """The value of a Python literal expression evaluated in the kernel."""
        content = self._reply(self.kc.execute("", silent=True, user_expressions={"v": expression}), 30)
        result = content["user_expressions"]["v"]
        if result["status"] != "ok":
            raise HooknbError(f"kernel: {expression}: {result.get('ename')}: {result.get('evalue')}")
        return ast.literal_eval(result["data"]["text/plain"])

    def wait(self, expression: str, minimum: int, timeout: float = 30) -> None:
        """Poll until ``expression`` reaches ``minimum`` in the kernel."""
        deadline = time.monotonic() + timeout
        while self.value(expression) < minimum:
            if time.monotonic() > deadline:
                raise HooknbError(f"kernel: {expression} stayed below {minimum}")
            time.sleep(0.05)

    def round_trips(self, seconds: float) -> list[float]:
        """Round trips (ms) of trivial cells run one after another, 10 ms apart, for ``seconds``."""
        out = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            content = self._reply(self.kc.execute("pass"), 30)
            out.append((time.perf_counter() - start) * 1000)
            if content["status"] != "ok":
                raise HooknbError("a trivial cell failed")
            self._drain_iopub()
            time.sleep(0.01)
        return out

    def close(self) -> None:
        """Stop the kernel."""
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


# ------------------------------------------------------------------------------------ report

def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                 platform.processor())
    prosody = ""
    if shutil.which("dpkg-query"):
        prosody = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "prosody"], capture_output=True,
                                 text=True).stdout
    return {"cpus": len(os.sched_getaffinity(0)), "cpu": model, "system": platform.platform(),
            "python": platform.python_version(), "slixmpp": slixmpp.__version__,
            "prosody": prosody or "unknown"}


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"
    return f"{text} {unit}".rstrip()


def table(rows: list[Row]) -> str:
    """The rows as an aligned text table."""
    cells = [("scenario", "baseline", "hooknb", "ratio", "target", "pass")]
    for row in rows:
        verdict = "-" if row.passed is None else "PASS" if row.passed else "FAIL"
        cells.append((row.scenario, _number(row.baseline, row.unit), _number(row.hooknb, row.unit),
                      "-" if row.ratio is None else f"{row.ratio:.2f}", row.target, verdict))
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) if i < 4 else c.ljust(w)
                       for i, (c, w) in enumerate(zip(cell, widths))).rstrip() for cell in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python benchmarks/bench.py``; exit code 1 if a target was missed."""
    parser = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (CI checks it runs)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--only", nargs="+", choices=GROUPS, default=list(GROUPS), metavar="GROUP",
                        help=f"run only these groups ({', '.join(GROUPS)})")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="hooknb-bench-") as tmp:
        bench = Bench(sizes, Path(tmp))
        try:
            rows = bench.run(args.only)
        finally:
            bench.close()
    if args.json:
        print(json.dumps({"machine": machine(), "quick": args.quick, "sizes": asdict(sizes),
                          "rows": [asdict(r) for r in rows], "stages": bench.stages}, indent=1))
    else:
        info = machine()
        print(f"hooknb bench{' (quick)' if args.quick else ''}: {info['cpus']} x {info['cpu']}, "
              f"Python {info['python']}, slixmpp {info['slixmpp']}, Prosody {info['prosody']}")
        print(table(rows))
        for row in rows:
            if row.notes:
                print(f"  {row.id}: {row.notes}")
        if bench.stages:
            print("where hooknb's time per item goes (parse_floor rounds, thread CPU clocks):")
            print(scale.format_stages(bench.stages))
    return 0 if all(r.passed is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
