"""The store's schema version (``PRAGMA user_version``): a new store is made whole, an older
one migrated, a newer or foreign one refused.

:data:`VERSION` is the schema this hooknb writes; :data:`MIGRATIONS` holds the steps from each
older version to the next.  Opening a store (:func:`prepare`):

* no file: the store is built under a temporary name, with its schema, version and id, then
  linked into place (never over a file that appeared meanwhile; the ``-wal`` and ``-shm`` a
  deleted store left there removed first, or SQLite would replay the old store's WAL into the
  new one), so a store file is never seen half made, and an *empty* file at the store's path is never one hooknb is making: it is
  refused (a truncated store or a failed copy is noticed, not silently taken for a new store);
* an older version (``0``: the releases before versions, whose tables are a subset of the known
  ones): migrated step by step in one transaction (``BEGIN IMMEDIATE``: two processes opening it
  together migrate it once);
* this version: its tables are checked;
* a newer version, or tables that are not hooknb's (an unknown table, or a known one with other
  columns): refused with one line and :class:`~hooknb.errors.StoreUnusableError`; the file is
  never changed.

A change of the schema adds a step to :data:`MIGRATIONS` and raises :data:`VERSION`.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from . import quarantine, trust

try:
    import fcntl
except ImportError:  # not POSIX: stores are made without the lock
    fcntl = None  # type: ignore[assignment]
from ..errors import StoreUnusableError

#: The schema version this hooknb writes and reads.
VERSION = 2
#: The tables a version-0 store may hold besides the current ones (name: columns).
LEGACY_TABLES = {"seen": ("account", "service", "node", "item_id", "ts")}
UPGRADE = "upgrade hooknb, or set HOOKNB_HOME to a directory of its own for this version"


def _fold_seen(db: sqlite3.Connection) -> None:
    """0 -> 1: the ``seen`` table of the first releases becomes rows of ``positions``."""
    if "seen" in _tables(db):
        db.execute("INSERT OR IGNORE INTO positions SELECT account, service, node, item_id, '', ts FROM seen")
        db.execute("DROP TABLE seen")


#: MIGRATIONS[v] takes a store of version ``v`` to ``v + 1`` (the current tables already exist; a
#: table of an older version may lack the columns a later step adds at its end).
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {0: _fold_seen, 1: quarantine.migrate}


def statements(schema: str) -> list[str]:
    """The statements of a schema script, one by one (they run inside a transaction, where
    ``executescript`` cannot)."""
    return [s.strip() for s in schema.split(";") if s.strip()]


@cache
def expected(schema: str) -> dict[str, tuple[str, ...]]:
    """The tables ``schema`` makes, with their columns in order."""
    db = sqlite3.connect(":memory:")
    try:
        for statement in statements(schema):
            db.execute(statement)
        return _tables(db)
    finally:
        db.close()


def _tables(db: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                      "AND name NOT LIKE 'sqlite_%'")]
    return {name: tuple(r[1] for r in db.execute(f'PRAGMA table_info("{name}")')) for name in names}


def check_directory(directory: Path) -> None:
    """Refuse a data directory that is a file (one line, naming ``HOOKNB_HOME`` when it is what
    points there)."""
    if not directory.exists() or directory.is_dir():
        return
    env = os.environ.get("HOOKNB_HOME")
    if env and Path(env).expanduser() == directory:
        raise StoreUnusableError(f"HOOKNB_HOME={env} is a file, not a directory: point HOOKNB_HOME at a "
                                 "directory (it is made if missing)")
    raise StoreUnusableError(f"the hook store's directory {directory} is a file, not a directory")


def create(path: Path, schema: str) -> None:
    """Make a new store at ``path`` (private, WAL, with ``schema``, :data:`VERSION` and a random
    id) unless a file is there; atomic: built aside, then linked into place."""
    if path.exists():
        return
    temporary = path.with_name(f"{path.name}.new-{os.getpid()}-{secrets.token_hex(4)}")
    trust.private_file(temporary)
    try:
        db = sqlite3.connect(temporary, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("BEGIN IMMEDIATE")
            for statement in statements(schema):
                db.execute(statement)
            db.execute("INSERT INTO meta VALUES ('id', ?)", (secrets.token_hex(8),))
            db.execute(f"PRAGMA user_version = {VERSION}")
            db.execute("COMMIT")
        finally:
            db.close()
        with _creating(path.parent):
            if not path.exists():  # else another process made it meanwhile: theirs is the store
                for stale in (f"{path}-wal", f"{path}-shm"):  # a deleted store's: SQLite would
                    Path(stale).unlink(missing_ok=True)     # replay its WAL into this new one
                os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def _creating(directory: Path) -> Iterator[None]:
    """Hold the lock of new stores in ``directory`` (``flock`` of the directory itself: no file
    left behind), so that two processes making a store at once never remove each other's WAL."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def check_not_empty(path: Path) -> None:
    """Refuse an empty file at the store's path: hooknb never leaves one (see :func:`create`)."""
    if path.stat().st_size == 0:
        raise StoreUnusableError(
            f"the hook store {path} is an empty file (0 bytes), which hooknb never makes: a truncated "
            "store or a failed copy? It was left untouched: restore it from a backup, or remove it to "
            "start a new store")


def check(db: sqlite3.Connection, path: Path, schema: str) -> bool:
    """Refuse the open store (newer, or not hooknb's) with
    :class:`~hooknb.errors.StoreUnusableError`, writing nothing; whether it is at :data:`VERSION`."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == VERSION:
        _check(_tables(db), expected(schema), path, version)
        return True
    _check_version(version, path)
    _check(_tables(db), {**expected(schema), **LEGACY_TABLES}, path, version, subset=True)
    return False


def prepare(db: sqlite3.Connection, path: Path, schema: str) -> None:
    """Bring the open store, checked by :func:`check`, to :data:`VERSION`: migrate an older one
    in one transaction."""
    current = expected(schema)
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated it
        if version != VERSION:
            _check_version(version, path)
            _check(_tables(db), {**current, **LEGACY_TABLES}, path, version, subset=True)
            for statement in statements(schema):  # the tables a step may fill
                db.execute(statement)
            for step in range(version, VERSION):
                MIGRATIONS[step](db)
            if db.execute("SELECT 1 FROM meta WHERE key = 'id'").fetchone() is None:
                db.execute("INSERT INTO meta VALUES ('id', ?)", (secrets.token_hex(8),))
            db.execute(f"PRAGMA user_version = {VERSION}")
            _check(_tables(db), current, path, VERSION)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _check_version(version: int, path: Path) -> None:
    if version > VERSION:
        raise StoreUnusableError(f"the hook store {path} has schema version {version}, newer than this "
                                 f"hooknb's ({VERSION}): it was left untouched; {UPGRADE}")
    if version < 0 or version not in MIGRATIONS:
        raise StoreUnusableError(f"the hook store {path} has schema version {version}, which no hooknb "
                                 f"made: it was left untouched; {UPGRADE}")


def _check(tables: dict[str, tuple[str, ...]], known: dict[str, tuple[str, ...]], path: Path, version: int,
           subset: bool = False) -> None:
    """Refuse ``tables`` unless they are ``known`` (a subset of them, for an older store, whose
    tables may lack columns added at their end since)."""
    foreign = sorted(t for t in tables if t not in known)
    changed = sorted(t for t in tables if t in known and tables[t] != known[t][:len(tables[t]) if subset else None])
    missing = [] if subset else sorted(t for t in known if t not in tables)
    if subset and tables and "hooks" not in tables:
        foreign = foreign or sorted(tables)
    if foreign or changed or missing:
        what = "; ".join(part for part in (
            f"tables hooknb does not know: {', '.join(foreign)}" if foreign else "",
            f"tables with other columns: {', '.join(changed)}" if changed else "",
            f"tables missing: {', '.join(missing)}" if missing else "") if part)
        raise StoreUnusableError(f"the hook store {path} (schema version {version}) is not one this hooknb "
                                 f"can use ({what}): it was left untouched; {UPGRADE}")
