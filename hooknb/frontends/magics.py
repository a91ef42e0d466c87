"""The ``%hook`` line magic and the ``%%hook`` cell magic: thin front ends over :class:`~hooknb.Host`.

``%load_ext hooknb`` registers them.  Arguments are parsed by :mod:`hooknb.frontends.grammar` (the grammar
the ``hooknb`` command line uses too); every error a user can fix becomes a one-line
``UsageError``.  Settings are traitlets of :class:`HookMagics`, e.g.
``%config HookMagics.events_max = 10000``.  As in every IPython magic, ``{expr}`` and ``$name``
in the line are replaced by Python values; write code with braces in a ``%%hook`` cell, and
publish long payloads with ``%%hook publish`` (the cell body, taken as it is) or ``-f FILE``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Float, Int, TraitError, Unicode, observe, validate

from ..core import capture
from . import commands, completion, grammar, manifest, options
from .commands import describe
from ..xmpp.connection import DEFAULT_MAX_BYTES
from ..errors import HelpRequested, HooknbError, ManifestError
from ..core.hooks import WAITING, Hook
from ..host import Host, get_host
from ..storage.journal import FIELD_MAX, MAX_BYTES
from ..core.loading import CodeLoader
from ..core.quarantine import MAX_ATTEMPTS

#: Redraws per second the widgets never exceed, whatever the setting.
MAX_REFRESH_RATE = 10.0
#: Where a ``--from`` hook shows, once items come, whether the service names publishers.
LATER = "%hook list and %hook status will show it"
PASSWORD_WARNING = ("warning: a password written on a %hook line stays in the notebook and in IPython's history: "
                    "prefer $HOOKNB_PASSWORD, the keyring (%hook password set JID) or no password "
                    "(you are asked for it)")


@contextmanager
def usage_errors() -> Iterator[None]:
    """Turn errors the user can fix into IPython's one-line ``UsageError`` (no traceback)."""
    try:
        yield
    except ManifestError as exc:  # one line per problem
        raise UsageError("\n".join(" ".join(p.split()) for p in exc.problems)) from None
    except HooknbError as exc:
        raise UsageError(" ".join(str(exc).splitlines())) from None


def waiting_hint(hook: Hook) -> str | None:
    """What to do about a hook whose node does not exist yet (None for any other hook)."""
    if hook.status != WAITING:
        return None
    where = f"-n {shlex.quote(hook.node)}" + ("" if hook.service == hook.account else f" -s {hook.service}")
    return (f"node {hook.node!r} does not exist on {hook.service} yet: the hook waits for it, subscribes "
            f"as soon as it exists and runs on every item published from then on (to create it now: "
            f"add --create-node, or run %hook node create {where})")


def _parse(parser: argparse.ArgumentParser, line: str) -> argparse.Namespace | None:
    """A magic's arguments; None, once the help is printed, when ``--help`` was given."""
    try:
        return grammar.parse(parser, line)
    except HelpRequested as help_:
        print(help_.text)
        return None


class JsonRows(list):  # type: ignore[type-arg]
    """What ``%hook list -O json`` returns: the listing's rows (dicts), a list shown as the JSON
    text the command line prints."""

    def __repr__(self) -> str:
        return json.dumps(self, indent=1)

    def _repr_pretty_(self, printer: Any, _cycle: bool) -> None:
        printer.text(repr(self))


@magics_class
class HookMagics(Magics):
    """``%hook COMMAND ...`` and ``%%hook``; which :class:`~hooknb.Host` they act on is ``host``
    (the process-wide one unless set)."""

    events_max = Int(100_000, help="How many incoming events the journal keeps.").tag(config=True)
    runs_max = Int(100_000, help="How many hook runs the journal keeps.").tag(config=True)
    events_max_bytes = Int(MAX_BYTES, help="How many bytes of events the journal keeps (a payload "
                                           f"longer than {FIELD_MAX:,} characters is kept cut, "
                                           "with its SHA-256).").tag(config=True)
    runs_max_bytes = Int(MAX_BYTES, help="How many bytes of hook runs the journal keeps.").tag(config=True)
    default_account = Unicode("", help="The account the magics act on without --jid (empty: "
                                       "$HOOKNB_JID, else the last connected, else the only one "
                                       "with hooks in the store).").tag(config=True)
    refresh_rate = Float(MAX_REFRESH_RATE, help="Widget redraws per second, at most "
                                                f"{MAX_REFRESH_RATE:g}.").tag(config=True)
    max_bytes = Int(DEFAULT_MAX_BYTES, help="The largest stanza %hook connect lets an account send to a "
                                            "server that does not advertise its limit (XEP-0478); "
                                            "--max-bytes overrides it.").tag(config=True)
    output_limit = Int(capture.shown_max, help="Bytes of each hook run's output shown in the notebook; "
                                               "the rest is cut, with a line saying how much (the "
                                               f"journal keeps the first {capture.OUTPUT_MAX:,}: "
                                               "%hook output HOOK).").tag(config=True)

    max_attempts = Int(MAX_ATTEMPTS, help="Runs of a persistent hook's item that ended with their process (or "
                                          "worker process) dying, after which the item is quarantined "
                                          "(%hook retry / discard).").tag(config=True)

    def __init__(self, shell: Any = None, host: Host | None = None, **kwargs: Any) -> None:
        self._host = host  # set first: loading the config may already fire the observers
        self._parser = grammar.magic_parser()
        self._cell_parser = grammar.cell_parser()
        self._publish_parser = grammar.publish_cell_parser()
        self._replay_parser = grammar.replay_cell_parser()
        super().__init__(shell, **kwargs)

    @property
    def host(self) -> Host:
        """The Host the magics act on."""
        return self._host if self._host is not None else get_host()

    @host.setter
    def host(self, host: Host | None) -> None:
        self._host = host
        self._resize_journals()

    @validate("events_max", "runs_max", "max_bytes", "events_max_bytes", "runs_max_bytes", "max_attempts")
    def _check_size(self, proposal: Any) -> int:
        if proposal.value < 1:
            raise TraitError(f"{proposal.trait.name} must be at least 1, not {proposal.value}")
        return proposal.value

    @validate("refresh_rate")
    def _check_rate(self, proposal: Any) -> float:
        if proposal.value <= 0:
            raise TraitError(f"refresh_rate must be positive, not {proposal.value}")
        return min(proposal.value, MAX_REFRESH_RATE)

    @validate("output_limit")
    def _check_limit(self, proposal: Any) -> int:
        if proposal.value < 0:
            raise TraitError(f"output_limit must be at least 0, not {proposal.value}")
        return proposal.value

    @observe("output_limit")
    def _limit_changed(self, change: Any) -> None:
        capture.shown_max = change.new

    @observe("events_max", "runs_max", "events_max_bytes", "runs_max_bytes", "max_attempts")
    def _sizes_changed(self, _change: Any) -> None:
        self._resize_journals()

    def _resize_journals(self) -> None:
        host = self.host
        host.max_attempts = self.max_attempts
        for journal, size, weight in ((host.events, self.events_max, self.events_max_bytes),
                                      (host.runs, self.runs_max, self.runs_max_bytes)):
            if (journal.maxlen, journal.max_bytes) != (size, weight):
                journal.resize(size, weight)

    def _named(self, args: argparse.Namespace) -> str | None:
        """The account a magic names: ``--jid``, else ``HookMagics.default_account`` (None: neither)."""
        return options.jid(args) or self.default_account or None

    def _account(self, args: argparse.Namespace) -> str:
        """The account a magic acts on: the one it names, else the default (:mod:`hooknb.accounts`)."""
        return self.host.account(self._named(args))

    def _shown(self, args: argparse.Namespace) -> str | None:
        """The account a view (list, events, runs...) is limited to: ``--jid``, or None for all."""
        return self.host.account(args.jid) if args.jid else None

    def _say(self, account: str, *lines: str) -> None:
        """Print what a magic did, naming the account it acted on when several are connected."""
        prefix = f"{account}: " if len(self.host.clients) > 1 else ""
        print(*(f"{prefix}{line}" if i == 0 else line for i, line in enumerate(lines)), sep="\n")

    # ------------------------------------------------------------------ %hook
    @line_magic("hook")
    def hook(self, line: str) -> Any:
        """Dispatch ``%hook COMMAND ...`` (the full help is appended below)."""
        with usage_errors():
            args = _parse(self._parser, line)
            return None if args is None else getattr(self, f"_{args.command}")(args)

    def _connect(self, args: argparse.Namespace) -> None:
        if args.max_bytes is None:
            args.max_bytes = self.max_bytes
        jid = options.jid(args) or self._account(args)
        settings = commands.connect_options(args, jid)  # checked before any prompt
        if args.password and self._typed(args.password):
            print(PASSWORD_WARNING, file=sys.stderr)
        client = self.host.connect(jid, commands.password(args, jid), **asdict(settings))
        acting = self.host.account(self.default_account or None)
        if acting != client.jid:  # HookMagics.default_account or $HOOKNB_JID names another
            print(f"connected as {client.jid} (the magics act on {acting} unless --jid names another)")
        else:
            print(f"connected as {client.jid}" + (", the default account" if len(self.host.clients) > 1 else ""))

    def _typed(self, text: str) -> bool:
        """Whether ``text`` is written in the cell being run, so in the notebook and its history (a
        value that ``{expr}`` or ``$name`` put in the line is not)."""
        history = getattr(self.shell, "history_manager", None)
        cells = history.input_hist_raw if history is not None else []
        return bool(cells) and text in cells[-1]

    def _password(self, args: argparse.Namespace) -> None:
        print(commands.keyring(args, self._account(args)))

    def _create(self, args: argparse.Namespace) -> None:
        account = self._account(args)
        hook = commands.create(self.host, args, account)
        disabled = " disabled: it journals what it would run" if hook.disabled else ""
        lines = [f"{describe(hook)} created{disabled}", *commands.notices(hook, LATER)]
        if args.type is None:
            lines.insert(0, f"type inferred from the argument: {hook.type} (give -t to choose another)")
        self._say(account, *lines)
        _print_hint(hook)

    def _import(self, args: argparse.Namespace) -> None:
        from . import imports

        plan = imports.libervia_hooks(self.host, args.db, args.profile, options.jid(args), args.dry_run)
        print(*plan.lines, plan.summary(args.dry_run), sep="\n")

    def _delete(self, args: argparse.Namespace) -> None:
        if args.hooks:  # ids name their hooks, of any account
            print(f"{commands.delete(self.host, args, None)} hook(s) deleted")
            return
        account = self._account(args)
        self._say(account, f"{commands.delete(self.host, args, account)} hook(s) deleted")

    def _apply(self, args: argparse.Namespace) -> None:
        print(*manifest.run(self.host, args.file, self._named(args), args.dry_run).lines(), sep="\n")

    def _list(self, args: argparse.Namespace) -> Any:
        if args.output == "json":
            return JsonRows(commands.list_rows(self.host, self._shown(args)))
        return self.host.hooks_frame(self._shown(args))

    def _events(self, args: argparse.Namespace) -> Any:
        return self.host.events_frame(node=args.node, last=args.last, expand=args.expand,
                                      account=self._shown(args))

    def _runs(self, args: argparse.Namespace) -> Any:
        return self.host.runs_frame(node=args.node, last=args.last, account=self._shown(args))

    def _subscribe(self, args: argparse.Namespace) -> None:
        service, node = grammar.target(args)
        client = self.host.client(self._account(args))
        getattr(client, args.command)(node, service)
        where = "to" if args.command == "subscribe" else "from"
        self._say(client.jid, f"{args.command}d {where} node {node!r} on {service or client.jid}")

    _unsubscribe = _subscribe

    def _publish(self, args: argparse.Namespace, payload: str | None = None) -> None:
        client = self.host.client(self._account(args))
        self._say(client.jid, commands.publish(client, args, payload))

    def _node(self, args: argparse.Namespace) -> None:
        client = self.host.client(self._account(args))
        self._say(client.jid, *commands.node(client, args))

    def _replay(self, args: argparse.Namespace, code: str | None = None) -> Any:
        from .. import frames
        from ..storage.journal import Run

        runs = commands.replay(self.host, args, self._named(args), code=code, cell=capture.cell())
        print(runs.summary())
        return frames.records(list(runs), Run, {"ts": "start"})

    def _enable(self, args: argparse.Namespace) -> None:
        print(commands.enable(self.host, args.hook, self._shown(args), args.command == "enable"))

    _disable = _enable

    def _retry(self, args: argparse.Namespace) -> None:
        print(commands.quarantine(self.host, args, self._shown(args), args.command))

    _discard = _retry

    def _output(self, args: argparse.Namespace) -> None:
        print("\n".join(commands.output(self.host, args.hook, args.last)))

    def _status(self, args: argparse.Namespace) -> Any:
        return self.host.status(self._shown(args))

    def _feed(self, args: argparse.Namespace) -> Any:
        from .widgets import EventFeed

        return EventFeed(self.host, rows=args.rows, rate=self.refresh_rate, account=self._shown(args))

    def _manager(self, args: argparse.Namespace) -> Any:
        from .widgets import HookManager

        return HookManager(self.host, rate=self.refresh_rate, account=self._shown(args))

    # ------------------------------------------------------------------ %%hook
    @cell_magic("hook")
    def hook_cell(self, line: str, cell: str) -> Any:
        """The cell body becomes a python_code hook (``host``, ``client`` and ``item`` bound);
        running the cell again replaces it.  ``%%hook publish -n NODE`` publishes the cell
        body instead; ``%%hook replay -n NODE`` runs it on the items the node holds, creating
        no hook (the full help of the three is appended below)."""
        with usage_errors():
            words = grammar.split(line)
            if words[:1] == ["publish"]:
                args = _parse(self._publish_parser, words[1:])
                if args is not None:
                    self._publish(args, cell.strip())
                return None
            if words[:1] == ["replay"]:
                args = _parse(self._replay_parser, words[1:])
                if args is not None:
                    CodeLoader(cell, "<%%hook replay cell>", first_line=2)
                    return self._replay(args, code=cell)
                return None
            args = _parse(self._cell_parser, words)
            if args is None:
                return None
            service, node = grammar.target(args)
            # Compile now, numbering lines as the notebook does (line 1 is the %%hook line).
            CodeLoader(cell, "<%%hook cell>", first_line=2)
            account = self._account(args)
            hook = commands.create(self.host, args, account, type_="python_code", arg=cell,
                                   name=f"%%hook:{service or account}:{node}")
            kinds = ", ".join(sorted(hook.kinds))
            runs = ("journals each item it would run on (disabled: %hook enable to run it)" if hook.disabled
                    else f"runs on each {kinds} event")
            self._say(account, f"{describe(hook)}: {runs} (run this cell again to replace it)",
                      *commands.notices(hook, LATER))
            _print_hint(hook)
            return None

    # ------------------------------------------------------------------ completion
    def complete(self, line: str) -> list[str]:
        """Tab completion of ``%hook`` lines (:mod:`hooknb.frontends.completion`): subcommands,
        options and their choices, hook ids, accounts, known nodes and services."""
        return completion.complete(self._parser, self.host, line)


def _print_hint(hook: Hook) -> None:
    hint = waiting_hint(hook)
    if hint:
        print(hint)


def _with_help(method: Any, *parsers: argparse.ArgumentParser) -> None:
    method.__doc__ = "\n\n".join([method.__doc__, *(p.format_help() for p in parsers)])


_with_help(HookMagics.hook, grammar.magic_parser())
_with_help(HookMagics.hook_cell, grammar.cell_parser(), grammar.publish_cell_parser(),
           grammar.replay_cell_parser())


def help_without_body(lines: list[str]) -> list[str]:
    """An IPython input transformer: a ``%%hook ... --help`` cell with an empty body gets an
    empty line for body, so that IPython calls the magic, which prints the help (IPython
    refuses a cell magic whose body is empty)."""
    if not lines or lines[0].split()[:1] != ["%%hook"] or any(line.strip() for line in lines[1:]):
        return lines
    try:
        words = grammar.split(lines[0].strip()[len("%%hook"):])
    except HooknbError:
        return lines
    if "-h" in words or "--help" in words:
        return [lines[0].rstrip("\n") + "\n", "\n"]
    return lines


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext hooknb``: register :class:`HookMagics` and its tab completion."""
    magics = HookMagics(ipython)
    ipython.register_magics(magics)
    if help_without_body not in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.append(help_without_body)
    ipython.set_hook("complete_command", lambda _shell, event: magics.complete(event.text_until_cursor),
                     str_key="%hook")
