"""Memory bounded in bytes, without a server: journals kept within their bytes, long fields
journaled cut with their digest while hooks receive them whole, no payload held anywhere else,
events nobody asked for counted and not journaled, positions of hooked nodes only, the inbox's
memory for a failing store bounded in bytes.  (The same against the real server, measured as
the process's RSS: ``tests/test_memory.py``.)"""

from __future__ import annotations

import gc
import hashlib
import sys
import tracemalloc

import pytest

from hooknb.xmpp import loop as _loop
from hooknb.xmpp.client import Client
from hooknb.errors import HooknbError
from hooknb.xmpp.events import Event
from hooknb.core.hooks import HookSpec
from hooknb.core.inbox import Entry, Inbox, digest
from hooknb.storage.journal import FIELD_MAX, Journal, Run, cut
from hooknb.storage.store import Store
from processes import wait_until
from unit.fakes import ACCOUNT, SERVICE, FakeClient, event, on_loop

MB = 2**20


def big(item_id: str, node: str = "n", size: int = MB) -> Event:
    """A publish event whose payload weighs ``size`` bytes, unique to ``item_id``."""
    head = f'<blob xmlns="urn:test" id="{item_id}">'
    return event(node, item_id, payload=head + "x" * (size - len(head) - 7) + "</blob>")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def session(host):
    session = host.new_session()
    client = FakeClient()
    _loop.call(session.prepare_session(client))
    _loop.call(session.session_started(client, False))
    yield session, client
    _loop.call(session.close())


def hook(host, node="n", code="len(item.payload)"):
    return host.engine.install(HookSpec.make(ACCOUNT, SERVICE, node, "python_code", code))


# ------------------------------------------------------------------------------ journals

def test_a_journal_keeps_the_newest_records_that_fit_its_bytes():
    journal: Journal[Event] = Journal(maxlen=1000, max_bytes=5 * FIELD_MAX)
    for i in range(20):
        journal.append(big(str(i), size=40_000))  # a little under FIELD_MAX: kept whole
    kept = [e.item_id for e in journal.snapshot()]
    assert kept == [str(i) for i in range(12, 20)]  # 8 of 40 kB fit in 320 kB
    assert journal.bytes <= journal.max_bytes < journal.bytes + 41_000
    assert (journal.total, journal.dropped) == (20, 12)
    journal.resize(max_bytes=2 * 41_000)
    assert [e.item_id for e in journal.snapshot()] == ["18", "19"] and journal.maxlen == 1000
    journal.resize(maxlen=1)
    assert [e.item_id for e in journal.snapshot()] == ["19"] and journal.max_bytes == 2 * 41_000
    journal.clear()
    assert (journal.bytes, len(journal)) == (0, 0)


def test_the_newest_record_is_kept_whatever_its_weight():
    journal: Journal[Event] = Journal(max_bytes=1)
    journal.extend([event("n", "a"), event("n", "b")])
    assert [e.item_id for e in journal.snapshot()] == ["b"] and journal.latest().item_id == "b"


def test_a_long_field_is_journaled_cut_with_its_length_and_digest_and_the_rest_whole():
    payload = big("x").payload
    journal: Journal[Event] = Journal()
    journal.append(big("x"))
    kept = journal.latest().payload
    tail = f"... [cut: {len(payload):,} characters in all, sha256 {sha256(payload)}]"
    assert len(kept) == FIELD_MAX and kept == payload[:FIELD_MAX - len(tail)] + tail
    assert sha256(payload) == digest(big("x"))  # the digest of the item's version
    assert journal.latest().item_id == "x" and journal.latest().node == "n"
    assert FIELD_MAX < journal.bytes < FIELD_MAX + 1024
    runs: Journal[Run] = Journal()
    runs.append(Run("h", ACCOUNT, SERVICE, "n", "publish", "x", 0.0, 0.1, "error", "E" * 100_000,
                    "'ok'", None, "T" * 70_000))
    run = runs.latest()
    assert (len(run.error), len(run.traceback), run.result) == (FIELD_MAX, FIELD_MAX, "'ok'")
    assert run.traceback.startswith("T" * 1000) and "70,000 characters in all" in run.traceback
    assert cut("short") == "short" and cut("y" * FIELD_MAX) == "y" * FIELD_MAX


def test_a_hook_receives_the_whole_payload_that_the_journal_keeps_cut(host, session):
    _session, client = session
    hook(host)
    item = big("whole", size=3 * MB)
    on_loop(host.engine.accept, client, [item])
    assert host.wait_runs(1, 10)
    assert host.runs.latest().result == repr(3 * MB)
    assert host.events.latest().payload.endswith(f"sha256 {sha256(item.payload)}]")


def test_megabyte_items_leave_no_more_memory_behind_than_the_journal_bytes(host, session):
    """200 items of 1 MB through a temporary hook, a copy of each (ejabberd's PEP copies) and
    their digests: what stays is the journal (4 MiB) and little more.  Before, every payload
    stayed: in the events journal, in the digest cache (the latest 1,024) and in the lane's
    versions already run (the latest 20,000)."""
    sess, client = session
    client.subscriptions.add((SERVICE, "n"))
    hook(host)
    host.events.resize(max_bytes=4 * MB)
    peer = Client("bob@localhost/x", "secret")  # (never connected)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(200):
            item = big(str(i))
            assert peer._first_copy(item) and not peer._first_copy(item)  # noqa: SLF001
            on_loop(sess.accept, client, [item])
            del item
        assert host.wait_runs(200, 60)
        assert _loop.call(host.engine.idle(10))
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert host.events.bytes <= 4 * MB and 50 < len(host.events) < 64
    assert grown < 4 * MB + 2 * MB, f"{grown / MB:.1f} MiB left behind"


# ------------------------------------------------------------------------------ events nobody asked for

def test_events_of_nodes_neither_subscribed_nor_hooked_are_counted_not_journaled(host, session):
    sess, client = session
    client.subscriptions.add((SERVICE, "subscribed"))
    hook(host, "hooked")  # (not subscribed: a node waited for, say)
    on_loop(sess.accept, client, [event("subscribed", "a"), event("hooked", "b"), event("other", "c"),
                                  event("other", "d", service="pubsub.elsewhere")])
    assert host.wait_runs(1, 5)
    assert [e.item_id for e in host.events.snapshot()] == ["a", "b"]
    assert sess.unsolicited == 2
    assert sess.status(client)["unsolicited"] == 2


# ------------------------------------------------------------------------------ positions

def test_positions_hold_hooked_nodes_only_300000_node_names(host):
    hook(host, "hooked")
    for start in range(0, 300_000, 10_000):
        on_loop(host.positions.note, [event(f"node-{i:06d}", "i") for i in range(start, start + 10_000)])
    on_loop(host.positions.note, [event("hooked", "i")])
    assert len(host.positions) == 1 and host.positions.get((ACCOUNT, SERVICE, "hooked"))[0] == "i"
    assert sys.getsizeof(host.positions._seen) == sys.getsizeof({0: 0})  # noqa: SLF001 - one entry


def test_the_positions_of_nodes_whose_hooks_were_deleted_are_forgotten(host, session):
    hooks = [hook(host, f"n{i}") for i in range(1000)]
    on_loop(host.positions.note, [event(f"n{i}", "a") for i in range(1000)])
    assert len(host.positions) == 1000
    host.engine.remove([h.id for h in hooks[:999]])
    _loop.call(_loop_turn())
    assert (ACCOUNT, SERVICE, "n0") not in host.positions  # no longer taken as known
    replacement = hook(host, "n999", "item.id")  # a hook replaced: the new one in, then the old out
    host.engine.remove([hooks[999].id])
    _loop.call(_loop_turn())
    assert len(host.positions) == 1  # the nodes unhooked at the previous deletion are forgotten
    assert (ACCOUNT, SERVICE, "n999") in host.positions  # and the replaced hook's node is kept
    host.engine.remove([replacement.id])
    _loop.call(_loop_turn())
    assert (ACCOUNT, SERVICE, "n999") not in host.positions


async def _loop_turn() -> None:
    """Let the loop run what other threads handed to it before."""


def test_a_node_hooked_again_after_its_hooks_were_deleted_starts_from_its_newest_item(host, session):
    """Before, its old position stayed: a reconnection ran what was published while it had no
    hook."""
    sess, client = session
    first = hook(host, "n", "item.id")
    on_loop(sess.accept, client, client.hold("n", "a"))
    assert host.wait_runs(1, 5)
    host.engine.remove([first.id])
    _loop.call(_loop_turn())
    client.hold("n", "b", "c")  # published while the node has no hook
    _loop.call(sess.mark(client, SERVICE, "n", False))  # hooked again (Session.attach)
    again = hook(host, "n", "item.id + '!'")
    _loop.call(sess.prepare_session(client))  # a reconnection: its catch-up
    _loop.call(sess.session_started(client, True))
    assert _loop.call(host.engine.idle(5))
    assert again.runs == 0 and host.positions.get((ACCOUNT, SERVICE, "n"))[0] == "c"


# ------------------------------------------------------------------------------ the inbox

def test_the_inbox_holds_a_failing_store_s_items_up_to_its_bytes(tmp_path, monkeypatch):
    store = Store(tmp_path / "store.sqlite3")
    failing = True

    def write_batch(*args):
        if failing:
            raise HooknbError("database is locked by another process")
        return Store.write_batch(store, *args)

    monkeypatch.setattr(store, "write_batch", write_batch)
    inbox = Inbox(lambda: store, retry=0.05, memory_bytes=3 * MB + 1024)
    try:
        def entries(*ids):
            return [Entry("h", big(str(i))) for i in ids]

        assert inbox.submit(entries(0), [])
        wait_until(lambda: inbox.status == "database is locked by another process")
        assert inbox.submit(entries(1), []) and not inbox.submit(entries(2, 3), [])
        assert inbox.submit(entries(4), []) and not inbox.submit(entries(5), [])
        failing = False
        assert inbox.flush(10) and inbox.status is None
        assert inbox.submit(entries(6, 7, 8, 9), [])  # nothing waits: a batch fits whatever it weighs
        assert inbox.flush(10)
        assert [row[6] for row in store.pending("alice@localhost")] == ["0", "1", "4", "6", "7", "8", "9"]
    finally:
        failing = False
        inbox.flush(10)
        store.close()
