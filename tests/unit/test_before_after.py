"""Before and after hooks around publish and retract, run by the engine with a stand-in for
the network send: order, payload changes, data handed on, vetoes, failures, outcomes."""

from __future__ import annotations

import pytest

from hooknb.xmpp import loop as _loop
from hooknb.xmpp.operations import Operation, parse_payload
from hooknb.errors import HooknbError, PubSubError, VetoError
from hooknb.core.hooks import HookSpec
from unit.fakes import ACCOUNT, FakeClient

NODE = "n"


def phase_hook(host, phase, code, priority=0, kinds=frozenset({"publish"})):
    return host.engine.install(HookSpec.make(ACCOUNT, ACCOUNT, NODE, "python_code", code, phase,
                                             priority=priority, kinds=kinds))


def publish(host, payload="<p xmlns='urn:t'>hi</p>", refuse=None):
    sent = []

    async def send(op: Operation):
        sent.append(op.payload.text if op.payload is not None else None)
        if refuse:
            raise PubSubError("refused", refuse)
        return "item-1"

    op = Operation("publish", ACCOUNT, NODE, None, parse_payload(payload))
    return _loop.call(host.engine.intercept(FakeClient(), op, send)), sent


def test_without_phase_hooks_the_operation_is_sent_as_is(host):
    assert publish(host) == ("item-1", ["hi"])


def test_before_hooks_run_in_priority_order_change_the_payload_and_hand_on_data(host):
    second = phase_hook(host, "before", "item.xml.text += '-2'\n'second'", priority=2)
    first = phase_hook(host, "before", "item.xml.text += '-1'\n'first'", priority=1)
    after = phase_hook(host, "after", "(item.outcome, item.result, dict(item.hook_data))")
    assert publish(host) == ("item-1", ["hi-1-2"])
    results = {r.hook_id: r.result for r in host.runs.snapshot()}
    assert results[after.id] == repr(("ok", "item-1", {first.id: "first", second.id: "second"}))


def test_a_veto_stops_the_operation_and_names_the_hook(host):
    hook = phase_hook(host, "before", "from hooknb import Veto\nraise Veto('not today')")
    with pytest.raises(VetoError, match=f"vetoed by before hook {hook.id}: not today") as caught:
        publish(host)
    assert caught.value.condition == "vetoed"


def test_a_failing_before_hook_stops_the_operation(host):
    phase_hook(host, "before", "1 / 0")
    with pytest.raises(HooknbError, match=r"not sent: before hook \w+ failed \(ZeroDivisionError"):
        publish(host)


def test_after_hooks_see_a_refusal_which_still_reaches_the_caller(host):
    after = phase_hook(host, "after", "(item.outcome, item.error)")
    with pytest.raises(PubSubError, match="refused"):
        publish(host, refuse="forbidden")
    assert host.runs.latest().hook_id == after.id
    assert host.runs.latest().result == repr(("forbidden", "refused"))


def test_hooks_on_retract_only_leave_publish_alone(host):
    phase_hook(host, "before", "1 / 0", kinds=frozenset({"retract"}))
    assert publish(host) == ("item-1", ["hi"])
