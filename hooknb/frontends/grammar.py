"""The one argument grammar shared by the ``%hook`` magic and the ``hooknb`` command line.

It follows the seeds' ``pubsub hook`` commands (``create [-s SERVICE] -n NODE [-u XMPP_URI]
[-t TYPE] [-P] ARG``, ``delete [-s SERVICE] -n NODE [-t TYPE] [-a ARG]``, ``list [-O FORMAT]``)
plus the notebook's extras.  Parse errors raise :class:`GrammarError` with a one-line message;
front ends turn it into ``UsageError`` (magics) or exit code 2 (command line).
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, NoReturn

from ..core.depth import MAX_DEPTH
from ..errors import GrammarError, HelpRequested
from ..xmpp.events import KINDS
from ..core.hooks import DEFAULT_CONCURRENCY, EXECUTORS, PHASES
from ..core.loading import TYPES
from ..compat import COMPATS
from ..core.quarantine import MAX_ATTEMPTS
from ..xmpp.uri import parse_xmpp_uri
from .actions import add_quarantine, add_switches
from .imports import add_import
from .options import JID_DEFAULT, add_connect, add_jid, add_password


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise GrammarError(f"{self.prog}: {message}".replace("\n", "\\n"))

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise GrammarError(message.strip() if message else f"{self.prog}: exit {status}")

    def print_help(self, file: Any = None) -> None:
        raise HelpRequested(self.format_help())


def _target(p: argparse.ArgumentParser, node_required: bool = True) -> None:
    p.add_argument("-s", "--service", default=None,
                   help="PubSub service JID (default: your own PEP service, i.e. your bare JID)")
    p.add_argument("-n", "--node", default=None,
                   help="PubSub node" + (" (required unless -u names one)" if node_required else ""))
    p.add_argument("-u", "--uri", default=None, metavar="XMPP_URI",
                   help="xmpp: URI naming the service and node, e.g. xmpp:pubsub.example.org?;node=news")


def _kinds(value: str) -> str:
    wanted = [k for k in value.replace(" ", ",").split(",") if k]
    allowed = set(KINDS) | {"all"}
    bad = [k for k in wanted if k not in allowed]
    if bad or not wanted:
        raise argparse.ArgumentTypeError(
            f"unknown event kind {', '.join(bad) or repr(value)}; choose among {', '.join(KINDS)}, all")
    return ",".join(wanted)


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number > 0 or number == float("inf"):  # also nan, which compares false to anything
        raise argparse.ArgumentTypeError(f"must be a positive number: {value!r}")
    return number


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value!r}")
    return number


def _since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date and time: {value!r} "
                                         "(e.g. 2024-05-01T12:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _disabled(p: argparse.ArgumentParser) -> None:
    p.add_argument("--disabled", action="store_true",
                   help="create it disabled: it runs nothing and journals each item it would have run "
                        "(status would_run); try it with replay, then enable it")


def _replay_range(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument("--last", type=_count, default=None, metavar="N", help="the N newest items (default: all)")
    which.add_argument("--since", type=_since, default=None, metavar="ISO",
                       help="the items whose payload is dated at or after this time (ISO 8601, UTC unless "
                            "it says; an Atom entry's published or updated date); items without a date "
                            "are left out")


REPLAY_DESCRIPTION = ("Run a hook, even a disabled one, on the items its node holds, oldest first: every item, "
                      "the N newest, or those dated since a time.  Each run is journaled as a replay; nothing "
                      "else changes (no inbox entry, no node position).")


def add_replay(sub: Any) -> argparse.ArgumentParser:
    """``replay HOOK [--last N | --since ISO]``."""
    p = sub.add_parser("replay", help="try a hook on the items its node holds", description=REPLAY_DESCRIPTION)
    p.add_argument("hook", metavar="HOOK", help="the hook's id (see list)")
    _replay_range(p)
    return p


def add_max_attempts(p: argparse.ArgumentParser) -> None:
    """``--max-attempts N`` (``hooknb run``)."""
    p.add_argument("--max-attempts", type=_count, default=MAX_ATTEMPTS, metavar="N",
                   help="quarantine a persistent hook's item once N of its runs ended with their process or "
                        f"worker process dying (default {MAX_ATTEMPTS}; see retry and discard)")


def _pin(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pin", action="store_true",
                   help="refuse to run the hook's code once it differs from the code it was created "
                        "with (default: run it and journal the change); re-create it to accept a change")


def _executor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=EXECUTORS, default="thread",
                   help="where runs go: this process's threads (default), a Dask cluster (the "
                        "notebook's Dask client, else $HOOKNB_DASK_SCHEDULER, else a LocalCluster "
                        "started on first use; needs hooknb[dask]), or a worker process of this machine "
                        "(process: a run that kills its process kills the worker only)")
    p.add_argument("--concurrency", type=_count, default=DEFAULT_CONCURRENCY, metavar="N",
                   help=f"with --executor dask, runs in flight at once (default {DEFAULT_CONCURRENCY})")
    p.add_argument("--unordered", dest="ordered", action="store_false",
                   help="with --executor dask, apply results as they finish (default: in item order)")


def _compat(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compat", choices=COMPATS, default=None,
                   help="call the hook as another system calls its hooks: libervia = Libervia's "
                        "hook(host, client, item) with item a domish element (hook files written for "
                        "Libervia run unchanged)")


def _max_depth(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-depth", type=_count, default=MAX_DEPTH, metavar="N",
                   help="the loop guard: do not run on an item that N hooks' runs led to, each publishing "
                        f"the next (journaled as loop; default {MAX_DEPTH})")


def _key_value(value: str) -> tuple[str, str]:
    key, sep, text = value.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {value!r}")
    return key.strip(), text


def _node_config(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--node-config", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                   help=f"a field of the node's configuration{what}, e.g. max_items=10 (the pubsub# "
                        "prefix may be left out; repeat for more fields)")


def _create_node(p: argparse.ArgumentParser) -> None:
    p.add_argument("--create-node", action="store_true",
                   help="create the node first if it does not exist (without it, a hook on a node "
                        "that does not exist waits for it, and subscribes as soon as it exists)")
    _node_config(p, " if it is created (implies --create-node)")


def add_create(sub: Any, connected: bool = True) -> argparse.ArgumentParser:
    """``create [-s SERVICE] -n NODE [-u XMPP_URI] [-t TYPE] [-P] ARG``; a front end that is
    ``connected`` also offers ``--create-node`` and ``--node-config``."""
    p = sub.add_parser("create", help="create a hook of a given type on a node",
                       description="Create a hook: an action run when an event arrives on a node.")
    _target(p)
    if connected:
        _create_node(p)
    p.add_argument("-t", "--type", choices=TYPES, default=None,
                   help="hook type (default: inferred: an existing .py file -> python_file, "
                        "an importable module -> python)")
    p.add_argument("-P", "--persistent", action="store_true",
                   help="keep the hook across reconnections and restarts (default: temporary)")
    p.add_argument("--on", type=_kinds, default=None, metavar="KINDS",
                   help=f"event kinds that trigger the hook, comma-separated ({', '.join(KINDS)}, "
                        "all; default: publish)")
    p.add_argument("--phase", choices=PHASES, default="event",
                   help="event (default), or before/after this toolkit's own publish/retract")
    p.add_argument("--priority", type=int, default=0, help="order among before/after hooks (lower first)")
    p.add_argument("--timeout", type=_positive, default=30.0, help="seconds before a run is a timeout")
    p.add_argument("--from", dest="publishers", nargs="+", default=[], metavar="JID",
                   help="run only for items published by these JIDs")
    _pin(p)
    _max_depth(p)
    _disabled(p)
    _executor(p)
    _compat(p)
    p.add_argument("arg", metavar="ARG",
                   help="module name (python), script path (python_file) or code (python_code)")
    return p


def add_apply(sub: Any) -> argparse.ArgumentParser:
    """``apply FILE [--dry-run]``: a manifest of hooks (:mod:`hooknb.frontends.manifest`)."""
    p = sub.add_parser("apply", help="apply a manifest of persistent hooks: print the plan, then apply it",
                       description="Compare the hooks and restrict rules a manifest declares with the store "
                                   "and print the plan (create, change, delete, unchanged), then apply it "
                                   "in one transaction.  Only what the manifest made is changed or deleted.")
    p.add_argument("file", metavar="FILE", help="the manifest: a TOML file, or a pyproject.toml with a "
                                                "[tool.hooknb] table")
    p.add_argument("--dry-run", action="store_true", help="print the plan only")
    return p


def add_delete(sub: Any) -> argparse.ArgumentParser:
    """``delete [HOOK ...] | [-s SERVICE] -n NODE [-t TYPE] [-a ARG]``."""
    p = sub.add_parser("delete", help="delete hooks: by id, or one or every hook of a node",
                       description="Delete hooks: those whose ids are given, or those on the service/node "
                                   "of the given --type and --arg (with empty --type and --arg, every hook "
                                   "on the service/node).")
    p.add_argument("hooks", metavar="HOOK", nargs="*", help="ids of the hooks to delete (see list)")
    _target(p)
    p.add_argument("-t", "--type", default="", help="type of the hook to delete (empty: any)")
    p.add_argument("-a", "--arg", default="", help="argument of the hook to delete (empty: any)")
    return p


#: The output formats of ``list`` (``simple``, the command line's former name of ``table``, is
#: still accepted).
LIST_FORMATS = ("table", "json")
_FORMAT_ALIASES = {"simple": "table"}


def add_list(sub: Any) -> argparse.ArgumentParser:
    """``list [-O {table,json}]``."""
    p = sub.add_parser("list", help="list registered hooks",
                       description="List hooks: service, node, type, arg, persistent, id, counters.")
    p.add_argument("-O", "--output", choices=LIST_FORMATS, default=LIST_FORMATS[0],
                   type=lambda value: _FORMAT_ALIASES.get(value, value),
                   help="table (default) or json (the seeds' fields first)")
    return p


def add_journal(sub: Any, name: str, what: str) -> argparse.ArgumentParser:
    """``events`` / ``runs`` [-n NODE] [--last N]."""
    p = sub.add_parser(name, help=f"the {what} journal as a DataFrame")
    p.add_argument("-n", "--node", default=None, help="only this node")
    p.add_argument("--last", type=_count, default=None, metavar="N", help="only the N newest")
    if name == "events":
        p.add_argument("-x", "--expand", action="store_true",
                       help="typed columns for known payloads (a microblog post's title, author, "
                            "published...)")
    return p


#: Commands that show what they hold of every account unless --jid names one.
VIEWS = ("list", "events", "runs", "status", "feed", "manager")


def leaves(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of ``parser``'s tree that have no sub-commands (``[parser]`` if it has none)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
    return [leaf for action in subs for child in dict.fromkeys(action.choices.values())
            for leaf in leaves(child)] if subs else [parser]


def add_subscribe(sub: Any) -> None:
    """``subscribe`` / ``unsubscribe`` / ``publish`` for quick experiments."""
    for name, prep in (("subscribe", "to"), ("unsubscribe", "from")):
        p = sub.add_parser(name, help=f"{name} {prep} a node")
        _target(p)
    add_publish(sub)


#: ``node`` actions and what each does.
NODE_ACTIONS = {"create": "create a node",
                "delete": "delete a node and its items (subscribers get a delete event)",
                "purge": "remove every item of a node (subscribers get a purge event)",
                "config": "show a node's configuration, or change it with --node-config"}


def add_node(sub: Any, hooks: Callable[[Any], None] | None = None) -> dict[str, argparse.ArgumentParser]:
    """``node create|delete|purge|config [-s SERVICE] -n NODE [-u XMPP_URI]``; returns the
    parser of each action, by name.  ``hooks``, given the actions, adds more (the command line's
    ``node hook``)."""
    p = sub.add_parser("node", help="create, delete, purge or configure a node",
                       description="Operations on PubSub nodes (those of a PubSub service need its "
                                   "permission; those of your own PEP service are yours).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser, required=True)
    parsers = {}
    for name, what in NODE_ACTIONS.items():
        parsers[name] = action = actions.add_parser(name, help=what, description=f"{what[:1].upper()}{what[1:]}.")
        _target(action)
        if name in ("create", "config"):
            _node_config(action, "" if name == "create" else " to set")
    if hooks is not None:
        hooks(actions)
    return parsers


def add_publish(sub: Any) -> argparse.ArgumentParser:
    """``publish [-s SERVICE] -n NODE [-u XMPP_URI] [-i ID] (XML | -f FILE)``."""
    p = sub.add_parser("publish", help="publish an item (an XML payload) to a node",
                       description="Publish an item.  Long payloads: -f FILE, or a %%hook publish cell "
                                   "whose body is the payload (a magic's line has {expr} expanded).")
    _publish_options(p)
    payload = p.add_mutually_exclusive_group(required=True)
    payload.add_argument("payload", metavar="XML", nargs="?", help="the payload, as an XML string")
    payload.add_argument("-f", "--file", default=None, help="read the payload from this file")
    return p


def _publish_options(p: argparse.ArgumentParser) -> None:
    _target(p)
    p.add_argument("-i", "--id", "--item", dest="item", default=None,
                   help="item id (default: chosen by the server)")


def magic_parser() -> Parser:
    """The ``%hook`` line magic's parser."""
    parser = Parser(prog="%hook", description="XMPP PubSub hooks (hooknb).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    add_connect(sub)
    add_create(sub)
    add_delete(sub)
    add_apply(sub)
    add_list(sub)
    add_journal(sub, "events", "incoming events")
    add_journal(sub, "runs", "hook runs")
    add_subscribe(sub)
    add_node(sub)
    add_replay(sub)
    add_switches(sub)
    add_import(sub, Parser)
    add_quarantine(sub)
    p = sub.add_parser("output", help="what a hook's recent runs printed",
                       description="What a hook's recent runs printed (kept with each run in the runs "
                                   "journal, the first 8 KiB of each).")
    p.add_argument("hook", metavar="HOOK", help="the hook's id (see list)")
    p.add_argument("--last", type=_count, default=5, metavar="N",
                   help="the N newest runs that printed something (default 5)")
    sub.add_parser("status", help="connection state of each account")
    p = sub.add_parser("feed", help="a live feed widget of incoming events")
    p.add_argument("--rows", type=_count, default=20, help="how many latest events to show")
    sub.add_parser("manager", help="the hook manager widget")
    add_password(sub)
    for leaf in leaves(parser):
        command = leaf.prog.split()[1]
        if command != "connect":
            add_jid(leaf, "every account" if command in VIEWS else JID_DEFAULT)
    return parser


def cell_parser() -> Parser:
    """The ``%%hook`` cell magic's parser."""
    p = Parser(prog="%%hook", description="The cell body becomes a python_code hook "
                                          "(host, client and item are bound).  "
                                          "%%hook publish publishes the body instead; %%hook replay "
                                          "runs it on the items the node holds.")
    _target(p)
    _create_node(p)
    p.add_argument("-P", "--persistent", action="store_true", help="keep across restarts")
    p.add_argument("--on", type=_kinds, default=None, metavar="KINDS",
                   help="event kinds that trigger it (default: publish)")
    p.add_argument("--timeout", type=_positive, default=30.0, help="seconds before a run is a timeout")
    p.add_argument("--from", dest="publishers", nargs="+", default=[], metavar="JID",
                   help="run only for items published by these JIDs")
    _pin(p)
    _max_depth(p)
    _disabled(p)
    _executor(p)
    _compat(p)
    add_jid(p, JID_DEFAULT)
    return p


def replay_cell_parser() -> Parser:
    """The ``%%hook replay`` cell magic's parser: the cell body, as a hook, runs on stored items."""
    p = Parser(prog="%%hook replay", description=f"{REPLAY_DESCRIPTION}  Here the hook is the cell "
                                                 "body, as %%hook would make it, but no hook is created.")
    _target(p)
    _replay_range(p)
    p.add_argument("--timeout", type=_positive, default=30.0, help="seconds before a run is a timeout")
    p.add_argument("--from", dest="publishers", nargs="+", default=[], metavar="JID",
                   help="run only for items published by these JIDs")
    add_jid(p, JID_DEFAULT)
    return p


def publish_cell_parser() -> Parser:
    """The ``%%hook publish`` cell magic's parser: the cell body is the payload."""
    p = Parser(prog="%%hook publish", description="Publish the cell body (an XML payload, taken as "
                                                  "it is: no {expr} expansion) as an item of a node.")
    _publish_options(p)
    add_jid(p, JID_DEFAULT)
    return p


def split(line: str) -> list[str]:
    """Split a magic line like a shell would; a clear error on unbalanced quotes."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        raise GrammarError(f"cannot parse the arguments: {exc}") from None


def parse(parser: argparse.ArgumentParser, argv: list[str] | str) -> argparse.Namespace:
    """Parse ``argv`` (a list, or a line to split) with ``parser``."""
    return parser.parse_args(split(argv) if isinstance(argv, str) else argv)


def target(args: argparse.Namespace) -> tuple[str | None, str]:
    """The (service, node) named by ``-s``/``-n``/``-u``; a clear error if there is no node."""
    service, node = getattr(args, "service", None), getattr(args, "node", None)
    if getattr(args, "uri", None):
        address = parse_xmpp_uri(args.uri)
        if service and service != address.service:
            raise GrammarError(f"-s {service} and -u {args.uri} name different services")
        if node and address.node and node != address.node:
            raise GrammarError(f"-n {node} and -u {args.uri} name different nodes")
        service, node = address.service, node or address.node
    if not node:
        raise GrammarError("a node is required: -n NODE (or -u 'xmpp:SERVICE?;node=NODE')")
    return service, node
