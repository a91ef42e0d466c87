"""The ``resume`` rows of the bench: back from a network cut, a resumed stream (XEP-0198) against
a new session and its catch-up, on one node, in one run.

Two accounts hook the same node (a persistent no-op hook each, in a host and store of their
own), each reaching the server through a :class:`FaultProxy` of its own (``tests/faultproxy.py``):
``rsm`` resumes its stream, ``fresh`` has resumption turned off (slixmpp's ``allow_resume``), so
that a cut costs it a new session: presence, subscriptions, the store read, the catch-up (the
node's items fetched and compared).  A round cuts one side's connections and holds its
reconnection, publishes ``items`` items, then lets the connection through: the time from that
release to the first item run (the first replayed one, or the first caught up) is the round's.
Rounds alternate (ABBA); the medians are compared.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hooknb.errors import HooknbError
from hooknb.host import Host
from hooknb.server import ServerInfo
from hooknb.xmpp.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from faultproxy import FaultProxy  # noqa: E402 - the tests' fault harness

ACCOUNTS = ("rsm", "fresh")  # the resumed side, the new-session side (admins: they make nodes)
NODE = "resume-bench"


@dataclass
class Side:
    """One account hooking the node through its own proxy."""

    name: str
    host: Host
    client: Client
    proxy: FaultProxy

    def back_after_cut(self, publisher: Client, info: ServerInfo, items: int, tag: str) -> float:
        """Cut, publish ``items`` while away, release: seconds from the release to the first run."""
        before = self.host.runs.total
        self.proxy.cut(hold=True)
        for n in range(items):
            publisher.publish(NODE, f"<n xmlns='urn:bench'>{n}</n>", item_id=f"{tag}-{n}", service=info.pubsub)
        if not self.proxy.wait(lambda p: p.held >= 1, 30):
            raise HooknbError(f"{self.name}: no reconnection came while the proxy held them")
        released = self.proxy.release()
        if not self.host.wait_runs(before + 1, 30):
            raise HooknbError(f"{self.name}: nothing ran after the cut")
        first = time.monotonic() - released
        if not self.host.wait_runs(before + items, 30):
            raise HooknbError(f"{self.name}: {self.host.runs.total - before} of {items} items ran after the cut")
        return first


def _side(info: ServerInfo, directory: Path, name: str, resume: bool) -> Side:
    proxy = FaultProxy(info.port).start()
    host = Host(store_path=str(directory / f"{name}.sqlite3"))
    client = host.connect(info.jid(name), info.accounts[name], host=info.host, port=proxy.port,
                          plaintext=info.cafile is None, cafile=info.cafile)
    if name == ACCOUNTS[0]:
        client.create_node(NODE, info.pubsub, config={"max_items": 10000})
    host.create_hook(NODE, "item.id", type="python_code", service=info.pubsub, persistent=True)
    if not resume:  # its streams are never resumed: each cut costs a new session and a catch-up
        client.xmpp.plugin["xep_0198"].allow_resume = False
    return Side(name, host, client, proxy)


def measure(info: ServerInfo, directory: Path, publisher_name: str, rounds: int, items: int,
            closers: list[Any]) -> tuple[list[float], list[float], dict[str, int]]:
    """The seconds to the first run after each round's release: (new session, resumed), and
    the resumed side's counts (resumed, refused, replayed)."""
    resumed = _side(info, directory, ACCOUNTS[0], resume=True)
    fresh = _side(info, directory, ACCOUNTS[1], resume=False)
    for side in (resumed, fresh):
        closers.append(side.proxy.close)
        closers.append(side.host.close)
    publishing = Host(store_path=str(directory / "resume-pub.sqlite3"))
    closers.append(publishing.close)
    publisher = publishing.connect(info.jid(publisher_name), info.accounts[publisher_name], host=info.host,
                                   port=info.port, plaintext=info.cafile is None, cafile=info.cafile)
    for side in (resumed, fresh):  # warm up; the fresh side's first new session enables SM without resumption
        side.back_after_cut(publisher, info, 2, f"warm-{side.name}")
    times: dict[str, list[float]] = {"rsm": [], "fresh": []}
    order = [(resumed, fresh), (fresh, resumed)]
    for r in range(rounds):
        for side in order[r % 2]:
            times[side.name].append(side.back_after_cut(publisher, info, items, f"r{r}-{side.name}"))
    counts = {"resumed": resumed.client.resumption.resumed, "refused": resumed.client.resumption.refused,
              "replayed": resumed.client.resumption.replayed_total,
              "fresh_resumed": fresh.client.resumption.resumed}
    return times["fresh"], times["rsm"], counts


def summary(fresh: list[float], resumed: list[float]) -> tuple[float, float, str]:
    """The medians (new session, resumed) and the ranges, for the row's notes."""
    return (statistics.median(fresh), statistics.median(resumed),
            f"ranges new session {min(fresh) * 1e3:.0f}-{max(fresh) * 1e3:.0f} ms, "
            f"resumed {min(resumed) * 1e3:.0f}-{max(resumed) * 1e3:.0f} ms")
