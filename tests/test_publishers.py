"""``--from`` against the real local server: what each service says of publishers (measured, and
documented in ``docs/security.rst``), the warning where it says nothing, the ``skipped`` records,
and ``--from`` working where the publisher is named."""

from __future__ import annotations

import pytest
from helpers import hiding_node

from hooknb import server as srv
from hooknb.core.hooks import PUBLISHER_NAMED, PUBLISHER_PENDING, PUBLISHER_UNKNOWN
from hooknb.frontends.widgets import HookManager

pytestmark = pytest.mark.integration

ATOM_BY = ('<entry xmlns="http://www.w3.org/2005/Atom"><author><name>{0}</name><uri>xmpp:{0}</uri>'
           '</author><title>hello</title></entry>')

#: What each service puts in an item's ``publisher`` attribute ("bare" or "full" JID, None: no
#: attribute) in notifications and in get_items results, and its node config's
#: ``pubsub#itemreply`` (None: no such field): the table of docs/security.rst.
#: (case, where, node config asked at creation, notification, get_items, itemreply)
MEASURED = {
    "prosody": [
        ("component, expose_publisher = true (hooknb's server)", "pubsub", None, "bare", "bare", None),
        ("component as shipped (expose_publisher = false)", "hidden", None, None, None, None),
        ("component as shipped, itemreply = publisher asked", "hidden", {"itemreply": "publisher"},
         None, None, None),
        ("PEP", "pep", None, "bare", None, None),
    ],
    "ejabberd": [
        ("component, itemreply = publisher (hooknb's server default)", "pubsub", None,
         "full", "full", "publisher"),
        ("component, itemreply = none", "pubsub", {"itemreply": "none"}, None, None, "none"),
        ("component, itemreply = owner", "pubsub", {"itemreply": "owner"}, None, None, "owner"),
        ("PEP (default itemreply = none)", "pep", None, None, None, "none"),
        ("PEP, itemreply = publisher", "pep", {"itemreply": "publisher"}, "full", "full", "publisher"),
    ],
}


def shape(publisher: str | None, jid: str) -> str | None:
    """"bare" or "full" for a publisher naming ``jid``, None for none."""
    if publisher is None:
        return None
    assert publisher.split("/")[0] == jid
    return "full" if "/" in publisher else "bare"


def test_what_each_service_says_of_publishers(make_host, connect, account, server, node):
    observed, expected = {}, {}
    for i, (case, where, config, notification, items, itemreply) in enumerate(MEASURED[server.kind]):
        name = f"{node}-{i}"
        watch_host = make_host()
        if where == "pep":
            jid, password = account("pep")
            watcher = connect(watch_host, jid, password, resource="watch")
            publisher = connect(make_host(), jid, password, resource="write")
            service = jid
            if config:
                watcher.create_node(name, config=config)
        else:
            watcher, publisher = connect(watch_host), connect(make_host())
            service = server.pubsub if where == "pubsub" else srv.PUBSUB_HIDDEN
            watcher.create_node(name, service, config=config)
        watcher.subscribe(name, service)
        publisher.publish(name, "<x xmlns='urn:t'/>", item_id="i1", service=service)
        assert watch_host.wait_events(1, 10), case
        [fetched] = watcher.get_items(name, service)
        observed[case] = (shape(watch_host.events.latest().publisher, publisher.jid),
                          shape(fetched.publisher, publisher.jid),
                          watcher.node_config(name, service).get("pubsub#itemreply"))
        expected[case] = (notification, items, itemreply)
    assert observed == expected


def test_where_the_service_hides_publishers_creation_warns_and_items_are_skipped(
        make_host, connect, account, server, node):
    host = make_host()
    watcher = connect(host)
    service = hiding_node(watcher, server, node)
    bob_jid, bob_password = account("bob")
    bob = connect(make_host(), bob_jid, bob_password)
    bob.publish(node, "<x xmlns='urn:t'/>", item_id="before", service=service)  # what creation looks at
    hook = host.create_hook(node, "item.id", type="python_code", service=service, publishers=[bob_jid])
    [warning] = hook.warnings
    assert PUBLISHER_UNKNOWN in warning and service in warning and "\n" not in warning
    bob.publish(node, ATOM_BY.format(bob_jid), item_id="b1", service=service)
    assert host.wait_runs(1, 10)
    run = host.runs.latest()
    assert (run.hook_id, run.item_id, run.status, run.error) == (
        hook.id, "b1", "skipped", f"--from: publisher unknown, {service} did not say who published the item")
    assert (hook.skipped, hook.runs, hook.failures) == (1, 0, 0)
    assert host.hooks_frame().loc[0, "publisher_check"] == PUBLISHER_UNKNOWN
    assert host.status().loc[0, "warnings"] == warning
    manager = HookManager(host)
    try:
        [(_id, cells)] = manager.content()[1]
        assert cells[-1] == PUBLISHER_UNKNOWN and "1 item(s) skipped" in manager.content()[0]
    finally:
        manager.close()


def test_on_an_empty_node_the_first_item_tells(make_host, connect, account, server, node):
    host = make_host()
    watcher = connect(host)
    service = hiding_node(watcher, server, node)
    bob_jid, bob_password = account("bob")
    hook = host.create_hook(node, "item.id", type="python_code", service=service, publishers=[bob_jid])
    # ejabberd shows the node's pubsub#itemreply to its owner; Prosody has no such field
    assert hook.publisher_check == (PUBLISHER_PENDING if server.kind == "prosody" else PUBLISHER_UNKNOWN)
    connect(make_host(), bob_jid, bob_password).publish(node, "<x xmlns='urn:t'/>", item_id="b1",
                                                        service=service)
    assert host.wait_runs(1, 10)
    assert host.runs.latest().status == "skipped"
    assert hook.publisher_check == PUBLISHER_UNKNOWN and hook.warnings


def test_from_runs_what_the_named_publisher_published_and_skips_the_rest(
        make_host, connect, account, server, node):
    host = make_host()
    watcher = connect(host)
    watcher.create_node(node, server.pubsub)
    bob_jid, bob_password = account("bob")
    bob, carol = connect(make_host(), bob_jid, bob_password), connect(make_host())
    hook = host.create_hook(node, "item.id", type="python_code", service=server.pubsub,
                            publishers=[bob_jid])
    assert hook.publisher_check == (PUBLISHER_PENDING if server.kind == "prosody" else PUBLISHER_NAMED)
    # carol's entry names bob as its author: only the publisher the service states counts
    carol.publish(node, ATOM_BY.format(bob_jid), item_id="from-carol", service=server.pubsub)
    bob.publish(node, "<x xmlns='urn:t'/>", item_id="from-bob", service=server.pubsub)
    assert host.wait_runs(2, 10)
    assert [(r.item_id, r.status, r.error) for r in host.runs.snapshot()] == [
        ("from-carol", "skipped", f"--from: published by {carol.jid}, not in the list"),
        ("from-bob", "ok", None)]
    assert (hook.runs, hook.skipped, hook.publisher_check, hook.warnings) == (1, 1, PUBLISHER_NAMED, [])
