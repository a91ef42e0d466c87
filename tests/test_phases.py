"""Before/after hooks around publish and retract (seed 003), against the real server."""

from __future__ import annotations

import pytest

from hooknb import PubSubError, Veto, VetoError
from hooknb.errors import HooknbError


@pytest.fixture
def setup(make_host, connect, server, node):
    """(host, publishing client, subscriber host, node) with the subscriber hooked on the node."""
    host = make_host()
    client = connect(host)
    client.create_node(node, server.pubsub)
    watcher_host = make_host()
    watcher = connect(watcher_host)
    watcher.subscribe(node, server.pubsub)
    return host, client, watcher_host, node


def test_before_hook_veto_stops_the_publish(setup, server):
    host, client, watcher_host, node = setup
    host.Veto = Veto
    code = "if 'secret' in item.payload:\n    raise host.Veto('no secrets here')"
    hook = host.create_hook(node, code, type="python_code", service=server.pubsub, phase="before")
    with pytest.raises(VetoError, match=f"vetoed by before hook {hook.id}: no secrets here"):
        client.publish(node, "<x xmlns='urn:t'>secret</x>", item_id="v1", service=server.pubsub)
    client.publish(node, "<x xmlns='urn:t'>public</x>", item_id="v2", service=server.pubsub)
    assert [e.item_id for e in client.get_items(node, server.pubsub)] == ["v2"]
    assert watcher_host.wait_events(1, 10)
    assert [e.item_id for e in watcher_host.events.snapshot()] == ["v2"]


def test_before_hooks_change_the_payload_and_hand_data_on_in_order(setup, server, tmp_path):
    host, client, watcher_host, node = setup
    stamp = tmp_path / "stamp.py"
    stamp.write_text(
        "import xml.etree.ElementTree as ET\n"
        "def hook(host, client, item):\n"
        "    ET.SubElement(item.xml, '{urn:t}stamp').text = 'checked'\n"
        "    return {'stamped': True}\n")
    stamp.chmod(0o644)
    first = host.create_hook(node, str(stamp), service=server.pubsub, phase="before", priority=1)
    second = host.create_hook(node, "item.payload = item.payload.replace('draft', 'final')\n"
                                    "sorted(item.hook_data)", type="python_code",
                              service=server.pubsub, phase="before", priority=2)
    after = host.create_hook(node, "(item.outcome, list(item.hook_data.items()), item.result)", type="python_code",
                             service=server.pubsub, phase="after")
    client.publish(node, "<x xmlns='urn:t'>draft</x>", item_id="c1", service=server.pubsub)
    assert watcher_host.wait_events(1, 10)
    payload = watcher_host.events.latest().payload
    assert payload == '<x xmlns="urn:t">final<stamp>checked</stamp></x>'
    runs = {r.hook_id: r for r in host.runs.snapshot()}
    assert [r.hook_id for r in host.runs.snapshot()] == [first.id, second.id, after.id]
    assert runs[second.id].result == repr([first.id])
    assert runs[after.id].result == repr(("ok", [(first.id, {"stamped": True}), (second.id, [first.id])],
                                          "c1"))


def test_after_hook_sees_an_error_outcome(make_host, connect, account, node):
    host = make_host()
    client = connect(host)
    other, _ = account("other")  # someone else's PEP service: publishing there is forbidden
    after = host.create_hook(node, "(item.outcome, item.error is not None)", type="python_code",
                             service=other, phase="after")
    with pytest.raises(PubSubError) as info:
        client.publish(node, "<x xmlns='urn:t'/>", service=other)
    assert host.wait_runs(1, 5)
    run = host.runs.latest()
    assert run.hook_id == after.id and run.status == "ok"
    assert run.result == repr((info.value.condition, True))
    assert info.value.condition in ("forbidden", "not-authorized", "item-not-found")


def test_failing_before_hook_blocks_and_after_hook_failure_is_only_journaled(setup, server):
    host, client, watcher_host, node = setup
    bad_before = host.create_hook(node, "1 / 0", type="python_code", service=server.pubsub,
                                  phase="before", on="retract")
    host.create_hook(node, "1 / 0", type="python_code", service=server.pubsub, phase="after")
    assert client.publish(node, "<x xmlns='urn:t'/>", item_id="r1", service=server.pubsub) == "r1"
    with pytest.raises(HooknbError, match=f"before hook {bad_before.id} failed .ZeroDivisionError"):
        client.retract(node, "r1", service=server.pubsub)
    assert [e.item_id for e in client.get_items(node, server.pubsub)] == ["r1"]
    assert [r.status for r in host.runs.snapshot()] == ["error", "error"]
