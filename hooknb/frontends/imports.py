"""``import libervia``: Libervia's persistent PubSub hooks become hooknb persistent hooks.

Shared by ``hooknb import libervia`` and ``%hook import libervia``: read the hooks a Libervia
database keeps (:mod:`hooknb.compat.libervia_db`, read-only, nothing of it run), and for each
say what happens, as a plan: ``create`` (a ``python_file`` hook with Libervia's calling
convention, ``--compat libervia``, persistent, on the profile's account), ``exists`` (imported
before: the same hook id; nothing is created twice), or ``cannot`` with the reason (a type
Libervia never implemented, a record that is not what Libervia stores, a file that is gone or
that others may write...).  With ``dry_run`` nothing is created: ``create`` reads ``would
create``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..compat import libervia, libervia_db
from ..core import progress
from ..core.hooks import hook_id
from ..core.loading import check_file, normalize_arg
from ..errors import GrammarError, HooknbError
from ..xmpp.connection import split_jid

if TYPE_CHECKING:
    from ..host import Host


@dataclass
class Plan:
    """What an import did (or, dry, would do): one line per stored hook, and the counts."""

    lines: list[str] = field(default_factory=list)
    created: int = 0
    existing: int = 0
    cannot: int = 0

    def summary(self, dry_run: bool) -> str:
        """One line of counts."""
        made = "would be created" if dry_run else "created"
        return (f"{self.created} hook(s) {made}, {self.existing} already imported, "
                f"{self.cannot} cannot be imported")


def _where(hook: libervia_db.Stored) -> str:
    service = f" on {hook.service}" if hook.service else ""
    kind = f"{hook.type} {hook.arg}" if hook.type else "a record"
    return f"{kind}{service} node {hook.node!r} (profile {hook.profile})"


def _selected(db: libervia_db.sqlite3.Connection, profile: str | None, jid: str | None) -> dict[str, int]:
    found = libervia_db.profiles(db)
    if profile is not None:
        if profile not in found:
            raise HooknbError(f"profile {profile!r} has no persistent hooks in this database"
                              + (f" (those that have: {', '.join(sorted(found))})" if found else ""))
        found = {profile: found[profile]}
    if jid and len(found) > 1:
        raise GrammarError(f"--jid names one account, and {len(found)} profiles have hooks "
                           f"({', '.join(sorted(found))}): give --profile NAME")
    return found


def libervia_hooks(host: Host, db_path: str | None = None, profile: str | None = None,
                   jid: str | None = None, dry_run: bool = False) -> Plan:
    """Import (or, ``dry_run``, plan) the persistent hooks of a Libervia database: those of
    ``profile`` (default: every profile that has some), on account ``jid`` (default: each
    profile's own JID)."""
    plan = Plan()
    db = libervia_db.connect(db_path or libervia_db.default_path())
    try:
        work = []
        for name, profile_id in sorted(_selected(db, profile, jid).items()):
            account = split_jid(jid).bare if jid else libervia_db.profile_jid(db, profile_id)
            work.extend((hook, account) for hook in libervia_db.read(db, name, profile_id))
        with progress.bar(len(work), "import", unit="hook") as shown:  # many hooks: a bar (tqdm)
            for hook, account in work:
                _one(host, plan, hook, account, dry_run)
                shown.update()
    finally:
        db.close()
    return plan


def _one(host: Host, plan: Plan, hook: libervia_db.Stored, account: str | None, dry_run: bool) -> None:
    problem = hook.problem or (None if account else f"profile {hook.profile} has no JID in the "
                                                    "database: give --jid")
    if problem is None:
        arg = normalize_arg("python_file", hook.arg)
        wanted = hook_id(account, split_jid(hook.service).bare, hook.node, "python_file", arg)
        # the account's hooks, stored ones included: those imported before
        existing = next((h for h in host.hooks(account) if h.id == wanted), None)
        if existing is not None and existing.persistent:
            plan.existing += 1
            plan.lines.append(f"exists   {_where(hook)}: hook {existing.id} of {account}")
            return
        try:
            if dry_run:
                check_file(Path(arg))
                created = f"would create it for {account}"
            else:
                made = host.create_hook(hook.node, arg, "python_file", service=hook.service, account=account,
                                        persistent=True, compat=libervia.NAME)
                created = f"hook {made.id} of {account}"
        except HooknbError as exc:
            problem = str(exc)
        else:
            plan.created += 1
            plan.lines.append(f"create   {_where(hook)}: {created}")
            return
    plan.cannot += 1
    plan.lines.append(f"cannot   {_where(hook)}: {problem}")


def add_import(sub: Any, parser_class: type) -> argparse.ArgumentParser:
    """``import libervia [--db PATH] [--profile NAME] [--dry-run]`` (``--jid`` added by the front end)."""
    p = sub.add_parser("import", help="import another system's persistent hooks",
                       description="Import another system's persistent hooks as hooknb persistent hooks.")
    systems = p.add_subparsers(dest="system", metavar="SYSTEM", parser_class=parser_class, required=True)
    lib = systems.add_parser("libervia", help="Libervia's persistent PubSub hooks",
                             description="Read a Libervia database (read-only; nothing of it is run) and "
                                         "create its persistent hooks as persistent python_file hooks "
                                         "called as Libervia calls them (--compat libervia).  Hooks "
                                         "imported before are not created again; what cannot be "
                                         "imported is listed with the reason.")
    lib.add_argument("--db", default=None, metavar="PATH",
                     help=f"the database (default: {libervia_db.default_path()})")
    lib.add_argument("--profile", default=None, metavar="NAME",
                     help="only this Libervia profile (default: every profile that has hooks)")
    lib.add_argument("--dry-run", action="store_true", help="show what would be created, create nothing")
    return lib


__all__ = ["Plan", "libervia_hooks", "add_import"]
