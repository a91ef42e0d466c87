"""The store's schema version (:mod:`hooknb.storage.schema`): a store of the previous release is
migrated in one transaction, a newer or foreign one, an empty file and a ``HOOKNB_HOME`` that is
a file are refused with one line (:class:`StoreUnusableError`), and the refused file is left
untouched."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from previous_store import previous_release_store

from hooknb.errors import StoreUnusableError
from hooknb.storage import schema
from hooknb.storage.store import Store


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
