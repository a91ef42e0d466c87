"""The public facade: accounts, hooks, journals (the seeds' "main instance", handed to hooks).

``hooknb.host()`` returns the process-wide :class:`Host`; ``hooknb.connect(...)`` connects an
account through it.  The magics, the command line and the widgets are thin layers over these
methods.  Every method that talks to the network exists as ``aname`` (awaitable) and ``name``
(blocking).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pandas as pd

from . import loop as _loop
from . import policy
from .client import Client, split_jid
from .connection import ConnectOptions
from .errors import HookCreateError, HooknbError
from .events import Event
from .hooks import DEFAULT_TIMEOUT, PHASES, Hook, Registry, hook_id, parse_kinds
from .journal import Journal, Run, frame
from .loading import TYPES, infer_type, make_loader, normalize_arg
from .phases import intercept
from .running import Engine
from .store import Store

log = logging.getLogger(__name__)
LIST_FIELDS = ("service", "node", "type", "arg", "persistent")
SEEN_FLUSH = 1.0  # seconds between writes of the last item seen per node


class Host:
    """Holds the connected accounts, the hook registry, the store and the journals."""

    def __init__(self, store_path: str | None = None, events_max: int = 100_000,
                 runs_max: int = 100_000) -> None:
        self.clients: dict[str, Client] = {}
        self.registry = Registry()
        self.events: Journal[Event] = Journal(events_max)
        self.runs: Journal[Run] = Journal(runs_max)
        self.engine = Engine(self, self.runs, lambda: self.store)
        self.default_account: str | None = None
        self.event_listeners: list[Any] = []
        self.last_inferred: str | None = None
        self._store: Store | None = None
        self._store_path = store_path
        self._store_lock = threading.Lock()
        self._seen: dict[tuple[str, str, str], str] = {}
        self._seen_flush = False
        self._marks: dict[str, dict[tuple[str, str, str], str | None]] = {}
        self._held: dict[str, list[Event]] = {}
        self._closed = False
        self._store_version: int | None = None
        _loop.at_shutdown(self._aclose_all)

    def __repr__(self) -> str:
        return f"<hooknb.Host accounts={list(self.clients)} hooks={len(self.registry)}>"

    # ---------------------------------------------------------------- store
    @property
    def store(self) -> Store:
        """The persistent store (opened on first use, in ``$HOOKNB_HOME``)."""
        with self._store_lock:
            if self._store is None:
                self._store = Store(self._store_path)
            return self._store

    # ---------------------------------------------------------------- accounts
    def account(self, account: str | None = None) -> str:
        """The bare JID of ``account``, or of the default (last connected) account."""
        if account:
            return split_jid(account).bare
        if self.default_account:
            return self.default_account
        raise HooknbError("no account: connect first with hooknb.connect(JID, PASSWORD) "
                          "(or %hook connect JID)")

    def client(self, account: str | None = None) -> Client:
        """The connected client of ``account`` (default: the last connected one)."""
        jid = self.account(account)
        client = self.clients.get(jid)
        if client is None or client.state in ("disconnected", "failed"):
            raise HooknbError(f"{jid} is not connected: use hooknb.connect({jid!r}, PASSWORD)")
        return client

    @_loop.on_loop
    async def aconnect(self, jid: str, password: str, host: str | None = None, port: int | None = None,
                       plaintext: bool = False, cafile: str | None = None, direct_tls: bool = False,
                       timeout: float = 20.0) -> Client:
        """Connect ``jid`` (or return its existing connection); restores its persistent hooks.

        The connection options are those of :class:`~hooknb.connection.ConnectOptions`; a
        failure to connect or authenticate raises :class:`~hooknb.errors.ConnectError`."""
        options = ConnectOptions(host=host, port=port, cafile=cafile, direct_tls=direct_tls,
                                 plaintext=plaintext)
        options.check(jid)
        bare = split_jid(jid).bare
        client = self.clients.get(bare)
        if client is not None and client.state in ("connected", "reconnecting", "connecting"):
            return client
        client = Client(jid, password, options)
        client.listeners.append(self._on_events)
        client.before_presence.append(self._prepare_session)
        client.on_session.append(self._on_session)
        client.interceptor = lambda c, op, send: intercept(self, c, op, send)
        self.clients[bare] = client
        try:
            await client._aconnect(timeout)
        except BaseException:
            self.clients.pop(bare, None)
            raise
        self.default_account = bare
        return client

    async def _on_session(self, client: Client, reconnected: bool) -> None:
        """On every session start (after :meth:`_prepare_session`): subscribe, catch up, then
        release the live events held meanwhile, so hooks see missed items first."""
        try:
            await self._subscribe_hooked(client)
            if reconnected or any(h.persistent for h in self.registry.all(client.jid)):
                await self._catch_up(client)
        finally:
            held = self._held.pop(client.jid, None)
            if held:
                self._accept(client, held)

    async def _subscribe_hooked(self, client: Client) -> list[tuple[str, str]]:
        """Subscribe to the hooked nodes not subscribed yet; a failure goes to the hooks' last_error."""
        added = []
        for service, node in sorted(self.registry.nodes(client.jid) - client.subscriptions):
            try:
                await client._subscribe_raw(service, node)
                client.subscriptions.add((service, node))
                added.append((service, node))
            except HooknbError as exc:
                for hook in self.registry.find(client.jid, service, node):
                    hook.last_error = f"cannot subscribe: {exc}"
        return added

    @_loop.on_loop
    async def asubscribe_hooks(self, account: str | None = None) -> list[tuple[str, str]]:
        """Subscribe a connected account to every node its hooks are on and it is not subscribed
        to yet (e.g. hooks picked up by :meth:`sync_store`), remembering each one's newest item as
        :meth:`acreate_hook` does; returns the (service, node) pairs newly subscribed.  Does nothing
        while the account is not connected: the next session start subscribes them."""
        client = self.clients.get(self.account(account))
        if client is None or client.state != "connected":
            return []
        added = await self._subscribe_hooked(client)
        for service, node in added:
            persistent = any(h.persistent for h in self.registry.find(client.jid, service, node))
            await self._mark_seen(client, service, node, persistent)
        return added

    def _restore(self, account: str, load: bool = True) -> None:
        """Bring the registry in line with the account's persistent hooks in the store.

        With ``load`` (when the account is connected) each hook's code is loaded; a hook that
        fails to load is kept, with its ``load_error``, never dropped.  Without it (listing or
        deleting offline) the records are only listed.  Hooks deleted from the store by another
        process leave the registry.
        """
        stored = {r["id"]: r for r in self.store.load_hooks(account)}
        for record in stored.values():
            hook = self.registry.get(record["id"])
            if hook is None:
                hook = Hook.from_record(record)
                self.registry.add(hook)
            if load and hook.loader is None and hook.load_error is None:
                try:
                    hook.loader = make_loader(hook.type, hook.arg)
                except HooknbError as exc:
                    hook.load_error = str(exc)
        for hook in self.registry.all(account):
            if hook.persistent and hook.id not in stored:
                self.registry.remove([hook.id])
                self.engine.drop_lane(hook.id)

    def _prepare_session(self, client: Client) -> None:
        """Before presence (so before any live item can arrive): restore the persistent hooks and
        note the last item seen on each hooked node, where the catch-up starts from.  A store
        that cannot be read (locked, corrupt) costs the catch-up, never the session."""
        self._held[client.jid] = []
        marks: dict[tuple[str, str, str], str | None] = {}
        try:
            self._restore(client.jid)
            for service, node in self.registry.nodes(client.jid):
                key = (client.jid, service, node)
                marks[key] = self._seen[key] if key in self._seen else self.store.get_seen(*key)
        except HooknbError as exc:
            client.last_error = f"persistent hooks not restored: {exc}"
            log.error("%s: %s", client.jid, client.last_error)
        self._marks[client.jid] = marks

    async def _catch_up(self, client: Client) -> None:
        """Fetch what was published on hooked nodes while away and run what was missed."""
        marks = self._marks.pop(client.jid, {})
        for service, node in sorted(self.registry.nodes(client.jid)):
            key = (client.jid, service, node)
            last = marks.get(key)
            try:
                items = await client.aget_items(node, service)
            except HooknbError:
                continue
            ids = [e.item_id for e in items]
            if last is None:  # first look at this node: remember where it stands
                self._remember_position(key, items, any(h.persistent for h in self.registry.find(*key)))
                continue
            if last == "" or last in ids:  # "" marks a node seen empty
                missed = items[ids.index(last) + 1:] if last else items
            else:
                missed = items
                self.store.add_gap(client.jid, service, node, last, len(items))
                client.last_error = (f"gap on {service} node {node!r}: item {last!r} is no longer held; "
                                     f"items published while away may be lost")
            if missed:
                self._accept(client, missed)

    @_loop.on_loop
    async def adisconnect(self, account: str | None = None) -> None:
        """Disconnect an account (default: the default one); its temporary hooks end with it."""
        jid = self.account(account)
        client = self.clients.pop(jid, None)
        self._flush_seen()
        if client is not None:
            await client.adisconnect()
        for hook in self.registry.remove([h.id for h in self.registry.all(jid) if not h.persistent]):
            self.engine.drop_lane(hook.id)
        if self.default_account == jid:
            self.default_account = next(iter(self.clients), None)

    async def _aclose_all(self) -> None:
        for jid in list(self.clients):
            await self.adisconnect(jid)

    @_loop.on_loop
    async def aclose(self) -> None:
        """Disconnect every account and close the store."""
        await self._aclose_all()
        self._closed = True
        if self._store is not None:
            self._store.close()

    close = _loop.blocking(aclose)

    connect = _loop.blocking(aconnect)
    disconnect = _loop.blocking(adisconnect)
    subscribe_hooks = _loop.blocking(asubscribe_hooks)

    # ---------------------------------------------------------------- events
    def _on_events(self, client: Client, events: list[Event]) -> None:
        """Incoming events: held while the session's catch-up runs, else accepted."""
        held = self._held.get(client.jid)
        if held is not None:
            held.extend(events)
        else:
            self._accept(client, events)

    def _accept(self, client: Client, events: list[Event]) -> None:
        """Journal events, remember the last item per node, dispatch to hooks."""
        self.events.extend(events)
        for event in events:
            if event.kind == "publish" and event.item_id:
                self._seen[(event.account, event.service, event.node)] = event.item_id
                if not self._seen_flush:
                    self._seen_flush = True
                    asyncio.get_running_loop().call_later(SEEN_FLUSH, self._flush_seen)
        self.engine.dispatch(client, events)
        for listener in list(self.event_listeners):
            listener(events)

    def _flush_seen(self) -> None:
        self._seen_flush = False
        if self._closed:
            return
        persistent_nodes = {(h.account, h.service, h.node) for h in self.registry.all() if h.persistent}
        try:
            for key, item_id in list(self._seen.items()):
                if key in persistent_nodes:
                    self.store.set_seen(*key, item_id)
        except HooknbError as exc:  # a locked store must not stop events; retried next time
            log.warning("could not remember the last items seen: %s", exc)

    # ---------------------------------------------------------------- hooks
    @_loop.on_loop
    async def acreate_hook(self, node: str, arg: str, type: str | None = None, *,
                           service: str | None = None, persistent: bool = False,
                           account: str | None = None, on: str | list[str] | None = None,
                           phase: str = "event", priority: int = 0, timeout: float = DEFAULT_TIMEOUT,
                           publishers: list[str] | tuple[str, ...] = (), name: str | None = None) -> Hook:
        """Create (validate, store, subscribe) a hook on ``node`` of ``service`` (default own PEP).

        ``type`` is one of python, python_file, python_code (inferred from ``arg`` when None:
        an existing .py file or an importable module).  ``on`` lists the event kinds that
        trigger it (default ``publish``), or the operations for ``before``/``after`` phases.
        ``name`` identifies a hook to replace (``%%hook`` cells use it).  Creating the same
        (service, node, type, arg) twice returns the existing hook.
        """
        jid = self.account(account)
        if not node or not node.strip():
            raise HookCreateError("a node is required (-n NODE)")
        if phase not in PHASES:
            raise HookCreateError(f"unknown phase {phase!r}; choose one of {', '.join(PHASES)}")
        if timeout is None or timeout <= 0:
            raise HookCreateError(f"the timeout must be a positive number of seconds, not {timeout!r}")
        kinds = parse_kinds(on, phase)
        service = split_jid(service).bare if service else jid
        self.last_inferred = None
        if not type:
            type = infer_type(arg)
            self.last_inferred = type
        if type not in TYPES:
            raise HookCreateError(f"unknown hook type {type!r}; choose one of {', '.join(TYPES)}")
        arg = normalize_arg(type, arg)
        policy.check(service, node, type, phase)
        trusted = frozenset(split_jid(p).bare for p in publishers)
        client = self.clients.get(jid)
        if not persistent and (client is None or client.state != "connected"):
            raise HooknbError(f"{jid} is not connected: temporary hooks need a connection "
                              "(or create it with persistent=True)")
        loader = make_loader(type, arg)
        hid = hook_id(jid, service, node, type, arg, phase)
        hook = self.registry.get(hid)
        if hook is None:
            hook = Hook(hid, jid, service, node, type, arg, persistent=persistent, kinds=kinds,
                        phase=phase, priority=priority, timeout=timeout, publishers=trusted,
                        name=name, sha256=loader.digest)
        else:  # same attachment and action: update its options, keep its counters
            hook.persistent = hook.persistent or persistent
            hook.kinds, hook.priority, hook.timeout = kinds, priority, timeout
            hook.publishers, hook.name, hook.sha256 = trusted, name, loader.digest
        hook.loader, hook.load_error = loader, None
        if phase == "event" and client is not None and client.state == "connected" and \
                (service, node) not in client.subscriptions:
            try:
                await client.asubscribe(node, service)
            except HooknbError as exc:
                raise HookCreateError(f"cannot hook node {node!r} on {service}: {exc}") from None
        if phase == "event" and client is not None and client.state == "connected":
            await self._mark_seen(client, service, node, hook.persistent)
        replaced = [h.id for h in self.registry.all(jid) if name and h.name == name
                    and (h.service, h.node) == (service, node) and h.id != hid]
        if replaced:
            self._remove(replaced)
        if hook.persistent:
            self.store.save_hook(hook.to_record())
        self.registry.add(hook)
        return hook

    create_hook = _loop.blocking(acreate_hook)

    async def _mark_seen(self, client: Client, service: str, node: str, persistent: bool) -> None:
        """Remember the newest item of a newly hooked node, so a catch-up after a disconnection
        runs exactly what was published after it ("" when the node is empty)."""
        key = (client.jid, service, node)
        if key in self._seen:
            return
        try:
            items = await client.aget_items(node, service, max_items=1)
        except HooknbError:
            return
        self._remember_position(key, items, persistent)

    def _remember_position(self, key: tuple[str, str, str], items: list[Event], persistent: bool) -> None:
        """Note a node's newest item ("" when it is empty), in the store too for persistent hooks."""
        self._seen[key] = (items[-1].item_id or "") if items else ""
        if persistent:
            self.store.set_seen(*key, self._seen[key])

    def _remove(self, ids: list[str]) -> int:
        removed = self.registry.remove(ids)
        stored = [h.id for h in removed if h.persistent]
        for hook in removed:
            self.engine.drop_lane(hook.id)
        if stored:
            self.store.delete_hooks(stored)
        return len(removed)

    def delete_hooks(self, node: str, service: str | None = None, type: str | None = None,
                     arg: str | None = None, account: str | None = None) -> int:
        """Delete the hooks on (service, node) matching ``type`` and ``arg``; empty type and arg
        delete every hook there.  Returns how many were deleted.  Works on stored hooks without a
        connection; a hook whose file has disappeared can still be deleted."""
        jid = self.account(account)
        service = split_jid(service).bare if service else jid
        if type and type not in TYPES:
            raise HooknbError(f"unknown hook type {type!r}; choose one of {', '.join(TYPES)}")
        if arg and type:
            arg = normalize_arg(type, arg)
        self._restore_if_offline(jid)
        candidates = self.registry.find(jid, service, node, type, arg)
        if arg and not type and not candidates:  # a file given without -t: try its absolute path
            candidates = self.registry.find(jid, service, node, None, normalize_arg("python_file", arg))
        return self._remove([h.id for h in candidates])

    def delete_hook(self, hook_id: str) -> bool:
        """Delete one hook by its id (stored ones included); False if there is none."""
        return self._remove([hook_id]) == 1

    def _restore_if_offline(self, jid: str) -> None:
        if jid not in self.clients:
            self._restore(jid, load=False)

    def hooks(self, account: str | None = None) -> list[Hook]:
        """The hooks of an account (default: every account), stored ones included."""
        accounts = [self.account(account)] if account else None
        for jid in accounts or {r["account"] for r in self.store.load_hooks()}:
            self._restore_if_offline(jid)
        return self.registry.all(self.account(account) if account else None)

    def list_hooks(self, account: str | None = None) -> list[dict[str, Any]]:
        """Listing records: ``service``, ``node``, ``type``, ``arg``, ``persistent`` first, then
        ``id``, ``account``, counters (runs, failures, timeouts, dropped), last run and error."""
        return [h.summary() for h in self.hooks(account)]

    def hooks_frame(self, account: str | None = None) -> pd.DataFrame:
        """:meth:`list_hooks` as a DataFrame (``last_run`` as UTC datetimes)."""
        rows = self.list_hooks(account)
        columns = list(Hook("", "", "", "", "", "").summary())
        df = pd.DataFrame(rows, columns=columns)
        df["persistent"] = df["persistent"].astype(bool)
        df["last_run"] = pd.to_datetime(df["last_run"].astype("float64"), unit="s", utc=True)
        for col in ("runs", "failures", "timeouts", "dropped"):
            df[col] = df[col].astype("int64")
        return df

    @_loop.on_loop
    async def arun_hook(self, hook_id: str) -> Run:
        """Run a hook once, now, on the latest item of its node (within the hook's timeout);
        returns the journaled run."""
        hook = self.registry.get(hook_id)
        if hook is None:
            raise HooknbError(f"no hook with id {hook_id!r}")
        client = self.client(hook.account)
        items = await client.aget_items(hook.node, hook.service, max_items=1)
        if not items:
            raise HooknbError(f"node {hook.node!r} on {hook.service} has no item to run the hook on")
        _outcome, run = await self.engine.call_inline(hook, client, items[-1].item)
        return run

    run_hook = _loop.blocking(arun_hook)

    # ---------------------------------------------------------------- journals
    def events_frame(self, node: str | None = None, last: int | None = None) -> pd.DataFrame:
        """The events journal as a DataFrame (``received`` in UTC, categoricals for repeats)."""
        rows = self.events.snapshot()
        if node:
            rows = [e for e in rows if e.node == node]
        if last:
            rows = rows[-last:]
        return frame(rows, Event, {"ts": "received"})

    def runs_frame(self, node: str | None = None, last: int | None = None,
                   hook: str | None = None) -> pd.DataFrame:
        """The runs journal as a DataFrame (``start`` in UTC, ``duration`` in seconds)."""
        rows = self.runs.snapshot()
        if node:
            rows = [r for r in rows if r.node == node]
        if hook:
            rows = [r for r in rows if r.hook_id == hook]
        if last:
            rows = rows[-last:]
        return frame(rows, Run, {"ts": "start"})

    def wait_runs(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` runs in all have been journaled (False on timeout)."""
        return self.runs.wait(count, timeout)

    def wait_events(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` events in all have been journaled (False on timeout)."""
        return self.events.wait(count, timeout)

    # ---------------------------------------------------------------- store sharing
    def sync_store(self, account: str) -> bool:
        """Pick up hooks created or deleted in the store by another process; True if any."""
        version = self.store.data_version()
        if version == self._store_version:
            return False
        self._store_version = version
        before = {h.id for h in self.registry.all(account) if h.persistent}
        self._restore(account)
        after = {h.id for h in self.registry.all(account) if h.persistent}
        return before != after

    def gaps(self, account: str | None = None) -> pd.DataFrame:
        """Recorded gaps: nodes where items published while away were no longer all held."""
        df = pd.DataFrame(self.store.gaps(account),
                          columns=["account", "service", "node", "last_seen", "fetched", "ts"])
        df["ts"] = pd.to_datetime(df["ts"].astype("float64"), unit="s", utc=True)
        return df.rename(columns={"ts": "noticed"})

    def status(self) -> pd.DataFrame:
        """One row per account: state, last error, reconnects, subscriptions."""
        return pd.DataFrame([{"account": c.jid, "state": c.state, "last_error": c.last_error,
                              "reconnects": c.reconnects, "subscriptions": len(c.subscriptions)}
                             for c in self.clients.values()],
                            columns=["account", "state", "last_error", "reconnects", "subscriptions"])


_host: Host | None = None
_host_lock = threading.Lock()


def get_host() -> Host:
    """The process-wide :class:`Host`."""
    global _host
    with _host_lock:
        if _host is None:
            _host = Host()
        return _host


def connect(jid: str, password: str, host: str | None = None, port: int | None = None,
            plaintext: bool = False, cafile: str | None = None, direct_tls: bool = False,
            timeout: float = 20.0) -> Client:
    """Connect an account through the process-wide host; the same account gives the same client.

    Waits until the session has started and initial presence is sent.  Without ``host`` the
    JID's domain is looked up (SRV records).  TLS is STARTTLS, or direct TLS (XEP-0368) with
    ``direct_tls=True`` or on ports 5223 and 443; ``cafile`` names the CA certificates to trust
    (PEM).  ``plaintext=True`` (no TLS) is refused unless the host is a loopback address.  A
    failure to connect or authenticate raises :class:`~hooknb.errors.ConnectError`.
    """
    return get_host().connect(jid, password, host=host, port=port, plaintext=plaintext,
                              cafile=cafile, direct_tls=direct_tls, timeout=timeout)

