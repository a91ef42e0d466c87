"""``hooknb run``: run an account's persistent hooks unattended, until SIGINT or SIGTERM.

The runner connects the account (on a resource of its own, as every client, so it never knocks
a notebook's session off), which restores and subscribes its persistent hooks from the store a
notebook uses.  It logs every run on stdout, one text line or one JSON object per line,
and every ``SYNC_PERIOD`` seconds picks up hooks that another process (a notebook,
``hooknb pubsub hook create``) created or deleted in the store, subscribing to their nodes.

Records (``ts`` in UTC, then ``event`` and its fields): ``hook-loaded`` / ``hook-added`` /
``hook-removed`` (hook, service, node, type, arg, status, error; status ``waiting for node``
while the node does not exist, the runner then subscribing as soon as it does), ``ready`` (account, hooks, nodes),
``run`` (hook, service, node, kind, item, status, duration in seconds, error), ``state``
(account, state, error) when the connection drops or comes back, ``error``, ``stopping``
(signal, pending) and ``stopped`` (account, runs, unfinished).

On the first SIGINT/SIGTERM it stops: it waits (up to ``grace`` seconds) for the runs queued or
in progress, disconnects, waits for runs of items that arrived meanwhile, logs them all and says
``stopped``.  It then exits 0, or 1 if runs were left unfinished (grace exceeded, or a second
signal).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import datetime, timezone
from types import FrameType
from typing import Any, TextIO

from . import loop as _loop
from .client import split_jid
from .errors import HooknbError
from .hooks import Hook
from .host import Host
from .journal import Run

SYNC_PERIOD = 0.5  # seconds between looks at the store for hooks added or deleted elsewhere
TICK = 0.1  # seconds between looks at the runs journal and the connection state
EVENTS_KEPT = 1_000  # the runner journals events only to look at; runs are logged as they come
RUNS_KEPT = 10_000
LOG_FORMATS = ("text", "json")


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
                   item=run.item_id, status=run.status, duration=round(run.duration, 6), error=run.error)

    def hook(self, event: str, hook: Hook) -> None:
        """Log a hook loaded at start, added or removed."""
        self.write(event, hook=hook.id, service=hook.service, node=hook.node, type=hook.type,
                   arg=hook.arg, status=hook.status, error=hook.load_error or hook.last_error)


class Runner:
    """One account's headless runner (see the module docstring)."""

    def __init__(self, host: Host, jid: str, *, server: str | None = None,
                 port: int | None = None, plaintext: bool = False, log: RunLog | None = None,
                 grace: float = 30.0) -> None:
        self.host = host
        self.jid = jid
        self.account = split_jid(jid).bare
        self.server, self.port, self.plaintext = server, port, plaintext
        self.log = log or RunLog()
        self.grace = grace
        self.signals: list[str] = []
        self.known: dict[str, Hook] = {}
        self.logged = 0  # the runs journal's total when last logged
        self.count = 0  # runs logged
        self.state = ""

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signal.Signals(signum).name)  # only a note: the main loop acts on it

    def run(self, password: str) -> int:
        """Connect, run hooks until a signal, stop cleanly; returns the exit code."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        self.host.events.resize(EVENTS_KEPT)
        self.host.runs.resize(RUNS_KEPT)
        self.logged = self.host.runs.total
        self.host.connect(self.jid, password, host=self.server, port=self.port,
                          plaintext=self.plaintext)
        self._pick_up(initial=True)
        client = self.host.clients[self.account]
        self.log.write("ready", account=self.account, hooks=len(self.known),
                       nodes=len(client.subscriptions))
        next_sync = time.monotonic() + SYNC_PERIOD
        while not self.signals:
            self.host.runs.wait(self.logged + 1, TICK)
            self._log_runs()
            self._log_state()
            if time.monotonic() >= next_sync:
                self._pick_up()
                next_sync = time.monotonic() + SYNC_PERIOD
        return self._stop()

    async def _async_pick_up(self) -> None:
        if self.host.sync_store(self.account):
            await self.host.asubscribe_hooks(self.account)

    def _pick_up(self, initial: bool = False) -> None:
        """Sync with the store (on the loop, like session start) and log hooks added or removed."""
        try:
            _loop.call(self._async_pick_up())
        except HooknbError as exc:  # e.g. the store locked for long: try again next time
            self.log.write("error", error=str(exc))
            return
        current = {h.id: h for h in self.host.registry.all(self.account) if h.persistent}
        for hook_id in current.keys() - self.known.keys():
            self.log.hook("hook-loaded" if initial else "hook-added", current[hook_id])
        for hook_id in self.known.keys() - current.keys():
            self.log.hook("hook-removed", self.known[hook_id])
        self.known = current

    def _log_runs(self) -> None:
        runs, total = self.host.runs.since(self.logged)
        lost = total - self.logged - len(runs)
        if lost:
            self.log.write("overflow", lost=lost, error=f"{lost} runs fell off the journal before being logged")
        for run in runs:
            self.log.run(run)
        self.logged = total
        self.count += len(runs)

    def _log_state(self) -> None:
        client = self.host.clients.get(self.account)
        state = client.state if client is not None else "disconnected"
        if state != self.state:
            if self.state:  # the first state (connected) is said by "ready"
                self.log.write("state", account=self.account, state=state,
                               error=client.last_error if client is not None else None)
            self.state = state

    def _pending(self) -> int:
        return self.host.engine.pending()

    def _settle(self, deadline: float) -> bool:
        """Wait until no run is queued or running, logging runs meanwhile; False if given up."""
        while not _loop.call(self.host.engine.idle(TICK)):
            self._log_runs()
            if len(self.signals) > 1 or time.monotonic() >= deadline:
                return False
        return True

    def _stop(self) -> int:
        self.log.write("stopping", signal=self.signals[0], pending=self._pending())
        deadline = time.monotonic() + self.grace
        finished = self._settle(deadline)
        self.host.disconnect(self.account)
        finished = self._settle(deadline) and finished
        self._log_runs()
        self.log.write("stopped", account=self.account, runs=self.count, unfinished=self._pending())
        return 0 if finished else 1
