"""Tab completion of ``%hook`` lines, read off the grammar (:mod:`hooknb.frontends.grammar`).

After ``%hook``: the subcommands (and the actions of ``node``, ``password``...); after a
subcommand: its options; after an option: its choices when it has some (``-t``, ``-O``,
``--executor``, ``--phase``), else what the host knows: nodes for ``-n``, services for ``-s``,
accounts for ``--jid`` and ``--from``; in place of a ``HOOK`` argument: the ids of the hooks,
with the hooks' accounts for ``JID`` arguments.  :func:`complete` is what
``ip.set_hook("complete_command", ..., str_key="%hook")`` calls (see
:func:`hooknb.frontends.magics.load_ipython_extension`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..host import Host

#: Node names offered besides the ones already in use.
WELL_KNOWN_NODES = ("urn:xmpp:microblog:0",)


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-parsers of ``parser`` by name (argparse has no public accessor)."""
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def known_nodes(host: Host) -> list[str]:
    """The nodes of the hooks, of the events journaled lately, and the well-known ones."""
    nodes = {h.node for h in host.hooks(stored=False)} | {e.node for e in host.events.snapshot(last=1000)}
    return sorted(nodes | set(WELL_KNOWN_NODES))


def known_services(host: Host) -> list[str]:
    return sorted({h.service for h in host.hooks(stored=False)} | {e.service for e in host.events.snapshot(last=1000)})


def known_accounts(host: Host) -> list[str]:
    """The accounts connected in this process and those with hooks."""
    return sorted(set(host.clients) | {h.account for h in host.hooks(stored=False)})


def hook_ids(host: Host) -> list[str]:
    return sorted(h.id for h in host.hooks(stored=False))


#: What to offer for the value of an option or argument without choices, by its ``dest``.
VALUES: dict[str, Callable[[Host], list[str]]] = {
    "node": known_nodes, "service": known_services, "jid": known_accounts, "jid_arg": known_accounts,
    "publishers": known_accounts, "hook": hook_ids,
}


def complete(parser: argparse.ArgumentParser, host: Host, line: str) -> list[str]:
    """The completions of the last word of ``line`` (``%hook ...`` up to the cursor)."""
    words = line.split()
    current = "" if line.endswith(" ") or len(words) <= 1 else words.pop()
    words = words[1:]  # past %hook
    sub, consumed = parser, 0
    while consumed < len(words) and (choices := subparsers(sub)) and words[consumed] in choices:
        sub, consumed = choices[words[consumed]], consumed + 1
    if subparsers(sub):  # a subcommand (or an action of one) is next
        return _matching(subparsers(sub), current)
    options = {o: a for a in sub._actions for o in a.option_strings}  # noqa: SLF001
    previous = words[-1] if len(words) > consumed else None
    action = options.get(previous) if previous else None
    if action is not None and action.nargs != 0:
        return _matching(_values(action, host), current)
    if current.startswith("-"):
        return _matching(options, current)
    given = [w for w in words[consumed:] if not w.startswith("-")]
    positional = [a for a in sub._actions if not a.option_strings and a.dest in VALUES]  # noqa: SLF001
    if positional and not given:
        return _matching(_values(positional[0], host), current)
    return _matching(options, current)


def _values(action: argparse.Action, host: Host) -> list[str]:
    if action.choices:
        return [str(c) for c in action.choices]
    fill = VALUES.get(action.dest)
    return fill(host) if fill else []


def _matching(candidates: Iterable[str], current: str) -> list[str]:
    return sorted(c for c in candidates if c.startswith(current))
