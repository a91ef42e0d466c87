"""The commands behind the ``%hook`` magics and the ``hooknb`` command line, as data.

Both front ends parse with :mod:`hooknb.grammar` (the same argument names), call these
functions, and only render what they return: a :class:`~hooknb.hooks.Hook`, a count, listing
rows, or the line saying what an operation on a node or on the keyring did.  Rendering (print,
DataFrame, exit code) stays in the front ends.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from . import grammar, passwords
from . import loop as _loop
from .client import Client
from .connection import ConnectOptions
from .errors import HooknbError
from .hooks import PUBLISHER_PENDING, Hook
from .host import Host

#: The fields of a hook listing (``list -O json``, the command line's table): the seeds'
#: fields, then the hook's id and account, whether it is pinned and whether its code changed.
LIST_FIELDS = ("service", "node", "type", "arg", "persistent", "id", "account", "pin", "code_changed")


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
                            create_node=getattr(args, "create_node", False),
                            node_config=dict(getattr(args, "node_config", None) or []))


def delete(host: Host, args: argparse.Namespace, account: str | None) -> int:
    """Delete the hooks matched by parsed ``delete`` arguments; how many were deleted."""
    service, node = grammar.target(args)
    return host.delete_hooks(node, service, type=args.type or None, arg=args.arg or None, account=account)


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
    """One line naming a hook: id, type, lifetime, where it is attached."""
    lifetime = "persistent" if hook.persistent else "temporary"
    return f"hook {hook.id} ({hook.type}, {lifetime}) on {hook.service} node {hook.node!r}"


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
    ``$HOOKNB_PASSWORD``, the keyring or a prompt (:func:`hooknb.passwords.resolve`)."""
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
    options = grammar.connect_options(args)
    options.check(jid)
    return options
