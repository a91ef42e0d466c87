"""The facade's part of poison items: the attempts limit, the quarantined items, retry and discard.

Methods of :class:`hooknb.host.Host` (a mixin, kept apart so that the facade stays small); the
work is :mod:`hooknb.core.quarantine`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .core.quarantine import MAX_ATTEMPTS
from .xmpp import loop as _loop
from .xmpp.connection import split_jid

__all__ = ["MAX_ATTEMPTS", "QuarantineMethods"]

if TYPE_CHECKING:
    from .core.engine import Engine
    from .core.hooks import Hook
    from .xmpp.client import Client


class QuarantineMethods:
    """What :class:`~hooknb.host.Host` answers about poison items (:mod:`hooknb.core.quarantine`)."""

    # the Host's
    engine: Engine
    hook: Callable[[str], Hook]
    runs_here: Callable[[str], bool]
    _connected: Callable[[str], Client | None]

    @property
    def max_attempts(self) -> int:
        """Runs of a persistent hook's item that ended with their process (or worker process)
        dying, after which the item is quarantined instead of run."""
        return self.engine.quarantine.max_attempts

    @max_attempts.setter
    def max_attempts(self, value: int) -> None:
        self.engine.quarantine.max_attempts = value

    def quarantine(self, action: str, hook_id: str, item: str | None = None) -> int:
        """``retry`` the hook's quarantined items (``item``'s only, if given), their attempts
        counted from zero, or ``discard`` them (done, never run); how many.  Retried items run at
        once if this process runs the account's persistent hooks (else that process takes them:
        ``hooknb run`` within a second, a notebook at its next start)."""
        hook, quarantine = self.hook(hook_id), self.engine.quarantine
        count = (quarantine.retry if action == "retry" else quarantine.discard)(hook, item)
        self.run_retried(hook.account)
        return count

    def run_retried(self, account: str) -> int:
        """Run the account's retried items now if this process runs its persistent hooks; how many."""
        client = self._connected(split_jid(account).bare)
        if client is None or not self.runs_here(client.jid):
            return 0
        return _loop.call(self.engine.quarantine.arun_retried(client, self.engine.deliver))

    def quarantined(self, account: str | None = None) -> list[dict[str, Any]]:
        """The quarantined items (of ``account``): hook, service, node, item, attempts, since."""
        return self.engine.quarantine.items(split_jid(account).bare if account else None)
