"""The ``hooknb`` command line: the seeds' ``pubsub hook create|delete|list``, ``pubsub node``,
``pubsub publish`` and ``run``.

A thin front end over :class:`hooknb.host.Host` and the shared grammar (:mod:`hooknb.frontends.grammar`):
parse, call the API, print.  Everything goes through the persistent store in ``$HOOKNB_HOME``,
the one a notebook uses.

* ``pubsub hook create``, ``delete`` and ``list`` never connect.  ``create`` validates the hook
  (type, argument loads, restrict policy) and stores it; whatever is connected to the account
  (``hooknb run``, a notebook) picks it up within a second and subscribes to its node, or waits
  for the node if it does not exist yet.  A temporary hook would end with the command that made
  it, so ``create`` requires ``-P``.
* ``pubsub hook enable`` and ``disable`` never connect either: a disabled hook journals (and
  ``hooknb run`` logs) each item it would have run, with status ``would_run``.
* ``pubsub node create|delete|purge|config``, ``pubsub publish`` and ``pubsub hook replay``
  connect the account for the one operation, in a connection of their own (no other hook runs in
  it); ``replay`` prints each run with what it printed.
* ``apply FILE`` never connects: it prints the plan of a manifest of hooks and applies it
  (:mod:`hooknb.frontends.manifest`); an invalid manifest is one line per problem, exit code 2.
* ``run`` connects one account and runs its persistent hooks until SIGINT/SIGTERM
  (:mod:`hooknb.frontends.runner`), applying ``--manifest FILE`` at start and on SIGHUP.

A store that another user owns or that group or others may write is refused as a source of
code (:mod:`hooknb.storage.trust`): ``run`` and ``create`` exit 1 with one line saying why and how to
fix it, before anything runs; ``list`` and ``delete``, which read no code, still work (``list``
says so on stderr), so an injected hook can be seen and removed.

``pubsub node hook ...`` is ``pubsub hook ...`` under the path the seeds' manual writes.

Exit codes (:data:`hooknb.errors.EXIT_CODES`, one line on stderr for each failure): 0 success,
1 a connection or authentication failure (and other failures: an untrusted store, the keyring),
2 a usage error, 3 a store that cannot be used, 4 a hook that cannot be created.  slixmpp's own
log lines are shown only with ``--verbose``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from typing import Any

from ..core import capture
from . import commands
from ..xmpp.connection import split_jid
from ..errors import (EXIT_CREATE, EXIT_FAILURE, EXIT_OK, GrammarError, HelpRequested, HookCreateError,
                      ManifestError, TrustError, exit_code)
from . import imports
from .actions import add_quarantine, add_switches
from .grammar import (Parser, add_apply, add_create, add_delete, add_import, add_list, add_max_attempts, add_node,
                      add_publish, add_replay, leaves)
from .options import (CLI_JID_DEFAULT, add_account_options, add_connection_options, add_jid, add_password,
                      add_password_options, jid)
from ..host import Host, get_host
from . import manifest
from .runner import LOG_FORMATS, RunLog, Runner

#: The columns of ``list`` (table format): the listing's fields, the argument last (it may be long).
SIMPLE_COLUMNS = ("id", "account", "service", "node", "type", "persistent", "pin", "code_changed", "status",
                  "items_waiting", "quarantined", "executor", "arg")
PASSWORD_WARNING = ("hooknb: warning: every user of this machine can read --password (ps, /proc) and your "
                    "shell history keeps it: prefer $HOOKNB_PASSWORD, --password-file or the keyring "
                    "(hooknb password set JID)")


def _subparsers(p: argparse.ArgumentParser, dest: str) -> Any:
    return p.add_subparsers(dest=dest, metavar=dest.upper(), parser_class=Parser, required=True)


EPILOG = ("Exit codes: 0 success, 1 a connection or authentication failure (and other failures: an "
          "untrusted store, the keyring), 2 a usage error, 3 a store that cannot be used, 4 a hook that "
          "cannot be created.  The store is $HOOKNB_HOME/hooknb.sqlite3.")


def build_parser() -> Parser:
    """The ``hooknb`` parser (leaf parsers carry their handler as ``func``)."""
    parser = Parser(prog="hooknb", description="XMPP PubSub hooks from the command line (hooknb).", epilog=EPILOG)
    commands = _subparsers(parser, "command")
    pubsub = commands.add_parser("pubsub", help="PubSub commands")
    groups = _subparsers(pubsub, "group")
    _hook_actions(groups.add_parser("hook", help="PubSub hooks management"))
    for operation in [*add_node(groups, hooks=_node_hook).values(), add_publish(groups)]:
        operation.set_defaults(func=_operate)
    for keyring in add_password(commands).values():
        keyring.set_defaults(func=_password)
    add_import(commands, Parser).set_defaults(func=_import)
    apply = add_apply(commands)
    apply.epilog = ("Applied without connecting: `hooknb run` (or a notebook connected to the account) "
                    "picks the changes up within a second, as hooks created with `hooknb pubsub hook create`.")
    apply.set_defaults(func=_apply)

    run = commands.add_parser(
        "run", help="run an account's persistent hooks until SIGINT/SIGTERM",
        description="Connect, restore the account's persistent hooks, run them and log each run; "
                    "hooks created or deleted in the store meanwhile are picked up within a second.")
    run.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                     help="one text line (default) or one JSON object per record, on stdout")
    run.add_argument("--grace", type=float, default=30.0, metavar="SECONDS",
                     help="on SIGINT/SIGTERM, how long to wait for runs in progress (default 30)")
    run.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                     help="the Dask scheduler that --executor dask hooks send their runs to, e.g. "
                          "tcp://10.0.0.5:8786 (default: $HOOKNB_DASK_SCHEDULER, else a LocalCluster "
                          "started on first use)")
    run.add_argument("--manifest", default=None, metavar="FILE",
                     help="apply this manifest of hooks at start, and again on SIGHUP (`hooknb apply FILE`)")
    add_max_attempts(run)
    run.add_argument("-v", "--verbose", action="count", default=0,
                     help="show the XMPP library's log on stderr (-vv: with every stanza)")
    run.set_defaults(func=_run)
    for leaf in leaves(parser):  # each command takes the account options it uses, and only those
        func = leaf.get_default("func")
        jid_default = "every account" if func is _list else CLI_JID_DEFAULT
        if func in (_operate, _run, _replay):
            add_account_options(leaf.add_argument_group("account and connection"), jid_default)
            continue
        group = leaf.add_argument_group("account", "this command does not connect: the connection options "
                                                   "are ignored (and not shown)")
        add_jid(group, jid_default)
        add_password_options(group, hidden=leaf.prog != "hooknb password set")  # set: the password to keep
        add_connection_options(group, hidden=True)
    return parser


def _hook_actions(hook: argparse.ArgumentParser) -> None:
    """``create``, ``delete``, ``list``, ``replay``, ``enable``, ``disable``, ``retry`` and ``discard`` under ``hook``."""
    actions = _subparsers(hook, "action")
    create = add_create(actions, connected=False)
    create.epilog = ("The hook is validated and stored without connecting; `hooknb run` (or a "
                     "notebook connected to the account) picks it up within a second, and waits for "
                     "its node if the node does not exist yet (`hooknb pubsub node create` makes "
                     "one).  A temporary hook would end with this command, so -P/--persistent is "
                     "required.")
    create.set_defaults(func=_create)
    add_delete(actions).set_defaults(func=_delete)
    add_list(actions).set_defaults(func=_list)
    replay = add_replay(actions)
    replay.epilog = ("Connects the account for the replay, in a connection of its own (no other hook "
                     "runs in it); each run is printed with what it printed.")
    replay.set_defaults(func=_replay)
    for switch in add_switches(actions):
        switch.set_defaults(func=_enable)
    for action in add_quarantine(actions):
        action.set_defaults(func=_quarantine)


#: What ``pubsub node hook`` is: the seeds' manual writes ``pubsub node hook create|delete``.
NODE_HOOK = "the same as pubsub hook (the path the seeds' manual writes)"


def _node_hook(actions: Any) -> None:
    """``pubsub node hook ...``: ``pubsub hook ...`` again, where the seeds' manual puts it."""
    hook = actions.add_parser("hook", help=NODE_HOOK, description=f"PubSub hooks management: {NODE_HOOK}.")
    hook.alias_of = "hooknb pubsub hook"  # the reference (docs/_ext) shows it once, there
    _hook_actions(hook)


# ------------------------------------------------------------------------------------ commands
def _create(host: Host, args: argparse.Namespace) -> int:
    if not args.persistent:
        raise GrammarError("hooknb pubsub hook create: a temporary hook would end with this command; "
                           "add -P/--persistent (`hooknb run` then runs it)")
    hook = commands.create(host, args, jid(args))
    disabled = " (disabled: it journals what it would run; `hooknb pubsub hook enable` runs it)"
    print(f"hook {hook.id} created: {hook.type} on {hook.service} node {hook.node}"
          + (disabled if hook.disabled else ""))
    for line in commands.notices(hook, "`hooknb run` logs it"):
        print(line, file=sys.stderr)
    return EXIT_OK


def _delete(host: Host, args: argparse.Namespace) -> int:
    count = commands.delete(host, args, jid(args))
    print(f"{count} hook(s) deleted")
    return EXIT_OK


def _apply(host: Host, args: argparse.Namespace) -> int:
    print(*manifest.run(host, args.file, jid(args), args.dry_run).lines(), sep="\n")
    return EXIT_OK


def _printable(value: Any) -> str:
    text = str(value)
    return text if text.isprintable() else json.dumps(text)


def _list(host: Host, args: argparse.Namespace) -> int:
    rows = commands.list_rows(host, jid(args))
    try:
        host.check_store()
    except TrustError as exc:  # listing runs nothing: say so, and list what is there
        print(f"hooknb: warning: {exc}", file=sys.stderr)
    if args.output == "json":
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no hooks")
    else:
        from tabulate import tabulate  # 10 ms of start-up (wcwidth): not for an empty list

        print(tabulate([[_printable(r[c]) for c in SIMPLE_COLUMNS] for r in rows], SIMPLE_COLUMNS,
                       tablefmt="plain", disable_numparse=True))
    return EXIT_OK


def _enable(host: Host, args: argparse.Namespace) -> int:
    print(commands.enable(host, args.hook, jid(args), args.action == "enable"))
    return EXIT_OK


def _quarantine(host: Host, args: argparse.Namespace) -> int:
    print(commands.quarantine(host, args, jid(args), args.action))
    return EXIT_OK


def _replay(host: Host, args: argparse.Namespace) -> int:
    account = _account(host, args)
    commands.connect_options(args, account)  # checked before asking for a password
    host.sync_store(split_jid(account).bare)  # the stored hooks, their code loaded (a trusted store only)
    host.hook(args.hook)  # before asking for a password
    client = commands.open_client(args, account, commands.password(args, account))
    echo, capture.echo = capture.echo, False  # each run's output is printed with it, below
    try:
        runs = commands.replay(host, args, account, client=client)
    finally:
        capture.echo = echo
        client.disconnect()
    for run in runs:
        print(f"{run.item_id}\t{run.status}\t{run.error or run.result or ''}")
        for line in (run.output or "").splitlines():
            print(f"  | {line}")
    print(runs.summary())
    return EXIT_OK


def _import(host: Host, args: argparse.Namespace) -> int:
    """``import libervia``: the plan and its counts on stdout; exit 4 if a hook cannot be imported."""
    plan = imports.libervia_hooks(host, args.db, args.profile, jid(args), args.dry_run)
    for line in plan.lines:
        print(line)
    print(plan.summary(args.dry_run))
    return EXIT_CREATE if plan.cannot else EXIT_OK


def _account(host: Host, args: argparse.Namespace) -> str:
    """The account a command acts on: ``--jid`` (or its JID argument), else the default one."""
    return jid(args) or host.account()


def _operate(host: Host, args: argparse.Namespace) -> int:
    """``pubsub node ...`` and ``pubsub publish``: connect for this one operation."""
    account = _account(host, args)
    commands.connect_options(args, account)  # checked before asking for a password
    client = commands.open_client(args, account, commands.password(args, account))
    try:
        print(*(commands.node(client, args) if args.group == "node" else [commands.publish(client, args)]),
              sep="\n")
    finally:
        client.disconnect()
    return EXIT_OK


def _password(host: Host, args: argparse.Namespace) -> int:
    print(commands.keyring(args, _account(host, args), None if sys.stdin.isatty() else sys.stdin))
    return EXIT_OK


def _run(host: Host, args: argparse.Namespace) -> int:
    account = _account(host, args)
    options = commands.connect_options(args, account)  # checked before asking for a password
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose:
        logging.getLogger("slixmpp").setLevel(logging.INFO if args.verbose == 1 else logging.DEBUG)
    if args.dask_scheduler:
        from ..executors.dask_lane import ENV

        os.environ[ENV] = args.dask_scheduler  # read by hooknb.executors.dask_lane when a dask hook has work
    host.max_attempts = args.max_attempts
    runner = Runner(host, account, options=options, log=RunLog(args.log_format), grace=args.grace,
                    manifest=args.manifest, exit_code=lambda exc: exit_code(exc) or EXIT_FAILURE)
    return runner.run(commands.password(args, account))


# ------------------------------------------------------------------------------------ entry point
def _fail(code: int, message: str) -> int:
    line = " ".join(message.split())
    print(line if line.startswith("hooknb") else f"hooknb: {line}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (:func:`hooknb.errors.exit_code`)."""
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "password", None):
            print(PASSWORD_WARNING, file=sys.stderr)
        return args.func(get_host(), args)
    except HelpRequested as help_:
        print(help_.text, end="")
        return EXIT_OK
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - each to its exit code
        code = exit_code(exc)
        if code is None:  # a bug: keep its traceback
            traceback.print_exc()
            return EXIT_FAILURE
        if isinstance(exc, ManifestError):  # one line per problem
            for problem in exc.problems:
                _fail(code, problem)
            return code
        return _fail(code, "interrupted" if isinstance(exc, KeyboardInterrupt) else _message(exc))


def _message(exc: BaseException) -> str:
    return f"cannot create the hook: {exc}" if isinstance(exc, HookCreateError) else str(exc)
