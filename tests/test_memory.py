"""Memory bounded in bytes against the real server: a notebook's process (an IPython shell with
``%load_ext hooknb``, in a subprocess of its own so that its RSS is its own) takes 1,500 items
of 1 MB published by another account and stays under its journal's bytes plus a margin; events
of a node that this process neither subscribed to nor hooked are counted, not journaled.
(The same stages without a server: ``tests/unit/test_memory_unit.py``.)"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time

import pytest
from processes import wait_until

from hooknb.xmpp import loop as _loop

MB = 2**20
ITEMS = 1_500
JOURNAL_BYTES = 32 * MB
#: What the process may hold beyond the journal's bytes once the items have all run: the runs
#: journal (1,500 small runs: under 1 MiB), the items in flight (each 1 MB up to four times:
#: the stanza's text, its parsed tree, the payload's string, the hook's view), the allocator's
#: arenas (one per thread that touched a megabyte) and what a first run of the hook loads.
MARGIN = 64 * MB

NOTEBOOK = textwrap.dedent("""
    import json, sys
    from IPython.core.interactiveshell import InteractiveShell

    def rss(field="VmRSS"):
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith(field))

    jid, password, host, port, cafile, service, node, items, journal_bytes = sys.argv[1:]
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "hooknb")
    shell.run_line_magic("config", f"HookMagics.events_max_bytes = {journal_bytes}")
    shell.run_line_magic("hook", f"connect {jid} --password={password} --host {host} --port {port} "
                                 f"--cafile {cafile}")
    shell.run_line_magic("hook", f"create -s {service} -n {node} -t python_code 'len(item.payload)'")
    import hooknb
    h = hooknb.get_host()
    print(json.dumps({"ready": True, "rss": rss()}), flush=True)
    ok = h.wait_runs(int(items), timeout=600)
    runs, events = h.runs.snapshot(), h.events.snapshot()
    published = [e for e in events if e.kind == "publish"]  # (ejabberd notifies the retractions too)
    print(json.dumps({"ok": ok, "rss": rss(), "peak": rss("VmHWM"), "runs": len(runs),
                      "results": sorted({r.result for r in runs}),
                      "statuses": sorted({r.status for r in runs}),
                      "events": len(h.events), "events_bytes": h.events.bytes, "events_total": h.events.total,
                      "longest_payload": max(len(e.payload) for e in published),
                      "last_payload_tail": published[-1].payload[-120:]}), flush=True)
    h.close()
""")


def payload(i: int) -> str:
    head = f'<blob xmlns="urn:test" n="{i}">'
    return head + "x" * (MB - len(head) - 7) + "</blob>"


def rss_line(proc: subprocess.Popen) -> dict:
    """The next JSON line of the notebook (the magics' own output is skipped)."""
    while (line := proc.stdout.readline()).startswith("{") is False:
        assert line, proc.stderr.read()[-2000:]
    return json.loads(line)


@pytest.mark.timeout(600)
def test_a_notebook_taking_1500_items_of_1_mb_stays_under_its_journal_bytes(
        server, account, make_host, connect, node, home):
    """Before, every payload stayed (in the events journal, the digest cache and the lane's
    versions already run): 46 MiB ready, 1,554 MiB after.  Now the journal keeps the first 64 KiB
    of each, the newest that fit in 32 MiB; the hook receives every item whole.  Measured on a
    shared machine: 47 MiB ready, 93 MiB after (peak 95 MiB), under a bound of 143 MiB."""
    jid, password = account("nb")
    publisher = connect(make_host(), max_bytes=2 * MB)  # above the 1 MiB default: the server takes 4 MiB
    publisher.create_node(node, server.pubsub, {"max_items": 1, "persist_items": "0"})  # (no disk)
    proc = subprocess.Popen(
        [sys.executable, "-c", NOTEBOOK, jid, password, server.host, str(server.port), server.cafile,
         server.pubsub, node, str(ITEMS), str(JOURNAL_BYTES)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        ready = rss_line(proc)
        started = time.monotonic()
        for first in range(0, ITEMS, 10):  # ten publishes in flight at a time
            _loop.call(_publish_all(publisher, node, server.pubsub, range(first, first + 10)))
        published = time.monotonic() - started
        done = rss_line(proc)
        assert proc.wait(60) == 0, proc.stderr.read()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    bound = ready["rss"] + JOURNAL_BYTES + MARGIN
    print(f"\nRSS {ready['rss'] / MB:.0f} MiB ready, {done['rss'] / MB:.0f} MiB after {ITEMS} items of 1 MB "
          f"(peak {done['peak'] / MB:.0f} MiB; bound {bound / MB:.0f} MiB); published in {published:.0f} s; "
          f"journal {done['events']} events, {done['events_bytes'] / MB:.1f} MiB")
    assert (done["ok"], done["runs"], done["statuses"]) == (True, ITEMS, ["ok"])
    assert done["results"] == [repr(MB)]  # every hook run had the whole payload
    assert done["events_total"] >= ITEMS and done["events_bytes"] <= JOURNAL_BYTES
    assert done["longest_payload"] == 64 * 1024
    assert f"{MB:,} characters in all, sha256 " in done["last_payload_tail"]
    assert done["rss"] < bound and done["peak"] < bound


async def _publish_all(client, node: str, service: str, numbers: range) -> None:
    await asyncio.gather(*(client.apublish(node, payload(i), item_id=f"i{i}", service=service)
                           for i in numbers))


def test_events_of_a_node_neither_subscribed_nor_hooked_are_counted_not_journaled(
        server, account, make_host, connect, node):
    """Another resource of the account subscribes (a subscription of the bare JID): the server
    sends this process the notifications too."""
    jid, password = account("two")
    watcher_host = make_host()
    watcher = connect(watcher_host, jid, password, resource="watch")
    other = connect(make_host(), jid, password, resource="other")
    publisher = connect(make_host())
    publisher.create_node(node, server.pubsub)
    publisher.create_node(f"{node}-mine", server.pubsub)
    other.subscribe(node, server.pubsub)
    watcher.subscribe(f"{node}-mine", server.pubsub)
    for i in range(3):
        publisher.publish(node, f"<n xmlns='urn:test'>{i}</n>", item_id=f"other{i}", service=server.pubsub)
    publisher.publish(f"{node}-mine", "<n xmlns='urn:test'/>", item_id="mine", service=server.pubsub)
    wait_until(lambda: watcher_host.events.total >= 1)
    status = watcher_host.status().set_index("account")
    wait_until(lambda: watcher_host.status().set_index("account").loc[jid, "unsolicited"] == 3)
    assert [e.item_id for e in watcher_host.events.snapshot()] == ["mine"]
    assert status.loc[jid, "subscriptions"] == 1
