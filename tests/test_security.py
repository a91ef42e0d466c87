"""Restrict policy, trust (file checks, digests; publishers: test_publishers.py), and bad input from
peers and users."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from hooknb.errors import HookCreateError, HooknbError


def test_default_policy_protects_private_storage(make_host, connect):
    host = make_host()
    connect(host)
    for node, rule in [("urn:xmpp:bookmarks:1", "bookmarks"), ("storage:bookmarks", "bookmarks-legacy"),
                       ("storage:rosternotes", "private-xml-storage")]:
        with pytest.raises(HookCreateError, match=f"restricted by rule '{rule}'"):
            host.create_hook(node, "pass", type="python_code")
    assert host.list_hooks() == []


def test_restrict_file_rules_types_phases_and_except(make_host, connect, home, server, node):
    secret, allowed = f"{node}-secret-x", f"{node}-secret-ok"
    (home / "restrict.json").write_text(json.dumps({"restrict": [
        {"name": "no-code-on-secrets", "node": f"{node}-secret-*", "types": ["python_code"],
         "phases": ["event"], "except": [allowed]}]}))
    host = make_host()
    client = connect(host)
    for n in (secret, allowed):
        client.create_node(n, server.pubsub)
    with pytest.raises(HookCreateError, match="restricted by rule 'no-code-on-secrets'"):
        host.create_hook(secret, "pass", type="python_code", service=server.pubsub)
    host.create_hook(allowed, "pass", type="python_code", service=server.pubsub)   # except
    host.create_hook(secret, "pass", type="python_code", service=server.pubsub, phase="before")
    assert sorted((h["node"], h["phase"]) for h in host.list_hooks()) == [
        (allowed, "event"), (secret, "before")]
    (home / "restrict.json").write_text("{not json")
    with pytest.raises(HooknbError, match="restrict policy .* is invalid"):
        host.create_hook("other", "pass", type="python_code", service=server.pubsub)


def test_file_digest_recorded_and_untrusted_files_refused(make_host, connect, server, node, tmp_path):
    host = make_host()
    watcher, publisher = connect(host), connect(make_host())
    watcher.create_node(node, server.pubsub)
    path = tmp_path / "trusted.py"
    path.write_text("def hook(host, client, item):\n    return item.id\n")
    path.chmod(0o600)
    hook = host.create_hook(node, str(path), service=server.pubsub)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert hook.sha256 == digest
    publisher.publish(node, "<x xmlns='urn:t'/>", item_id="d1", service=server.pubsub)
    assert host.wait_runs(1, 10)
    assert host.runs.latest().digest == digest
    other = tmp_path / "group.py"
    other.write_text("def hook(host, client, item):\n    pass\n")
    other.chmod(0o664)
    with pytest.raises(HookCreateError, match="group- or world-writable"):
        host.create_hook(node, str(other), service=server.pubsub)
    if os.geteuid() == 0:  # only root can give a file away to test the owner check
        foreign = tmp_path / "foreign.py"
        foreign.write_text("def hook(host, client, item):\n    pass\n")
        foreign.chmod(0o644)
        os.chown(foreign, 65534, 65534)
        with pytest.raises(HookCreateError, match="owned by another user"):
            host.create_hook(node, str(foreign), service=server.pubsub)


def test_journal_and_store_never_hold_the_password(make_host, connect, account, server, node, home):
    jid, password = account("secret")
    host = make_host()
    client = connect(host, jid, password)
    client.create_node(node, server.pubsub)
    host.create_hook(node, "item.id", type="python_code", service=server.pubsub, persistent=True)
    client.publish(node, "<x xmlns='urn:t'/>", item_id="p1", service=server.pubsub)
    assert host.wait_runs(1, 10)
    host.disconnect()
    texts = [host.events_frame().to_csv(), host.runs_frame().to_csv(), json.dumps(host.list_hooks())]
    texts += [p.read_bytes().decode("latin-1") for p in home.iterdir() if p.is_file()]
    assert not [t for t in texts if password in t]
    assert "password" not in repr(client.__dict__.get("last_error"))


def test_peer_junk_is_handled(make_host, connect, server, node):
    host = make_host()
    watcher, publisher = connect(host), connect(make_host())
    watcher.create_node(node, server.pubsub)
    unhooked = node + "-unhooked"
    watcher.create_node(unhooked, server.pubsub)
    watcher.subscribe(unhooked, server.pubsub)
    hook = host.create_hook(node, "(item.id, item.payload is None or len(item.payload))",
                            type="python_code", service=server.pubsub)
    big = "<big xmlns='urn:big'>" + "a" * (1 << 20) + "</big>"
    publisher.publish(node, big, item_id="big", service=server.pubsub)
    bare = node + "-bare"  # a node that notifies without payloads: items arrive with none
    watcher.create_node(bare, server.pubsub, config={"deliver_payloads": 0})
    bare_hook = host.create_hook(bare, "(item.id, item.payload)", type="python_code", service=server.pubsub)
    publisher.publish(bare, "<x xmlns='urn:t'/>", item_id="empty", service=server.pubsub)
    publisher.publish(node, "<odd xmlns='urn:nobody:knows'><q:x xmlns:q='urn:q'/></odd>", item_id="odd",
                      service=server.pubsub)
    publisher.publish(unhooked, "<x xmlns='urn:t'/>", item_id="nobody", service=server.pubsub)
    deep = "<d xmlns='urn:deep'>" + "<a>" * 1500 + "</a>" * 1500 + "</d>"
    with pytest.raises(HooknbError, match="nests 1501 levels deep"):
        publisher.publish(node, deep, service=server.pubsub)
    assert host.wait_runs(3, 20), host.runs.snapshot()
    results = [r.result for r in host.runs.snapshot() if r.hook_id == hook.id]
    assert results == [repr(("big", len(big))), repr(("odd", 55))]
    assert [r.result for r in host.runs.snapshot() if r.hook_id == bare_hook.id] == [
        repr(("empty", None))] or server.kind != "prosody"
    assert [e.item_id for e in host.events.snapshot() if e.node == unhooked] == ["nobody"]
    assert watcher.state == publisher.state == "connected"


def test_corrupt_store_is_a_clear_error_and_kept(home, make_host):
    path = home / "hooknb.sqlite3"
    junk = b"this is not a database" * 100
    path.write_bytes(junk)
    with pytest.raises(HooknbError, match="unreadable .* left untouched"):
        make_host().list_hooks()
    assert path.read_bytes() == junk


def test_corrupt_store_does_not_stop_a_connection(home, make_host, connect, server, node):
    (home / "hooknb.sqlite3").write_bytes(b"junk" * 1000)
    host = make_host()
    client = connect(host)
    assert client.state == "connected"
    assert "persistent hooks not restored" in client.last_error
    client.create_node(node, server.pubsub)
    host.create_hook(node, "item.id", type="python_code", service=server.pubsub)  # temporary: fine
    client.publish(node, "<x xmlns='urn:t'/>", item_id="still", service=server.pubsub)
    assert host.wait_runs(1, 10) and host.runs.latest().result == repr("still")
    assert (home / "hooknb.sqlite3").read_bytes() == b"junk" * 1000
