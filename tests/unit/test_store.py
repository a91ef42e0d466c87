"""The SQLite store on a scratch file: where it lives, hooks saved/loaded/deleted, claims, positions
seen, gaps, and the clear one-line errors for a corrupt or locked file (which is left untouched)."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
import types
from pathlib import Path

import pytest

from hooknb import store as store_module
from hooknb.errors import HooknbError
from hooknb.store import Store

KEY = ("pubsub.example.org", "news", "item-1", "publish")


def record(hook_id: str, account: str = "alice@example.org", created: float = 1.0, **options) -> dict:
    return {"id": hook_id, "account": account, "service": "pubsub.example.org", "node": "news",
            "type": "python_code", "arg": "item.id", "options": options, "created": created}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = Store(tmp_path / "store.sqlite3")
    yield made
    made.close()


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


def test_a_run_is_claimed_once_per_hook(store):
    assert store.claim("h1", KEY) is True
    assert store.claim("h1", KEY) is False
    assert store.claim("h2", KEY) is True
    assert store.claim("h1", (*KEY[:3], "retract")) is True
    assert store.done_keys("h1") == {KEY, (*KEY[:3], "retract")}


def test_deleting_a_hook_forgets_its_claims(store):
    store.save_hook(record("h1"))
    store.claim("h1", KEY)
    store.delete_hooks(["h1"])
    assert store.done_keys("h1") == set()
    assert store.claim("h1", KEY) is True


def test_a_claim_is_seen_by_another_connection(store):
    other = Store(store.path)
    try:
        assert store.claim("h1", KEY) is True
        assert other.claim("h1", KEY) is False
    finally:
        other.close()


def test_threads_claiming_one_run_get_it_once(store):
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def claim() -> None:
        barrier.wait()
        results.append(store.claim("h1", KEY))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_done_keys_keep_the_newest(store, clock, monkeypatch):
    monkeypatch.setattr(store_module, "DONE_KEEP", 2)
    for item_id in ("1", "2", "3"):
        store.claim("h1", ("s", "n", item_id, "publish"))
    assert store.done_keys("h1") == {("s", "n", "2", "publish"), ("s", "n", "3", "publish")}


def test_the_last_item_seen_per_account_service_and_node(store):
    assert store.get_seen("alice@example.org", "pubsub.example.org", "news") is None
    store.set_seen("alice@example.org", "pubsub.example.org", "news", "1")
    store.set_seen("alice@example.org", "pubsub.example.org", "news", "2")
    store.set_seen("alice@example.org", "pubsub.example.org", "other", "9")
    store.set_seen("bob@example.org", "pubsub.example.org", "news", "7")
    assert store.get_seen("alice@example.org", "pubsub.example.org", "news") == "2"
    assert store.get_seen("bob@example.org", "pubsub.example.org", "news") == "7"
    assert store.get_seen("alice@example.org", "elsewhere.example.org", "news") is None


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


def test_data_version_changes_when_another_connection_commits(store):
    other = Store(store.path)
    try:
        before = store.data_version()
        store.save_hook(record("mine"))
        assert store.data_version() == before  # its own commits do not count
        other.save_hook(record("theirs"))
        assert store.data_version() != before
    finally:
        other.close()


def test_a_corrupt_file_is_a_one_line_error_and_left_untouched(tmp_path):
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
            impatient.claim("h1", KEY)
        locker.execute("ROLLBACK")
        assert [h["id"] for h in impatient.load_hooks()] == ["h1"]
        assert impatient.claim("h1", KEY) is True
    finally:
        locker.close()
        impatient.close()
