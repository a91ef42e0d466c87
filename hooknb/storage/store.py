"""The persistent store: an embedded SQLite database (WAL) of hooks, their inbox, node positions,
gaps, the account leases and the hooks stalled in the process holding a lease (see
:mod:`hooknb.core.stalls`).

One file, ``hooknb.sqlite3`` in the data directory (``$HOOKNB_HOME``, else
``$XDG_DATA_HOME/hooknb``, else ``~/.local/share/hooknb``), holds the persistent hooks of every
account.  Several processes (a notebook and a ``hooknb run``) may use it at once: WAL mode,
a busy timeout, and short transactions.  A corrupt or locked file gives a clear error and is
never replaced or rewritten.  A store deleted under a running process is restored from the copy
the process has open (SQLite would go on writing the deleted file, lost at exit).

The ``inbox`` holds one row per (persistent hook, item version): written before the item is
queued, ``done`` set when its run ended.  An item version is (service, node, item id, kind,
payload digest): the unique key makes a copy of an item already there a no-op.  Node positions
are written in the same transaction as the inbox rows they cover (:meth:`Store.write_batch`).

The store holds code (the hooks), so it is private by construction: the data directory is made
0700 and the database 0600 (SQLite gives its ``-wal`` and ``-shm`` files the database's mode),
whatever the umask.  Before code is taken from it, :func:`check_trusted` refuses a store whose
directory or files another user owns or group or others may write (see :mod:`hooknb.storage.trust`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import quarantine, schema, trust
from .inbox_rows import add_rows, mark_done
from .restore import identity, restore, store_id
from ..errors import StoreError, StoreUnusableError

log = logging.getLogger(__name__)
FILENAME = "hooknb.sqlite3"
BUSY_TIMEOUT_MS = 5000
FILE_CHECK = 0.2  # seconds between two looks at whether the store's file is still the one open
DONE_KEEP = 20_000  # runs done kept per hook (dedup of copies arriving late)

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
    attempts INTEGER NOT NULL DEFAULT 0, quarantined REAL,
    UNIQUE (hook_id, service, node, item_id, kind, digest)
);
CREATE TABLE IF NOT EXISTS retries (seq INTEGER PRIMARY KEY, account TEXT NOT NULL);
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
"""


def home() -> Path:
    """The data directory: ``$HOOKNB_HOME`` or the per-user default
    (:class:`~hooknb.errors.StoreUnusableError` if it is a file)."""
    if os.environ.get("HOOKNB_HOME"):
        directory = Path(os.environ["HOOKNB_HOME"]).expanduser()
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        directory = Path(base) / "hooknb"
    schema.check_directory(directory)
    return directory


def check_trusted(path: str | os.PathLike | None = None) -> None:
    """Raise :class:`~hooknb.errors.TrustError` if the store at ``path`` (default: in
    :func:`home`) could have been written by someone else: its directory, its database or the
    database's ``-wal``/``-shm`` files owned by another user or writable by group or others."""
    path = Path(path) if path else home() / FILENAME
    trust.check(path.parent, "the hook store's directory", "700")
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        trust.check(each, "the hook store", "600")


class Store(quarantine.QuarantineRows):
    """The SQLite database of persistent state (thread-safe; one connection, one lock)."""

    def __init__(self, path: str | os.PathLike | None = None, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path) if path else home() / FILENAME
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = threading.RLock()
        #: The last thing that happened to the file which a user should hear of (None until then).
        self.notice: str | None = None
        self._open()

    def _open(self) -> None:
        """Open (or create, private) the database at :attr:`path`, at this hooknb's schema
        version (:mod:`hooknb.storage.schema`: an older store migrated, a newer, foreign or
        empty one refused), and note which file it is."""
        schema.check_directory(self.path.parent)
        try:
            trust.private_dir(self.path.parent)
            schema.create(self.path, SCHEMA)
        except OSError as exc:
            raise StoreError(f"the hook store {self.path} cannot be opened: {exc.strerror or exc} (its "
                             "directory is $HOOKNB_HOME, else $XDG_DATA_HOME/hooknb)") from None
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None
        try:
            schema.check_not_empty(self.path)
            self._db = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000,
                                       check_same_thread=False, isolation_level=None)
            self._db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            current = schema.check(self._db, self.path, SCHEMA)  # before anything is written
            self._wal(self._busy_timeout_ms / 1000)
            self._db.execute("PRAGMA synchronous = NORMAL")
            if not current:
                schema.prepare(self._db, self.path, SCHEMA)
            #: This store's own random id (the store restored from an open copy keeps it; a new
            #: store at the same path has another): a done log names the store it belongs to.
            self.id: str = self._meta("id")
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None
        self._file_name = os.fspath(self.path)
        self._file = identity(self._file_name)
        self._next_check = 0.0

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _check_file(self) -> None:
        """Before each write: is :attr:`path` still the file this connection writes?  SQLite
        would go on writing a deleted store's inode, lost at exit: a store deleted under the
        process is restored at once from the open connection, and one that another process
        restored so is used; one replaced by another store is an error until restart (this
        process's row numbers mean nothing in the other file)."""
        if time.monotonic() < self._next_check:  # writes meanwhile go to the open copy: not lost
            return
        self._next_check = time.monotonic() + FILE_CHECK
        now = identity(self._file_name)
        if now == self._file:
            return
        if now is not None:
            if store_id(self.path) == self.id:  # the same store, restored by another process
                self._db.close()
                self._open()
                self.notice = (f"the hook store {self.path} was deleted and restored by another process: "
                               "this process writes the restored file now")
                log.warning(self.notice)
                return
            raise StoreError(f"the hook store {self.path} was replaced by another file under this "
                             "process; restart it to use the new store (what it has not written waits "
                             "in memory)")
        restore(self._db, self.path)
        self._db.close()  # checkpoints into the deleted file, removes its -wal and -shm
        self._open()
        self.notice = f"the hook store {self.path} was deleted under this process: restored from the open copy"
        log.warning(self.notice)

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
        if "disk is full" in text or "disk I/O" in text:
            return StoreError(f"the hook store {self.path} cannot be written: {text} (free some space)")
        if "readonly" in text or "read-only" in text:
            return StoreError(f"the hook store {self.path} is read-only ({text})")
        if "locked" in text or "busy" in text:
            return StoreError(f"the hook store {self.path} is locked by another process ({text}); "
                               "try again when it is free")
        return StoreUnusableError(f"the hook store {self.path} is unreadable ({text}); it was left untouched: "
                                  "move it away (or set HOOKNB_HOME) to start a new one")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._check_file()
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise self._error(exc) from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:  # a failed COMMIT (disk full) leaves it open
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.DatabaseError:
                        pass
                if isinstance(exc, sqlite3.DatabaseError):
                    raise self._error(exc) from None
                raise

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

    def hooks_generation(self) -> int:
        """A number that changes whenever hooks are created, changed or deleted, by any process
        (one row read: pollers re-read the hooks only when it moved, not at every write)."""
        row = self._query("SELECT value FROM meta WHERE key = 'hooks_generation'")
        return int(row[0][0]) if row else 0

    # ---------------------------------------------------------------- hooks
    def save_hook(self, record: dict[str, Any]) -> None:
        """Insert or replace one hook (``record`` from :meth:`hooknb.core.hooks.Hook.to_record`)."""
        self.change_hooks([record], ())

    def delete_hooks(self, ids: Iterable[str]) -> int:
        """Delete the hooks with these ids (and their inbox); returns how many were deleted."""
        return self.change_hooks((), ids)

    def change_hooks(self, records: Iterable[dict[str, Any]], deleted: Iterable[str]) -> int:
        """In one transaction, insert or replace hooks (``records``) and delete others by id (and
        their inbox); returns how many were deleted.  The position of a node left without a hook
        of its account goes too: nobody followed the node from then on, so a hook made there later
        starts where the node stands then, never here."""
        records, ids = list(records), list(deleted)
        if not records and not ids:
            return 0
        marks, count = ",".join("?" * len(ids)), 0
        with self._tx() as db:
            db.execute("INSERT INTO meta VALUES ('hooks_generation', '1') ON CONFLICT (key) DO UPDATE "
                       "SET value = CAST(value AS INTEGER) + 1")
            db.executemany("INSERT OR REPLACE INTO hooks (id, account, service, node, type, arg, options, created)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [(r["id"], r["account"], r["service"], r["node"], r["type"], r["arg"],
                             json.dumps(r["options"]), r["created"]) for r in records])
            if ids:
                nodes = db.execute(f"SELECT DISTINCT account, service, node FROM hooks WHERE id IN ({marks})",
                                   ids).fetchall()
                count = db.execute(f"DELETE FROM hooks WHERE id IN ({marks})", ids).rowcount
                db.execute(f"DELETE FROM inbox WHERE hook_id IN ({marks})", ids)
                db.execute(f"DELETE FROM stalls WHERE hook_id IN ({marks})", ids)
                db.executemany("DELETE FROM positions WHERE account = ?1 AND service = ?2 AND node = ?3 AND NOT "
                               "EXISTS (SELECT 1 FROM hooks WHERE account = ?1 AND service = ?2 AND node = ?3)",
                               nodes)
        return count

    def load_hooks(self, account: str | None = None) -> list[dict[str, Any]]:
        """The stored hooks (of one account, or all), oldest first."""
        sql = "SELECT id, account, service, node, type, arg, options, created FROM hooks"
        rows = self._query(sql + (" WHERE account = ?" if account else "") + " ORDER BY created, id",
                           [account] if account else [])
        return [{"id": r[0], "account": r[1], "service": r[2], "node": r[3], "type": r[4],
                 "arg": r[5], "options": json.loads(r[6]), "created": r[7]} for r in rows]

    # ---------------------------------------------------------------- the inbox
    def write_batch(self, entries: list[tuple], positions: Iterable[tuple[str, str, str, str, str]] = (),
                    done: Iterable[tuple[int, float]] = ()) -> list[int | None]:
        """In one transaction: add inbox rows (tuples in :data:`INBOX_COLUMNS` order), note node
        positions (account, service, node, item id, digest) and mark runs done ((seq, when)).  Returns
        each entry's ``seq``, None for a version the inbox already had (a copy)."""
        with self._tx() as db:
            seqs = add_rows(db, entries) if entries else []
            now = time.time()
            db.executemany("INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?, ?, ?)",
                           [(*key, now) for key in positions])
            mark_done(db, list(done))
        return seqs

    def pending(self, account: str, hook_id: str | None = None, first: int = 0,
                limit: int = -1) -> list[tuple]:
        """The inbox entries of ``account`` (of one hook, from seq ``first``, at most ``limit``) not
        done yet nor quarantined, oldest first (:data:`quarantine.ROW`: seq, :data:`INBOX_COLUMNS`,
        attempts), as the store has them: done marks still in a done log are not in it yet
        (:meth:`hooknb.core.inbox.Inbox.pending` folds them first)."""
        where = f"account = ? AND {quarantine.PENDING} AND seq >= ?" + (" AND hook_id = ?" if hook_id else "")
        return self._query(f"SELECT {quarantine.ROW} FROM inbox WHERE {where} ORDER BY seq LIMIT ?",
                           (account, first, *([hook_id] if hook_id else []), limit))

    def waiting(self, accounts: Iterable[str]) -> dict[str, int]:
        """How many inbox entries of each hook (of ``accounts``) wait for their run (not quarantined)."""
        accounts = list(accounts)
        return dict(self._query(f"SELECT hook_id, COUNT(*) FROM inbox WHERE {quarantine.WAITING} AND account IN "
                                f"({','.join('?' * len(accounts))}) GROUP BY hook_id", accounts))

    def done_items(self, hook_id: str) -> list[tuple[str, str, str]]:
        """(item id, kind, digest) of a hook's runs done, oldest first."""
        return self._query("SELECT item_id, kind, digest FROM inbox WHERE hook_id = ? AND done IS NOT NULL"
                           " ORDER BY seq", (hook_id,))

    def prune(self, keep: int = DONE_KEEP) -> int:
        """Forget runs done beyond the newest ``keep`` of each hook; returns how many."""
        with self._tx() as db:
            return db.execute("DELETE FROM inbox WHERE done IS NOT NULL AND seq IN (SELECT seq FROM ("
                              " SELECT seq, ROW_NUMBER() OVER (PARTITION BY hook_id ORDER BY seq DESC) AS r"
                              " FROM inbox WHERE done IS NOT NULL) WHERE r > ?)", (keep,)).rowcount

    # ---------------------------------------------------------------- leases
    def acquire_lease(self, account: str, holder: str, ttl: float, force: bool = False,
                      take: bool = True) -> dict[str, Any] | None:
        """Take or renew the lease of ``account`` for ``holder`` unless another holder's lease is
        younger than ``ttl`` seconds (``force`` takes it anyway; ``take=False`` only looks).
        Returns the lease as it now stands (None if nobody holds it): ``holder``, ``info`` (who:
        process, host, program), ``beat``, ``age``."""
        now = time.time()
        select = "SELECT holder, info, beat FROM leases WHERE account = ?"

        def takes(row: tuple | None) -> bool:
            return take and (row is None or row[0] == holder or force or now - row[2] > ttl)

        found = self._query(select, (account,))  # a standby looking at a live lease writes nothing
        row = found[0] if found else None
        if takes(row):
            with self._tx() as db:
                row = db.execute(select, (account,)).fetchone()  # again, under the write lock
                if takes(row):
                    info = row[1] if row is not None and row[0] == holder else json.dumps(_whoami(holder))
                    db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)", (account, holder, info, now))
                    row = (holder, info, now)
        if row is None:
            return None
        return {"holder": row[0], "info": json.loads(row[1]), "beat": row[2], "age": now - row[2]}

    def release_lease(self, account: str, holder: str) -> None:
        """Give the lease of ``account`` up, if ``holder`` has it."""
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE account = ? AND holder = ?", (account, holder))

    # ---------------------------------------------------------------- stalled hooks
    def set_stall(self, hook_id: str, account: str, since: float | None) -> None:
        """Note that a hook stalled at ``since`` in this process (None: it is not stalled)."""
        with self._tx() as db:
            if since is None:
                db.execute("DELETE FROM stalls WHERE hook_id = ?", (hook_id,))
            else:
                who = _whoami("")
                db.execute("INSERT OR REPLACE INTO stalls VALUES (?, ?, ?, ?, ?)",
                           (hook_id, account, who["pid"], who["host"], since))

    def stalls(self, accounts: Iterable[str], ttl: float) -> set[str]:
        """The hooks (of ``accounts``) stalled in the process that holds their account's lease,
        renewed less than ``ttl`` seconds ago (a stall noted by a process gone says nothing)."""
        accounts = list(accounts)
        rows = self._query("SELECT s.hook_id, s.pid, s.host, l.info FROM stalls s JOIN leases l "
                           f"ON l.account = s.account WHERE s.account IN ({','.join('?' * len(accounts))}) "
                           "AND l.beat > ?", [*accounts, time.time() - ttl])
        held = set()
        for hook_id, pid, host, info in rows:
            who = json.loads(info)
            if (who.get("pid"), who.get("host")) == (pid, host):
                held.add(hook_id)
        return held

    # ---------------------------------------------------------------- positions, gaps
    def set_position(self, account: str, service: str, node: str, item_id: str, digest: str = "") -> None:
        """Note the last item seen on a node ("" for a node seen empty) and its payload digest."""
        self.write_batch([], [(account, service, node, item_id, digest)])

    def get_position(self, account: str, service: str, node: str) -> tuple[str, str] | None:
        """(item id, digest) of the last item seen on a node, or None if it was never looked at."""
        noted = self.noted_position(account, service, node)
        return noted[:2] if noted else None

    def noted_position(self, account: str, service: str, node: str) -> tuple[str, str, float] | None:
        """:meth:`get_position` and when it was noted (hooks created later than that may be
        younger than items after it: see :meth:`hooknb.core.session.Session._read_marks`)."""
        rows = self._query("SELECT item_id, digest, ts FROM positions WHERE account = ? AND service = ?"
                           " AND node = ?", (account, service, node))
        return rows[0] if rows else None

    def noted_positions(self, account: str) -> dict[tuple[str, str], tuple[str, str, float]]:
        """:meth:`noted_position` of every node of an account, by (service, node): one query."""
        rows = self._query("SELECT service, node, item_id, digest, ts FROM positions WHERE account = ?",
                           (account,))
        return {(r[0], r[1]): r[2:] for r in rows}

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


def _whoami(holder: str) -> dict[str, Any]:
    """Who holds a lease, for the user to read: process id, host, program."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "program": holder.split(":", 1)[0]}
