"""Hooked nodes that do not exist (yet, or any more: deleted) are waited for (:class:`NodeWaits`,
a part of :class:`~hooknb.core.session.Session`).

Their hooks show ``waiting for node``; the session tries to subscribe again every ``NODE_POLL``
seconds, at every session start and when a cut stream is resumed.  A missing node counts as a node seen empty, so once it
appears, every item it holds (all published since it appeared) is run, in order, before the live
ones that arrived meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..xmpp.client import Client

NODE_POLL = 2.0  # seconds between looks for the hooked nodes that do not exist yet
Pair = tuple[str, str]  # (service, node)


class NodeWaits:
    """The waiting-for-nodes part of a session (its state: ``waiting``, ``_appearing``, ``_poller``)."""

    def wait_for_node(self, client: Client, service: str, node: str) -> None:
        """Wait for a hooked node that does not exist: its hooks say so, and it is looked for
        every ``NODE_POLL`` seconds (and at every session start).  Until it appears it counts as
        a node seen empty: whatever it holds then was published after it appeared."""
        key = (client.jid, service, node)
        if (service, node) not in self.waiting:
            self._write_position(self.positions.remember(key, []), self._persistent(client, service, node))
            self.waiting.add((service, node))
        for hook in self.registry.find(*key):
            hook.waiting = True
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll_waiting(client))

    async def session_resumed(self, client: Client) -> None:
        """A stream resumed after a cut (the session's ``ClientHandler`` method): nothing was
        missed, but the nodes waited for are looked at again, as a new session would (their
        poller stops when the connection drops)."""
        if self.waiting and self._held is None:
            await self._check_waiting(client)
            if self.waiting and (self._poller is None or self._poller.done()):
                self._poller = asyncio.get_running_loop().create_task(self._poll_waiting(client))

    async def _poll_waiting(self, client: Client) -> None:
        """Look for the nodes waited for until none is left or the session ends (a new session
        looks at every node itself)."""
        while self.waiting and client.state == "connected":
            await asyncio.sleep(NODE_POLL)
            if client.state == "connected" and self._held is None:
                await self._check_waiting(client)

    async def _check_waiting(self, client: Client) -> list[Pair]:
        """Subscribe to the nodes waited for that exist now, and run what they hold (all
        published since they appeared) before the live events that arrive meanwhile; returns
        the pairs that appeared."""
        self.waiting &= self.registry.nodes(client.jid)  # hooks deleted meanwhile
        pairs = set(self.waiting)
        self._appearing.update((pair, []) for pair in pairs)
        appeared: list[Pair] = []
        try:
            appeared = await self._subscribe_hooked(client, pairs)
            for service, node in appeared:
                key = (client.jid, service, node)
                await self._catch_up_node(client, key, self.positions.get(key))
        finally:
            for pair in pairs:
                held = self._appearing.pop(pair)
                if held:
                    self.accept(client, held)
        return appeared
