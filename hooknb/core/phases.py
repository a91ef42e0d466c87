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

The engine finds them (:meth:`hooknb.core.engine.Engine.intercept`); :func:`around` runs them around
the operation, and :class:`OperationItem` is what they see.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from ..xmpp.events import Event, Item, serialise
from ..errors import HooknbError, PubSubError, Veto, VetoError
from ..xmpp.operations import Operation, parse_payload

if TYPE_CHECKING:
    from ..xmpp.client import Client
    from ..xmpp.operations import Send
    from .hooks import Hook
    from .invoke import Invoker


class OperationItem(Item):
    """The ``item`` of a before/after hook: the pending operation, its payload and outcome."""

    __slots__ = ("operation", "outcome", "error", "result")

    def __init__(self, event: Event, operation: Operation, depth: int = 0) -> None:
        super().__init__(event, depth=depth)
        self.operation = operation
        self.outcome: str | None = None
        self.error: str | None = None
        self.result: Any = None

    @property
    def payload(self) -> str | None:  # type: ignore[override]
        """The payload about to be sent (settable in before hooks: XML string or Element)."""
        return serialise(self.operation.payload)

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


def operation_item(account: str, op: Operation, depth: int = 0) -> OperationItem:
    """The item a before/after hook receives for ``op``, performed by ``account`` at ``depth``
    (see :mod:`hooknb.core.depth`)."""
    return OperationItem(Event(account, op.service, op.node, op.op, op.item_id, account, None), op, depth)


async def around(invoker: Invoker, befores: list[Hook], afters: list[Hook], client: Client, op: Operation,
                 send: Send, level: int) -> Any:
    """Run the ``befores`` (any may veto or fail: nothing is sent), send, then run the ``afters``
    with the outcome; the operation's result, or its refusal raised (``level``: the depth of the
    run that made the operation, see :mod:`hooknb.core.depth`)."""
    for hook in befores:
        outcome, _run = await invoker.call_inline(hook, client, operation_item(client.jid, op, level))
        if isinstance(outcome.exc, Veto):
            raise VetoError(f"{op.op} to node {op.node!r} vetoed by before hook {hook.id}: "
                            f"{outcome.exc.reason}")
        if outcome.status != "ok":
            raise HooknbError(f"{op.op} to node {op.node!r} not sent: before hook {hook.id} "
                              f"failed ({outcome.error})")
        if outcome.result is not None:
            op.hook_data[hook.id] = outcome.result
    failed: PubSubError | None = None
    result = None
    try:
        result = await send(op)
    except PubSubError as exc:
        failed = exc
    for hook in afters:
        item = operation_item(client.jid, op, level)
        item.outcome = failed.condition if failed else "ok"
        item.error = str(failed) if failed else None
        item.result = result
        await invoker.call_inline(hook, client, item)
    if failed is not None:
        raise failed
    return result
