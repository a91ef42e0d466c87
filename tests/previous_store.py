"""A store as the release before schema versions left it (``PRAGMA user_version`` 0), made from
that release's own CREATE statements: what a migration starts from."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
