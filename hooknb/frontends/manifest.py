"""Hooks as code: a TOML manifest of persistent hooks and restrict rules, planned, then applied.

A manifest (a TOML file, or the ``[tool.hooknb]`` table of a ``pyproject.toml``) declares hooks
(``[[hooks]]``: the keys are the long option names of ``create``, plus ``jid``, ``arg`` and
``sha256``) and restrict rules (``[[restrict]]``: the fields of ``restrict.json``, see
:mod:`hooknb.core.policy`).  :func:`load` reads and validates it and compares it with the store
and the policy: a :class:`Plan` of what to create, change, delete and leave unchanged.
:func:`apply` carries a plan out, the hooks in one store transaction.

What a manifest creates is marked as its own (its ``name``, by default the manifest's absolute
path): applying it never touches a hook or a rule made by hand or by another manifest, and a
hook it no longer declares is deleted.  A manifest others could write is refused as a source of
code, as the store is (:mod:`hooknb.storage.trust`).  An invalid manifest raises
:class:`~hooknb.errors.ManifestError`, one line per problem naming the file, the line and the
key, and nothing is applied.  The ``%hook apply`` magic, ``hooknb apply`` and ``hooknb run
--manifest`` only render what these functions return.
"""

from __future__ import annotations

import argparse
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core import policy
from ..core.hooks import HookSpec, check_action
from ..core.loading import make_loader
from ..errors import HooknbError, ManifestError
from ..host import Host
from ..storage import trust
from ..xmpp.connection import split_jid
from . import grammar

#: What a plan does to each hook or rule, in the order it is shown.
ACTIONS = ("create", "change", "delete", "unchanged")
TOP_KEYS = ("name", "hooks", "restrict")
#: The keys of a hook that are not options of ``create``.
EXTRA_KEYS = ("jid", "sha256", "persistent")
RULE_KEYS = ("name", "service", "node", "types", "phases", "except")


@dataclass(frozen=True)
class Change:
    """One line of a plan: a hook (``spec``: as declared, or as stored when deleted) or a
    restrict rule (``rule``: its ``restrict.json`` record), what is done to it and the fields
    that change (``was``: the stored values)."""

    action: str
    spec: HookSpec | None = None
    rule: dict[str, Any] | None = None
    was: dict[str, Any] = field(default_factory=dict)

    def line(self, base: Path) -> str:
        """The plan's line for it."""
        if self.spec is not None:
            spec = self.spec
            what = (f"hook {spec.id} {spec.type} {_short(spec.type, spec.arg, base)} on {spec.service} "
                    f"node {spec.node!r} ({spec.account})")
            now = spec.options()
        else:
            what, now = f"restrict rule {self.rule['name']!r}", self.rule
        changes = ", ".join(f"{k} {_value(k, v)} -> {_value(k, now.get(k))}" for k, v in self.was.items())
        return f"  {self.action:<10} {what}" + (f": {changes}" if changes else "")


@dataclass
class Plan:
    """What applying a manifest does (see :func:`load`); ``records``: the restrict rules to
    write, when they change."""

    path: Path
    name: str
    changes: list[Change]
    records: list[dict[str, Any]] | None = None
    applied: bool = False

    def count(self, action: str) -> int:
        """How many hooks and rules the plan has for ``action``."""
        return sum(c.action == action for c in self.changes)

    @property
    def empty(self) -> bool:
        """Whether applying it changes nothing."""
        return all(c.action == "unchanged" for c in self.changes)

    def lines(self) -> list[str]:
        """The plan as text: a heading, one line per hook or rule, the counts, and whether it was applied."""
        base = self.path.parent
        heading = f"plan of {self.path}" + ("" if self.name == str(self.path) else f" (manifest {self.name!r})") + ":"
        body = [c.line(base) for action in ACTIONS for c in self.changes if c.action == action]
        counts = ", ".join(f"{self.count(a)} to {a}" if a != "unchanged" else f"{self.count(a)} unchanged"
                           for a in ACTIONS)
        outcome = ("nothing to change" if self.empty else "applied" if self.applied
                   else "dry run: nothing applied")
        return [heading, *body, counts, outcome]


def _short(type_: str, arg: str, base: Path) -> str:
    if type_ == "python_file":
        path = Path(arg)
        return str(path.relative_to(base)) if path.is_relative_to(base) else arg
    first = arg.strip().splitlines()[0] if arg.strip() else ""
    return repr(first[:40] + ("..." if len(first) > 40 or "\n" in arg.strip() else ""))


def _value(key: str, value: Any) -> str:
    if key == "sha256" and isinstance(value, str):
        return value[:12]
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


# ---------------------------------------------------------------------------------- reading
class _Source:
    """A manifest's text and where its problems are: ``problem`` notes one, with its line."""

    def __init__(self, path: Path, shown: str, text: str, prefix: tuple[str, ...]) -> None:
        self.path, self.shown, self.prefix = path, shown, prefix
        self.lines = text.splitlines()
        self.problems: list[str] = []
        self._lines: list[int] = []  # each problem's line (0: none), to sort them by

    def _header(self, name: str, array: bool) -> re.Pattern[str]:
        dotted = r"\s*\.\s*".join(map(re.escape, [*self.prefix, *([name] if name else [])]))
        return re.compile(r"\s*\[\[\s*" + dotted + r"\s*\]\]" if array else r"\s*\[\s*" + dotted + r"\s*\]")

    def line(self, table: str | None, index: int = 0, key: str | None = None) -> int | None:
        """The line (from 1) of entry ``index`` of ``[[table]]`` (None: the manifest's own table),
        at ``key`` when it is there; None when it cannot be told."""
        if table is None:
            header = self._header("", array=False)
            starts = [n for n, text in enumerate(self.lines) if header.match(text)] if self.prefix else [-1]
        else:
            header = self._header(table, array=True)
            starts = [n for n, text in enumerate(self.lines) if header.match(text)]
        if index >= len(starts):
            return None
        start = starts[index]
        end = next((n for n in range(start + 1, len(self.lines)) if self.lines[n].lstrip().startswith("[")),
                   len(self.lines))
        if key is not None:
            at = re.compile(r"\s*[\"']?" + re.escape(key) + r"[\"']?\s*=")
            found = next((n for n in range(start + 1, end) if at.match(self.lines[n])), None)
            if found is not None:
                return found + 1
        return start + 1 if start >= 0 else None

    def problem(self, table: str | None, index: int, key: str | None, message: str) -> None:
        """Note one problem of entry ``index`` of ``table`` (None: the top level), at ``key``."""
        where = (f"{table}[{index}]" if table else "") + (f".{key}" if key and table else key or "")
        line = self.line(table, index, key)
        at = next((n for n, each in enumerate(self._lines) if each > (line or 0)), len(self._lines))
        self._lines.insert(at, line or 0)
        self.problems.insert(at, f"{self.shown}{f':{line}' if line else ''}: {where or 'manifest'}: {message}")


def _read(path: str | os.PathLike) -> tuple[_Source, dict[str, Any]]:
    """The manifest at ``path`` (trusted, parsed), and its table."""
    shown = str(path)
    file = Path(path).expanduser().resolve()  # a link's target, and the directory that holds it
    if not file.is_file():
        raise ManifestError([f"{shown}: no such manifest file" if not file.exists() else f"{shown}: not a file"])
    trust.check(file.parent, "the manifest's directory", "go-w")
    trust.check(file, "the manifest", "go-w")
    try:
        text = file.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([f"{shown}: cannot be read: {getattr(exc, 'strerror', None) or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at (?:line (\d+), column \d+|end of document)\)", str(exc))
        message = str(exc).replace(found.group(0), "").strip() if found else str(exc)
        line = (found.group(1) or len(text.splitlines()) or 1) if found else None
        raise ManifestError([f"{shown}:{f'{line}:' if line else ''} invalid TOML: {message}"]) from None
    prefix = ("tool", "hooknb") if file.name == "pyproject.toml" else ()
    if prefix:
        data = data.get("tool", {}).get("hooknb") if isinstance(data.get("tool"), dict) else None
        if not isinstance(data, dict):
            raise ManifestError([f"{shown}: no [tool.hooknb] table: nothing declares hooks there"])
    return _Source(file, shown, text, prefix), data


def _options() -> dict[str, argparse.Action]:
    """The options of ``create`` (the grammar's), by manifest key: the long option's name."""
    sub = grammar.Parser(prog="manifest").add_subparsers(parser_class=grammar.Parser)
    parser = grammar.add_create(sub, connected=False)
    keys = {}
    for action in parser._actions:
        names = [o for o in action.option_strings if o.startswith("--")] or ([] if action.option_strings
                                                                             else [action.dest])
        if names and action.dest not in ("help", "persistent"):
            keys[names[0].lstrip("-")] = action
    return keys


def _convert(action: argparse.Action, value: Any) -> Any:
    """A manifest value as ``create`` would have it from its option (ValueError saying why not)."""
    if action.nargs == 0:  # --pin, --disabled, --unordered
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, not {value!r}")
        return value if action.const is True else not value
    if action.nargs == "+" or (action.dest == "on" and isinstance(value, list)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"must be a list of strings, not {value!r}")
        value = value if action.nargs == "+" else ",".join(value)
    elif isinstance(action.default, (int, float)) and not isinstance(action.default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a number, not {value!r}")
    elif not isinstance(value, str):
        raise ValueError(f"must be a string, not {value!r}")
    try:
        values = [action.type(str(v)) if action.type else v for v in (value if isinstance(value, list) else [value])]
    except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
        raise ValueError(str(exc) if isinstance(exc, argparse.ArgumentTypeError) else f"invalid value {value!r}") from None
    if action.choices and values[0] not in action.choices:
        raise ValueError(f"must be one of {', '.join(map(str, action.choices))}, not {value!r}")
    return values if isinstance(value, list) else values[0]


def _entries(source: _Source, data: dict[str, Any], table: str) -> list[dict[str, Any]]:
    entries = data.get(table, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        source.problem(None, 0, table, f"must be an array of tables ([[{table}]]), not {type(entries).__name__}")
        return []
    return entries


# ---------------------------------------------------------------------------------- validation
def _hook(source: _Source, index: int, entry: dict[str, Any], context: dict[str, Any]) -> HookSpec | None:
    """The spec of one ``[[hooks]]`` entry (None once its problems are noted)."""
    def problem(key: str | None, message: str) -> None:
        source.problem("hooks", index, key, message)

    before = len(source.problems)
    options, values, failed = context["options"], {}, set()
    for key, value in entry.items():
        action = options.get(key.replace("_", "-"))
        if action is None and key not in EXTRA_KEYS:
            problem(key, f"unknown key; the keys are jid, {', '.join(options)}, sha256")
            failed.add(key)
        elif action is None:
            if not isinstance(value, bool if key == "persistent" else str) or value is False:
                problem(key, "persistent is implied: leave it out" if key == "persistent"
                        else f"must be a string, not {value!r}")
                failed.add(key)
            values[key] = value
        else:
            try:
                values[action.dest] = _convert(action, value)
            except ValueError as exc:
                problem(key, str(exc))
                failed.add(action.dest)
    args = argparse.Namespace(**{a.dest: a.default for a in options.values()})
    vars(args).update(values)
    try:
        service, node = grammar.target(args)
    except HooknbError as exc:
        problem("node", str(exc).replace("-n NODE", "node = NODE").replace("-u ", "uri = "))
        failed.add("node")
    if "arg" not in entry:
        problem(None, "no arg: a module (type python), a file (python_file) or code (python_code)")
    if "arg" not in values or failed & {"jid", "service", "node", "uri", "type", "arg", "phase"}:
        return None
    arg = args.arg
    if (args.type == "python_file" or (args.type is None and arg.endswith(".py"))) \
            and not Path(arg).expanduser().is_absolute():
        arg = str(source.path.parent / arg)
    key = "jid"
    try:
        jid = split_jid(values["jid"]).bare if "jid" in values else context["account"]()
        key = "arg"
        type_, arg, kinds = check_action(node, arg, args.type, args.phase, args.timeout, args.on,
                                         args.max_depth, args.executor, args.concurrency)
        key = "service"
        service = split_jid(service).bare if service else jid
        key = "node"
        policy.check(service, node, type_, args.phase, context["rules"])
        key = "arg"
        digest = make_loader(type_, arg, pin=args.pin, compat=args.compat).digest
        key = "from"
        publishers = frozenset(split_jid(p).bare for p in args.publishers)
    except HooknbError as exc:
        problem(key if key in entry or key == "arg" else "uri" if "uri" in entry else None, " ".join(str(exc).split()))
        return None
    declared = values.get("sha256")
    if declared and declared != digest:
        problem("sha256", f"the code of {_short(type_, arg, source.path.parent)} has SHA-256 {digest}, "
                          f"not the {declared} this manifest pins")
    if len(source.problems) > before:
        return None
    if declared:
        context["pinned"].add(index)
    return HookSpec.make(jid, service, node, type_, arg, args.phase, persistent=True, kinds=kinds,
                         priority=args.priority, timeout=args.timeout, publishers=publishers,
                         sha256=digest, pin=args.pin or bool(declared), max_depth=args.max_depth,
                         disabled=args.disabled, executor=args.executor, concurrency=args.concurrency,
                         ordered=args.ordered, compat=args.compat, manifest=context["name"])


def _change(then: dict[str, Any] | None, now: dict[str, Any], **what: Any) -> Change:
    """Whether what was stored as ``then`` (None: nothing) is created, changed or unchanged to be
    ``now``, and the stored values of the fields that change."""
    if then is None:
        return Change("create", **what)
    was = {k: then.get(k) for k in [*then, *now.keys() - then.keys()] if now.get(k) != then.get(k)}
    return Change("change" if was else "unchanged", was=was, **what)


def _rules(source: _Source, data: dict[str, Any], name: str) -> tuple[list[Change], list[dict[str, Any]]]:
    """The restrict rules' changes, and every rule ``restrict.json`` holds once applied."""
    try:
        records = policy.load_records()
        others = [r for r in records if r.get("manifest") != name]
        mine = {r.get("name"): r for r in records if r.get("manifest") == name}
        taken = {policy.parse_rule(r, i).name for i, r in enumerate(records) if r.get("manifest") != name}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        source.problem(None, 0, "restrict", f"the restrict policy cannot be read ({type(exc).__name__}: {exc})")
        return [], []
    changes, declared = [], []
    for index, entry in enumerate(_entries(source, data, "restrict")):
        unknown = [k for k in entry if k not in RULE_KEYS]
        for key in unknown:
            source.problem("restrict", index, key, f"unknown key; the keys are {', '.join(RULE_KEYS)}")
        if not isinstance(entry.get("name"), str) or not entry.get("name"):
            source.problem("restrict", index, "name", "a rule of a manifest needs a name (a string)")
            continue
        if entry["name"] in taken or entry["name"] in {r["name"] for r in declared}:
            source.problem("restrict", index, "name", f"a rule named {entry['name']!r} exists already "
                                                      "(made by hand, by another manifest or above)")
            continue
        try:
            record = {**policy.record(policy.parse_rule(entry, index)), "manifest": name}
        except (KeyError, TypeError) as exc:
            source.problem("restrict", index, str(exc).strip("'\"") if isinstance(exc, KeyError) else None,
                           "missing" if isinstance(exc, KeyError) else str(exc))
            continue
        if not unknown:
            declared.append(record)
            old = mine.get(record["name"])
            changes.append(_change(old, record, rule=record))
    names = {r["name"] for r in declared}
    changes += [Change("delete", rule=r) for n, r in mine.items() if n not in names]
    return changes, others + declared


def load(host: Host, path: str | os.PathLike, jid: str | None = None) -> Plan:
    """Read and validate the manifest at ``path`` and compare it with the store and the restrict
    policy: the plan of applying it (nothing is changed).  ``jid``: the account of hooks that
    name none (default: :meth:`Host.account`'s).  :class:`ManifestError` with every problem."""
    source, data = _read(path)
    for key in data:
        if key not in TOP_KEYS:
            source.problem(None, 0, key, f"unknown key; the keys are {', '.join(TOP_KEYS)}")
    name = data.get("name", str(source.path))
    if not isinstance(name, str) or not name:
        source.problem(None, 0, "name", f"must be a non-empty string, not {name!r}")
        name = str(source.path)
    rules, records = _rules(source, data, name)
    changes: list[Change] = []
    accounts: list[str] = []

    def account() -> str:
        if not accounts:
            accounts.append(split_jid(jid).bare if jid else host.account())
        return accounts[0]

    context = {"options": _options(), "rules": tuple(policy.parse_rule(r, i) for i, r in enumerate(records)),
               "name": name, "account": account, "pinned": set()}
    specs: dict[str, tuple[int, HookSpec]] = {}
    for index, entry in enumerate(_entries(source, data, "hooks")):
        spec = _hook(source, index, entry, context)
        if spec is not None and spec.id in specs:
            source.problem("hooks", index, None, f"the same hook as hooks[{specs[spec.id][0]}]")
        elif spec is not None:
            specs[spec.id] = (index, spec)
    stored = {s.id: s for s in host.stored_hooks()}
    for index, spec in specs.values():
        old = stored.get(spec.id)
        if old is not None and old.manifest not in (None, name):
            source.problem("hooks", index, None, f"hook {spec.id} is declared by another manifest ({old.manifest})")
        elif old is not None and old.pin and old.sha256 != spec.sha256 and index not in context["pinned"]:
            source.problem("hooks", index, "arg", f"the hook is pinned and its code changed since it was stored "
                                                  f"(SHA-256 {old.sha256} -> {spec.sha256}): add "
                                                  f"sha256 = \"{spec.sha256}\" to accept the change")
        else:
            spec = replace(spec, created=old.created) if old is not None else spec
            changes.append(_change(old and old.options(), spec.options(), spec=spec))
    changes += [Change("delete", spec=s) for s in stored.values() if s.manifest == name and s.id not in specs]
    if source.problems:
        raise ManifestError(source.problems)
    rules_change = any(c.action != "unchanged" for c in rules)
    return Plan(source.path, name, changes + rules, records if rules_change else None)


def apply(host: Host, plan: Plan) -> Plan:
    """Carry ``plan`` out: the restrict rules written (when they change), then the hooks created,
    changed and deleted in one store transaction; the plan, ``applied``."""
    if plan.records is not None:
        policy.save_records(plan.records)
    hooks = [c for c in plan.changes if c.spec is not None]
    saved = [c.spec for c in hooks if c.action in ("create", "change")]
    deleted = [c.spec for c in hooks if c.action == "delete"]
    if saved or deleted:
        host.change_hooks(saved, deleted)
    plan.applied = True
    return plan


def run(host: Host, path: str | os.PathLike, jid: str | None = None, dry_run: bool = False) -> Plan:
    """``apply FILE [--jid JID] [--dry-run]``: :func:`load`, then :func:`apply` unless ``dry_run``."""
    plan = load(host, path, jid)
    return plan if dry_run or plan.empty else apply(host, plan)
