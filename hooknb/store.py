"""The persistent store: an embedded SQLite database (WAL) of hooks, last-seen items and runs done.

One file, ``hooknb.sqlite3`` in the data directory (``$HOOKNB_HOME``, else
``$XDG_DATA_HOME/hooknb``, else ``~/.local/share/hooknb``), holds the persistent hooks of every
account.  Several processes (a notebook and a ``hooknb run``) may use it at once: WAL mode,
a busy timeout, and short transactions.  A corrupt or locked file gives a clear error and is
never replaced or rewritten.

The store holds code (the hooks), so it is private by construction: the data directory is made
0700 and the database 0600 (SQLite gives its ``-wal`` and ``-shm`` files the database's mode),
whatever the umask.  Before code is taken from it, :func:`check_trusted` refuses a store whose
directory or files another user owns or group or others may write (see :mod:`hooknb.trust`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import trust
from .errors import StoreError

FILENAME = "hooknb.sqlite3"
BUSY_TIMEOUT_MS = 5000
DONE_KEEP = 20_000  # dedup keys kept per hook

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS done (
    hook_id TEXT NOT NULL, service TEXT NOT NULL, node TEXT NOT NULL,
    item_id TEXT NOT NULL, kind TEXT NOT NULL, ts REAL NOT NULL,
    PRIMARY KEY (hook_id, service, node, item_id, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gaps (
    account TEXT NOT NULL, service TEXT NOT NULL, node TEXT NOT NULL,
    last_seen TEXT, fetched INTEGER NOT NULL, ts REAL NOT NULL
);
"""


def home() -> Path:
    """The data directory: ``$HOOKNB_HOME`` or the per-user default."""
    if os.environ.get("HOOKNB_HOME"):
        return Path(os.environ["HOOKNB_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "hooknb"


def check_trusted(path: str | os.PathLike | None = None) -> None:
    """Raise :class:`~hooknb.errors.TrustError` if the store at ``path`` (default: in
    :func:`home`) could have been written by someone else: its directory, its database or the
    database's ``-wal``/``-shm`` files owned by another user or writable by group or others."""
    path = Path(path) if path else home() / FILENAME
    trust.check(path.parent, "the hook store's directory", "700")
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        trust.check(each, "the hook store", "600")


class Store:
    """The SQLite database of persistent state (thread-safe; one connection, one lock)."""

    def __init__(self, path: str | os.PathLike | None = None, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path) if path else home() / FILENAME
        trust.private_dir(self.path.parent)
        trust.private_file(self.path)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, timeout=busy_timeout_ms / 1000,
                                       check_same_thread=False, isolation_level=None)
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._wal(busy_timeout_ms / 1000)
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    def _wal(self, timeout: float) -> None:
        """Switch to WAL.  SQLite answers "locked" at once, without waiting, when another process
        opens a new store at the same moment: retry until the busy timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StoreError(f"the hook store {self.path} is locked by another process ({text}); "
                               "try again when it is free")
        return StoreError(f"the hook store {self.path} is unreadable ({text}); it was left untouched: "
                           "move it away (or set HOOKNB_HOME) to start a new one")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                raise self._error(exc) from None

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, tuple(params)).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._error(exc) from None

    def check_trusted(self) -> None:
        """Refuse this store as a source of code if someone else could have written it
        (:func:`check_trusted`)."""
        check_trusted(self.path)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def data_version(self) -> int:
        """A number that changes whenever another connection commits (cheap to poll)."""
        return self._query("PRAGMA data_version")[0][0]

    # ---------------------------------------------------------------- hooks
    def save_hook(self, record: dict[str, Any]) -> None:
        """Insert or replace one hook (``record`` from :meth:`hooknb.hooks.Hook.to_record`)."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO hooks (id, account, service, node, type, arg, options, created)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (record["id"], record["account"], record["service"], record["node"],
                        record["type"], record["arg"], json.dumps(record["options"]), record["created"]))

    def delete_hooks(self, ids: Iterable[str]) -> int:
        """Delete the hooks with these ids (and their dedup keys); returns how many were deleted."""
        ids = list(ids)
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        with self._tx() as db:
            count = db.execute(f"DELETE FROM hooks WHERE id IN ({marks})", ids).rowcount
            db.execute(f"DELETE FROM done WHERE hook_id IN ({marks})", ids)
        return count

    def load_hooks(self, account: str | None = None) -> list[dict[str, Any]]:
        """The stored hooks (of one account, or all), oldest first."""
        sql = "SELECT id, account, service, node, type, arg, options, created FROM hooks"
        rows = self._query(sql + (" WHERE account = ?" if account else "") + " ORDER BY created, id",
                           [account] if account else [])
        return [{"id": r[0], "account": r[1], "service": r[2], "node": r[3], "type": r[4],
                 "arg": r[5], "options": json.loads(r[6]), "created": r[7]} for r in rows]

    # ---------------------------------------------------------------- runs done, items seen
    def claim(self, hook_id: str, key: tuple[str, str, str, str]) -> bool:
        """Claim the run of (service, node, item_id, kind) for a hook: True for the first
        process to ask, False if it was already run or claimed (by this or another process)."""
        with self._tx() as db:
            return db.execute("INSERT OR IGNORE INTO done VALUES (?, ?, ?, ?, ?, ?)",
                              (hook_id, *key, time.time())).rowcount == 1

    def done_keys(self, hook_id: str) -> set[tuple[str, str, str, str]]:
        """The (service, node, item_id, kind) keys already run by a hook (newest ``DONE_KEEP``)."""
        rows = self._query("SELECT service, node, item_id, kind FROM done WHERE hook_id = ?"
                           " ORDER BY ts DESC LIMIT ?", (hook_id, DONE_KEEP))
        return set(rows)

    def set_seen(self, account: str, service: str, node: str, item_id: str) -> None:
        """Remember the last item seen on a node."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?, ?)",
                       (account, service, node, item_id, time.time()))

    def get_seen(self, account: str, service: str, node: str) -> str | None:
        """The last item id seen on a node, or None."""
        rows = self._query("SELECT item_id FROM seen WHERE account = ? AND service = ? AND node = ?",
                           (account, service, node))
        return rows[0][0] if rows else None

    def add_gap(self, account: str, service: str, node: str, last_seen: str | None, fetched: int) -> None:
        """Record that items published while away may be lost (the node no longer holds them)."""
        with self._tx() as db:
            db.execute("INSERT INTO gaps VALUES (?, ?, ?, ?, ?, ?)",
                       (account, service, node, last_seen, fetched, time.time()))

    def gaps(self, account: str | None = None) -> list[dict[str, Any]]:
        """The recorded gaps, newest last."""
        rows = self._query("SELECT account, service, node, last_seen, fetched, ts FROM gaps"
                           + (" WHERE account = ?" if account else "") + " ORDER BY ts",
                           [account] if account else [])
        return [dict(zip(("account", "service", "node", "last_seen", "fetched", "ts"), r)) for r in rows]
