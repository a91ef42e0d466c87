"""Every hook of the process, indexed for dispatch and for the session (:class:`Registry`).

Each operation costs what it touches, never the number of hooks: adding or removing a hook
re-sorts the hooks of its own node only; dispatch is one dict lookup; the hooks of a node, the
nodes of an account and whether an account has persistent hooks are read from indexes kept up to
date as hooks come and go.  Only :meth:`Registry.all` sorts every hook of an account (listings).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from ..errors import HooknbError
from .hooks import Hook
from .loading import TYPES, normalize_arg

Key = tuple[str, str, str, str]  # (account, service, node, phase)
NodeKey = tuple[str, str, str]  # (account, service, node)


class Registry:
    """Every hook of the process, indexed (see the module docstring); written under a lock,
    read without one (dispatch reads an index entry, which is replaced, never changed)."""

    def __init__(self) -> None:
        self._hooks: dict[str, Hook] = {}
        self._index: dict[Key, tuple[Hook, ...]] = {}  # run order, per node and phase
        self._by_node: dict[NodeKey, dict[str, Hook]] = {}  # every phase
        self._accounts: dict[str | None, dict[str, Hook]] = {}
        self._nodes: dict[str, Counter[tuple[str, str]]] = {}  # event hooks per (service, node)
        self._persistent: Counter[str] = Counter()  # persistent hooks per account
        self._lock = threading.RLock()
        #: Called with the hooks each :meth:`remove` took out, on the thread that removed them.
        self.removed: list[Callable[[list[Hook]], None]] = []

    def __len__(self) -> int:
        return len(self._hooks)

    def __contains__(self, hook_id: str) -> bool:
        return hook_id in self._hooks

    def get(self, hook_id: str) -> Hook | None:
        """The hook with this id, or None."""
        return self._hooks.get(hook_id)

    def require(self, hook_id: str) -> Hook:
        """The hook with this id; a one-line :class:`HooknbError` if there is none."""
        hook = self._hooks.get(hook_id)
        if hook is None:
            raise HooknbError(f"no hook with id {hook_id!r}")
        return hook

    def all(self, account: str | None = None) -> list[Hook]:
        """Every hook (of one account), in creation order (sorted now: for listings)."""
        hooks = self._hooks if account is None else self._accounts.get(account, {})
        return sorted(list(hooks.values()), key=lambda h: (h.created, h.id))

    def has_persistent(self, account: str) -> bool:
        """Whether the account has persistent hooks here."""
        return self._persistent[account] > 0

    def lookup(self, account: str, service: str, node: str, phase: str = "event") -> tuple[Hook, ...]:
        """The hooks attached to one node for one phase, in run order (one dict lookup)."""
        return self._index.get((account, service, node, phase), ())

    def _reindex(self, key: Key) -> None:
        hooks = tuple(sorted((h for h in self._by_node.get(key[:3], {}).values() if h.phase == key[3]),
                             key=lambda h: h.order))
        if hooks:
            self._index[key] = hooks
        else:
            self._index.pop(key, None)

    def _index_hook(self, hook: Hook, sign: int) -> None:
        account, service, node = hook.account, hook.service, hook.node
        if sign > 0:
            self._by_node.setdefault((account, service, node), {})[hook.id] = hook
            self._accounts.setdefault(account, {})[hook.id] = hook
        else:
            self._by_node.get((account, service, node), {}).pop(hook.id, None)
            if not self._by_node.get((account, service, node), True):
                del self._by_node[(account, service, node)]
            self._accounts.get(account, {}).pop(hook.id, None)
        if hook.phase == "event":
            nodes = self._nodes.setdefault(account, Counter())
            nodes[(service, node)] += sign
            if nodes[(service, node)] <= 0:
                del nodes[(service, node)]
        if hook.persistent:
            self._persistent[account] += sign

    def add(self, hook: Hook) -> None:
        """Add (or replace) a hook."""
        with self._lock:
            old = self._hooks.get(hook.id)
            if old is not None:
                self._index_hook(old, -1)
            self._hooks[hook.id] = hook
            self._index_hook(hook, +1)
            self._reindex((hook.account, hook.service, hook.node, hook.phase))

    def respec(self, hook: Hook, spec: object) -> None:
        """Give a registered hook a new spec (same id), keeping the indexes right."""
        with self._lock:
            self._index_hook(hook, -1)
            hook.spec = spec
            self._index_hook(hook, +1)
            self._reindex((hook.account, hook.service, hook.node, hook.phase))

    def remove(self, hook_ids: list[str]) -> list[Hook]:
        """Remove hooks by id; returns the removed ones (and tells the :attr:`removed` listeners)."""
        with self._lock:
            removed = [self._hooks.pop(i) for i in hook_ids if i in self._hooks]
            for hook in removed:
                self._index_hook(hook, -1)
            for key in {(h.account, h.service, h.node, h.phase) for h in removed}:
                self._reindex(key)
        if removed:
            for listener in self.removed:
                listener(removed)
        return removed

    def find(self, account: str, service: str, node: str, type_: str | None = None,
             arg: str | None = None, phase: str | None = None) -> list[Hook]:
        """The account's hooks on (service, node) matching type and arg; empty type/arg match every hook."""
        candidates = list(self._by_node.get((account, service, node), {}).values())
        return sorted((h for h in candidates if (not type_ or h.type == type_) and (not arg or h.arg == arg)
                       and (phase is None or h.phase == phase)), key=lambda h: (h.created, h.id))

    def matching(self, account: str, service: str, node: str, type_: str | None,
                 arg: str | None) -> list[Hook]:
        """The hooks ``delete`` means: on (service, node), of ``type_`` and ``arg`` when given
        (a file given without its type is also looked for by its absolute path)."""
        if type_ and type_ not in TYPES:
            raise HooknbError(f"unknown hook type {type_!r}; choose one of {', '.join(TYPES)}")
        found = self.find(account, service, node, type_, normalize_arg(type_, arg) if arg and type_ else arg)
        if arg and not type_ and not found:
            found = self.find(account, service, node, None, normalize_arg("python_file", arg))
        return found

    def hooked(self, account: str, service: str, node: str) -> bool:
        """Whether any hook (of any phase) is attached to the node."""
        return (account, service, node) in self._by_node

    def nodes(self, account: str) -> set[tuple[str, str]]:
        """The (service, node) pairs an account has event hooks on."""
        return set(self._nodes.get(account, ()))
