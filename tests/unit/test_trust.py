"""Trust without a server: what hooknb creates is private whatever the umask; a store, a restrict
policy or a hook file that someone else could write is refused as a source of code; changed
code is journaled, or refused when pinned."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hooknb.xmpp import loop as _loop
from hooknb.core import policy
from hooknb.errors import HookCreateError, TrustError
from hooknb.core.hooks import HookSpec
from hooknb.core.loading import CodeLoader, FileLoader, ModuleLoader, sha256
from hooknb.storage.store import Store, check_trusted
from unit.fakes import ACCOUNT, SERVICE, FakeClient, event, make_host, on_loop

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
RECORD = {"id": "h1", "account": ACCOUNT, "service": SERVICE, "node": "n", "type": "python_code",
          "arg": "pass", "options": {}, "created": 1.0}


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def companions(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def write(path: Path, body: str, mode_: int = 0o600) -> Path:
    path.write_text(textwrap.dedent(body))
    path.chmod(mode_)
    return path


# ------------------------------------------------------------------------------------ the store
@pytest.mark.parametrize("mask", [0o002, 0o022])
def test_a_new_store_is_private_whatever_the_umask(tmp_path, mask):
    path = tmp_path / "made" / "home" / "hooknb.sqlite3"
    with umask(mask):
        store = Store(path)
        store.save_hook(RECORD)  # the WAL and its index exist from the first write on
    try:
        assert [mode(p) for p in [path.parent, *companions(path)]] == [0o700, 0o600, 0o600, 0o600]
        store.check_trusted()
    finally:
        store.close()


def _chmod(index: int, new: int) -> Callable[[Path], None]:
    return lambda path: os.chmod(([path.parent, *companions(path)])[index], new)


def _chown(index: int) -> Callable[[Path], None]:
    return lambda path: os.chown(([path.parent, *companions(path)])[index], NOBODY, -1)


LOOSE = {  # name: (make it loose, what the one-line error says)
    "directory group-writable": (_chmod(0, 0o770),
                                 "hook store's directory {dir} is group- or world-writable (mode 770): "
                                 "refusing it as a source of code; fix: chmod 700 {dir}"),
    "directory world-writable": (_chmod(0, 0o703), "fix: chmod 700 {dir}"),
    "store group-writable": (_chmod(1, 0o660), "hook store {db} is group- or world-writable (mode 660)"),
    "WAL world-writable": (_chmod(2, 0o602), "fix: chmod 600 {db}-wal"),
    "index group-writable": (_chmod(3, 0o620), "fix: chmod 600 {db}-shm"),
    "store of another user": (_chown(1), "hook store {db} is owned by another user (nobody): refusing it"),
    "directory of another user": (_chown(0), "directory {dir} is owned by another user (nobody)"),
}


@pytest.mark.parametrize("case", list(LOOSE))
def test_a_loose_store_is_refused_in_one_line_with_its_fix_and_left_as_it_is(tmp_path, case):
    loosen, message = LOOSE[case]
    if "another user" in case and os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")
    path = tmp_path / "home" / "hooknb.sqlite3"
    store = Store(path)
    try:
        store.save_hook(RECORD)
        check_trusted(path)
        loosen(path)
        before = [mode(p) for p in [path.parent, *companions(path)]]
        with pytest.raises(TrustError) as refused:
            check_trusted(path)
        assert message.format(dir=path.parent, db=path) in str(refused.value)
        assert "\n" not in str(refused.value)
        Store(path).close()  # opening it again changes no mode: the fix is the user's
        assert [mode(p) for p in [path.parent, *companions(path)]] == before
        with pytest.raises(TrustError):
            store.check_trusted()
    finally:
        store.close()


def test_restore_takes_no_code_from_a_loose_store(tmp_path):
    host = make_host(tmp_path / "home")
    try:
        host.store.save_hook(RECORD)
        os.chmod(tmp_path / "home", 0o775)
        with pytest.raises(TrustError, match="chmod 700"):
            host.engine.restore(ACCOUNT)
        assert len(host.registry) == 0
        host.engine.restore(ACCOUNT, load=False)  # listing reads no code: still possible
        assert [h.id for h in host.registry.all()] == ["h1"] and host.registry.get("h1").loader is None
    finally:
        host.close()


def test_restore_reinstalls_a_hook_re_created_elsewhere_and_only_that_one(tmp_path):
    host = make_host(tmp_path)
    try:
        kept = host.create_hook("n", "item.id", type="python_code", persistent=True, account=ACCOUNT)
        changed = host.create_hook("m", "item.id", type="python_code", persistent=True, account=ACCOUNT)
        loaders = {h.id: h.loader for h in (kept, changed)}
        other = Store(tmp_path / "hooknb.sqlite3")  # another process re-creates one, pinned
        other.save_hook(dataclasses.replace(changed.spec, pin=True).to_record())
        other.close()
        host.engine.restore(ACCOUNT)
        assert kept.loader is loaders[kept.id]  # unchanged: its code is not loaded again
        assert changed.pin and changed.loader is not loaders[changed.id] and changed.loader.pin
    finally:
        host.close()


# ------------------------------------------------------------------------------------ the policy
def _restrict(home: Path) -> Path:
    return write(home / "restrict.json", json.dumps({"restrict": []}))  # allows everything


@pytest.mark.parametrize(("loosen", "message"), [
    (lambda f: os.chmod(f, 0o664), "restrict policy {file} is group- or world-writable (mode 664): "
                                   "refusing it as a source of code; fix: chmod 600 {file}"),
    (lambda f: os.chmod(f.parent, 0o775), "data directory {dir} is group- or world-writable"),
    (lambda f: os.chown(f, NOBODY, -1), "restrict policy {file} is owned by another user"),
])
def test_a_loose_restrict_policy_is_refused(private_home, loosen, message):
    if "owned" in message and os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")
    policy_file = _restrict(private_home)
    policy.check(ACCOUNT, "storage:bookmarks", "python_code", "event")  # its rules allow it
    loosen(policy_file)
    with pytest.raises(TrustError) as refused:
        policy.check(ACCOUNT, "storage:bookmarks", "python_code", "event")
    assert message.format(file=policy_file, dir=policy_file.parent) in str(refused.value)


def test_the_policy_is_enforced_when_a_stored_hook_is_loaded(tmp_path):
    host = make_host(tmp_path)
    marks = {node: tmp_path / f"ran-{node.replace(':', '-')}" for node in ("storage:bookmarks", "notes")}
    try:
        for i, (node, mark) in enumerate(marks.items()):  # written straight into the store
            host.store.save_hook({**RECORD, "id": f"h{i}", "service": ACCOUNT, "node": node,
                                  "arg": f"open({str(mark)!r}, 'w').write(item.payload)"})
        host.engine.restore(ACCOUNT)
        bookmarks, notes = host.registry.get("h0"), host.registry.get("h1")
        assert bookmarks.loader is None and notes.loader is not None
        assert bookmarks.load_error == ("node 'storage:bookmarks' on alice@localhost is restricted by rule "
                                        "'bookmarks-legacy': event hooks of type python_code may not be "
                                        "attached there")
        host.engine.active.add(ACCOUNT)  # this process holds the account's lease
        on_loop(host.engine.accept, FakeClient(), [
            event("storage:bookmarks", "b1", service=ACCOUNT, payload="<password>s3cret</password>"),
            event("notes", "n1", service=ACCOUNT)])
        assert host.wait_runs(2, 5) and _loop.call(host.engine.idle(5))
        assert sorted((r.node, r.status) for r in host.runs.snapshot()) == [
            ("notes", "ok"), ("storage:bookmarks", "error")]
        assert marks["notes"].exists() and not marks["storage:bookmarks"].exists()
        assert "bookmarks-legacy" in host.list_hooks()[0]["last_error"]
    finally:
        host.close()


# ------------------------------------------------------------------------------------ hook files
V1 = "def hook(host, client, item):\n    return 'v1'\n"


def test_a_chmod_without_a_change_of_mtime_is_noticed_at_the_next_run(tmp_path):
    path = write(tmp_path / "h.py", V1)
    loader = FileLoader(str(path))
    assert loader.resolve()[0](None, None, None) == "v1"
    mtime = path.stat().st_mtime_ns
    path.chmod(0o666)
    assert path.stat().st_mtime_ns == mtime
    with pytest.raises(TrustError, match=f"hook file {path} is group- or world-writable .* go-w {path}$"):
        loader.resolve()
    path.chmod(0o644)
    assert loader.resolve()[0](None, None, None) == "v1"
    if os.geteuid() == 0:
        os.chown(path, NOBODY, -1)
        with pytest.raises(TrustError, match="owned by another user"):
            loader.resolve()


def test_an_edit_that_restores_size_and_mtime_is_still_reloaded(tmp_path):
    path = write(tmp_path / "h.py", V1)
    loader = FileLoader(str(path))
    before = path.stat()
    path.write_text(V1.replace("v1", "v2"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    fn, _is_async, digest = loader.resolve()
    assert fn(None, None, None) == "v2" and digest == sha256(V1.replace("v1", "v2"))
    assert loader.loads == 2


def _changed_file(tmp_path: Path) -> tuple[Path, Path, str]:
    """A hook file created as V1 and changed since into code that leaves a mark when it runs
    at all (at its top level)."""
    mark = tmp_path / "v2-ran"
    path = write(tmp_path / "h.py", f"open({str(mark)!r}, 'w').close()\n"
                                    "def hook(host, client, item):\n    return 'v2'\n")
    return path, mark, sha256(V1)


def test_a_pinned_file_refuses_changed_code_before_running_any_of_it(tmp_path):
    path, mark, created = _changed_file(tmp_path)
    loader = FileLoader(str(path), created, pin=True)  # e.g. restored in a new process
    for _ in range(2):  # every run is refused, not just the first
        with pytest.raises(TrustError, match="changed since the hook was created .* pinned") as refused:
            loader.resolve()
        assert refused.value.digest == sha256(path.read_bytes()) == loader.digest
    assert not mark.exists()
    write(path, V1)  # back to the created code: it runs again
    assert loader.resolve()[0](None, None, None) == "v1"


def test_an_unpinned_file_runs_changed_code_and_says_so(tmp_path):
    path, mark, created = _changed_file(tmp_path)
    loader = FileLoader(str(path), created)
    fn, _is_async, digest = loader.resolve()
    assert fn(None, None, None) == "v2" and mark.exists()
    assert (loader.expected, digest) == (created, sha256(path.read_bytes()))


def test_a_pinned_module_or_code_refuses_changed_code(tmp_path, monkeypatch):
    name = f"hooknb_pinned_{os.getpid()}"
    mark = tmp_path / "imported"
    write(tmp_path / f"{name}.py", f"open({str(mark)!r}, 'w').close()\ndef hook(h, c, i):\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TrustError, match=f"module '{name}' changed since the hook was created"):
        ModuleLoader(name, sha256(V1), pin=True).resolve()
    assert not mark.exists() and name not in sys.modules
    try:
        assert ModuleLoader(name, sha256(V1)).resolve()[0](None, None, None) == 1 and mark.exists()
    finally:
        sys.modules.pop(name, None)
    with pytest.raises(TrustError, match="the hook code changed"):
        CodeLoader("item.id", expected=sha256("item.node"), pin=True).resolve()
    assert CodeLoader("item.id", expected=sha256("item.id"), pin=True).resolve()[2] == sha256("item.id")


def test_a_hook_file_is_still_checked_when_created(tmp_path):
    path = write(tmp_path / "h.py", V1, 0o620)
    with pytest.raises(HookCreateError, match="group- or world-writable"):
        FileLoader(str(path))


# ------------------------------------------------------------------------------------ in the engine
@pytest.mark.parametrize("pin", [False, True])
def test_changed_code_is_journaled_and_refused_when_pinned(tmp_path, pin):
    path, mark, created = _changed_file(tmp_path)
    host = make_host(tmp_path)
    try:
        spec = HookSpec.make(ACCOUNT, SERVICE, "n", "python_file", str(path), persistent=True,
                             sha256=created, pin=pin)
        host.store.save_hook(spec.to_record())
        host.engine.restore(ACCOUNT)
        hook = host.registry.get(spec.id)
        assert hook.load_error is None
        host.engine.active.add(ACCOUNT)  # this process holds the account's lease
        on_loop(host.engine.accept, FakeClient(), [event("n", "a"), event("n", "b")])
        assert host.wait_runs(2, 5)
        runs = host.runs.snapshot()
        new = sha256(path.read_bytes())
        assert [(r.status, r.code_changed, r.digest) for r in runs] == [
            ("refused" if pin else "ok", True, new)] * 2
        assert mark.exists() is not pin
        if pin:
            assert runs[0].error.startswith(f"hook file {str(path)!r} changed since the hook was created")
        listed = host.list_hooks()[0]
        assert (listed["code_changed"], listed["pin"], listed["failures"]) == (True, pin, 2 if pin else 0)
    finally:
        host.close()


def test_an_unloaded_hook_lists_whether_its_file_changed(tmp_path):
    path = write(tmp_path / "h.py", V1)
    host = make_host(tmp_path)
    try:
        spec = HookSpec.make(ACCOUNT, SERVICE, "n", "python_file", str(path), persistent=True,
                             sha256=sha256(V1))
        host.store.save_hook(spec.to_record())
        assert [h["code_changed"] for h in host.list_hooks(ACCOUNT)] == [False]  # read, not run
        write(path, V1.replace("v1", "v2"))
        assert [h["code_changed"] for h in host.list_hooks(ACCOUNT)] == [True]
        assert host.registry.get(spec.id).loader is None
    finally:
        host.close()


def test_pin_is_given_by_the_magics_and_the_command_line_and_stored(tmp_path):
    from hooknb.frontends import cli, commands, grammar

    host = make_host(tmp_path)
    try:
        commands.create(host, grammar.parse(grammar.magic_parser(), "create -P --pin -n a -t python_code 1"),
                        ACCOUNT)
        commands.create(host, grammar.parse(grammar.cell_parser(), "-P --pin -n b"), ACCOUNT,
                        type_="python_code", arg="2")
        commands.create(host, cli.build_parser().parse_args(
            ["pubsub", "hook", "create", "--jid", ACCOUNT, "-P", "--pin", "-n", "c", "-t", "python_code", "3"]),
            ACCOUNT)
        commands.create(host, grammar.parse(grammar.magic_parser(), "create -P -n d -t python_code 4"), ACCOUNT)
        assert [(r["node"], r["options"]["pin"]) for r in host.store.load_hooks()] == [
            ("a", True), ("b", True), ("c", True), ("d", False)]
        assert [(h["node"], h["pin"]) for h in commands.list_rows(host)] == [
            ("a", True), ("b", True), ("c", True), ("d", False)]
    finally:
        host.close()
