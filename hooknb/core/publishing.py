"""What a hook may ask for by returning it: :class:`Publish` and :class:`Retract` (``hooknb.Publish``).

A hook of any executor returns one of them, or a list or tuple of them; the process that received
the item performs them (:func:`perform`), in order, with the account that received it, at the
item's depth (so the loop guard, :mod:`hooknb.core.depth`, follows a chain through them).  A
thread hook may call ``client.publish`` itself instead; a hook run elsewhere
(:mod:`hooknb.executors.remote`) has no connection and can only return them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..xmpp import loop as _loop
from . import depth


@dataclass(frozen=True, slots=True)
class Publish:
    """Returned by a hook: publish ``payload`` (an XML string) as item ``id`` (None: the server
    chooses) on ``node`` of ``service`` (None: the account's own PEP service)."""

    node: str
    payload: str
    id: str | None = None
    service: str | None = None


@dataclass(frozen=True, slots=True)
class Retract:
    """Returned by a hook: retract item ``id`` from ``node`` of ``service`` (None: the account's
    own PEP service)."""

    node: str
    id: str
    service: str | None = None


REQUESTS = (Publish, Retract)


def requests(value: Any) -> list[Publish | Retract]:
    """The requests a hook's return value holds: itself if it is one, the items of a non-empty
    list or tuple made only of them, else none."""
    if isinstance(value, REQUESTS):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, REQUESTS) for v in value):
        return list(value)
    return []


async def perform(client: Any, wanted: list[Publish | Retract]) -> None:
    """Carry out ``wanted`` in order with ``client`` (on hooknb's loop); the first refusal
    raises its :class:`~hooknb.errors.PubSubError`."""
    for request in wanted:
        if isinstance(request, Publish):
            await client.apublish(request.node, request.payload, item_id=request.id, service=request.service)
        else:
            await client.aretract(request.node, request.id, service=request.service)


def perform_at(client: Any, wanted: list[Publish | Retract], level: int) -> None:
    """:func:`perform`, from a thread that is not the loop's, at depth ``level`` (the item's)."""
    with depth.running(level):
        _loop.call(perform(client, wanted))
