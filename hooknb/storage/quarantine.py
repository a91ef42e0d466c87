"""The store's side of poison items: attempts counted per inbox entry, entries quarantined, retried, discarded.

Two columns of the ``inbox`` table (schema version 2; :func:`migrate` adds them to a store of
version 1, :mod:`hooknb.storage.schema`), and a table of retries:

* ``attempts``: how many runs of the entry ended with their process (or their worker process)
  dying; counted by :func:`hooknb.storage.donelog.fold` from the done log of a dead process, and
  by the ``process`` executor when a worker dies (:mod:`hooknb.executors.process_lane`);
* ``quarantined``: NULL for an entry that runs as usual; when it was quarantined (a time) for
  one that reached the attempts limit (:mod:`hooknb.core.quarantine`), which is not run again
  until retried;
* ``retries``: the quarantined entries whose retry was asked for, until the process that runs
  the account's hooks takes them (:meth:`QuarantineRows.take_retried`, one taker per entry; a
  look at this small table is all a poll costs).

A quarantined entry is neither pending (:meth:`~hooknb.storage.store.Store.pending`) nor done:
it stays in the inbox until retried or discarded (``done`` set), so that a copy of the item
arriving again (a catch-up) is not run either.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

#: The inbox's columns as pending rows have them (see :data:`hooknb.storage.store.INBOX_COLUMNS`).
ROW = ("seq, hook_id, account, service, node, kind, item_id, digest, publisher, payload, ts, attempts")
#: The entries to run, or waiting for a run.
PENDING = WAITING = "done IS NULL AND quarantined IS NULL"


def migrate(db: sqlite3.Connection) -> None:
    """Schema version 1 -> 2: ``attempts`` and ``quarantined`` added to the inbox (older versions
    of hooknb would ignore them); the ``retries`` table is made with the current schema."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(inbox)")}
    if "attempts" not in columns:
        db.execute("ALTER TABLE inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
    if "quarantined" not in columns:
        db.execute("ALTER TABLE inbox ADD COLUMN quarantined REAL")


def _where(hook_id: str, item_id: str | None) -> tuple[str, list[Any]]:
    if item_id is None:
        return "hook_id = ?", [hook_id]
    return "hook_id = ? AND item_id = ?", [hook_id, item_id]


class QuarantineRows:
    """What :class:`~hooknb.storage.store.Store` does with attempts and quarantined entries."""

    def add_attempts(self, counts: dict[int, int]) -> None:
        """Count attempts ({seq: how many}) of entries not done."""
        if counts:
            with self._tx() as db:  # type: ignore[attr-defined]
                db.executemany("UPDATE inbox SET attempts = attempts + ? WHERE seq = ? AND done IS NULL",
                               [(n, seq) for seq, n in counts.items()])

    def quarantine(self, seqs: Iterable[int], when: float) -> None:
        """Quarantine these entries (not done ones): they run no more until retried."""
        with self._tx() as db:  # type: ignore[attr-defined]
            db.executemany("UPDATE inbox SET quarantined = ? WHERE seq = ? AND done IS NULL",
                           [(when, seq) for seq in seqs])

    def retry(self, hook_id: str, item_id: str | None = None) -> int:
        """Ask for the hook's quarantined entries (of ``item_id`` only, if given) to run again,
        their attempts counted from zero (once taken); how many."""
        where, params = _where(hook_id, item_id)
        with self._tx() as db:  # type: ignore[attr-defined]
            return db.execute(f"INSERT OR IGNORE INTO retries SELECT seq, account FROM inbox WHERE {where}"
                              " AND done IS NULL AND quarantined > 0", params).rowcount

    def discard(self, hook_id: str, when: float, item_id: str | None = None) -> int:
        """Mark the hook's quarantined entries (of ``item_id`` only) done without running them; how many."""
        where, params = _where(hook_id, item_id)
        with self._tx() as db:  # type: ignore[attr-defined]
            count = db.execute(f"UPDATE inbox SET done = ? WHERE {where} AND done IS NULL AND quarantined > 0",
                               [when, *params]).rowcount
            db.execute("DELETE FROM retries WHERE seq IN (SELECT seq FROM inbox WHERE done IS NOT NULL"
                       " AND seq IN (SELECT seq FROM retries))")
            return count

    def take_retried(self, account: str) -> list[tuple]:
        """The entries of ``account`` whose retry was asked for, taken (each by one caller only)
        to be run, their attempts from zero, as pending rows (:data:`ROW`), oldest first."""
        if not self._query("SELECT 1 FROM retries WHERE account = ? LIMIT 1", (account,)):  # type: ignore[attr-defined]
            return []  # looked at every second by `hooknb run`: no write transaction for nothing
        with self._tx() as db:  # type: ignore[attr-defined]
            taken = "seq IN (SELECT seq FROM retries WHERE account = ?)"
            db.execute(f"UPDATE inbox SET quarantined = NULL, attempts = 0 WHERE {taken} AND done IS NULL",
                       (account,))
            rows = db.execute(f"SELECT {ROW} FROM inbox WHERE {taken} AND done IS NULL ORDER BY seq",
                              (account,)).fetchall()
            db.execute("DELETE FROM retries WHERE account = ?", (account,))
        return rows

    def quarantined(self, accounts: Iterable[str] | None = None) -> list[tuple[str, str, str, str, int, float]]:
        """(hook id, service, node, item id, attempts, since) of the quarantined entries (of
        ``accounts``), oldest first."""
        sql = "SELECT hook_id, service, node, item_id, attempts, quarantined FROM inbox WHERE done IS NULL" \
              " AND quarantined > 0"
        params: list[str] = []
        if accounts is not None:
            params = list(accounts)
            sql += f" AND account IN ({','.join('?' * len(params))})"
        return self._query(sql + " ORDER BY seq", params)  # type: ignore[attr-defined]
