"""What a session asks of a node beside its items: does it exist, how many items it keeps, and
whether its service names publishers (for ``--from`` hooks)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..errors import HooknbError, PubSubError

if TYPE_CHECKING:
    from ..xmpp.client import Client


def node_missing(error: HooknbError) -> bool:
    """Whether a refusal says that the node does not exist."""
    return isinstance(error, PubSubError) and error.condition == "item-not-found"


async def capacity(client: Client, service: str, node: str, timeout: float | None = None) -> float:
    """How many items the node keeps (``pubsub#max_items``; infinite when unknown, or not
    answered within ``timeout`` seconds)."""
    try:
        return float(await asyncio.wait_for(client.anode_field(node, "pubsub#max_items", service), timeout))
    except (HooknbError, TypeError, ValueError, asyncio.TimeoutError):  # not the owner; no such field; "max"
        return float("inf")


async def publishers_named(client: Client, service: str, node: str) -> bool | None:
    """Whether ``service`` names the publisher of items on ``node``, as far as it shows without
    publishing (None: not known yet, the first notification will tell).

    Measured (see ``docs/security.rst``): Prosody's component names them in items and
    notifications alike, or in neither (``expose_publisher``), and has no ``pubsub#itemreply``;
    ejabberd names them in both exactly when the node's ``pubsub#itemreply`` is ``publisher``
    (only the owner may read it); Prosody's PEP names them in notifications but never in
    fetched items, so a fetched item without one proves nothing on a PEP service.
    """
    try:
        items = await client.aget_items(node, service, max_items=1)
    except HooknbError:
        items = []
    if items and items[-1].publisher:
        return True
    try:
        itemreply = await client.anode_field(node, "pubsub#itemreply", service)
    except HooknbError:
        itemreply = None
    if itemreply:
        return itemreply == "publisher"
    if items and not client.is_pep(service):
        return False
    return None
