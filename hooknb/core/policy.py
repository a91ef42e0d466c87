"""The 'restrict' policy (seed 003): service/node patterns that may not be hooked.

Rules live in ``restrict.json`` in the data directory (``$HOOKNB_HOME``); without that file
the default policy applies, which protects private storage nodes.  A rule is::

    {"name": "private-storage", "service": "*", "node": "storage:*",
     "types": ["*"], "phases": ["*"], "except": ["storage:rosternotes"]}

Patterns are shell-style (``fnmatch``); ``types`` and ``phases`` default to every one; a node
matching an ``except`` pattern is allowed.  Creating a hook that a rule forbids fails with a
clear error naming the rule, and so does loading one (a hook written into the store by other
means is kept with that error as its ``load_error``, never run).  The policy is refused, as the
store is, when another user owns it or its directory, or group or others may write them
(:mod:`hooknb.storage.trust`): deleting or replacing it must not be how a hook gets through.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from ..storage import trust
from ..errors import HookCreateError, HooknbError
from ..storage.store import home

FILENAME = "restrict.json"


@dataclass(frozen=True)
class Rule:
    """One restriction: hooks of ``types`` and ``phases`` may not attach to matching nodes."""

    name: str
    node: str
    service: str = "*"
    types: tuple[str, ...] = ("*",)
    phases: tuple[str, ...] = ("*",)
    exceptions: tuple[str, ...] = field(default=())

    def forbids(self, service: str, node: str, type_: str, phase: str) -> bool:
        """Whether this rule forbids such a hook."""
        return (fnmatchcase(service, self.service) and fnmatchcase(node, self.node)
                and any(fnmatchcase(type_, t) for t in self.types)
                and any(fnmatchcase(phase, p) for p in self.phases)
                and not any(fnmatchcase(node, e) for e in self.exceptions))


DEFAULT_RULES = (
    Rule("bookmarks", "urn:xmpp:bookmarks:*"),
    Rule("bookmarks-legacy", "storage:bookmarks"),
    Rule("private-xml-storage", "storage:*"),
    Rule("private-xml-storage-iq", "jabber:iq:private"),
)


def check_trusted(path: Path | None = None) -> None:
    """Raise :class:`~hooknb.errors.TrustError` if ``restrict.json`` (default: in the data
    directory) or its directory could have been written by someone else."""
    path = path or home() / FILENAME
    trust.check(path.parent, "the data directory", "700")
    trust.check(path, "the restrict policy", "600")


def load_rules(path: Path | None = None) -> tuple[Rule, ...]:
    """The rules of ``restrict.json`` in the data directory, or the default ones."""
    path = path or home() / FILENAME
    try:
        return tuple(parse_rule(r, i) for i, r in enumerate(load_records(path)))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HooknbError(f"the restrict policy {path} is invalid ({type(exc).__name__}: {exc})") from None


def parse_rule(record: dict, index: int = 0) -> Rule:
    """One rule of ``restrict.json`` (``index``: its place, which names a rule without a name);
    ``KeyError`` or ``TypeError`` saying what is wrong."""
    return Rule(name=record.get("name") or f"rule {index + 1}", node=_text(record["node"], "node"),
                service=_text(record.get("service", "*"), "service"),
                types=_texts(record.get("types", ["*"]), "types"),
                phases=_texts(record.get("phases", ["*"]), "phases"),
                exceptions=_texts(record.get("except", []), "except"))


def load_records(path: Path | None = None) -> list[dict]:
    """The rules of ``restrict.json`` as they are written there (the default rules' records
    without the file); ``ValueError`` if it is not JSON, :class:`TrustError` if others could
    write it."""
    path = path or home() / FILENAME
    check_trusted(path)
    if not path.exists():
        return [record(rule) for rule in DEFAULT_RULES]
    data = json.loads(path.read_text())
    return list(data["restrict"] if isinstance(data, dict) else data)


def record(rule: Rule) -> dict:
    """A rule as ``restrict.json`` writes it."""
    return {"name": rule.name, "service": rule.service, "node": rule.node, "types": list(rule.types),
            "phases": list(rule.phases), "except": list(rule.exceptions)}


def save_records(records: list[dict], path: Path | None = None) -> None:
    """Write ``restrict.json`` (private, replaced at once: a reader sees the old rules or the new)."""
    path = path or home() / FILENAME
    trust.private_dir(path.parent)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    trust.write_private(partial, json.dumps({"restrict": records}, indent=2) + "\n")
    os.replace(partial, path)


def _text(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{key!r} must be a string, not {type(value).__name__}")
    return value


def _texts(value: object, key: str) -> tuple[str, ...]:
    """A list of strings (a lone string would be taken as its characters: refused)."""
    if not isinstance(value, list):
        raise TypeError(f"{key!r} must be a list of strings, not {type(value).__name__}")
    return tuple(_text(each, key) for each in value)


def check(service: str, node: str, type_: str, phase: str, rules: tuple[Rule, ...] | None = None) -> None:
    """Raise :class:`HookCreateError` naming the rule if such a hook is restricted."""
    for rule in load_rules() if rules is None else rules:
        if rule.forbids(service, node, type_, phase):
            raise HookCreateError(f"node {node!r} on {service} is restricted by rule {rule.name!r}: "
                                  f"{phase} hooks of type {type_} may not be attached there")
