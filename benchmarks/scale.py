"""Helpers of the bench's scale rows (``hooks``, ``start``, ``floor``; see ``bench.py``).

* :func:`pipelined`: requests with a bounded number in flight (the raw baselines);
* :class:`ParseOnly`: the floor, a receiver that only parses the stream with expat into
  elements (``xml.etree.ElementTree.XMLPullParser``, as slixmpp and every Python client does)
  and counts the messages;
* :func:`thread_clocks`, :class:`CpuMeter`, :func:`stage_table`: the CPU time of each thread
  of this process and of some stages on the loop thread, for the table of where the time per
  item goes;
* :func:`rss`: the resident memory of this process.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

STREAM_HEADER = (b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
                 b"version='1.0'>")
MESSAGE_TAG = "{jabber:client}message"


async def pipelined(calls: Iterable[Callable[[], Awaitable[Any]]], window: int) -> list[Any]:
    """Await every call with at most ``window`` of them in flight; their results, in order."""
    slots = asyncio.Semaphore(window)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with slots:
            return await call()

    return await asyncio.gather(*(one(call) for call in calls))


class ParseOnly:
    """The parse floor: what the socket gives, parsed with expat into elements, each top-level
    message counted (``on_message``) and dropped, as a client's stream reader does before any
    handler sees the stanza.  Fed from the middle of a stream: a header opens its root."""

    def __init__(self, on_message: Callable[[], None]) -> None:
        self.on_message = on_message
        self.parser = ET.XMLPullParser(("start", "end"))
        self.depth = 0
        self.root: ET.Element | None = None
        self.feed(STREAM_HEADER)

    def feed(self, data: bytes) -> None:
        """Parse a chunk of the stream (an ``asyncio.Protocol.data_received`` in its place)."""
        self.parser.feed(data)
        for event, element in self.parser.read_events():
            if event == "start":
                self.depth += 1
                if self.depth == 1:
                    self.root = element
                continue
            self.depth -= 1
            if self.depth == 1:
                if element.tag == MESSAGE_TAG:
                    self.on_message()
                self.root.clear()


def thread_clocks() -> dict[str, float]:
    """CPU seconds each live thread of this process has used, summed per kind of thread (its
    name without the hook id or number)."""
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            seconds = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (OSError, TypeError, ProcessLookupError):  # ended meanwhile
            continue
        kind = re.sub(r"-[0-9a-f]{6,}$|[-_ ]?\d+$", "", thread.name) or thread.name
        out[kind] = out.get(kind, 0.0) + seconds
    return out


class CpuMeter:
    """CPU seconds (of the calling thread) spent in some callables, wrapped in place."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    @contextmanager
    def wrap(self, obj: Any, attr: str, label: str) -> Iterator[None]:
        """Meter ``obj.attr`` (a method or a callable attribute) as ``label`` meanwhile."""
        original, own = getattr(obj, attr), attr in vars(obj)

        def metered(*args: Any, **kwargs: Any) -> Any:
            began = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.spent[label] = self.spent.get(label, 0.0) + time.thread_time() - began

        setattr(obj, attr, metered)
        try:
            yield
        finally:
            if own:
                setattr(obj, attr, original)
            else:
                delattr(obj, attr)


def stage_table(threads: dict[str, float], stages: dict[str, float], items: int, wall: float,
                floor_cpu: float) -> list[dict[str, Any]]:
    """Where the time per item went over ``items`` items taking ``wall`` seconds: the CPU
    seconds of each kind of thread (``threads``), the loop thread's split into the metered
    ``stages`` (:class:`CpuMeter`) and the rest, and the floor's CPU per item (``floor_cpu``:
    what any client pays to read and parse)."""
    def row(stage: str, thread: str, seconds: float) -> dict[str, Any]:
        return {"stage": stage, "thread": thread, "us_per_item": seconds / items * 1e6}

    rows = [row("wall clock (the receiver's whole time per item)", "-", wall)]
    for kind in sorted(threads, key=threads.get, reverse=True):
        if threads[kind] / items * 1e6 >= 0.05:
            rows.append(row(THREADS.get(kind, "other"), kind, threads[kind]))
            if kind == "hooknb-loop":
                rows += [row(f"  {label}", kind, seconds) for label, seconds in stages.items()]
                rows.append(row("  the rest: socket read, expat parse, slixmpp's stream and filters", kind,
                                threads[kind] - sum(stages.values())))
                rows.append(row("    of which the floor: socket read and expat parse (its CPU)", kind,
                                floor_cpu * items))
    return rows


THREADS = {"hooknb-loop": "the event loop, all of it",
           "hooknb-hook": "the hook's lane: the call, its outcome, the run journal",
           "hooknb-inbox": "the inbox writer (SQLite)",
           "MainThread": "the bench's own polling"}


def format_stages(rows: list[dict[str, Any]]) -> str:
    """The stage table as text."""
    width = max(len(r["thread"]) for r in rows)
    lines = [f"  {'thread'.ljust(width)}  {'us/item':>8}  stage"]
    lines += [f"  {r['thread'].ljust(width)}  {r['us_per_item']:8.2f}  {r['stage']}" for r in rows]
    return "\n".join(lines)


def rss() -> int:
    """The resident memory of this process, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
