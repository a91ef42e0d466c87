"""The store's schema version (:mod:`hooknb.storage.schema`): a store of the previous release is
migrated in one transaction, a newer or foreign one, an empty file and a ``HOOKNB_HOME`` that is
a file are refused with one line (:class:`StoreUnusableError`), and the refused file is left
untouched."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from hooknb.errors import StoreUnusableError
from hooknb.storage import schema
from hooknb.storage.store import Store

#: The CREATE statements of the release before schema versions, as they were (user_version 0).
PREVIOUS_SCHEMA = '''
CREATE TABLE IF NOT EXISTS hooks (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    service TEXT NOT NULL,
    node TEXT NOT NULL,
    type TEXT NOT NULL,
    arg TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS hooks_account ON hooks(account);
CREATE TABLE IF NOT EXISTS seen (
    account TEXT NOT NULL, service TEXT NOT NULL, node TEXT NOT NULL,
    item_id TEXT NOT NULL, ts REAL NOT NULL,
    PRIMARY KEY (account, service, node)
);
CREATE TABLE IF NOT EXISTS positions (
    account TEXT NOT NULL, service TEXT NOT NULL, node TEXT NOT NULL,
    item_id TEXT NOT NULL, digest TEXT NOT NULL, ts REAL NOT NULL,
    PRIMARY KEY (account, service, node)
);
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    hook_id TEXT NOT NULL, account TEXT NOT NULL, service TEXT NOT NULL, node TEXT NOT NULL,
    kind TEXT NOT NULL, item_id TEXT NOT NULL, digest TEXT NOT NULL,
    publisher TEXT, payload TEXT, ts REAL NOT NULL,
    done REAL,
    UNIQUE (hook_id, service, node, item_id, kind, digest)
);
CREATE INDEX IF NOT EXISTS inbox_pending ON inbox(account, seq) WHERE done IS NULL;
CREATE TABLE IF NOT EXISTS leases (
    account TEXT PRIMARY KEY, holder TEXT NOT NULL, info TEXT NOT NULL, beat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS gaps (
    account TEXT NOT NULL, service TEXT NOT NULL, node TEXT NOT NULL,
    last_seen TEXT, fetched INTEGER NOT NULL, ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS stalls (
    hook_id TEXT PRIMARY KEY, account TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL,
    since REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
'''


def previous_release_store(path: Path) -> None:
    """A store as the previous release left it: a hook, a position, a legacy ``seen`` row."""
    db = sqlite3.connect(path)
    db.executescript(PREVIOUS_SCHEMA)
    db.execute("INSERT INTO hooks VALUES ('h1', 'a@x', 'pubsub.x', 'news', 'python_code', 'item.id', '{}', 1.0)")
    db.execute("INSERT INTO positions VALUES ('a@x', 'pubsub.x', 'news', 'i9', 'd9', 2.0)")
    db.execute("INSERT INTO seen VALUES ('a@x', 'pubsub.x', 'old', 'i3', 3.0)")
    db.execute("INSERT INTO meta VALUES ('id', 'cafe0123')")
    db.commit()
    db.close()


def tables(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()


def version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refused(path: Path) -> str:
    """The one line a Store opened at ``path`` is refused with; the file is left as it was."""
    before = digest(path) if path.is_file() else None
    with pytest.raises(StoreUnusableError) as info:
        Store(path)
    message = str(info.value)
    assert "\n" not in message and message
    assert (digest(path) if path.is_file() else None) == before, "a refused store is never changed"
    return message


def test_a_new_store_is_made_whole_at_the_current_version(tmp_path):
    path = tmp_path / "new" / "s.sqlite3"
    store = Store(path)
    store.close()
    assert version(path) == schema.VERSION
    assert [p.name for p in path.parent.iterdir()] == ["s.sqlite3"], "nothing left aside"
    again = Store(path)
    assert again.id == store.id
    again.close()


def test_a_store_of_the_previous_release_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite3"
    previous_release_store(path)
    assert version(path) == 0
    store = Store(path)
    try:
        assert version(path) == schema.VERSION and "seen" not in tables(path)
        assert [h["id"] for h in store.load_hooks()] == ["h1"] and store.id == "cafe0123"
        assert store.get_position("a@x", "pubsub.x", "news") == ("i9", "d9")
        assert store.get_position("a@x", "pubsub.x", "old") == ("i3", ""), "the legacy seen row was folded"
    finally:
        store.close()


def test_a_failed_migration_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "old.sqlite3"
    previous_release_store(path)

    def half_done(db: sqlite3.Connection) -> None:
        db.execute("DROP TABLE seen")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setitem(schema.MIGRATIONS, 0, half_done)
    with pytest.raises(Exception, match="disk I/O error"):
        Store(path)
    assert version(path) == 0 and "seen" in tables(path), "rolled back"
    monkeypatch.undo()
    Store(path).close()
    assert version(path) == schema.VERSION


def test_a_newer_store_is_refused(tmp_path):
    path = tmp_path / "new.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 999")
    db.close()
    assert refused(path) == (f"the hook store {path} has schema version 999, newer than this hooknb's "
                             f"({schema.VERSION}): it was left untouched; {schema.UPGRADE}")


@pytest.mark.parametrize("sql, what", [
    ("CREATE TABLE songs (title TEXT)", "tables hooknb does not know: songs"),
    ("CREATE TABLE hooks (id TEXT PRIMARY KEY, code TEXT)", "tables with other columns: hooks"),
])
def test_a_foreign_store_is_refused(tmp_path, sql, what):
    path = tmp_path / "foreign.sqlite3"
    db = sqlite3.connect(path)
    db.execute(sql)
    db.commit()
    db.close()
    message = refused(path)
    assert message.startswith(f"the hook store {path} (schema version 0) is not one this hooknb can use ({what}")


def test_a_current_store_with_a_changed_table_is_refused(tmp_path):
    path = tmp_path / "s.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE hooks ADD COLUMN extra TEXT")
    db.execute("DROP TABLE gaps")
    db.commit()
    db.close()
    assert "(tables with other columns: hooks; tables missing: gaps)" in refused(path)


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.sqlite3"
    path.touch(mode=0o600)
    assert refused(path) == (f"the hook store {path} is an empty file (0 bytes), which hooknb never makes: a "
                             "truncated store or a failed copy? It was left untouched: restore it from a "
                             "backup, or remove it to start a new store")
    assert path.stat().st_size == 0


def test_hooknb_home_pointing_at_a_file_is_named(tmp_path, monkeypatch):
    home = tmp_path / "not-a-dir"
    home.write_text("x")
    monkeypatch.setenv("HOOKNB_HOME", str(home))
    assert refused(home / "hooknb.sqlite3") == (f"HOOKNB_HOME={home} is a file, not a directory: point "
                                                "HOOKNB_HOME at a directory (it is made if missing)")
    monkeypatch.delenv("HOOKNB_HOME")
    assert refused(home / "s.sqlite3") == f"the hook store's directory {home} is a file, not a directory"
