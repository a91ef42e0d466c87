"""The catch-up: what was published on hooked nodes while a session was away, accepted in order,
and the gaps where items may have been lost (:class:`CatchUp`, a part of
:class:`~hooknb.core.session.Session`).

Each hooked node's items are fetched and those after the node's stored position are accepted,
node after node, while the next nodes' items are asked for (:func:`window`: up to ``PREFETCH + 1``
requests in flight, fewer when the answers are large), so that the server prepares them while
the items before are written and queued.  A node that no longer holds the
last item seen, or that is full when it was seen empty, is a **gap**: recorded in the store, the
events journal (kind ``gap``), the log and the client's ``last_error``.  (Full: it holds as
many items as it keeps, asked of the server unless it holds fewer than it kept when it was seen
empty, where that was noted: :func:`~hooknb.core.positions.empty`.)
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..errors import HooknbError
from ..xmpp.events import Event
from .inbox import Position, digest
from .nodes import capacity, node_missing
from .positions import Mark, NodeKey, room_of

if TYPE_CHECKING:
    from ..xmpp.client import Client

log = logging.getLogger(__name__)
PREFETCH = 31  # nodes whose items are asked for while a catch-up takes in one (32 fetches in flight)
ITEMS_IN_FLIGHT = 1000  # items asked for at once, by the mean answer so far (see window)
FIRST_WINDOW = 4  # requests in flight until an answer tells how large they are
NODE_TIMEOUT = 5.0  # seconds a node's items may take to come: a node never answered for blocks nothing else


def window(answers: int, items: int) -> int:
    """How many item requests a catch-up keeps in flight after ``answers`` answers that held
    ``items`` items: ``FIRST_WINDOW`` before any answer; ``PREFETCH + 1`` for small answers
    (thousands of nodes with a few items: the round trips are what takes time), down to 2 when
    each answer holds ``ITEMS_IN_FLIGHT / 2`` items or more.  A server handles the requests it
    has read before it writes any answer (Prosody does): with 32 large answers in flight, none
    comes back until all are made, and nothing is taken in or run meanwhile; with a few, the
    items before run while the server makes the next answers."""
    if not answers:
        return FIRST_WINDOW
    if not items:
        return PREFETCH + 1
    return max(2, min(PREFETCH + 1, ITEMS_IN_FLIGHT * answers // items))


class CatchUp:
    """The catch-up part of a session (its state: ``_marks``, ``_late``, ``positions``, ``gaps``,
    ``closed``)."""

    async def _catch_up(self, client: Client) -> None:
        """Fetch what was published on hooked nodes while away and accept what was missed, node
        after node; the next nodes' items are asked for meanwhile (:func:`window`), as soon as
        an answer comes, so that the server prepares them while the items before are written
        and queued.  At most ``PREFETCH + 1`` nodes' answers wait to be taken in."""
        marks, self._marks = self._marks, {}
        late, self._late = self._late, {}
        keys = iter([(client.jid, service, node)
                     for service, node in sorted(self.registry.nodes(client.jid) - self.waiting)])
        ahead: deque[tuple[NodeKey, asyncio.Future]] = deque()
        checks: list[asyncio.Future] = []  # nodes seen empty whose room decides a gap (_check_room)
        answered = [0, 0]  # answers, and the items they held
        flying = [0]  # item requests not answered yet
        over = False  # no more requests once the catch-up has ended

        def ask() -> None:
            while not (over or self.closed) and len(ahead) < PREFETCH + 1 and flying[0] < window(*answered):
                key = next(keys, None)
                if key is None:
                    return
                flying[0] += 1
                ahead.append((key, asyncio.ensure_future(self._fetch(client, key, marks.get(key), came))))

        def came(items: int) -> None:  # a node's items came (a refusal or no answer: none)
            flying[0] -= 1
            answered[0] += 1
            answered[1] += items
            ask()

        try:
            while True:
                ask()
                if not ahead or self.closed:
                    return
                key, items = ahead[0]
                self.activity = f"catching up {key[1]} node {key[2]!r}"
                await asyncio.wait((items,))  # its items, and its room if that is asked
                ahead.popleft()
                self.progress += 1
                await self._catch_up_node(client, key, marks.get(key), late.get(key, frozenset()), items, checks)
        finally:
            over = True
            for _key, items in ahead:  # the catch-up ended early (the session did, or it failed)
                if not items.cancel() and not items.cancelled() and items.exception() is None:
                    room = items.result()[1]  # (a fetch that failed meanwhile: nothing more to report)
                    if room is not None:
                        room.cancel()
            if checks:  # every position written before the live events held are taken in
                await asyncio.gather(*checks, return_exceptions=True)

    async def _fetch(self, client: Client, key: NodeKey, mark: Mark | None,
                     came: Callable[[int], None] | None = None) -> tuple[Any, asyncio.Future | None]:
        """The answer holding a node's items (:meth:`~hooknb.xmpp.pubsub.PubSub.aitems_answer`);
        and if it was seen empty and holds some now, how many it keeps (which tells whether some
        may have gone meanwhile): asked for at once, as a task (None when not asked), not after
        the nodes before it were taken in.  Not asked when the node holds fewer than it kept
        when it was seen empty (noted then, see :meth:`~hooknb.core.session.Session.mark`).

        ``came`` is told how many items came (none: refused or unanswered) as soon as the
        answer does, before its items are made into events and before the question of room is
        asked: the next node's request goes out then, and the server prepares it meanwhile."""
        _account, service, node = key
        held = 0
        try:
            answer = await asyncio.wait_for(client.aitems_answer(node, service), NODE_TIMEOUT)
            held = client.items_held(answer)
        finally:
            if came is not None:
                came(held)
        known = room_of(mark)  # noted when it was seen empty: fewer items now, none may have gone
        ask = mark is not None and not mark[0] and held and (known is None or held >= known)
        return answer, asyncio.ensure_future(capacity(client, service, node)) if ask else None

    async def _catch_up_node(self, client: Client, key: NodeKey, mark: Mark | None,
                             late: frozenset[str] = frozenset(),
                             fetch: Awaitable[tuple[Any, asyncio.Future | None]] | None = None,
                             checks: list[asyncio.Future] | None = None) -> None:
        """Accept what a node holds after the item ``mark`` names (("", ""): all of it; None:
        nothing, the node is only looked at for the first time and its position noted) for its
        hooks but the ``late`` ones (see :meth:`_read_marks`), which start after it; ``fetch``:
        its items (and room, see :meth:`_fetch`), asked for already.

        A node seen empty that holds items now is a gap if it holds all it keeps: its items are
        accepted at once, and its new position written once that is known and a gap recorded
        (:meth:`_check_room`), awaited here, or added to ``checks`` for the caller to await."""
        _account, service, node = key
        try:
            answer, room = await (fetch or self._fetch(client, key, mark))
        except (HooknbError, asyncio.TimeoutError) as exc:
            await self._unanswered(client, key, mark, exc)
            return
        self._node_answered(key)
        items = client.item_events(service, node, answer)
        ids = [e.item_id for e in items]
        if mark is None:  # first look at this node: remember where it stands
            self._write_position(self.positions.remember(key, items), self._persistent(client, service, node))
            return
        last, version = mark
        if last in ids:  # the item after it; or it, if it was republished since
            at = ids.index(last)
            missed = items[at + (1 if digest(items[at]) == version or not version else 0):]
        else:  # "" marks a node seen empty
            missed = items
            if last:
                await self._gap(client, service, node, last, len(items))
        held = self.accept(client, missed, late, hold_positions=room is not None) if missed else []
        if late:  # noted again now: the late hooks are followed from here on
            position = self.positions.remember(key, items, room_of(mark))
            if room is None:
                self._write_position(position, True)
            else:
                held.append(position)
        if room is not None:
            check = self._check_room(client, key, room, len(items), held)
            if checks is None:
                await check
            else:
                checks.append(asyncio.ensure_future(check))

    async def _check_room(self, client: Client, key: NodeKey, room: Awaitable[float], held: int,
                          positions: list[Position]) -> None:
        """A node seen empty holds ``held`` items now: a gap if that is all it keeps.  The
        question of its room went to the server when its items came, behind the next nodes'
        requests; its items are taken in and run meanwhile.  Its new ``positions`` are written
        only after the gap is recorded: a process that ends before asks again (the items taken
        in already are not run twice: the inbox keeps one entry per item version)."""
        _account, service, node = key
        try:
            full = held >= await asyncio.wait_for(room, NODE_TIMEOUT)
        except asyncio.TimeoutError:  # not known, as when the server will not tell (capacity)
            full = False
        if full:
            await self._gap(client, service, node, "", held)
        self._write_positions(positions)

    async def _unanswered(self, client: Client, key: NodeKey, mark: Mark | None, exc: Exception) -> None:
        """A node whose items could not be fetched (refused, or no answer within ``NODE_TIMEOUT``):
        its hooks say so, and if items were to be caught up there, a gap is recorded; the
        catch-up of the other nodes goes on."""
        _account, service, node = key
        if isinstance(exc, HooknbError) and node_missing(exc):  # nothing to fetch: not an error
            self._node_answered(key)
            return
        why = str(exc) if isinstance(exc, HooknbError) else f"no answer within {NODE_TIMEOUT:g} s"
        error = f"the items of {service} node {node!r} could not be fetched ({why})"
        if self.closed:  # the session was given up meanwhile: the next one looks again
            return
        for hook in self.registry.find(*key):
            hook.node_error = error
        log.warning("%s: %s; the other nodes go on", client.jid, error)
        if mark is not None:
            await self._gap(client, service, node, mark[0], 0, f"{why}; items published while away may be missed")

    def _write_positions(self, positions: list[Position]) -> None:
        """Persist positions of persistently hooked nodes (through the inbox, off the loop)."""
        if positions and self.active:
            self.inbox.submit([], positions)

    def _node_answered(self, key: NodeKey) -> None:
        for hook in self.registry.find(*key):
            hook.node_error = None

    async def _gap(self, client: Client, service: str, node: str, last: str, held: int,
                   why: str | None = None) -> None:
        """Record that items published while away may be lost (``why``: the node did not answer):
        in the store, the events journal (kind ``gap``), the log and the client's ``last_error``."""
        self.gaps += 1
        seen = why or (f"item {last!r} is no longer held" if last else
                       f"it was empty and now holds {held} items, all it keeps")
        client.last_error = f"gap on {service} node {node!r}: {seen}" + ("" if why else "; items published while away may be lost")
        log.warning("%s: %s", client.jid, client.last_error)
        self.events.append(Event(client.jid, service, node, "gap", last or None, None, None))
        try:
            await asyncio.to_thread(self._store().add_gap, client.jid, service, node, last, held)
        except HooknbError as exc:
            log.error("%s: the gap could not be recorded in the store: %s", client.jid, exc)
