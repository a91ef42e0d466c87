"""What the views show of one account when ``--jid`` names it: the journals' frames, the live
feed (what it held when made and what comes later) and the hook manager."""

from __future__ import annotations


from hooknb.frontends.widgets import EventFeed, HookManager
from unit.fakes import ACCOUNT, event, on_loop

BOB = "bob@localhost"


def test_frames_of_one_account(host):
    host.events.extend([event("n", "a1"), event("n", "b1", account=BOB), event("m", "a2")])
    assert list(host.events_frame(account=BOB)["item_id"]) == ["b1"]
    assert list(host.events_frame(account=ACCOUNT, last=1)["item_id"]) == ["a2"]
    assert list(host.events_frame(node="n")["item_id"]) == ["a1", "b1"]


def test_the_feed_of_one_account(host):
    host.events.extend([event("n", "a1"), event("n", "b1", account=BOB), event("n", "a2")])
    feed = EventFeed(host, rows=5, account=BOB)
    try:
        on_loop(lambda: host.events.extend([event("n", "b2", account=BOB), event("n", "a3")]))
        summary, counts, rows = feed.content()
        assert [row[4] for row in rows] == ["b2", "b1"]  # newest first
        assert counts == [("pubsub.localhost", "n", 2)] and summary.startswith("2 event(s) on 1 node(s)")
    finally:
        feed.close()
    everyone = EventFeed(host, rows=2)
    try:
        assert [row[4] for row in everyone.content()[2]] == ["a3", "b2"]
    finally:
        everyone.close()


def test_the_manager_of_one_account(host):
    for account in (ACCOUNT, BOB):
        host.create_hook("n", f"'{account}'", type="python_code", persistent=True, account=account)
    manager = HookManager(host, account=BOB)
    try:
        summary, rows = manager.content()
        assert [cells[4] for _id, cells in rows] == [f"'{BOB}'"] and summary.startswith("1 hook(s)")
    finally:
        manager.close()
