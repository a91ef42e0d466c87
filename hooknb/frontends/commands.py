"""The commands behind the ``%hook`` magics and the ``hooknb`` command line, as data.

Both front ends parse with :mod:`hooknb.frontends.grammar` (the same argument names), call these
functions, and only render what they return: a :class:`~hooknb.core.hooks.Hook`, a count, listing
rows, the line saying what an operation on a node or on the keyring did, a replay's runs, or what a
hook's runs printed.  Rendering (print,
DataFrame, exit code) stays in the front ends.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import grammar, options
from ..xmpp import passwords
from ..xmpp import loop as _loop
from ..xmpp.connection import ConnectOptions, split_jid
from ..errors import GrammarError, HooknbError
from ..core.hooks import PUBLISHER_PENDING, Hook, HookSpec
from ..host import Host
from ..core.replay import Replay

if TYPE_CHECKING:
    from ..xmpp.client import Client

#: The fields of a hook listing (``list -O json``, the command line's table): the seeds'
#: fields, then the hook's id and account, whether it is pinned and whether its code changed,
#: its status (``stalled`` among them), how many items wait for it, and where its runs go
#: (``thread`` or ``dask``).
LIST_FIELDS = ("service", "node", "type", "arg", "persistent", "id", "account", "pin", "code_changed",
               "status", "items_waiting", "quarantined", "executor")


def create(host: Host, args: argparse.Namespace, account: str | None, *, persistent: bool | None = None,
           type_: str | None = None, arg: str | None = None, name: str | None = None) -> Hook:
    """Create the hook described by parsed ``create`` (or ``%%hook``) arguments; ``type_``,
    ``arg`` and ``persistent`` override the parsed ones (a ``%%hook`` cell's code)."""
    service, node = grammar.target(args)
    return host.create_hook(node, args.arg if arg is None else arg,
                            getattr(args, "type", None) if type_ is None else type_,
                            service=service, account=account,
                            persistent=args.persistent if persistent is None else persistent,
                            on=args.on, phase=getattr(args, "phase", "event"),
                            priority=getattr(args, "priority", 0), timeout=args.timeout,
                            publishers=args.publishers, name=name, pin=getattr(args, "pin", False),
                            max_depth=args.max_depth,
                            create_node=getattr(args, "create_node", False),
                            node_config=dict(getattr(args, "node_config", None) or []),
                            disabled=getattr(args, "disabled", False), executor=args.executor,
                            concurrency=args.concurrency, ordered=args.ordered,
                            compat=getattr(args, "compat", None))


def replay(host: Host, args: argparse.Namespace, account: str | None, *, code: str | None = None,
           client: Client | None = None, cell: dict[str, Any] | None = None) -> Replay:
    """Replay what parsed ``replay`` arguments name: a hook by its id, or ``code`` (a ``%%hook
    replay`` cell) as the hook ``%%hook`` would make of it, though none is created.  ``client``: a
    connection of its own; ``cell``: where what the runs print is shown."""
    if code is None:
        return host.replay(args.hook, last=args.last, since=args.since, client=client, cell=cell)
    service, node = grammar.target(args)
    jid = host.account(account)
    service = split_jid(service).bare if service else jid
    spec = HookSpec.make(jid, service, node, "python_code", code, timeout=args.timeout,
                         publishers=frozenset(split_jid(p).bare for p in args.publishers),
                         name=f"%%hook:{service}:{node}")
    return host.replay(host.trial(spec), last=args.last, since=args.since, client=client, cell=cell)


def enable(host: Host, hook_id: str, account: str | None, enabled: bool) -> str:
    """Enable or disable a hook (stored ones too, without a connection); the line saying so."""
    host.hooks(account)  # the account's stored hooks, listed when it is not connected
    hook = host.enable(hook_id, enabled)
    return f"{describe(hook)} {'enabled' if enabled else 'disabled: it journals what it would run (would_run)'}"


def quarantine(host: Host, args: argparse.Namespace, account: str | None, action: str) -> str:
    """``retry`` or ``discard`` a hook's quarantined items (stored ones, without a connection too);
    the line saying what was done."""
    host.hooks(account)  # the account's stored hooks, listed when it is not connected
    hook = host.hook(args.hook)
    count = host.quarantine(action, hook.id, args.item)
    what = f"item {args.item!r}" if args.item else "item(s)"
    if not count:
        return f"{describe(hook)}: no quarantined {what}"
    if action == "discard":
        return f"{describe(hook)}: {count} quarantined {what} discarded"
    when = ("running now" if host.runs_here(hook.account) else
            "the process running the account's hooks takes them (hooknb run within a second, a notebook "
            "at its next connection)")
    return f"{describe(hook)}: {count} quarantined {what} retried: {when}"


def output(host: Host, hook_id: str, last: int = 5) -> list[str]:
    """What the ``last`` newest runs of a hook that printed something (or failed) printed, and
    their tracebacks, each under a line naming the run (from the runs journal: replays and runs
    of hooks deleted since included)."""
    runs = [r for r in host.runs.snapshot() if r.hook_id == hook_id]
    if not runs and hook_id not in {h.id for h in host.hooks(stored=False)}:
        raise HooknbError(f"no hook with id {hook_id!r}, and no run of one in the runs journal")
    printed = [r for r in runs if r.output or r.traceback][-last:]
    if not printed:
        return [f"hook {hook_id}: none of its {len(runs)} journaled run(s) printed anything"]
    lines = []
    for run in printed:
        when = datetime.fromtimestamp(run.ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"--- {'replay' if run.replay else 'run'} on item {run.item_id} of node {run.node!r} "
                     f"at {when} UTC: {run.status}")
        lines.extend(text.rstrip("\n") for text in (run.output, run.traceback) if text)
    return lines


def delete(host: Host, args: argparse.Namespace, account: str | None) -> int:
    """Delete the hooks named by parsed ``delete`` arguments: by id (of any account unless ``--jid``
    names one), else those matching service, node, type and arg (of ``account``); how many were
    deleted.  Unknown ids delete nothing."""
    if not args.hooks:
        service, node = grammar.target(args)
        return host.delete_hooks(node, service, type=args.type or None, arg=args.arg or None, account=account)
    if any((args.service, args.node, args.uri, args.type, args.arg)):
        raise GrammarError("delete: give hook ids, or -s/-n/-u with -t/-a, not both")
    named = options.jid(args)
    known = {hook.id for hook in host.hooks(named)}  # stored ones too, without a connection
    unknown = [hook_id for hook_id in args.hooks if hook_id not in known]
    if unknown:
        raise HooknbError(f"no hook with id {', '.join(map(repr, unknown))}" + (f" of {named}" if named else "")
                          + ": nothing deleted")
    return sum(host.delete_hook(hook_id) for hook_id in dict.fromkeys(args.hooks))


def publish(client: Client, args: argparse.Namespace, payload: str | None = None) -> str:
    """Publish an item as parsed ``publish`` arguments say: ``payload`` when given (a
    ``%%hook publish`` cell's body), else the XML argument, else the file of ``-f``."""
    service, node = grammar.target(args)
    if payload is None:
        payload = args.payload if args.payload is not None else _read(args.file)
    item_id = client.publish(node, payload, item_id=args.item, service=service)
    return f"published item {item_id!r} to node {node!r} on {service or client.jid}"


def node(client: Client, args: argparse.Namespace) -> list[str]:
    """Run parsed ``node create|delete|purge|config`` arguments; the lines saying what was done
    (and, for ``config``, one ``field = value`` line per field of the configuration)."""
    service, name = grammar.target(args)
    where = f"node {name!r} on {service or client.jid}"
    config = dict(getattr(args, "node_config", None) or [])
    if args.action == "create":
        client.create_node(name, service, config or None)
        return [f"created {where}"]
    if args.action == "delete":
        client.delete_node(name, service)
        return [f"deleted {where}"]
    if args.action == "purge":
        client.purge(name, service)
        return [f"purged {where}"]
    if config:
        client.configure_node(name, config, service)
    fields = [f"{field} = {value}" for field, value in client.node_config(name, service).items()]
    return [f"configured {where}:" if config else f"{where}:", *fields]


def open_client(args: argparse.Namespace, jid: str, password: str) -> Client:
    """A connection of its own for one command (``connect`` arguments): no hook is restored
    and none runs in it."""
    from ..xmpp.client import Client  # slixmpp: imported by the commands that connect only

    client = Client(jid, password, connect_options(args, jid))
    _loop.call(client.aconnect())
    return client


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise HooknbError(f"cannot read the payload file {path!r}: {reason}") from None


def list_rows(host: Host, account: str | None = None) -> list[dict[str, Any]]:
    """One dict of :data:`LIST_FIELDS` per hook (of ``account``, or of every account)."""
    return [{k: row[k] for k in LIST_FIELDS} for row in host.list_hooks(account)]


def describe(hook: Hook) -> str:
    """One line naming a hook: id, type, lifetime, executor (unless thread), where it is attached."""
    lifetime = "persistent" if hook.persistent else "temporary"
    executor = "" if hook.executor == "thread" else f", on {hook.executor}"
    compat = f", {hook.compat} convention" if hook.compat else ""
    return f"hook {hook.id} ({hook.type}, {lifetime}{executor}{compat}) on {hook.service} node {hook.node!r}"


def notices(hook: Hook, later: str) -> list[str]:
    """One-line warnings (and notes) on a hook just created, for the front ends to show:
    ``later`` says where to look when the answer comes only with the first item."""
    lines = [f"warning: {w}" for w in hook.warnings]
    if hook.publisher_check == PUBLISHER_PENDING:
        lines.append(f"note: whether {hook.service} says who published items on node {hook.node!r} "
                     f"(what --from needs) is seen at the first item; {later}")
    return lines


def password(args: argparse.Namespace, jid: str) -> str:
    """The password to connect ``jid`` with: ``--password`` or ``--password-file``, else
    ``$HOOKNB_PASSWORD``, the keyring or a prompt (:func:`hooknb.xmpp.passwords.resolve`)."""
    return passwords.resolve(jid, args.password, args.password_file)


def keyring(args: argparse.Namespace, jid: str, lines: TextIO | None = None) -> str:
    """Run parsed ``password set|delete`` arguments; the line saying what was done.  ``set`` takes
    the password from ``--password-file`` or ``--password`` when given, else asks for it twice, else
    reads the first line of ``lines`` (the command line's stdin when it is not a terminal)."""
    if args.action == "delete":
        passwords.forget(jid)
        return f"password of {jid} removed from the keyring"
    given = getattr(args, "password", None) or getattr(args, "password_file", None)
    secret = password(args, jid) if given else passwords.ask_new(jid, lines)
    passwords.keep(jid, secret)
    return f"password of {jid} kept in the keyring ({passwords.backend()})"


def connect_options(args: argparse.Namespace, jid: str) -> ConnectOptions:
    """The connection options of parsed arguments, checked with the JID before any password is
    asked for (a bad port, a JID without a domain, plaintext to a remote host: one line)."""
    checked = options.connect_options(args)
    checked.check(jid)
    return checked
