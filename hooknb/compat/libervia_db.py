"""Reading the persistent PubSub hooks a Libervia database keeps, without running anything from it.

Where Libervia keeps them (read in libervia-backend 0.8.0, its source distribution on PyPI; SàT's
Python 2 releases have the same tables):

* ``sat/plugins/plugin_exp_pubsub_hook.py``: persistent hooks are a
  ``persistent.PersistentBinaryDict("PUBSUB_HOOK", client.profile)``: one key per node, its value
  the list of that node's hooks, each a dict ``{"service": JID, "type": str, "arg": str}``
  (``service`` a Twisted ``twisted.words.protocols.jabber.jid.JID``, bare; ``type`` one of
  ``python``, ``python_file``, ``python_code``, though ``installHook`` refuses all but
  ``python_file`` before storing; ``arg`` the file's absolute path).
* ``sat/memory/persistent.py``: a ``PersistentBinaryDict`` of a profile is stored by
  ``storage.setPrivateValue(namespace, key, value, binary=True, profile)``.
* ``sat/memory/sqlite.py``: that writes table ``private_ind_bin`` (columns ``namespace TEXT``,
  ``key TEXT``, ``profile_id INTEGER``, ``value BLOB``; primary key ``(profile_id, namespace,
  key)``; ``profile_id`` references ``profiles(id)``), the value as ``pickle.dumps(value, 0)``
  (protocol 0: a JID is ``copy_reg._reconstructor(JID, object, None)`` then its ``__dict__``,
  ``user``, ``host``, ``resource``).  Table ``profiles`` has ``id INTEGER PRIMARY KEY`` and
  ``name TEXT`` (unique).  A profile's own JID is the ``param_ind`` row (``category TEXT``,
  ``name TEXT``, ``profile_id INTEGER``, ``value TEXT``) of category ``Connection``, name
  ``JabberID``.  Its loader decodes with ``pickle.loads(v, encoding="utf-8")``, encoding a value
  stored as text first (some Python 2 values were).  The database is ``libervia.db`` in
  ``$XDG_DATA_HOME/libervia`` (``~/.local/share/libervia``) by default.

The file is opened read-only, and each value is decoded by :class:`RecordUnpickler`, which
resolves only the names such a record holds (the JID class, to a plain stand-in, and what protocol
0 rebuilds an object with); any other name (``os.system``...) refuses that record, with one line,
before anything of it is built or run.
"""

from __future__ import annotations

import io
import os
import pickle
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HooknbError

NAMESPACE = "PUBSUB_HOOK"
#: The hook types Libervia's plugin names; only ``python_file`` was ever implemented (it refuses
#: the others before storing them).
LIBERVIA_TYPES = ("python", "python_file", "python_code")
IMPLEMENTED = "python_file"


def default_path() -> Path:
    """Where Libervia keeps its database by default."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "libervia" / "libervia.db"


class StoredJID:
    """What a pickled Twisted JID becomes: its three parts, nothing to run."""

    def __init__(self, *_args: Any) -> None:
        self.user: str | None = None
        self.host: str | None = None
        self.resource: str | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("a JID's state is not a dict")
        for key in ("user", "host", "resource"):
            value = state.get(key)
            if value is not None and not isinstance(value, str):
                raise pickle.UnpicklingError(f"a JID's {key} is not text")
            setattr(self, key, value)

    def userhost(self) -> str:
        """``user@host`` (or ``host``)."""
        return f"{self.user}@{self.host}" if self.user else str(self.host or "")


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copyreg._reconstructor`` for the one class allowed (a JID), without calling anything."""
    if cls is not StoredJID or base is not object or state is not None:
        raise pickle.UnpicklingError("unexpected object in the record")
    return StoredJID()


#: (module, name) -> what it resolves to: a record holds JIDs, and protocol 0 rebuilds them with
#: ``copy_reg._reconstructor(JID, object, None)`` (Python 2's names, or Python 3's).
ALLOWED: dict[tuple[str, str], Any] = {
    ("twisted.words.protocols.jabber.jid", "JID"): StoredJID,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
}


class Refused(HooknbError):
    """A record that is not what Libervia stores (a name it never pickles, a broken pickle)."""


class RecordUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED` and refuses everything else."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise Refused(f"its pickle names {module}.{name}, which a Libervia hook record never "
                          "holds: refused, nothing of it was run") from None

    def persistent_load(self, pid: Any) -> Any:
        raise Refused("its pickle refers to a persistent object, which a Libervia hook record never "
                      "holds: refused")


def decode(value: bytes | str) -> Any:
    """A ``private_ind_bin`` value, decoded as Libervia decodes it but with :class:`RecordUnpickler`."""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    try:
        return RecordUnpickler(io.BytesIO(data), encoding="utf-8").load()
    except Refused:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a broken pickle raises
        raise Refused(f"its value is not a readable pickle ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class Stored:
    """One hook as Libervia stored it (``service`` a bare JID), or why it cannot be imported
    (``problem``, with what could be read of it)."""

    profile: str
    node: str
    service: str = ""
    type: str = ""
    arg: str = ""
    problem: str | None = None


def _hooks_of(profile: str, node: str, value: Any) -> list[Stored]:
    if not isinstance(value, list):
        return [Stored(profile, node, problem=f"its value is a {type(value).__name__}, not a list of hooks")]
    out = []
    for data in value:
        if not isinstance(data, dict) or not isinstance(data.get("service"), StoredJID) \
                or not all(isinstance(data.get(k), str) for k in ("type", "arg")):
            out.append(Stored(profile, node, problem="a hook that is not {service: JID, type, arg}"))
            continue
        hook = Stored(profile, node, data["service"].userhost(), data["type"], data["arg"])
        if hook.type not in LIBERVIA_TYPES:
            hook = Stored(**{**hook.__dict__, "problem": f"unknown hook type {hook.type!r}"})
        elif hook.type != IMPLEMENTED:
            hook = Stored(**{**hook.__dict__, "problem": f"type {hook.type} was never implemented by "
                             "Libervia (its plugin refuses it), so this hook never ran there; create "
                             "it yourself if you want it"})
        out.append(hook)
    return out


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """The database opened read-only; a one-line error if it is missing or not Libervia's."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise HooknbError(f"no Libervia database at {str(file)!r} (give --db PATH)")
    db = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        db.close()
        raise HooknbError(f"{str(file)!r} is not an SQLite database: {exc}") from None
    if not {"profiles", "private_ind_bin"} <= tables:
        db.close()
        raise HooknbError(f"{str(file)!r} is not a Libervia database (no profiles and private_ind_bin tables)")
    return db


def profiles(db: sqlite3.Connection) -> dict[str, int]:
    """The profiles (name -> id) that have persistent hooks."""
    rows = db.execute("SELECT DISTINCT p.name, p.id FROM profiles p JOIN private_ind_bin b "
                      "ON b.profile_id = p.id WHERE b.namespace = ?", (NAMESPACE,))
    return dict(rows.fetchall())


def profile_jid(db: sqlite3.Connection, profile_id: int) -> str | None:
    """The JID the profile connects with (its ``Connection``/``JabberID`` parameter), bare."""
    row = db.execute("SELECT value FROM param_ind WHERE category='Connection' AND name='JabberID' "
                     "AND profile_id=?", (profile_id,)).fetchone() if _has(db, "param_ind") else None
    return row[0].split("/")[0] if row and row[0] else None


def _has(db: sqlite3.Connection, table: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone() is not None


def read(db: sqlite3.Connection, profile: str, profile_id: int) -> list[Stored]:
    """The persistent hooks of one profile, in node order; a record that cannot be read is one
    :class:`Stored` with its ``problem``."""
    out: list[Stored] = []
    rows = db.execute("SELECT key, value FROM private_ind_bin WHERE namespace=? AND profile_id=? "
                      "ORDER BY key", (NAMESPACE, profile_id))
    for node, value in rows:
        try:
            out.extend(_hooks_of(profile, node, decode(value)))
        except Refused as exc:
            out.append(Stored(profile, node, problem=str(exc)))
    return out


__all__ = ["NAMESPACE", "Stored", "StoredJID", "RecordUnpickler", "Refused", "connect", "decode",
           "default_path", "profiles", "profile_jid", "read"]
