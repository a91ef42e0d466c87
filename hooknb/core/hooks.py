"""Hook records: what a hook is, what it counts, and the checks a new one passes.

A :class:`Hook` is a frozen :class:`HookSpec` (what ``create`` stores: where it is attached, what
it runs, which event kinds trigger it), the code the engine loaded for it, and its
:class:`HookStats`.  :mod:`hooknb.core.registry` indexes them for dispatch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
import time
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

from .depth import MAX_DEPTH
from ..errors import HookCreateError, HooknbError
from ..xmpp.events import DEFAULT_KINDS, KINDS
from .loading import TYPES, Loader, infer_type, normalize_arg, source_digest

PHASES = ("event", "before", "after")
#: What a hook listing says of a ``--from`` hook, after what the service showed of its publishers.
PUBLISHER_NAMED = "publisher named by the service"
PUBLISHER_UNKNOWN = "publisher unknown on this service"
PUBLISHER_PENDING = "checked at the first item"
#: A hook's status while its node does not exist yet (it subscribes as soon as it does).
WAITING = "waiting for node"
#: A ``dask`` hook's status while its Dask scheduler cannot be reached (its items wait).
WAITING_EXECUTOR = "waiting for executor"
#: A hook's status while it is disabled (it journals what it would run, runs nothing).
DISABLED = "disabled"
#: A sync hook's status while every thread it may have is stuck in a run past its timeout (see
#: :mod:`hooknb.core.stalls`): its items wait until one of those runs returns.
STALLED = "stalled"
OPERATIONS = ("publish", "retract")
DEFAULT_TIMEOUT = 30.0
#: Where a hook's runs go: this process's threads (default), a Dask cluster (:mod:`hooknb.executors.dask_lane`)
#: or worker processes of this machine (:mod:`hooknb.executors.process_lane`).
EXECUTORS = ("thread", "dask", "process")
#: Runs of a ``dask`` hook in flight at once, by default (``--concurrency``).
DEFAULT_CONCURRENCY = 8

#: The longest node name, percent-encoded, that a file-backed server stores (see check_node).
MAX_NODE_ENCODED = 240


def hook_id(account: str, service: str, node: str, type_: str, arg: str, phase: str = "event") -> str:
    """The stable short id of a hook: the same attachment and action always give the same id."""
    key = "\0".join((account, service, node, type_, arg, phase))
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def parse_kinds(kinds: str | list[str] | tuple[str, ...] | frozenset[str] | None,
                phase: str = "event") -> frozenset[str]:
    """Event kinds (or operations for before/after hooks) from a list or a comma-separated string."""
    allowed = KINDS if phase == "event" else OPERATIONS
    if not kinds:
        return DEFAULT_KINDS if phase == "event" else frozenset({"publish"})
    if isinstance(kinds, str):
        kinds = [k for k in kinds.replace(" ", ",").split(",") if k]
    out = frozenset(k.strip().lower() for k in kinds)
    if "all" in out:
        return frozenset(allowed)
    unknown = sorted(out - set(allowed))
    if unknown:
        raise HooknbError(f"unknown {'event kind' if phase == 'event' else 'operation'} "
                          f"{', '.join(unknown)}; choose among {', '.join(allowed)}")
    return out


def check_action(node: str, arg: str, type_: str | None, phase: str, timeout: float | None,
                 on: str | list[str] | None, max_depth: int = MAX_DEPTH, executor: str = "thread",
                 concurrency: int = DEFAULT_CONCURRENCY) -> tuple[str, str, frozenset[str]]:
    """Validate what a new hook runs, when and where: (type, stored arg, kinds), the type
    inferred from ``arg`` when None; :class:`HookCreateError` naming what is wrong."""
    if not node or not node.strip():
        raise HookCreateError("a node is required (-n NODE)")
    check_node(node)
    if phase not in PHASES:
        raise HookCreateError(f"unknown phase {phase!r}; choose one of {', '.join(PHASES)}")
    check_executor(executor, concurrency, phase)
    if timeout is None or timeout <= 0:
        raise HookCreateError(f"the timeout must be a positive number of seconds, not {timeout!r}")
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
        raise HookCreateError(f"the maximum depth must be a whole number of at least 1, not {max_depth!r}")
    kinds = parse_kinds(on, phase)
    type_ = type_ or infer_type(arg)
    if type_ not in TYPES:
        raise HookCreateError(f"unknown hook type {type_!r}; choose one of {', '.join(TYPES)}")
    return type_, normalize_arg(type_, arg), kinds


def check_node(node: str) -> None:
    """:class:`HookCreateError` for a node name a server cannot store: Prosody keeps each node in a
    file named after it, each character but ASCII letters and digits percent-encoded, and never
    answers for a node whose file name is too long (its items query gets no answer at all)."""
    encoded = sum(1 if c.isascii() and c.isalnum() else 3 * len(c.encode()) for c in node)
    if encoded > MAX_NODE_ENCODED:
        raise HookCreateError(f"node name too long: {encoded} bytes once percent-encoded (each character "
                              f"but ASCII letters and digits takes 3 or more), where servers that keep a "
                              f"node in a file named after it (Prosody) take at most {MAX_NODE_ENCODED}")


def check_executor(executor: str, concurrency: int, phase: str = "event") -> None:
    """Refuse an unknown executor, a concurrency below 1, a ``dask`` before/after hook (those
    run inline, around this process's own operation) and ``dask`` without ``distributed``."""
    if executor not in EXECUTORS:
        raise HookCreateError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise HookCreateError(f"the concurrency must be a whole number of at least 1, not {concurrency!r}")
    if executor == "dask" and phase != "event":
        raise HookCreateError(f"a {phase} hook runs inline, in this process: --executor dask is for "
                              "event hooks")
    if executor == "dask" and importlib.util.find_spec("distributed") is None:
        raise HookCreateError("--executor dask needs Dask's distributed package: "
                              "pip install 'hooknb[dask]'")


@dataclass(frozen=True)
class HookSpec:
    """What a hook is: where it is attached, what it runs and how (stored, compared, never
    mutated: a change makes a new spec)."""

    id: str
    account: str
    service: str
    node: str
    type: str
    arg: str
    persistent: bool = False
    kinds: frozenset[str] = DEFAULT_KINDS
    created: float = field(default_factory=time.time)
    phase: str = "event"
    priority: int = 0
    timeout: float = DEFAULT_TIMEOUT
    publishers: frozenset[str] = frozenset()
    name: str | None = None
    sha256: str | None = None
    pin: bool = False
    max_depth: int = MAX_DEPTH
    disabled: bool = False  # journal what it would run (status would_run), run nothing
    executor: str = "thread"
    concurrency: int = DEFAULT_CONCURRENCY
    ordered: bool = True
    #: The calling convention its function is called with: None (hooknb's), or another system's
    #: (``"libervia"``, :mod:`hooknb.compat`).
    compat: str | None = None
    #: The manifest that declared the hook (its name), which alone may change or delete it when
    #: applied again (:mod:`hooknb.frontends.manifest`); None for a hook made by hand.
    manifest: str | None = None

    @classmethod
    def make(cls, account: str, service: str, node: str, type_: str, arg: str, phase: str = "event",
             **options: Any) -> HookSpec:
        """A spec whose id follows from its attachment and action (see :func:`hook_id`)."""
        return cls(hook_id(account, service, node, type_, arg, phase), account, service, node, type_,
                   arg, phase=phase, **options)

    def options(self) -> dict[str, Any]:
        """The stored options besides the identity fields."""
        return {"kinds": sorted(self.kinds), "phase": self.phase, "priority": self.priority,
                "timeout": self.timeout, "publishers": sorted(self.publishers), "name": self.name,
                "sha256": self.sha256, "pin": self.pin, "max_depth": self.max_depth,
                "disabled": self.disabled, "executor": self.executor, "concurrency": self.concurrency,
                "ordered": self.ordered, "compat": self.compat,
                **({"manifest": self.manifest} if self.manifest else {})}

    def to_record(self) -> dict[str, Any]:
        """The dict the store keeps."""
        return {"id": self.id, "account": self.account, "service": self.service, "node": self.node,
                "type": self.type, "arg": self.arg, "options": self.options(), "created": self.created}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> HookSpec:
        """A persistent hook's spec from its stored dict."""
        opts = record.get("options") or {}
        return cls(id=record["id"], account=record["account"], service=record["service"],
                   node=record["node"], type=record["type"], arg=record["arg"], persistent=True,
                   kinds=frozenset(opts.get("kinds") or DEFAULT_KINDS), created=record["created"],
                   phase=opts.get("phase", "event"), priority=int(opts.get("priority", 0)),
                   timeout=float(opts.get("timeout", DEFAULT_TIMEOUT)),
                   publishers=frozenset(opts.get("publishers") or ()), name=opts.get("name"),
                   sha256=opts.get("sha256"), pin=bool(opts.get("pin", False)),
                   max_depth=int(opts.get("max_depth", MAX_DEPTH)),
                   disabled=bool(opts.get("disabled", False)),
                   executor=opts.get("executor", "thread"),
                   concurrency=int(opts.get("concurrency", DEFAULT_CONCURRENCY)),
                   ordered=bool(opts.get("ordered", True)), compat=opts.get("compat"),
                   manifest=opts.get("manifest"))


class HookStats:
    """A hook's counters; written only where runs are recorded (:meth:`record`), under a lock,
    from whichever thread a run ends on."""

    __slots__ = ("_lock", "runs", "failures", "timeouts", "dropped", "skipped", "loops",
                 "blocked_loop", "last_run", "last_error", "last_output", "last_worker", "last_queued")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.runs = self.failures = self.timeouts = self.dropped = self.skipped = self.loops = 0
        self.blocked_loop = 0
        self.last_run: float | None = None
        self.last_error: str | None = None
        self.last_output: str | None = None
        self.last_worker: str | None = None
        self.last_queued: float | None = None

    def record(self, status: str, ts: float, error: str | None, output: str | None = None,
               worker: str | None = None, queued: float | None = None) -> None:
        """Count one run that ended with ``status`` (ok, error, timeout), an item dropped or
        stopped as a ``loop`` (failures, not runs), an item skipped (neither a run nor a
        failure), a run that held the event loop (``blocked_loop``: its run counts apart) or a
        run ``lost`` with its Dask worker (a failure, not a run: the item runs again); an item a
        disabled hook would have run (``would_run``) is not counted.  ``output``: what the run
        printed; ``worker`` and ``queued`` (seconds from reception to start): where and when it ran."""
        with self._lock:
            if output is not None:
                self.last_output = output
            if status == "would_run":
                return
            if status == "skipped":
                self.skipped += 1
                return
            if status == "blocked_loop":
                self.blocked_loop += 1
                self.last_error = error
                return
            if status == "dropped":
                self.dropped += 1
            elif status == "loop":
                self.loops += 1
            elif status not in ("lost", "quarantined"):  # the item runs again, or not at all
                self.runs += 1
                self.last_run, self.last_worker, self.last_queued = ts, worker, queued
            if status != "ok":
                self.failures += 1
                self.last_error = error
                if status == "timeout":
                    self.timeouts += 1

    def as_dict(self) -> dict[str, Any]:
        """The counters at one instant."""
        with self._lock:
            return {"runs": self.runs, "failures": self.failures, "timeouts": self.timeouts,
                    "dropped": self.dropped, "skipped": self.skipped, "loops": self.loops,
                    "blocked_loop": self.blocked_loop, "last_run": self.last_run, "last_error": self.last_error,
                    "last_worker": self.last_worker, "last_queued": self.last_queued}


class Hook:
    """One registered hook: its :class:`HookSpec`, its loaded code and its :class:`HookStats`.

    Each part has one writer: the spec is replaced as a whole, never changed, and the code
    (``loader``, ``load_error``) set, by the engine only (:meth:`hooknb.core.engine.Engine.install`); the statistics by the
    engine's run recording only; ``subscribe_error``, ``node_error`` and ``waiting`` (its node
    does not exist yet) by the session only; ``publishers_named`` by the engine only
    (:meth:`hooknb.core.engine.Engine.note_publishers`, and dispatch), and ``cell`` too
    (:meth:`hooknb.core.engine.Engine.show_output`); ``stalled_since`` by the engine's watchdog
    only (:mod:`hooknb.core.stalls`); ``executor_error`` by its Dask lane only
    (:mod:`hooknb.executors.dask_lane`).  The spec's fields and the counters read as attributes
    (``hook.node``, ``hook.runs``).
    """

    __slots__ = ("spec", "stats", "loader", "load_error", "subscribe_error", "node_error", "publishers_named", "waiting",
                 "stalled_since", "cell", "executor_error")

    def __init__(self, spec: HookSpec, stats: HookStats | None = None) -> None:
        self.spec = spec
        self.stats = stats or HookStats()
        self.loader: Loader | None = None
        self.load_error: str | None = None
        self.subscribe_error: str | None = None
        #: Why the node's items could not be fetched at the last catch-up (the server refused or
        #: never answered), None when they could.
        self.node_error: str | None = None
        #: Whether the service names the publisher of items on the hook's node (what ``--from``
        #: needs): None until the service has shown it, at creation or in a notification.
        self.publishers_named: bool | None = None
        self.waiting = False
        #: When the hook stalled (every thread it may have stuck past its timeout), or None.
        self.stalled_since: float | None = None
        #: The kernel's parent message of the cell that created the hook in this process (where
        #: its output goes, see :mod:`hooknb.core.capture`); None when restored or made outside a
        #: kernel.  Written by :meth:`~hooknb.core.engine.Engine.show_output` when it is created.
        self.cell: dict[str, Any] | None = None
        #: Why its executor cannot take work now (a Dask scheduler lost), None when it can.
        self.executor_error: str | None = None

    def __repr__(self) -> str:
        note = f" ({PUBLISHER_UNKNOWN})" if self.spec.publishers and self.publishers_named is False else ""
        return f"<Hook {self.id} {self.type} on {self.service} node {self.node!r}{note}>"

    def _repr_html_(self) -> str:
        """JupyterLab's display: status, target, counters, last error and output, code."""
        from ..display import hook_html

        return hook_html(self)

    @property
    def order(self) -> tuple[int, float, str]:
        """Run order among hooks of one node: priority, then creation time."""
        return (self.priority, self.spec.created, self.id)

    @property
    def status(self) -> str:
        """``disabled``, else ``stalled`` while its items wait for one of its stuck runs to
        return, ``waiting for node`` while its node does not exist yet, ``waiting for executor``
        while its Dask scheduler cannot be reached, else ``active``."""
        if self.disabled:
            return DISABLED
        if self.stalled_since is not None:
            return STALLED
        return WAITING if self.waiting else WAITING_EXECUTOR if self.executor_error else "active"

    @property
    def last_error(self) -> str | None:
        """Why the hook fails: its executor now, else its last run, loading it, subscribing its node."""
        return (self.executor_error or self.stats.last_error or self.load_error or self.subscribe_error
                or self.node_error)

    @property
    def publisher_check(self) -> str | None:
        """For a ``--from`` hook, whether the service names publishers: :data:`PUBLISHER_NAMED`,
        :data:`PUBLISHER_UNKNOWN` or :data:`PUBLISHER_PENDING`; None for other hooks."""
        if not self.spec.publishers:
            return None
        if self.publishers_named is None:
            return PUBLISHER_PENDING
        return PUBLISHER_NAMED if self.publishers_named else PUBLISHER_UNKNOWN

    @property
    def warnings(self) -> list[str]:
        """One-line warnings about the hook: a ``--from`` the service cannot satisfy, a node whose
        items could not be fetched."""
        found = [f"hook {self.id}: {self.node_error}"] if self.node_error else []
        if self.spec.publishers and self.publishers_named is False:
            found.append(f"hook {self.id}: {PUBLISHER_UNKNOWN}: {self.service} does not say who published "
                         f"items on node {self.node!r}, so --from lets none through (each is journaled "
                         "as skipped)")
        return found

    @property
    def code_changed(self) -> bool:
        """Whether the hook's code differs from the code it was created with (SHA-256): the
        code it last loaded, or, when not loaded, its file or code as it is now."""
        current = self.loader.digest if self.loader is not None else source_digest(self.type, self.arg)
        return bool(self.sha256 and current and current != self.sha256)

    def summary(self, items_waiting: int = 0) -> dict[str, Any]:
        """The public listing record: the seeds' fields, then id, counters and state;
        ``items_waiting`` (items queued for it and not started) is the engine's to say
        (:meth:`hooknb.core.engine.Engine.listing`)."""
        spec = self.spec
        return {"service": spec.service, "node": spec.node, "type": spec.type, "arg": spec.arg,
                "persistent": bool(spec.persistent), "id": spec.id, "account": spec.account,
                "kinds": ",".join(sorted(spec.kinds)), "phase": spec.phase, "status": self.status,
                "items_waiting": items_waiting, "quarantined": 0, **self.stats.as_dict(), "last_error": self.last_error,
                "publisher_check": self.publisher_check, "code_changed": self.code_changed,
                "pin": spec.pin, "max_depth": spec.max_depth, "last_output": self.stats.last_output,
                "executor": spec.executor, "compat": spec.compat}


for _name in (f.name for f in fields(HookSpec)):  # hook.node is hook.spec.node, read only
    setattr(Hook, _name, property(attrgetter(f"spec.{_name}"), doc=f"the spec's ``{_name}``"))
for _name in ("runs", "failures", "timeouts", "dropped", "skipped", "loops", "blocked_loop", "last_run"):
    setattr(Hook, _name, property(attrgetter(f"stats.{_name}"), doc=f"the statistics' ``{_name}``"))

#: The columns of a hook listing (:meth:`Hook.summary`), in order; the seeds' fields first.
SUMMARY_FIELDS = ("service", "node", "type", "arg", "persistent", "id", "account", "kinds", "phase",
                  "status", "items_waiting", "quarantined", "runs", "failures", "timeouts", "dropped", "skipped", "loops",
                  "blocked_loop", "last_run", "last_error", "last_worker", "last_queued", "publisher_check",
                  "code_changed", "pin", "max_depth", "last_output", "executor", "compat")
