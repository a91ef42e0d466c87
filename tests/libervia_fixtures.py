"""A Libervia database as Libervia writes it, for the importer's tests: the tables of
libervia-backend 0.8.0 (``sat/memory/sqlite.py``, those the importer reads), values pickled as
its ``setPrivateValue`` pickles them (``pickle.dumps(value, 0)``) with Twisted's own JID class,
and hook files written the way Libervia's plugin calls them."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path
from typing import Any

from twisted.words.protocols.jabber import jid

#: The CREATE statements of libervia-backend 0.8.0 for the tables the importer reads.
SCHEMA = (
    "CREATE TABLE profiles (id INTEGER PRIMARY KEY ASC, name TEXT, UNIQUE (name))",
    "CREATE TABLE param_ind (category TEXT, name TEXT, profile_id INTEGER, value TEXT, "
    "PRIMARY KEY (profile_id, category, name), FOREIGN KEY(profile_id) REFERENCES profiles(id) ON DELETE CASCADE)",
    "CREATE TABLE private_ind_bin (namespace TEXT, key TEXT, profile_id INTEGER, value BLOB, "
    "PRIMARY KEY (profile_id, namespace, key), FOREIGN KEY(profile_id) REFERENCES profiles(id) ON DELETE CASCADE)",
    "CREATE TABLE private_gen_bin (namespace TEXT, key TEXT, value BLOB, PRIMARY KEY (namespace, key))",
)

#: A hook file as Libervia's documentation and plugin use them: the id and the payload's first
#: child, toXml(), elements() by namespace and name, str() for text, client.jid.userhost().
LIBERVIA_HOOK = '''
import json

NS_ATOM = "http://www.w3.org/2005/Atom"
OUT = {out!r}


def hook(host, client, item):
    entry = item.firstChildElement()
    titles = [str(title) for title in entry.elements(NS_ATOM, "title")]
    record = {{"id": item["id"], "name": item.name, "uri": item.uri, "has_id": item.hasAttribute("id"),
              "entry": entry.toXml(), "titles": titles, "me": client.jid.userhost(),
              "full": client.jid.full(), "profile": client.profile, "item": item.toXml()}}
    with open(OUT, "a") as f:
        f.write(json.dumps(record) + "\\n")
'''


def write_hook(path: Path, out: Path) -> str:
    path.write_text(LIBERVIA_HOOK.format(out=str(out)))
    path.chmod(0o644)
    return str(path)


def entry(title: str) -> str:
    return (f"<entry xmlns='http://www.w3.org/2005/Atom'><title type='text'>{title}</title>"
            f"<id>urn:uuid:{title}</id></entry>")


def hooks_value(*hooks: tuple[str, str, str]) -> bytes:
    """A node's value as Libervia stores it: [{service: JID, type, arg}], pickled with protocol 0."""
    return pickle.dumps([{"service": jid.JID(s), "type": t, "arg": a} for s, t, a in hooks], 0)


def make_db(path: Path, profiles: dict[str, tuple[str | None, dict[str, bytes]]]) -> Path:
    """``profiles``: name -> (its JabberID, {node: pickled value})."""
    db = sqlite3.connect(path)
    for statement in SCHEMA:
        db.execute(statement)
    for number, (name, (jabber_id, nodes)) in enumerate(profiles.items(), 1):
        db.execute("INSERT INTO profiles(id, name) VALUES (?, ?)", (number, name))
        if jabber_id:
            db.execute("INSERT INTO param_ind VALUES ('Connection', 'JabberID', ?, ?)", (number, jabber_id))
        for node, value in nodes.items():
            db.execute("INSERT INTO private_ind_bin VALUES ('PUBSUB_HOOK', ?, ?, ?)",
                       (node, number, sqlite3.Binary(value)))
    db.commit()
    db.close()
    return path


def hostile(canary: Path) -> bytes:
    """A pickle that would create ``canary`` if it were loaded with pickle.loads."""
    return f"cos\nsystem\n(S'touch {canary}'\ntR.".encode()


def records(rows: Any) -> list[tuple[str, str]]:
    return [(r.node, r.problem or r.arg) for r in rows]
