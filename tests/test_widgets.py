"""The live widgets against the real local server: feed rows and counts, throttled redraws, the
hook manager's table and buttons, and the plain HTML/text fallbacks."""

from __future__ import annotations

import asyncio
import queue
import textwrap
import time
from collections.abc import Callable
from typing import Any

import pytest
from jupyter_client.manager import start_new_kernel

from hooknb.xmpp import loop as _loop
from hooknb.xmpp.client import Client
from hooknb.errors import HooknbError
from hooknb.frontends.widgets import MAX_RATE, EventFeed, HookManager

ENTRY = '<entry xmlns="http://www.w3.org/2005/Atom"><title>hello</title></entry>'


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    """Poll ``predicate`` (the refresher offers nothing to await)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def publish_burst(client: Client, node: str, count: int, in_flight: int = 25) -> None:
    """Publish ``count`` items as fast as the server takes them (a few dozen requests in flight)."""

    async def burst() -> None:
        slots = asyncio.Semaphore(in_flight)

        async def one(i: int) -> None:
            async with slots:
                await client.apublish(node, ENTRY, item_id=f"burst-{i}")

        await asyncio.gather(*(one(i) for i in range(count)))

    _loop.call(burst())


def test_feed_rows_counts_and_fallbacks(host, connect, node):
    client = connect(host)
    other = f"{node}-other"
    client.subscribe(node)
    client.subscribe(other)
    client.publish(node, ENTRY, item_id="before")
    assert host.wait_events(1)
    feed = EventFeed(host, rows=3)
    try:
        assert "hooknb-feed" in feed._dom_classes
        for i in range(4):
            client.publish(node, ENTRY, item_id=f"n{i}")
        client.publish(other, ENTRY, item_id="o0")
        assert host.wait_events(6)
        wait_until(lambda: "6 event(s) on 2 node(s)" in feed._summary.value)
        table = feed._table.value
        assert table.count('<tr class="hooknb-event">') == 3
        assert table.index("o0") < table.index("n3") < table.index("n2") and "n1" not in table
        assert f"<td>{node}</td><td>5</td>" in feed._counts_html.value
        assert f"<td>{other}</td><td>1</td>" in feed._counts_html.value
        assert not feed.update(), "nothing changed: nothing is sent again"
        html, text = feed._repr_html_(), repr(feed)
        assert html.startswith('<div class="hooknb-feed">') and "o0" in html
        assert text.startswith("6 event(s) on 2 node(s)") and "n3" in text
    finally:
        feed.close()
    assert feed._count not in host.events.listeners


def test_feed_redraws_at_most_ten_times_a_second(host, connect, node):
    client = connect(host)
    client.subscribe(node)
    feed = EventFeed(host, rows=10, rate=1000)  # asking for more than the maximum
    try:
        assert feed._refresher.interval == pytest.approx(1 / MAX_RATE)
        before, started = feed.redraws, time.perf_counter()
        publish_burst(client, node, 1000)
        assert host.wait_events(1000, 30)
        wait_until(lambda: "1000 event(s)" in feed._summary.value)
        elapsed = time.perf_counter() - started
        redraws = feed.redraws - before
        assert 1 <= redraws <= elapsed * MAX_RATE + 2, (redraws, elapsed)
        assert feed._table.value.count('<tr class="hooknb-event">') == 10
    finally:
        feed.close()


def test_bad_refresh_rate(host):
    with pytest.raises(HooknbError, match="refresh rate must be a positive number"):
        EventFeed(host, rate=0)


def test_manager_table_and_buttons(host, connect, node):
    client = connect(host)
    ok = host.create_hook(node, "item.id", type="python_code")
    bad = host.create_hook(node, "1 / 0", type="python_code")
    idle = host.create_hook(f"{node}-empty", "item.id", type="python_code")
    manager = HookManager(host)
    try:
        assert "hooknb-manager" in manager._dom_classes
        client.publish(node, ENTRY, item_id="p1")
        assert host.wait_runs(2)
        wait_until(lambda: "3 hook(s), 2 run(s), 1 failure(s)" in manager._summary.value)
        rows = manager._rows
        assert list(rows) == [ok.id, bad.id, idle.id]
        assert [r._dom_classes[:1] for r in manager._rows_box.children] == [("hooknb-hook",)] * 3
        assert [b.description for b in rows[ok.id].children[1:]] == ["run", "delete"]
        assert "ZeroDivisionError: division by zero" in rows[bad.id].children[0].value

        rows[ok.id].children[1].click()  # run once on the latest item of its node
        run = manager.action.result(10)
        assert (run.hook_id, run.item_id, run.status) == (ok.id, "p1", "ok")
        assert f"hook {ok.id} ran on item p1: ok" in manager.status.value

        rows[idle.id].children[1].click()
        assert manager.action.result(10) is None
        assert "hooknb-error" in manager.status.value and "not run: " in manager.status.value

        rows[bad.id].children[2].click()  # delete
        assert bad.id not in host.registry and list(manager._rows) == [ok.id, idle.id]
        assert len(manager._rows_box.children) == 2
        assert f"hook {bad.id} deleted" in manager.status.value
        assert not manager.delete(bad.id)

        text, html = repr(manager), manager._repr_html_()
        assert text.startswith("2 hook(s), 2 run(s), 0 failure(s)") and ok.id in text
        assert '<table class="hooknb-hooks">' in html and bad.id not in html
    finally:
        manager.close()


@pytest.mark.integration  # starts a kernel
def test_feed_updates_reach_a_real_front_end(server, home, monkeypatch):
    """In a real kernel, redraws made on hooknb's loop thread arrive on IOPub as comm messages."""
    monkeypatch.setenv("HOOKNB_SERVER_DIR", server.dir)
    km, kc = start_new_kernel(kernel_name="python3")
    quiet = {"timeout": 30, "output_hook": lambda _msg: None}
    try:
        reply = kc.execute_interactive(textwrap.dedent("""
            import hooknb
            from hooknb.local import local_server
            from hooknb.frontends.widgets import EventFeed
            server = local_server()
            client = server.connect("alice")
            client.subscribe("feed-over-iopub")
            EventFeed(hooknb.get_host(), rows=3)
        """), **quiet)
        assert reply["content"]["status"] == "ok", reply["content"]
        seen = []

        def redrawn(msg: dict) -> None:
            state = msg["content"].get("data", {}).get("state", {}) if msg["msg_type"] == "comm_msg" else {}
            if "5 event(s) on 1 node(s)" in str(state.get("value", "")):
                seen.append(msg)

        # a redraw made while the cell runs has the cell for parent: it comes to its output hook
        kc.execute_interactive("for i in range(5): client.publish('feed-over-iopub', '<x xmlns=\"urn:t\"/>')",
                               timeout=30, output_hook=redrawn)
        deadline = time.monotonic() + 30
        while not seen:
            assert time.monotonic() < deadline, "no redraw of the feed reached the front end"
            try:
                redrawn(kc.get_iopub_msg(timeout=1))
            except queue.Empty:
                continue
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
