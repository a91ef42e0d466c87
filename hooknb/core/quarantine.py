"""Poison items: an inbox entry whose runs keep killing their process is quarantined, never run in a loop.

A persistent hook's item whose run kills the process (``os._exit``, a segfault in a C extension,
the out-of-memory killer) stays pending in the inbox, and every process that takes the account's
persistent hooks would run it again and die.  So each entry counts its **attempts**: the runs of
it that ended with their process dying.

* A run on a thread of this process writes an attempt line into the done log before it starts
  (a memory copy, as the done mark after it: :mod:`hooknb.storage.donelog`); the next reader of
  the pending entries (a start, a lease taken) counts, from the log of a dead process, one
  attempt for each entry it had started and not marked done.  So the first run of a fresh live
  item is counted too, with no store write before it (a transaction per run would halve the
  throughput), and an entry that only waited in a queue when the process ended is not counted.
* A run in a worker process (``--executor process``, :mod:`hooknb.executors.process_lane`) that
  kills its worker is counted at once, in the store, by the lane, which journals it ``lost``
  and runs it again in a fresh worker.
* An entry read with ``attempts >= max_attempts`` (:data:`MAX_ATTEMPTS` by default: a Host
  setting, ``hooknb run --max-attempts``, ``%config HookMagics.max_attempts``) is **quarantined**
  instead of run: written so in the store, journaled with status ``quarantined`` (the hook,
  node and item, how many attempts), logged as a warning (``hooknb run`` logs the run record).
  It is shown in listings (``quarantined``: how many per hook) and ``status()``; it runs again
  when retried (:meth:`Quarantine.retry`, ``%hook retry HOOK [ITEM]``) or is dropped when
  discarded (:meth:`Quarantine.discard`).  A retried entry is taken by the process that runs the
  account's hooks: at once when it is this one, within a second for ``hooknb run``, else at the
  next start.  A temporary hook's item has no inbox entry: quarantined, it is journaled only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..xmpp.events import Item
from .hooks import Hook
from .registry import Registry
from .inbox import Entry, Inbox
from .outcome import Outcome

if TYPE_CHECKING:
    from ..storage.store import Store
    from ..xmpp.client import Client
    from .invoke import Invoker

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
STATUS = "quarantined"


def outcome(hook: Hook, item: Item, attempts: int, why: str = "the process running it died") -> Outcome:
    """The journaled outcome of an item quarantined after ``attempts`` attempts (``why``: how each ended)."""
    target = f"{hook.id} {item.id}" if item.id else hook.id
    return Outcome(STATUS, error=f"quarantined after {attempts} attempts ({why} each time): not run again "
                                 f"until `%hook retry {target}` (or `hooknb pubsub hook retry {target}`); "
                                 f"`discard` drops it", digest=hook.sha256)


class Quarantine:
    """The attempts limit, and what is done with the entries over it (see the module docstring)."""

    def __init__(self, invoker: Invoker, registry: Registry, store: Callable[[], Store], inbox: Inbox,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        self.invoker, self.registry, self._store, self.inbox = invoker, registry, store, inbox
        #: Attempts after which an entry is quarantined instead of run.
        self.max_attempts = max_attempts

    def pending(self, account: str) -> list[Entry]:
        """The account's entries to run (any thread but the loop): those pending, and those
        retried (taken), oldest first; those over the attempts limit are quarantined instead."""
        rows = self.inbox.pending(account) + self._store().take_retried(account)
        return self.sort([Entry.from_row(row) for row in sorted(rows)])

    def retried(self, account: str) -> list[Entry]:
        """The account's entries whose retry was asked for, taken to be run (not the loop)."""
        return [Entry.from_row(row) for row in self._store().take_retried(account)]

    async def arun_retried(self, client: Client, deliver: Callable[[Client, list[Entry]], None]) -> int:
        """Take the retried entries of ``client``'s account and ``deliver`` them (on the loop); how many."""
        entries = await asyncio.to_thread(self.retried, client.jid)
        if entries:
            deliver(client, entries)
        return len(entries)

    def sort(self, entries: list[Entry]) -> list[Entry]:
        """Quarantine the entries over the attempts limit; the others, to run."""
        over = [e for e in entries if e.attempts >= self.max_attempts]
        if over:
            self._store().quarantine([e.seq for e in over], time.time())
            for entry in over:
                hook = self.registry.get(entry.hook_id)
                if hook is not None:
                    self.journal(hook, Item(entry.event), entry.attempts)
        return [e for e in entries if e.attempts < self.max_attempts] if over else entries

    def put(self, hook: Hook, item: Item, entry: Entry | None, attempts: int, why: str) -> None:
        """Quarantine one item now (a lane's worker died with it ``attempts`` times)."""
        if entry is not None:
            self._store().quarantine([entry.seq], time.time())
        self.journal(hook, item, attempts, why)

    def count(self, entry: Entry) -> None:
        """Count one attempt of ``entry`` in the store now (its worker process died)."""
        self._store().add_attempts({entry.seq: 1})

    def journal(self, hook: Hook, item: Item, attempts: int, why: str = "the process running it died") -> None:
        """Journal and log that ``item`` is quarantined."""
        log.warning("hook %s: item %s of node %r quarantined after %d attempts (%s each time)",
                    hook.id, item.id, hook.node, attempts, why)
        self.invoker.record(hook, item, time.time(), 0.0, outcome(hook, item, attempts, why))

    def retry(self, hook: Hook, item_id: str | None = None) -> int:
        """Let the hook's quarantined entries (``item_id``'s only, if given) run again; how many."""
        return self._store().retry(hook.id, item_id)

    def discard(self, hook: Hook, item_id: str | None = None) -> int:
        """Drop the hook's quarantined entries (``item_id``'s only): marked done, never run; how many."""
        return self._store().discard(hook.id, time.time(), item_id)

    def listing(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Listing records with ``quarantined``: how many entries of each hook are (persistent ones)."""
        counts: dict[str, int] = {}
        if any(r["persistent"] for r in rows):
            for hook_id, *_rest in self._store().quarantined({r["account"] for r in rows if r["persistent"]}):
                counts[hook_id] = counts.get(hook_id, 0) + 1
        for row in rows:
            row["quarantined"] = counts.get(row["id"], 0)
        return rows

    def items(self, account: str | None = None) -> list[dict[str, Any]]:
        """The quarantined entries (of ``account``): hook, service, node, item, attempts, since."""
        return [dict(zip(("hook", "service", "node", "item", "attempts", "since"), row))
                for row in self._store().quarantined(None if account is None else [account])]
