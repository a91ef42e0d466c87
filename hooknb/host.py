"""The public facade: accounts, hooks, journals (the seeds' "main instance", handed to hooks).

``hooknb.get_host()`` returns the process-wide :class:`Host`; ``hooknb.connect(...)`` connects
an account through it.  The host only wires the pipeline's stages together and answers for
them (see ``docs/architecture.md``): each account's :class:`~hooknb.xmpp.client.Client` feeds its
:class:`~hooknb.core.session.Session`, which feeds the shared :class:`~hooknb.core.engine.Engine`, which
fills the journals.  Every method that talks to the network exists as ``aname`` (awaitable)
and ``name`` (blocking).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import accounts
from .core import capture, policy, replay
from .xmpp import passwords
from .xmpp import loop as _loop
from .xmpp.secret import Secret, hide
from .xmpp.connection import DEFAULT_MAX_BYTES, ConnectOptions, account_jid, split_jid
from .core.engine import Engine
from .errors import HooknbError
from .xmpp.events import Event
from .core.hooks import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, MAX_DEPTH, Hook, HookSpec, check_action, hook_id
from .core.registry import Registry
from .core.inbox import Inbox
from .storage.journal import Journal, Run
from .core.lease import LEASE_TTL
from .core.positions import Positions
from .host_quarantine import MAX_ATTEMPTS, QuarantineMethods
from .core.session import Parts, Session
from .tables import Tables
from .storage.store import Store, check_trusted

if TYPE_CHECKING:
    from .xmpp.client import Client


class Host(Tables, QuarantineMethods):
    """Holds the connected accounts, the hook registry, the store and the journals."""

    def __init__(self, store_path: str | None = None, events_max: int = 100_000,
                 runs_max: int = 100_000, program: str | None = None, max_attempts: int = MAX_ATTEMPTS) -> None:
        self.clients: dict[str, Client] = {}
        self.registry = Registry()
        self.events: Journal[Event] = Journal(events_max)
        self.runs: Journal[Run] = Journal(runs_max)
        self.inbox = Inbox(lambda: self.store)
        #: The accounts whose persistent hooks run in this process (their sessions' leases write it).
        active: set[str] = set()
        self.engine = Engine(self.registry, self.events, self.runs, lambda: self.store, self.inbox, context=self,
                             executors={"dask": _dask_lane, "process": _process_lane}, active=active,
                             max_attempts=max_attempts)
        self.positions = Positions(self.registry)
        self._parts = Parts(self.engine, self.registry, self.positions, lambda: self.store, self.inbox,
                            self.events, active)
        #: Each connected account's session (the handler of its client).
        self.sessions: dict[str, Session] = {}
        #: Who this process is, in the account leases: ``PROGRAM:TOKEN``.
        self.holder = f"{program or os.path.basename(sys.argv[0] or 'python')}:{uuid.uuid4().hex[:12]}"
        self.default_account: str | None = None
        self.last_inferred: str | None = None
        self._store: Store | None = None
        self._store_path = store_path
        self._store_lock = threading.Lock()
        self._store_version: tuple[str, int] | None = None
        _loop.at_shutdown(self._aclose_all)

    def new_session(self) -> Session:
        """A session for an account's client, wired to this host's engine, store and journals."""
        return Session(self._parts, self.holder)

    def __repr__(self) -> str:
        return f"<hooknb.Host accounts={list(self.clients)} hooks={len(self.registry)}>"

    @property
    def store(self) -> Store:
        """The persistent store (opened on first use, in ``$HOOKNB_HOME``)."""
        with self._store_lock:
            if self._store is None:
                self._store = Store(self._store_path)
            return self._store

    # ---------------------------------------------------------------- accounts
    def account(self, account: str | None = None) -> str:
        """The bare JID of ``account``, else of the default account: ``$HOOKNB_JID``, else the last
        connected, else the only one with hooks in the store (:func:`hooknb.accounts.choose`)."""
        return account_jid(accounts.choose(account, self.default_account,
                                           lambda: (r["account"] for r in self.store.load_hooks()))).bare

    def client(self, account: str | None = None) -> Client:
        """The connected client of ``account`` (default: :meth:`account`'s)."""
        jid = self.account(account)
        client = self.clients.get(jid)
        if client is None or client.state in ("disconnected", "failed"):
            raise HooknbError(f"{jid} is not connected: use hooknb.connect({jid!r}, PASSWORD)")
        return client

    def _connected(self, jid: str) -> Client | None:
        client = self.clients.get(jid)
        return client if client is not None and client.state == "connected" else None

    @_loop.on_loop
    async def aconnect(self, jid: str, password: str | Secret, timeout: float = 20.0, **options: Any) -> Client:
        """Connect ``jid`` (or take its existing connection) as the default account, restoring its
        persistent hooks; ``options`` are those of :class:`~hooknb.xmpp.connection.ConnectOptions` (``host``,
        ``port``, ``cafile``, ``direct_tls``, ``plaintext``, ``max_bytes``).  :class:`ConnectError` if it
        cannot; :class:`TrustError` if others could write the store or the policy: nothing runs then."""
        password = hide(password)  # a traceback shows this frame's arguments (see hooknb.xmpp.secret)
        from .xmpp.client import Client  # slixmpp: imported once an account connects, not before
        settings = ConnectOptions(**options)
        bare = split_jid(jid).bare
        client = self.clients.get(bare)
        if client is None or client.state not in ("connected", "reconnecting", "connecting"):
            check_trusted(self._store_path)
            policy.check_trusted()
            session = self.sessions[bare] = self.new_session()
            client = Client(jid, password, settings, handler=session)
            self.clients[bare] = client
            try:
                await client.aconnect(timeout)
            except BaseException:
                self.clients.pop(bare, None)
                await self.sessions.pop(bare).close()  # a lease it took is freed, not left to expire
                raise
        self.default_account = bare
        return client

    @_loop.on_loop
    async def asubscribe_hooks(self, account: str | None = None) -> list[tuple[str, str]]:
        """Subscribe a connected account to the nodes of hooks added since (e.g. by :meth:`sync_store`);
        returns the (service, node) pairs newly subscribed (none while not connected)."""
        client = self._connected(self.account(account))
        return [] if client is None else await self.sessions[client.jid].subscribe_hooks(client)

    @_loop.on_loop
    async def adisconnect(self, account: str | None = None) -> None:
        """Disconnect an account (default: the default one); its temporary hooks end with it."""
        jid = self.account(account)
        client = self.clients.pop(jid, None)
        session = self.sessions.pop(jid, None)
        if client is not None:
            await session.close()
            await client.adisconnect()
        self.engine.remove([h.id for h in self.registry.all(jid) if not h.persistent])
        if self.default_account == jid:
            self.default_account = next(iter(self.clients), None)

    async def _aclose_all(self) -> None:
        for jid in list(self.clients):
            await self.adisconnect(jid)

    @_loop.on_loop
    async def aclose(self) -> None:
        """Disconnect every account and close the store."""
        await self._aclose_all()
        await asyncio.to_thread(self.inbox.close)
        if self._store is not None:
            self._store.close()

    @_loop.on_loop
    async def atake_over(self, account: str | None = None) -> None:
        """Run the account's persistent hooks in this process, even while another process (e.g.
        ``hooknb run``) holds its lease: that one stops running them within seconds."""
        client = self.client(account)
        await self.sessions[client.jid].take_over(client)

    close = _loop.blocking(aclose)
    take_over = _loop.blocking(atake_over)
    connect = _loop.blocking(aconnect)
    disconnect = _loop.blocking(adisconnect)
    subscribe_hooks = _loop.blocking(asubscribe_hooks)

    # ---------------------------------------------------------------- hooks
    @_loop.on_loop
    async def acreate_hook(self, node: str, arg: str, type: str | None = None, *,
                           service: str | None = None, persistent: bool = False,
                           account: str | None = None, on: str | list[str] | None = None,
                           phase: str = "event", priority: int = 0, timeout: float = DEFAULT_TIMEOUT,
                           publishers: list[str] | tuple[str, ...] = (), name: str | None = None,
                           pin: bool = False, create_node: bool = False,
                           node_config: dict[str, Any] | None = None, max_depth: int = MAX_DEPTH,
                           disabled: bool = False, executor: str = "thread",
                           concurrency: int = DEFAULT_CONCURRENCY, ordered: bool = True,
                           compat: str | None = None) -> Hook:
        """Create (validate, store, subscribe) a hook on ``node`` of ``service`` (default own PEP).
        ``type`` is python, python_file or python_code (inferred from ``arg`` when None:
        :attr:`last_inferred` says which); ``on``: the event kinds that trigger it (default
        ``publish``), or the operations of ``before``/``after`` hooks; ``name``: a hook to
        replace (``%%hook`` cells); ``publishers``: ``--from`` (``hook.warnings`` says if the
        service does not name publishers); ``pin``: refuse changed code; ``create_node`` (implied
        by ``node_config``) makes a missing node, else waited for; ``max_depth``: the loop guard
        (:mod:`hooknb.core.depth`); ``disabled``: journal what it would run, run nothing (:meth:`replay`
        tries it); ``executor="dask"``: run on Dask, ``concurrency`` at once, in order if ``ordered``
        (docs/executors.rst); ``compat="libervia"``: call it as Libervia calls its hooks (:mod:`hooknb.compat.libervia`).
        Creating the same (service, node, type, arg) again updates it."""
        jid = self.account(account)
        self.last_inferred = None
        type_, arg, kinds = check_action(node, arg, type, phase, timeout, on, max_depth, executor, concurrency)
        self.last_inferred = None if type else type_
        service = split_jid(service).bare if service else jid
        if persistent:
            check_trusted(self._store_path)
        rules = policy.load_rules()
        policy.check(service, node, type_, phase, rules)
        client = self._connected(jid)
        if not persistent and client is None:
            raise HooknbError(f"{jid} is not connected: temporary hooks need a connection "
                              "(or create it with persistent=True)")
        loader = self.engine.prepare(type_, arg, pin, compat)
        if (create_node or node_config) and client is None:
            raise HooknbError(f"{jid} is not connected: creating node {node!r} needs a connection")
        old = self.registry.get(hook_id(jid, service, node, type_, arg, phase))
        spec = HookSpec.make(jid, service, node, type_, arg, phase,
                             persistent=persistent or bool(old and old.persistent), kinds=kinds,
                             priority=priority, timeout=timeout, name=name, sha256=loader.digest, pin=pin,
                             publishers=frozenset(split_jid(p).bare for p in publishers), max_depth=max_depth,
                             disabled=disabled, executor=executor, concurrency=concurrency, ordered=ordered,
                             compat=compat,
                             **({"created": old.spec.created} if old else {}))
        exists, named = (await self.sessions[client.jid].attach(client, spec, create_node or bool(node_config), node_config)
                         if client is not None else (True, None))
        replaced = [h.id for h in self.registry.find(jid, service, node) if name and h.name == name
                    and h.id != spec.id]
        if replaced:
            await asyncio.to_thread(self.engine.remove, replaced)
        if spec.persistent:
            await asyncio.to_thread(self.store.save_hook, spec.to_record())
        hook = self.engine.install(spec, loader, rules)
        if named is not None:
            self.engine.note_publishers(hook, named)
        if not exists:
            self.sessions[client.jid].wait_for_node(client, service, node)
        return hook

    def create_hook(self, node: str, arg: str, type: str | None = None, **options: Any) -> Hook:
        """Blocking form of :meth:`acreate_hook`; what the hook prints shows under the calling cell."""
        return self.engine.show_output(_loop.call(self.acreate_hook(node, arg, type, **options)), capture.cell())

    def delete_hooks(self, node: str, service: str | None = None, type: str | None = None,
                     arg: str | None = None, account: str | None = None) -> int:
        """Delete the hooks on (service, node) matching ``type`` and ``arg`` (empty: any), stored
        ones too, offline too, even if their file is gone; how many were deleted."""
        jid = self.account(account)
        self._restore_if_offline(jid)
        found = self.registry.matching(jid, split_jid(service).bare if service else jid, node, type, arg)
        return len(self.engine.remove([h.id for h in found]))

    def delete_hook(self, hook_id: str) -> bool:
        """Delete one hook by its id (stored ones included); False if there is none."""
        return len(self.engine.remove([hook_id])) == 1

    def _restore_if_offline(self, jid: str) -> None:
        if jid not in self.clients:
            self.engine.restore(jid, load=False)

    def hooks(self, account: str | None = None, stored: bool = True) -> list[Hook]:
        """The hooks of an account (default: every account), stored ones included (unless not
        ``stored``: only those this process has loaded, without reading the store)."""
        jid = self.account(account) if account else None
        if stored:
            for each in [jid] if jid else {r["account"] for r in self.store.load_hooks()}:
                self._restore_if_offline(each)
        return self.registry.all(jid)

    def hook(self, hook_id: str) -> Hook:
        """The hook with this id (:class:`HooknbError` naming it if there is none)."""
        return self.registry.require(hook_id)

    def trial(self, spec: HookSpec) -> Hook:
        """A hook that is not registered, its code loaded, to be replayed (a ``%%hook replay`` cell)."""
        return self.engine.trial(spec)

    def stored_hooks(self, account: str | None = None) -> list[HookSpec]:
        """The persistent hooks in the store (of ``account``, or of every account), as they are
        stored: nothing is loaded."""
        return [HookSpec.from_record(r) for r in self.store.load_hooks(account)]

    def change_hooks(self, specs: list[HookSpec], deleted: list[HookSpec]) -> None:
        """Store persistent hooks (new ones, or new specs of existing ones) and delete others
        (``deleted``, as stored), in one store transaction, the specs validated by the caller (a
        manifest's plan: :mod:`hooknb.frontends.manifest`); the accounts connected here take the
        change up at once (their code loaded, their nodes subscribed), any other process with the
        store open within a second, as hooks made there."""
        check_trusted(self._store_path)
        self.store.change_hooks([s.to_record() for s in specs], [s.id for s in deleted])
        for jid in {s.account for s in [*specs, *deleted]}:
            if jid in self.clients:
                self.engine.restore(jid)
                self.subscribe_hooks(jid)
            elif self.registry.all(jid):
                self.engine.restore(jid, load=False)

    def list_hooks(self, account: str | None = None) -> list[dict[str, Any]]:
        """One listing record per hook (:data:`hooknb.core.hooks.SUMMARY_FIELDS`, the seeds' first): status
        and items waiting (those of hooks run by another process: as the store says), counters, errors."""
        return self.engine.listing(self.hooks(account), LEASE_TTL)

    @_loop.on_loop
    async def arun_hook(self, hook_id: str) -> Run:
        """Run a hook once, now, on the latest item of its node (within its timeout): the run."""
        hook = self.registry.require(hook_id)
        return await replay.arun_latest(self.engine.invoker, self.client(hook.account), hook)

    @_loop.on_loop
    async def areplay(self, hook: str | Hook, last: int | None = None, since: datetime | None = None,
                      client: Client | None = None, cell: dict[str, Any] | None = None) -> replay.Replay:
        """Run a hook, even disabled, on its node's stored items oldest first (all, the ``last`` newest
        or those dated ``since``) as replays, inbox and positions untouched (:mod:`hooknb.core.replay`)."""
        hook = hook if isinstance(hook, Hook) else self.registry.require(hook)
        return await replay.areplay(self.engine.invoker, client or self.client(hook.account), hook, last, since, cell)

    def enable(self, hook_id: str, enabled: bool = True) -> Hook:
        """Enable (or, with ``enabled=False``, disable) a hook, stored ones included."""
        return self.engine.set_enabled(hook_id, enabled)

    run_hook = _loop.blocking(arun_hook)
    replay = _loop.blocking(areplay)

    # ---------------------------------------------------------------- store sharing, state
    def sync_store(self, account: str) -> bool:
        """Pick up hooks created or deleted in the store by another process; True if any."""
        version = (self.store.id, self.store.hooks_generation())  # a store replaced starts again at 0
        if version == self._store_version:
            return False
        self._store_version = version
        before = {h.id for h in self.registry.all(account) if h.persistent}
        self.engine.restore(account)
        return before != {h.id for h in self.registry.all(account) if h.persistent}

    def check_store(self) -> None:
        """:class:`TrustError` if others could write the store (nothing would run from it);
        :class:`~hooknb.errors.StoreUnusableError` if it cannot be used (opened here, if not yet)."""
        self.store.check_trusted()

    def store_state(self) -> tuple[str | None, str | None]:
        """(why the store cannot be written now, the store's last notice), None when all is well."""
        return self.inbox.status, self.store.notice

    def runs_here(self, account: str) -> bool:
        """Whether this process runs the account's persistent hooks (it holds the lease)."""
        session = self.sessions.get(split_jid(account).bare)
        return session is not None and session.active

    def lease_holder(self, account: str) -> str:
        """Who runs the account's persistent hooks, in words ("this process", "nobody", or which)."""
        session = self.sessions.get(split_jid(account).bare)
        return session.describe_lease() if session is not None else "nobody"

    def waiting(self, hook_id: str | None = None) -> int:
        """Items queued in this process and not started, for a hook."""
        return self.engine.waiting(hook_id)

    def pending(self) -> int:
        """Items waiting or running in this process, every hook."""
        return self.engine.pending()

    async def aidle(self, timeout: float = 10.0) -> bool:
        """Wait until no hook has items waiting or running and the inbox has written everything
        (False if still busy after ``timeout`` seconds)."""
        return await self.engine.idle(timeout)

    idle = _loop.blocking(aidle)

    @_loop.on_loop
    async def astop_intake(self, account: str) -> None:
        """A clean stop, first step: take no more items for the account's persistent hooks; queued
        ones run on, and what arrives from now on waits in the node (the next holder catches up)."""
        session = self.sessions.get(split_jid(account).bare)
        if session is not None:
            session.stop_intake()

    stop_intake = _loop.blocking(astop_intake)

    def stop_lanes(self, account: str) -> None:
        """A clean stop, second step: what is still queued for the account's persistent hooks stays
        pending in the inbox; runs in progress end."""
        self.engine.stop_lanes(split_jid(account).bare)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the inbox wrote everything submitted so far (False on timeout)."""
        return self.inbox.flush(timeout)

    def pending_entries(self, account: str) -> int:
        """How many inbox entries of the account's persistent hooks have not run to their end."""
        return len(self.inbox.pending(split_jid(account).bare))



_host: Host | None = None
_host_lock = threading.Lock()


def get_host() -> Host:
    """The process-wide :class:`Host`."""
    global _host
    with _host_lock:
        if _host is None:
            _host = Host()
        return _host


def connect(jid: str | None = None, password: str | Secret | None = None, host: str | None = None,
            port: int | None = None, plaintext: bool = False, cafile: str | None = None,
            direct_tls: bool = False, timeout: float = 20.0, max_bytes: int = DEFAULT_MAX_BYTES) -> Client:
    """Connect an account (default: :meth:`Host.account`'s) as the default one, through the process-wide
    host; without ``password``: ``$HOOKNB_PASSWORD``, the keyring or a prompt (:mod:`hooknb.xmpp.passwords`);
    options: :meth:`Host.aconnect`.  :class:`~hooknb.errors.ConnectError` if it cannot."""
    password = hide(password)  # a traceback shows this frame's arguments (see hooknb.xmpp.secret)
    options = {"host": host, "port": port, "plaintext": plaintext, "cafile": cafile, "direct_tls": direct_tls,
               "max_bytes": max_bytes}
    ConnectOptions(**options).check(jid := jid or get_host().account())  # before asking for a password
    return get_host().connect(jid, passwords.resolve(jid, password), timeout=timeout, **options)


def _dask_lane(invoker: Any, hook: Hook) -> Any:
    """The lane of a ``--executor dask`` hook (the Dask executor is imported on first use)."""
    from .executors.dask_lane import DaskLane

    return DaskLane(invoker, hook)


def _process_lane(invoker: Any, hook: Hook) -> Any:
    """The lane of a ``--executor process`` hook (worker processes of this machine)."""
    from .executors.process_lane import ProcessLane

    return ProcessLane(invoker, hook)
