"""Restrict policy, trust (file checks, digests; publishers: test_publishers.py), and bad input from
peers and users."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from hooknb.xmpp import loop as _loop
from hooknb import server as srv
from hooknb.errors import HookCreateError, HooknbError, TrustError
from hooknb.storage.store import Store
from hooknb.frontends.widgets import HookManager


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
    (home / "restrict.json").chmod(0o600)  # whatever the umask: a looser policy is refused
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
    big = "<big xmlns='urn:big'>" + "a" * ((1 << 20) - 1024) + "</big>"  # within the 1 MiB default
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
    (home / "hooknb.sqlite3").chmod(0o600)  # whatever the umask: a looser store is refused
    host = make_host()
    client = connect(host)
    assert client.state == "connected"
    assert "persistent hooks not restored" in client.last_error
    client.create_node(node, server.pubsub)
    host.create_hook(node, "item.id", type="python_code", service=server.pubsub)  # temporary: fine
    client.publish(node, "<x xmlns='urn:t'/>", item_id="still", service=server.pubsub)
    assert host.wait_runs(1, 10) and host.runs.latest().result == repr("still")
    assert (home / "hooknb.sqlite3").read_bytes() == b"junk" * 1000


# ------------------------------------------------------------------------------------ issue 14: trust
def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _hook_file(path, body: str):
    path.write_text(textwrap.dedent(body))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("mask", [0o002, 0o022])
def test_data_directory_store_and_server_secrets_are_private_whatever_the_umask(
        mask, make_host, connect, server, node, tmp_path, monkeypatch):
    home = tmp_path / "made-by-hooknb" / "home"
    monkeypatch.setenv("HOOKNB_HOME", str(home))
    with _umask(mask):
        host = make_host()
        host._store_path = None  # the default store of $HOOKNB_HOME, made on first use
        client = connect(host)
        client.create_node(node, server.pubsub)
        host.create_hook(node, "item.id", type="python_code", service=server.pubsub, persistent=True)
        client.publish(node, "<x xmlns='urn:t'/>", item_id="m1", service=server.pubsub)
        assert host.wait_runs(1, 10)
        store = home / "hooknb.sqlite3"
        assert [_mode(p) for p in (home, store, f"{store}-wal", f"{store}-shm")] == [0o700] + [0o600] * 3
        other = tmp_path / "server"
        info = srv.start(other, ["alice"], kind=server.kind)
    try:
        assert (_mode(other), _mode(other / srv.INFO_FILE)) == (0o700, 0o600)
        assert info.accounts["alice"] in (other / srv.INFO_FILE).read_text()
        for account in other.glob("data/*/accounts/*.dat"):  # Prosody's account files
            assert _mode(account) == 0o600
        assert server.kind != "prosody" or list(other.glob("data/*/accounts/alice.dat"))
    finally:
        srv.stop(other)


def test_connecting_with_a_loose_store_is_refused_and_runs_nothing(make_host, connect, account, server,
                                                                   node, home, tmp_path):
    jid, password = account("loose")
    mark = tmp_path / "injected-ran"
    owner = make_host()
    client = connect(owner, jid, password)
    client.create_node(node, server.pubsub)
    owner.disconnect(jid)
    Store(home / "hooknb.sqlite3").save_hook(  # what another member of the group wrote
        {"id": "injected", "account": jid, "service": server.pubsub, "node": node, "type": "python_code",
         "arg": f"open({str(mark)!r}, 'w').write(item.id)", "options": {}, "created": 1.0})
    os.chmod(home, 0o770)
    host = make_host()
    with pytest.raises(TrustError) as refused:
        connect(host, jid, password)
    assert str(refused.value) == (f"the hook store's directory {home} is group- or world-writable "
                                  f"(mode 770): refusing it as a source of code; fix: chmod 700 {home}")
    assert host.clients == {} and len(host.registry) == 0
    os.chmod(home, 0o700)  # the fix given: now it is the user's own store again, and it runs
    connect(host, jid, password)
    connect(make_host()).publish(node, "<x xmlns='urn:t'/>", item_id="i1", service=server.pubsub)
    assert host.wait_runs(1, 10) and mark.read_text() == "i1"


def test_restrict_policy_is_enforced_when_a_stored_hook_is_loaded(make_host, connect, account, server,
                                                                  home, tmp_path):
    jid, password = account("bm")
    marks = {n: tmp_path / n.replace(":", "-") for n in ("storage:bookmarks", "notes")}
    store = Store(home / "hooknb.sqlite3")
    for node, mark in marks.items():  # written straight into the store, past `create`
        store.save_hook({"id": node.replace(":", "-"), "account": jid, "service": jid, "node": node,
                         "type": "python_code", "arg": f"open({str(mark)!r}, 'w').write(item.payload)",
                         "options": {}, "created": 1.0})
    host = make_host()
    client = connect(host, jid, password)
    listed = {h["node"]: h for h in host.list_hooks()}
    assert "restricted by rule 'bookmarks-legacy'" in listed["storage:bookmarks"]["last_error"]
    assert listed["notes"]["last_error"] is None
    room = ("<storage xmlns='storage:bookmarks'><conference jid='room@muc.localhost' autojoin='true'>"
            "<password>s3cret</password></conference></storage>")
    client.publish("storage:bookmarks", room, item_id="current")
    client.publish("notes", "<note xmlns='urn:t'>after the bookmarks</note>", item_id="n1")
    assert host.wait_runs(1, 10)
    assert _loop.call(host.engine.idle(10))
    runs = {r.node: r for r in host.runs.snapshot()}
    assert runs["notes"].status == "ok" and marks["notes"].exists()
    assert not marks["storage:bookmarks"].exists()
    bookmarks = [(r.status, r.error) for r in host.runs.snapshot() if r.node == "storage:bookmarks"]
    refusal = "RuntimeError: hook failed to load: " + listed["storage:bookmarks"]["last_error"]
    assert bookmarks == [("error", refusal)] or (bookmarks == [] and server.kind != "prosody")


def test_a_changed_file_is_journaled_and_a_pinned_one_refused_until_re_created(make_host, connect, server,
                                                                               node, tmp_path):
    host = make_host()
    watcher, publisher = connect(host), connect(make_host())
    watcher.create_node(node, server.pubsub)
    v1 = "def hook(host, client, item):\n    return 'v1'\n"
    free, pinned = (_hook_file(tmp_path / f"{name}.py", v1) for name in ("free", "pinned"))
    hooks = {"free": host.create_hook(node, str(free), service=server.pubsub),
             "pinned": host.create_hook(node, str(pinned), service=server.pubsub, pin=True)}
    created = hooks["free"].sha256
    publisher.publish(node, "<x xmlns='urn:t'/>", item_id="p1", service=server.pubsub)
    assert host.wait_runs(2, 10)
    marks = {name: tmp_path / f"{name}-v2-ran" for name in hooks}
    for name, path in (("free", free), ("pinned", pinned)):
        _hook_file(path, f"""\
            open({str(marks[name])!r}, "w").close()
            def hook(host, client, item):
                return "v2"
        """)
    changed = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in
               (("free", free), ("pinned", pinned))}
    publisher.publish(node, "<x xmlns='urn:t'/>", item_id="p2", service=server.pubsub)
    assert host.wait_runs(4, 10)
    runs = {(r.hook_id, r.item_id): r for r in host.runs.snapshot()}
    ran = {name: [(r.status, r.result, r.code_changed, r.digest) for (h, _i), r in runs.items()
                  if h == hook.id] for name, hook in hooks.items()}
    assert ran["free"] == [("ok", "'v1'", False, created), ("ok", "'v2'", True, changed["free"])]
    assert ran["pinned"] == [("ok", "'v1'", False, created), ("refused", None, True, changed["pinned"])]
    assert "changed since the hook was created" in runs[(hooks["pinned"].id, "p2")].error
    assert marks["free"].exists() and not marks["pinned"].exists()  # not one line of it ran
    frame = host.hooks_frame().set_index("id")
    assert frame.loc[hooks["free"].id, ["code_changed", "pin"]].tolist() == [True, False]
    assert frame.loc[hooks["pinned"].id, ["code_changed", "pin"]].tolist() == [True, True]
    assert host.runs_frame()["code_changed"].tolist() == [False, False, True, True]
    manager = HookManager(host)
    try:
        cells = dict(manager.content()[1])
        code = HookManager.COLUMNS.index("code")
        assert [cells[hooks[name].id][code] for name in ("free", "pinned")] == ["changed", "changed, pinned"]
    finally:
        manager.close()

    again = host.create_hook(node, str(pinned), service=server.pubsub, pin=True)  # accepts v2
    assert again is hooks["pinned"] and again.sha256 == changed["pinned"]
    publisher.publish(node, "<x xmlns='urn:t'/>", item_id="p3", service=server.pubsub)
    assert host.wait_runs(6, 10)
    last = [r for r in host.runs.snapshot() if r.hook_id == again.id][-1]
    assert (last.item_id, last.status, last.result, last.code_changed) == ("p3", "ok", "'v2'", False)
    assert marks["pinned"].exists() and not host.list_hooks()[1]["code_changed"]


def test_a_chmod_666_without_a_change_of_mtime_is_noticed(make_host, connect, server, node, tmp_path):
    host = make_host()
    watcher, publisher = connect(host), connect(make_host())
    watcher.create_node(node, server.pubsub)
    path = _hook_file(tmp_path / "h.py", "def hook(host, client, item):\n    return item.id\n")
    hook = host.create_hook(node, str(path), service=server.pubsub)
    publisher.publish(node, "<x xmlns='urn:t'/>", item_id="c1", service=server.pubsub)
    assert host.wait_runs(1, 10)
    mtime = path.stat().st_mtime_ns
    path.chmod(0o666)
    assert path.stat().st_mtime_ns == mtime
    publisher.publish(node, "<x xmlns='urn:t'/>", item_id="c2", service=server.pubsub)
    assert host.wait_runs(2, 10)
    path.chmod(0o600)
    publisher.publish(node, "<x xmlns='urn:t'/>", item_id="c3", service=server.pubsub)
    assert host.wait_runs(3, 10)
    assert [(r.item_id, r.status, r.result) for r in host.runs.snapshot()] == [
        ("c1", "ok", "'c1'"), ("c2", "refused", None), ("c3", "ok", "'c3'")]
    assert host.runs.snapshot()[1].error == (
        f"hook file {path} is group- or world-writable (mode 666): refusing it as a source of code; "
        f"fix: chmod go-w {path}")
    assert hook.failures == 1
