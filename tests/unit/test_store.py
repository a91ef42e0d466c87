"""The SQLite store on a scratch file: where it lives, hooks saved/loaded/deleted, the inbox (item
versions once, pending, done, pruned), positions, leases, gaps, and the clear one-line errors for
a corrupt or locked file (which is left untouched)."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
import types

import pytest

from hooknb.storage import store as store_module
from hooknb.errors import HooknbError
from hooknb.storage.store import Store


def record(hook_id: str, account: str = "alice@example.org", created: float = 1.0, **options) -> dict:
    return {"id": hook_id, "account": account, "service": "pubsub.example.org", "node": "news",
            "type": "python_code", "arg": "item.id", "options": options, "created": created}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's ``time.time()`` counts 1, 2, 3... (rows get distinct, ordered times)."""
    ticks = itertools.count(1)
    monkeypatch.setattr(store_module, "time", types.SimpleNamespace(
        time=lambda: float(next(ticks)), monotonic=time.monotonic, sleep=time.sleep))


def test_home_is_HOOKNB_HOME_then_XDG_DATA_HOME_then_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("HOOKNB_HOME", "~/custom")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert store_module.home() == tmp_path / "custom"
    monkeypatch.delenv("HOOKNB_HOME")
    assert store_module.home() == tmp_path / "xdg" / "hooknb"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert store_module.home() == tmp_path / ".local" / "share" / "hooknb"


def test_the_default_store_is_made_in_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOOKNB_HOME", str(tmp_path / "new" / "dir"))
    made = Store()
    try:
        assert made.path == tmp_path / "new" / "dir" / "hooknb.sqlite3" and made.path.is_file()
    finally:
        made.close()


def test_hooks_are_saved_loaded_in_creation_order_and_replaced_by_id(store):
    store.save_hook(record("h2", created=2.0, on=["publish", "retract"], publishers=["bob@example.org"]))
    store.save_hook(record("h1", created=1.0))
    store.save_hook(record("h3", account="bob@example.org", created=3.0))
    assert [h["id"] for h in store.load_hooks()] == ["h1", "h2", "h3"]
    assert store.load_hooks("alice@example.org")[1] == record(
        "h2", created=2.0, on=["publish", "retract"], publishers=["bob@example.org"])
    assert [h["id"] for h in store.load_hooks("bob@example.org")] == ["h3"]
    store.save_hook({**record("h1", created=1.0), "arg": "item.node"})
    assert [(h["id"], h["arg"]) for h in store.load_hooks("alice@example.org")] == [
        ("h1", "item.node"), ("h2", "item.id")]


def test_delete_hooks_counts_what_it_deleted(store):
    for hook_id in ("a", "b", "c"):
        store.save_hook(record(hook_id))
    assert store.delete_hooks([]) == 0
    assert store.delete_hooks(["a", "c", "unknown"]) == 2
    assert [h["id"] for h in store.load_hooks()] == ["b"]


def row(hook_id: str = "h1", item_id: str = "item-1", digest: str = "d1", account: str = "alice@example.org",
        kind: str = "publish") -> tuple:
    """An inbox row (hooknb.storage.inbox_rows.INBOX_COLUMNS)."""
    return (hook_id, account, "pubsub.example.org", "news", kind, item_id, digest, None, "<p/>", 1.0)


def test_an_item_version_enters_the_inbox_once_per_hook(store):
    seqs = store.write_batch([row(), row(), row("h2"), row(digest="d2"), row(kind="retract")])
    assert seqs[1] is None and None not in (seqs[0], *seqs[2:])
    assert store.write_batch([row()]) == [None]  # a copy arriving later, in another batch
    assert [r[0] for r in store.pending("alice@example.org")] == [s for s in seqs if s is not None]


def test_a_batch_of_many_rows_numbers_the_new_ones_in_order_and_skips_copies(store):
    store.write_batch([row(item_id="old-1"), row(item_id="old-2")])
    ids = [f"i{n}" for n in range(150)]
    ids[70], ids[100], ids[149] = "old-1", "i3", "i99"  # copies: stored before, and in this batch
    seqs = store.write_batch([row(item_id=i) for i in ids])
    copies = [n for n, seq in enumerate(seqs) if seq is None]
    assert copies == [70, 100, 149]
    new = [seq for seq in seqs if seq is not None]
    assert new == sorted(new) and len(set(new)) == 147
    stored = dict((r[0], r[6]) for r in store.pending("alice@example.org"))
    assert all(stored[seq] == ids[n] for n, seq in enumerate(seqs) if seq is not None)


def test_runs_done_leave_the_pending_list_and_stay_known(store):
    first, second = store.write_batch([row(item_id="a"), row(item_id="b")])
    store.write_batch([], done=[(first, 5.0)])
    assert [r[0] for r in store.pending("alice@example.org")] == [second]
    assert store.done_items("h1") == [("a", "publish", "d1")]
    assert store.write_batch([row(item_id="a")]) == [None]  # it ran: never again
    store.write_batch([], done=[(second, 6.0)])
    assert store.pending("alice@example.org") == []


def test_deleting_a_hook_forgets_its_inbox(store):
    store.save_hook(record("h1"))
    store.write_batch([row()])
    store.delete_hooks(["h1"])
    assert store.pending("alice@example.org") == [] and store.write_batch([row()]) != [None]


def test_pruning_keeps_the_newest_runs_done_of_each_hook(store):
    seqs = store.write_batch([row(item_id=str(i)) for i in range(5)] + [row("h2", item_id="x")])
    store.write_batch([], done=[(s, 1.0) for s in seqs])
    assert store.prune(keep=2) == 3
    assert store.done_items("h1") == [("3", "publish", "d1"), ("4", "publish", "d1")]
    assert store.done_items("h2") == [("x", "publish", "d1")]


def test_threads_writing_one_version_get_it_once(store):
    results: list = []
    start = threading.Barrier(8)

    def write() -> None:
        start.wait()
        results.extend(store.write_batch([row()]))

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1


def test_the_last_item_seen_per_account_service_and_node(store):
    assert store.get_position("alice@example.org", "pubsub.example.org", "news") is None
    store.set_position("alice@example.org", "pubsub.example.org", "news", "1", "a")
    store.set_position("alice@example.org", "pubsub.example.org", "news", "2", "b")
    store.set_position("alice@example.org", "pubsub.example.org", "other", "9")
    store.set_position("bob@example.org", "pubsub.example.org", "news", "7")
    assert store.get_position("alice@example.org", "pubsub.example.org", "news") == ("2", "b")
    assert store.get_position("bob@example.org", "pubsub.example.org", "news") == ("7", "")
    assert store.get_position("alice@example.org", "elsewhere.example.org", "news") is None


def test_a_nodes_position_goes_with_its_last_hook_and_says_when_it_was_noted(store, clock):
    alice, bob, service = "alice@example.org", "bob@example.org", "pubsub.example.org"
    for hook_id, account in (("h1", alice), ("h2", alice), ("b1", bob)):
        store.save_hook(record(hook_id, account))
    store.set_position(alice, service, "news", "7", "d")
    store.set_position(bob, service, "news", "8", "e")
    assert store.noted_position(alice, service, "news") == ("7", "d", 1.0)
    store.delete_hooks(["h1"])                   # h2 still follows the node
    assert store.get_position(alice, service, "news") == ("7", "d")
    store.delete_hooks(["h2"])                   # nobody does: a later hook starts afresh
    assert store.get_position(alice, service, "news") is None
    assert store.get_position(bob, service, "news") == ("8", "e")


def test_a_lease_is_held_renewed_and_taken_only_once_stale(store, clock):
    held = store.acquire_lease("a@x", "run:1", ttl=10)
    assert held["holder"] == "run:1" and held["info"]["pid"] > 0
    assert store.acquire_lease("a@x", "nb:2", ttl=10)["holder"] == "run:1"     # fresh: kept
    assert store.acquire_lease("a@x", "nb:2", ttl=10, take=False)["holder"] == "run:1"
    assert store.acquire_lease("a@x", "nb:2", ttl=0.5)["holder"] == "nb:2"     # stale: taken
    assert store.acquire_lease("a@x", "run:1", ttl=10, force=True)["holder"] == "run:1"
    store.release_lease("a@x", "nb:2")                                          # not its own
    assert store.acquire_lease("a@x", "x:3", ttl=10, take=False)["holder"] == "run:1"
    store.release_lease("a@x", "run:1")
    assert store.acquire_lease("a@x", "x:3", ttl=10, take=False) is None


def test_gaps_are_kept_newest_last_and_filtered_by_account(store, clock):
    store.add_gap("alice@example.org", "s", "n", "41", 20)
    store.add_gap("bob@example.org", "s", "n", None, 0)
    store.add_gap("alice@example.org", "s", "m", "7", 3)
    alice = {"account": "alice@example.org", "service": "s"}
    assert store.gaps("alice@example.org") == [
        {**alice, "node": "n", "last_seen": "41", "fetched": 20, "ts": 1.0},
        {**alice, "node": "m", "last_seen": "7", "fetched": 3, "ts": 3.0}]
    assert [(g["account"], g["last_seen"]) for g in store.gaps()] == [
        ("alice@example.org", "41"), ("bob@example.org", None), ("alice@example.org", "7")]


def test_the_hooks_generation_moves_with_hook_changes_only_from_any_connection(store):
    other = Store(store.path)
    try:
        before = store.hooks_generation()
        store.save_hook(record("mine"))
        mine = store.hooks_generation()
        assert mine != before
        store.set_position("alice@example.org", "s", "n", "1")
        store.acquire_lease("alice@example.org", "me", 6.0)
        assert store.hooks_generation() == mine, "other writes do not move it"
        other.delete_hooks(["mine"])
        assert store.hooks_generation() not in (before, mine)
    finally:
        other.close()


def test_a_corrupt_file_is_a_one_line_error_and_left_untouched(tmp_path):
    tmp_path = tmp_path / "store"
    tmp_path.mkdir(mode=0o700)
    path = tmp_path / "hooknb.sqlite3"
    junk = b"this is not a database" * 100
    path.write_bytes(junk)
    with pytest.raises(HooknbError) as info:
        Store(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "is unreadable (file is not a database); it was left untouched" in message
    assert path.read_bytes() == junk and sorted(tmp_path.iterdir()) == [path]


def test_a_locked_store_is_a_one_line_error_and_loses_nothing(tmp_path):
    path = tmp_path / "hooknb.sqlite3"
    first = Store(path)
    first.save_hook(record("h1"))
    first.close()
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    impatient = Store(path, busy_timeout_ms=200)  # opening needs no lock
    try:
        with pytest.raises(HooknbError) as info:
            impatient.save_hook(record("h2"))
        assert "locked by another process" in str(info.value) and "\n" not in str(info.value)
        with pytest.raises(HooknbError, match="locked by another process"):
            impatient.write_batch([row()])
        locker.execute("ROLLBACK")
        assert [h["id"] for h in impatient.load_hooks()] == ["h1"]
        assert impatient.write_batch([row()]) != [None]
    finally:
        locker.close()
        impatient.close()


def test_the_inbox_thread_prunes_runs_done_as_it_writes(tmp_path, monkeypatch):
    from hooknb.core import inbox as inbox_module
    from hooknb.xmpp.events import Event
    from hooknb.core.inbox import Entry, Inbox

    made = Store(tmp_path / "store.sqlite3")
    pruned = []
    monkeypatch.setattr(made, "prune", lambda: pruned.append(True) or 0)
    monkeypatch.setattr(inbox_module, "PRUNE_EVERY", 3)
    inbox = Inbox(lambda: made)
    try:
        for i in range(7):  # one entry a batch: 7 written, pruned after the 3rd and the 6th
            inbox.submit([Entry("h", Event("a@x", "s", "n", "publish", str(i), None, f"<p>{i}</p>"))], [])
            assert inbox.flush()
        assert len(pruned) == 2
    finally:
        made.close()


def test_written_entries_go_back_to_the_loop_in_one_call_and_a_failing_then_keeps_no_other_from_its(caplog):
    from hooknb.xmpp.events import Event
    from hooknb.core.inbox import Entry, _hand_over

    entries = [Entry("h", Event("a@x", "s", "n", "publish", str(i), None, f"<p>{i}</p>")) for i in range(3)]
    got = []

    def fail(new):
        raise RuntimeError("lane gone")

    with caplog.at_level("ERROR", "hooknb.core.inbox"):
        _hand_over([(got.extend, entries[:1]), (fail, entries[1:2]), (got.extend, entries[2:])])
    assert got == [entries[0], entries[2]]
    assert "queueing 1 written entries failed" in caplog.text


@pytest.mark.parametrize("deleted", [("",), ("", "-wal", "-shm"), ("dir",)], ids=["file", "with-wal", "directory"])
def test_a_store_deleted_under_the_process_is_restored_from_the_open_copy(tmp_path, deleted, monkeypatch):
    import shutil
    monkeypatch.setattr(store_module, "FILE_CHECK", 0.0)  # look at every write
    path = tmp_path / "home" / "hooknb.sqlite3"
    store = Store(path)
    try:
        store.save_hook(record("h1"))
        (seq,) = store.write_batch([("h1", "a", "s", "n", "items", "i1", "d1", None, "<x/>", 1.0)])
        if deleted == ("dir",):
            shutil.rmtree(path.parent)
        else:
            for suffix in deleted:
                path.with_name(path.name + suffix).unlink()
        assert not path.exists()
        store.write_batch([], done=[(seq, 2.0)])          # the next write restores the file
        assert "deleted under this process: restored" in store.notice
        assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
        assert [p.name for p in path.parent.iterdir() if "restore" in p.name] == []
    finally:
        store.close()
    again = Store(path)                                    # what was written before and after is there
    try:
        assert [h["id"] for h in again.load_hooks()] == ["h1"]
        assert again.done_items("h1") == [("i1", "items", "d1")] and again.pending("a") == []
    finally:
        again.close()


def test_a_store_replaced_under_the_process_is_a_one_line_error_and_not_written(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "FILE_CHECK", 0.0)
    path = tmp_path / "hooknb.sqlite3"
    store = Store(path)
    try:
        store.save_hook(record("h1"))
        path.unlink()
        other = Store(path)                                # someone else's new store at the path
        other.close()
        before = path.read_bytes()
        with pytest.raises(HooknbError) as info:
            store.save_hook(record("h2"))
        assert "\n" not in str(info.value) and "was replaced by another file" in str(info.value)
        assert path.read_bytes() == before
    finally:
        store.close()


def test_a_store_deleted_and_restored_by_another_process_is_used_by_this_one_too(tmp_path, monkeypatch):
    """Two processes have the store open; it is deleted; the first to write restores it from its
    open copy; the second, finding the same store (its id) at the path, switches to it."""
    monkeypatch.setattr(store_module, "FILE_CHECK", 0.0)
    path = tmp_path / "hooknb.sqlite3"
    first, second = Store(path), Store(path)
    try:
        first.save_hook(record("h1"))
        path.unlink()
        first.save_hook(record("h2"))                   # restores the file
        second.save_hook(record("h3"))                  # was: "replaced by another file" until restart
        assert "restored by another process" in second.notice
        assert sorted(h["id"] for h in first.load_hooks()) == ["h1", "h2", "h3"]
    finally:
        first.close()
        second.close()
