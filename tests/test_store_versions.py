"""A store that cannot be used stops the front ends with one line, and ``hooknb run`` exits
(logged) rather than run nothing; a store of the previous release is migrated and its hooks run.
Against the real server, with the real command line and magics."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest
from IPython.core.error import UsageError
from previous_store import previous_release_store
from processes import hooknb

from hooknb.host import Host
from hooknb.storage import schema
from hooknb.storage.store import FILENAME

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("spoil", ["newer", "foreign"])
def test_hooknb_run_exits_on_a_store_it_cannot_use(home, account, runner, spoil):
    jid, password = account("runner")
    path = home / FILENAME
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 999" if spoil == "newer" else "CREATE TABLE songs (title TEXT)")
    db.commit()
    db.close()
    before = path.read_bytes()
    proc = runner(jid, password)
    code = proc.proc.wait(30)
    proc.reader.join(5)
    [error] = proc.records("error")
    assert code == 3 and not proc.records("ready")  # the store cannot be used
    assert error["error"].startswith(f"the hook store {path} ")
    assert ("newer than this hooknb's" if spoil == "newer" else "tables hooknb does not know: songs") in error["error"]
    stderr = proc.err.name
    proc.kill()
    assert open(stderr).read() == f"hooknb: {error['error']}\n"
    assert path.read_bytes() == before


def test_a_previous_release_store_is_migrated_and_its_hooks_run(tmp_path, account, runner, server, pubsub_node):
    publisher, node = pubsub_node
    jid, password = account("migrated")
    runner_home = tmp_path / "runner-home"  # the publisher's host has the test's home
    runner_home.mkdir(mode=0o700)
    path = runner_home / FILENAME
    previous_release_store(path)
    db = sqlite3.connect(path)
    db.execute("UPDATE hooks SET account = ?, service = ?, node = ?, arg = ?", (jid, server.pubsub, node, "print(item.id)"))
    db.commit()
    db.close()
    path.chmod(0o600)
    proc = runner(jid, password, env={"HOOKNB_HOME": str(runner_home)})
    proc.wait_record("ready", timeout=30)
    assert proc.records("hook-loaded", hook="h1")
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
    db.close()
    publisher.publish(node, '<x xmlns="urn:t"/>', item_id="after-migration", service=server.pubsub)
    assert proc.wait_record("run", hook="h1", timeout=30)["output"] == "after-migration\n"
    assert proc.stop() == 0


def test_hooknb_home_as_a_file_is_one_line_naming_it(tmp_path, monkeypatch, shell):
    not_a_dir = tmp_path / "home-file"
    not_a_dir.write_text("")
    monkeypatch.setenv("HOOKNB_HOME", str(not_a_dir))
    line = (f"HOOKNB_HOME={not_a_dir} is a file, not a directory: point HOOKNB_HOME at a directory "
            "(it is made if missing)")
    for args in (["pubsub", "hook", "list"],
                 ["pubsub", "hook", "create", "--jid", "a@localhost", "-P", "-n", "n", "-t", "python_code", "1"]):
        done: subprocess.CompletedProcess = hooknb(*args)
        assert done.returncode == 3 and done.stderr == f"hooknb: {line}\n" and done.stdout == ""
    magics = shell.magics_manager.registry["HookMagics"]
    magics.host = Host()
    try:
        for command in ("list", "create -n n -t python_code 1 --jid a@localhost"):
            with pytest.raises(UsageError) as info:
                shell.run_line_magic("hook", command)
            assert str(info.value) == line
    finally:
        magics.host = None
