"""Writing the inbox table in few statements: rows inserted and done marks set ``INSERT_ROWS`` at
a time (a part of :meth:`hooknb.storage.store.Store.write_batch`, inside its transaction)."""

from __future__ import annotations

import sqlite3

INBOX_COLUMNS = "hook_id, account, service, node, kind, item_id, digest, publisher, payload, ts"
#: Inbox rows per INSERT (or done marks per UPDATE) statement: SQLite runs each statement with
#: the GIL let go, and taking it back from a busy loop thread can take a switch interval (5 ms),
#: so one statement per row made a batch of 2,000 entries take 0.2 s.
INSERT_ROWS = 64
_INSERTS: dict[int, str] = {}  # the INSERT statement of each number of rows


def _insert_sql(rows: int) -> str:
    sql = _INSERTS.get(rows)
    if sql is None:
        sql = _INSERTS[rows] = (f"INSERT OR IGNORE INTO inbox ({INBOX_COLUMNS}) VALUES "
                                + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * rows))
    return sql


def add_rows(db: sqlite3.Connection, entries: list[tuple]) -> list[int | None]:
    """Insert inbox rows, :data:`INSERT_ROWS` per statement; each row's ``seq``, None for a copy.
    Within the transaction nobody else inserts, and AUTOINCREMENT numbers a statement's rows in
    order after the last ``seq`` ever given: when every row went in, they are the next ones."""
    found = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'inbox'").fetchone()
    last = found[0] if found else 0
    seqs: list[int | None] = []
    for start in range(0, len(entries), INSERT_ROWS):
        chunk = entries[start:start + INSERT_ROWS]
        added = db.execute(_insert_sql(len(chunk)), [v for entry in chunk for v in entry]).rowcount
        if added == len(chunk):
            seqs.extend(range(last + 1, last + 1 + added))
        else:  # some were copies of versions the inbox has: which rows went in?
            new = {tuple(r[1:]): r[0] for r in db.execute(
                "SELECT seq, hook_id, service, node, item_id, kind, digest FROM inbox WHERE seq > ?", (last,))}
            seqs.extend(new.pop((e[0], e[2], e[3], e[5], e[4], e[6]), None) for e in chunk)
        last += added
    return seqs


def mark_done(db: sqlite3.Connection, done: list[tuple[int, float]]) -> None:
    """Set ``done`` of inbox rows ((seq, when)), :data:`INSERT_ROWS` per statement."""
    for start in range(0, len(done), INSERT_ROWS):
        chunk = done[start:start + INSERT_ROWS]
        db.execute(f"WITH d(seq, at) AS (VALUES {', '.join(['(?, ?)'] * len(chunk))}) UPDATE inbox"
                   " SET done = (SELECT at FROM d WHERE d.seq = inbox.seq) WHERE seq IN (SELECT seq FROM d)",
                   [v for mark in chunk for v in mark])
