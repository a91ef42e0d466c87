"""A store deleted under the processes that have it open: which file is at its path, and how the
first process to notice puts it back from its open copy (see :meth:`hooknb.storage.store.Store._check_file`).

SQLite would go on writing a deleted store's inode, lost at exit.  The first process to write
after the deletion backs its open connection up into a private file beside the path and links
it into place (never over a file that appeared meanwhile); another process that had the store
open finds the same store id there and switches to it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..errors import StoreError
from . import trust


def identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``, None if there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def store_id(path: Path) -> str | None:
    """The id of the store at ``path`` (its ``meta`` row), read-only; None if it is none."""
    try:
        other = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = other.execute("SELECT value FROM meta WHERE key = 'id'").fetchone()
        finally:
            other.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def restore(db: sqlite3.Connection, path: Path) -> None:
    """Put the store deleted from ``path`` back there from the open connection ``db``."""
    restored = path.with_name(f"{path.name}.restore-{os.getpid()}")
    try:
        trust.private_dir(path.parent)
        trust.private_file(restored)
        copy = sqlite3.connect(restored)
        try:
            db.backup(copy)
        finally:
            copy.close()
        os.link(restored, path)  # never over a file that appeared meanwhile
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"the hook store {path} was deleted under this process and could "
                         f"not be restored: {exc}") from None
    finally:
        restored.unlink(missing_ok=True)
