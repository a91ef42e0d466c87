"""``hooknb run``: run an account's persistent hooks unattended, until SIGINT or SIGTERM.

The runner connects the account (on a resource of its own, as every client, so it never knocks
a notebook's session off), which restores and subscribes its persistent hooks from the store a
notebook uses.  It logs every run on stdout, one text line or one JSON object per line,
and every ``SYNC_PERIOD`` seconds picks up hooks that another process (a notebook,
``hooknb pubsub hook create``) created or deleted in the store, subscribing to their nodes.

Records (``ts`` in UTC, then ``event`` and its fields): ``hook-loaded`` / ``hook-added`` /
``hook-updated`` (re-created with new options or code) / ``hook-removed`` (hook, service, node,
type, arg, status, error, and ``code_changed`` when the hook's code is not the code it was
created with; status ``waiting for node`` while the node does not exist, the runner then
subscribing as soon as it does), ``ready`` (account, hooks, nodes), ``run`` (hook, service,
node, kind, item, status, duration in seconds, error, ``code_changed`` when that run's code
was not the created one, ``output``, what the run printed, bounded (:mod:`hooknb.core.capture`),
executor, worker (a Dask worker's address) and queued (seconds from the item's reception to
the run's start); status ``refused`` when it was not run; items a ``--from`` hook skips too,
with status ``skipped`` and the reason; status ``loop`` for an item the loop guard did not run,
``blocked_loop`` for a run of an async hook that held the event loop, with that time as its
duration; ``would_run`` for an item a disabled hook did not run; ``lost`` for a run whose Dask
worker died, the item running again), ``executor`` (hook, service, node, error) when a
``dask`` hook's scheduler cannot be reached (its items wait) and again when it can, ``warning``
(hook, service, node, error) once per hook, e.g. when the service turns out not to name
publishers, ``stalled`` (hook, service, node, waiting, error) when a hook's runs past their
timeout have taken every thread it may have, so that its items wait, and ``recovered`` (hook,
service, node, waiting, stalled_for) when one returns and it goes on, ``state`` (account, state, error)
when the connection drops or comes back, ``resumed`` (account, resumed: how many times so far,
replayed: the stanzas the server sent again) when a cut stream was resumed (XEP-0198), ``lease`` (account, held, by) when this runner starts
or stops running the account's persistent hooks (one runner per account: see
:mod:`hooknb.core.session`), ``gap`` (service, node, item: the last seen) when items published while
away may be lost, ``store`` (error) when the store cannot be written and again when it can,
``error``, ``quarantined`` (hook, service, node, item, attempts), at start, for each item of the
account quarantined (:mod:`hooknb.core.quarantine`: its runs ended with their process dying as
often as ``--max-attempts``; ``ready`` says how many, and an item quarantined while the runner
runs is a ``run`` record with status ``quarantined``), ``stopping`` (signal, pending),
``stopped`` (account, runs, unfinished, pending) and, last whatever ends the runner, ``exit``
(code, and error when an exception ended it).  Only a death it cannot see (SIGKILL, a hook
calling ``os._exit`` on a thread: ``--executor process`` runs such a hook in a worker process)
leaves no ``exit`` record; then the next start counts the run in flight as an attempt of its item.

With ``--manifest FILE`` the runner applies that manifest of hooks (:mod:`hooknb.frontends.manifest`)
before it connects, and again on SIGHUP, as daemons reload their configuration: a ``manifest``
record (file, name, and how many hooks and rules it created, changed, deleted and left
unchanged), then the ``hook-added`` / ``hook-updated`` / ``hook-removed`` records; an invalid
manifest stops the start (exit 2, one line per problem), and on SIGHUP is one ``error`` record
per problem, the hooks left as they were.

A store that cannot be used (:class:`~hooknb.errors.StoreUnusableError`: a newer or foreign
schema, a corrupt or empty file, ``HOOKNB_HOME`` not a directory) ends the runner: it logs
``error`` and exits non-zero (the command line's code for the store) rather than run nothing.

On the first SIGINT/SIGTERM it stops taking items, goes on running those queued for up to
``grace`` seconds, then leaves the rest pending in the store's inbox (the next start runs them
first), gives the run in progress up to ``IN_FLIGHT_WAIT`` seconds to end, disconnects and
says ``stopped`` with ``pending``, the entries left.  It exits 0, or 1 if a run in progress had
to be abandoned (it did not end in time, or a second signal came): that run may run again at
the next start.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from collections.abc import Callable
from types import FrameType
from typing import Any, TextIO

from ..core import capture
from ..xmpp.connection import ConnectOptions, split_jid
from ..errors import HooknbError, ManifestError, StoreUnusableError
from ..xmpp.events import Event
from ..core.hooks import Hook, HookSpec
from ..host import Host
from ..storage.journal import Run
from .manifest import ACTIONS, run as apply_manifest

SYNC_PERIOD = 0.5  # seconds between looks at the store for hooks added or deleted elsewhere
TICK = 0.1  # seconds between looks at the runs journal and the connection state
EVENTS_KEPT = 1_000  # the runner journals events only to look at; runs are logged as they come
EVENTS_BYTES = 8 * 2**20  # (and at most this many bytes of them)
RUNS_KEPT = 10_000
LOG_FORMATS = ("text", "json")
IN_FLIGHT_WAIT = 5.0  # seconds a run in progress at the end of the grace gets to end


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: Any) -> str:
    text = f"{value:.6f}" if isinstance(value, float) else str(value)
    return json.dumps(text) if not text or any(c.isspace() or c in '"=' for c in text) else text


class RunLog:
    """The runner's log: ``text`` lines (``TS EVENT key=value...``) or ``json`` lines, each flushed."""

    def __init__(self, fmt: str = "text", out: TextIO | None = None) -> None:
        self.fmt = fmt
        self.out = out or sys.stdout

    def write(self, event: str, ts: float | None = None, **fields: Any) -> None:
        """Write one record (``ts`` defaults to now; in text, None fields are left out)."""
        stamp = _utc(time.time() if ts is None else ts)
        if self.fmt == "json":
            line = json.dumps({"ts": stamp, "event": event, **fields})
        else:
            line = " ".join([stamp, event, *(f"{k}={_text(v)}" for k, v in fields.items() if v is not None)])
        self.out.write(line + "\n")
        self.out.flush()

    def run(self, run: Run) -> None:
        """Log one run of a hook."""
        self.write("run", run.ts, hook=run.hook_id, service=run.service, node=run.node, kind=run.kind,
                   item=run.item_id, status=run.status, duration=round(run.duration, 6), error=run.error,
                   **({"code_changed": True} if run.code_changed else {}), output=run.output,
                   executor=run.executor, worker=run.worker,
                   queued=None if run.queued is None else round(run.queued, 6))

    def hook(self, event: str, hook: Hook) -> None:
        """Log a hook loaded at start, added or removed."""
        self.write(event, hook=hook.id, service=hook.service, node=hook.node, type=hook.type,
                   arg=hook.arg, status=hook.status, error=hook.load_error or hook.last_error,
                   **({"code_changed": True} if hook.code_changed else {}))


class Runner:
    """One account's headless runner (see the module docstring)."""

    def __init__(self, host: Host, jid: str, *, options: ConnectOptions | None = None,
                 log: RunLog | None = None, grace: float = 30.0, manifest: str | None = None,
                 exit_code: Callable[[BaseException], int] = lambda _exc: 1) -> None:
        self.host = host
        self.jid = jid
        self.account = split_jid(jid).bare
        self.options = options or ConnectOptions()
        self.log = log or RunLog()
        self.grace = grace
        #: The exit code of the process an exception ends (the command line's).
        self.exit_code = exit_code
        self.signals: list[str] = []
        self.manifest = manifest  # applied at start and on SIGHUP
        self.reloads: list[str] = []  # SIGHUPs not acted on yet
        self.gaps: list[Event] = []
        self.held: bool | None = None
        self.store_error: str | None = None
        self.store_notice: str | None = None
        self.known: dict[str, Hook] = {}
        self.executor_errors: dict[str, str | None] = {}  # per hook, as last logged
        self.warned: set[str] = set()  # hooks whose warnings were logged
        self.stalled: dict[str, float] = {}  # hooks logged as stalled, and since when
        self.specs: dict[str, HookSpec] = {}  # the known hooks' specs, to tell re-created ones
        self.logged = 0  # the runs journal's total when last logged
        self.count = 0  # runs logged
        self.state = ""
        self.resumed = 0  # the client's resumptions, as last logged

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        (self.reloads if signum == signal.SIGHUP else self.signals).append(signal.Signals(signum).name)
        # only a note: the main loop acts on it

    def _apply(self, initial: bool = False) -> None:
        """Apply the manifest and log its plan's counts; at start an invalid one stops the
        runner (:class:`~hooknb.errors.ManifestError`), later each problem is an ``error``
        record and the hooks stay as they were."""
        try:
            plan = apply_manifest(self.host, self.manifest, self.account)
        except HooknbError as exc:  # invalid, refused (trust), the store locked...
            if initial:
                raise
            for problem in exc.problems if isinstance(exc, ManifestError) else [str(exc)]:
                self.log.write("error", error=f"manifest not applied: {problem}")
            return
        self.log.write("manifest", file=str(plan.path), name=plan.name,
                       **{action: plan.count(action) for action in ACTIONS})

    def run(self, password: str) -> int:
        """Connect, run hooks until a signal, stop cleanly; returns the exit code.  Whatever ends
        it, the last record is ``exit`` (code, and error when an exception ended it, which is
        raised again: :attr:`exit_code` says its code)."""
        try:
            code = self._run(password)
        except BaseException as exc:
            self.log.write("exit", code=self.exit_code(exc), error=f"{type(exc).__name__}: {exc}")
            raise
        self.log.write("exit", code=code)
        return code

    def _run(self, password: str) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if self.manifest else [])):
            signal.signal(sig, self._on_signal)
        self.host.events.resize(EVENTS_KEPT, EVENTS_BYTES)
        self.host.runs.resize(RUNS_KEPT)
        capture.echo = False  # what a run prints is in its log record, never loose on stdout
        self.host.holder = "hooknb run:" + self.host.holder.partition(":")[2]
        self.host.events.listeners.append(self._note_gaps)
        self.logged = self.host.runs.total
        self._store()  # before connecting: a runner without its store would run nothing
        if self.manifest:
            self._apply(initial=True)
        self.host.connect(self.jid, password, **asdict(self.options))
        self._pick_up(initial=True)
        client = self.host.clients[self.account]
        quarantined = self.host.quarantined(self.account)
        for each in quarantined:
            self.log.write("quarantined", ts=each["since"], hook=each["hook"], service=each["service"],
                           node=each["node"], item=each["item"], attempts=each["attempts"],
                           error="not run until retried (hooknb pubsub hook retry HOOK ITEM) or discarded")
        self.log.write("ready", account=self.account, hooks=len(self.known),
                       nodes=len(client.subscriptions), quarantined=len(quarantined))
        next_sync = time.monotonic() + SYNC_PERIOD
        while not self.signals:
            self.host.runs.wait(self.logged + 1, TICK)
            self._log_runs()
            self._log_warnings()
            self._log_stalls()
            self._log_state()
            if self.reloads:
                self.reloads.clear()
                self._apply()
                self._pick_up()
            if time.monotonic() >= next_sync:
                self._pick_up()
                next_sync = time.monotonic() + SYNC_PERIOD
        return self._stop()

    def _store(self) -> None:
        """Open the store; one that cannot be used is logged and ends the run."""
        try:
            self.host.check_store()  # opens it: its schema is checked (hooknb.storage.schema)
        except StoreUnusableError as exc:
            self.log.write("error", error=str(exc))
            raise

    def _pick_up(self, initial: bool = False) -> None:
        """Sync with the store (here, never on the loop) and log hooks added or removed; a store
        that cannot be used any more ends the run."""
        try:
            if self.host.sync_store(self.account):
                self.host.subscribe_hooks(self.account)
            self.host.run_retried(self.account)  # items retried from another process
        except StoreUnusableError as exc:
            self.log.write("error", error=str(exc))
            raise
        except HooknbError as exc:  # e.g. the store locked for long: try again next time
            self.log.write("error", error=str(exc))
            return
        current = {h.id: h for h in self.host.hooks(self.account, stored=False) if h.persistent}
        for hook_id in current.keys() - self.known.keys():
            self.log.hook("hook-loaded" if initial else "hook-added", current[hook_id])
        for hook_id in self.known.keys() - current.keys():
            self.log.hook("hook-removed", self.known[hook_id])
        for hook_id in current.keys() & self.specs.keys():
            if current[hook_id].spec != self.specs[hook_id]:
                self.log.hook("hook-updated", current[hook_id])
        self.known = current
        self.specs = {hook_id: hook.spec for hook_id, hook in current.items()}

    def _log_runs(self) -> None:
        runs, total = self.host.runs.since(self.logged)
        lost = total - self.logged - len(runs)
        if lost:
            self.log.write("overflow", lost=lost, error=f"{lost} runs fell off the journal before being logged")
        for run in runs:
            self.log.run(run)
        self.logged = total
        self.count += len(runs)

    def _log_warnings(self) -> None:
        for hook in list(self.known.values()):
            if hook.executor_error != self.executor_errors.get(hook.id):
                self.executor_errors[hook.id] = hook.executor_error
                self.log.write("executor", hook=hook.id, service=hook.service, node=hook.node,
                               error=hook.executor_error or "dask: the scheduler can be reached again")
            if hook.id not in self.warned and hook.warnings:
                self.warned.add(hook.id)
                for warning in hook.warnings:
                    self.log.write("warning", hook=hook.id, service=hook.service, node=hook.node,
                                   error=warning)

    def _log_stalls(self) -> None:
        for hook in list(self.known.values()):
            since, logged = hook.stalled_since, self.stalled.get(hook.id)
            if since is not None and logged is None:
                self.stalled[hook.id] = since
                self.log.write("stalled", ts=since, hook=hook.id, service=hook.service, node=hook.node,
                               waiting=self.host.waiting(hook.id),
                               error=f"its runs past the {hook.timeout:g} s timeout have not returned and "
                                     "hold every thread it may have: its items wait until one returns")
            elif since is None and logged is not None:
                del self.stalled[hook.id]
                self.log.write("recovered", hook=hook.id, service=hook.service, node=hook.node,
                               waiting=self.host.waiting(hook.id),
                               stalled_for=round(time.time() - logged, 3))

    def _log_state(self) -> None:
        client = self.host.clients.get(self.account)
        state = client.state if client is not None else "disconnected"
        if state != self.state:
            if self.state:  # the first state (connected) is said by "ready"
                self.log.write("state", account=self.account, state=state,
                               error=client.last_error if client is not None else None)
            self.state = state
        if client is not None and client.resumption.resumed != self.resumed:
            self.resumed = client.resumption.resumed
            self.log.write("resumed", account=self.account, resumed=self.resumed,
                           replayed=client.resumption.replayed)
        if client is not None and self.host.runs_here(self.account) != self.held:
            self.held = self.host.runs_here(self.account)
            self.log.write("lease", account=self.account, held=self.held, by=self.host.lease_holder(self.account))
        error, notice = self.host.store_state()
        if error != self.store_error:
            self.store_error = error
            self.log.write("store", error=self.store_error or "the store can be written again")
        if notice != self.store_notice:
            self.store_notice = notice
            self.log.write("store", error=self.store_notice)
        for gap in self.gaps[:]:
            self.gaps.remove(gap)
            self.log.write("gap", ts=gap.ts, service=gap.service, node=gap.node, item=gap.item_id,
                           error="items published while away may be lost")

    def _note_gaps(self, events: list[Event]) -> None:
        """An events journal listener (loop thread): keep the gaps for the main thread to log."""
        self.gaps.extend(e for e in events if e.kind == "gap")

    def _pending(self) -> int:
        return self.host.pending()

    def _settle(self, deadline: float) -> bool:
        """Wait until no run is queued or running, logging runs meanwhile; False if given up."""
        while not self.host.idle(TICK):
            self._log_runs()
            if len(self.signals) > 1 or time.monotonic() >= deadline:
                return False
        return True

    def _stop(self) -> int:
        self.log.write("stopping", signal=self.signals[0], pending=self._pending())
        self.host.stop_intake(self.account)
        self._settle(time.monotonic() + self.grace)
        self.host.stop_lanes(self.account)  # what is still queued stays pending
        self._settle(time.monotonic() + IN_FLIGHT_WAIT)
        unfinished = self._pending()
        self.host.disconnect(self.account)
        self.host.flush()
        self._log_runs()
        left = self.host.pending_entries(self.account)
        self.log.write("stopped", account=self.account, runs=self.count, unfinished=unfinished, pending=left)
        return 0 if not unfinished else 1

