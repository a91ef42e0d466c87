"""What is sent across a cut, without a server: a stream whose socket is a recorder, cut and
resumed (or not) by hand as slixmpp's own events would.  A stanza handed to slixmpp before the
client heard of the cut is held and sent on the resumed stream, in the order everything was sent;
when the session ends instead, nothing of the old one is sent on the next."""

from __future__ import annotations

import asyncio
import re

from slixmpp.plugins.xep_0198 import stanza as sm

from hooknb.xmpp.client import PLUGINS
from hooknb.xmpp import resumption
from hooknb.xmpp.stream import Stream


class Socket:
    """What slixmpp writes, as text."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def write(self, data: bytes) -> None:
        self.written.append(data.decode())

    def get_extra_info(self, *_args, **_kwargs) -> None:
        return None

    def ids(self) -> list[str]:
        return re.findall(r"<iq [^>]*id=\"(\w+)\"", "".join(self.written))


async def turns(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def connected() -> Stream:
    """A stream as hooknb builds it, its session up and stream management on."""
    stream = Stream("a@example.org/r", "pw", loop=asyncio.get_running_loop())
    for plugin in PLUGINS:
        stream.register_plugin(plugin)
    resumption.enable(stream)
    stream._run_out_filters = asyncio.ensure_future(stream.run_filters())
    stream.transport = Socket()
    stream.event("session_start")
    plugin = stream.plugin["xep_0198"]
    plugin.enabled_out = plugin.enabled_in = True
    plugin.sm_id = "s1"
    stream.end_session_on_disconnect = False
    return stream


def publish(stream: Stream, key: str) -> None:
    iq = stream.Iq(sto="pubsub.example.org", stype="set")
    iq["id"] = key
    stream.send(iq)


async def cut(stream: Stream) -> None:
    """Write ``unacked`` (never acknowledged), hand over ``held`` and cut before it is written,
    then send ``after`` during the cut."""
    publish(stream, "unacked")
    await turns()
    publish(stream, "held")                  # handed over in the turn the socket goes
    stream.connection_lost(None)
    await turns()
    publish(stream, "after")                 # sent during the cut
    await turns()


async def resume(stream: Stream) -> list[str]:
    """Cut ``stream`` and resume it: the ids written on the resumed stream."""
    await cut(stream)
    stream.transport = again = Socket()
    stream.send(sm.Resume(stream))
    await turns()
    resumed = sm.Resumed(stream)
    resumed["h"] = 0
    stream.plugin["xep_0198"]._handle_resumed(resumed)
    await turns()
    stream._run_out_filters.cancel()
    return again.ids()


def test_a_resumed_stream_sends_what_was_cut_in_the_order_it_was_sent():
    async def run() -> list[str]:
        return await resume(await connected())

    # slixmpp alone: the held one lost, the unacknowledged one sent after what came later
    assert asyncio.run(run()) == ["unacked", "held", "after"]


def test_without_slixmpps_list_of_waiting_stanzas_what_was_held_is_still_sent():
    # a later slixmpp may rename the private list the order is put back in: nothing is lost
    async def run() -> list[str]:
        stream = await connected()
        stream._waiting = lambda: None
        return await resume(stream)

    assert asyncio.run(run()) == ["after", "unacked", "held"]  # slixmpp's own order


def test_a_session_that_ends_sends_nothing_of_its_own_on_the_next():
    async def run() -> list[str]:
        stream = await connected()
        await cut(stream)
        stream.transport = again = Socket()
        stream.plugin["xep_0198"]._handle_failed(sm.Failed(stream))  # the resumption is refused ...
        stream.event("session_end")
        stream.event("session_start")                                # ... and a new session starts
        publish(stream, "new")
        await turns()
        stream._run_out_filters.cancel()
        return again.ids()

    # slixmpp alone sends "after" (its caller told the request failed) on the new session
    assert asyncio.run(run()) == ["new"]
