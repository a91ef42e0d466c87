"""Before and after hooks around the operations hooknb performs (publish, retract).

Seed 003's 'B' and 'A' hooks, for PubSub:

* ``before`` hooks run, in order (priority, then creation), before the request is sent.  Each
  receives an :class:`OperationItem`; it may replace ``item.payload``, may return data (kept in
  ``item.hook_data[hook_id]`` and handed to later hooks and to after hooks), and may stop the
  operation by raising :class:`hooknb.Veto`.  A before hook that fails or times out also stops
  the operation: nothing is sent and the caller gets a clear error.
* ``after`` hooks run once the server answered.  ``item.outcome`` is ``"ok"`` or the XMPP
  error condition (``"forbidden"``, ``"item-not-found"``...), ``item.error`` the message.
  They cannot change the outcome; their own failures are journaled and ignored.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slixmpp.xmlstream import tostring

from .client import Client, Operation, PubSubError, parse_payload
from .errors import HooknbError, Veto
from .events import Event, Item

if TYPE_CHECKING:
    from .host import Host


class VetoError(HooknbError):
    """An operation was stopped by a before hook."""


class OperationItem(Item):
    """The ``item`` of a before/after hook: the pending operation, its payload and outcome."""

    __slots__ = ("operation", "outcome", "error", "result")

    def __init__(self, event: Event, operation: Operation) -> None:
        super().__init__(event)
        self.operation = operation
        self.outcome: str | None = None
        self.error: str | None = None
        self.result: Any = None

    @property
    def payload(self) -> str | None:  # type: ignore[override]
        """The payload about to be sent (settable in before hooks: XML string or Element)."""
        op = self.operation.payload
        return None if op is None else tostring(op)

    @payload.setter
    def payload(self, value: str | ET.Element | None) -> None:
        self.operation.payload = parse_payload(value)
        self._xml = None

    @property
    def xml(self) -> ET.Element | None:  # type: ignore[override]
        """The payload Element itself (changes to it change what is sent)."""
        return self.operation.payload

    @property
    def hook_data(self) -> dict[str, Any]:
        """Data returned by the before hooks that ran so far, by hook id."""
        return self.operation.hook_data

    def __repr__(self) -> str:
        return (f"OperationItem(op={self.operation.op!r}, node={self.node!r}, id={self.id!r}, "
                f"outcome={self.outcome!r})")


def _item(client: Client, op: Operation) -> OperationItem:
    event = Event(client.jid, op.service, op.node, op.op, op.item_id, client.jid, None)
    return OperationItem(event, op)


async def intercept(host: Host, client: Client, op: Operation,
                    send: Callable[[Operation], Awaitable[Any]]) -> Any:
    """Run before hooks, send (unless vetoed), then run after hooks; the client's interceptor."""
    lookup = host.registry.lookup
    befores = [h for h in lookup(client.jid, op.service, op.node, "before") if op.op in h.kinds]
    afters = [h for h in lookup(client.jid, op.service, op.node, "after") if op.op in h.kinds]
    if not befores and not afters:
        return await send(op)
    for hook in befores:
        item = _item(client, op)
        outcome, _run = await host.engine.call_inline(hook, client, item)
        if isinstance(outcome.exc, Veto):
            raise VetoError(f"{op.op} to node {op.node!r} vetoed by before hook {hook.id}: "
                            f"{outcome.exc.reason}")
        if outcome.status != "ok":
            raise HooknbError(f"{op.op} to node {op.node!r} not sent: before hook {hook.id} "
                              f"failed ({outcome.error})")
        if outcome.result is not None:
            op.hook_data[hook.id] = outcome.result
    failure: PubSubError | None = None
    result = None
    try:
        result = await send(op)
    except PubSubError as exc:
        failure = exc
    for hook in afters:
        item = _item(client, op)
        item.outcome = failure.condition if failure else "ok"
        item.error = str(failure) if failure else None
        item.result = result
        await host.engine.call_inline(hook, client, item)
    if failure is not None:
        raise failure
    return result
