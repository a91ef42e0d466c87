"""``docs/troubleshooting.rst`` quotes hooknb's one-line messages word for word: each is produced
here for real (the command line as a process, against the real local server where it connects)
and must appear on the page, once its variable parts (the test's JIDs, ports and paths) are
written as the page writes them."""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path

import pytest
from processes import hook_file, hooknb

from hooknb import server as srv
from hooknb.errors import HooknbError
from hooknb.host import Host

pytestmark = pytest.mark.integration  # the command line connects to the session's server

PAGE = (Path(__file__).resolve().parent.parent / "docs" / "troubleshooting.rst").read_text()
QUOTED = {line.strip() for line in PAGE.splitlines() if line.startswith("   ")}


def as_on_the_page(line: str, **paths: Path) -> str:
    """``line`` with the test's values replaced by the page's examples."""
    for placeholder, path in paths.items():
        line = line.replace(str(path), placeholder)
    line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:5222", line)
    return line.replace("localhost", "example.org")


def stderr_line(*args: str, **env: str) -> str:
    done = hooknb(*args, env=env)
    assert done.returncode != 0 and done.stderr.count("\n") == 1, done.stderr
    return done.stderr.strip()


def test_every_message_on_the_page_is_the_one_hooknb_prints(server, home, tmp_path, monkeypatch):
    jid, password = server.jid("alice"), server.accounts["alice"]
    at = ["--host", server.host, "--port", str(server.port)]
    home_on_page = {"/home/me/.local/share/hooknb": home}
    missing_node = f"news-{uuid.uuid4().hex[:8]}"
    messages = [
        stderr_line("run", "--jid", jid, *at, "--cafile", server.cafile, HOOKNB_PASSWORD="wrong"),
        stderr_line("run", "--jid", jid, *at, HOOKNB_PASSWORD=password),
        stderr_line("run", "--jid", jid, *at, "--cafile", server.cafile, HOOKNB_PASSWORD=""),
        stderr_line("run", "--jid", jid, "--host", server.host, "--port", str(srv.free_port()),
                    "--cafile", server.cafile, HOOKNB_PASSWORD=password),
        as_on_the_page(stderr_line("pubsub", "hook", "create", "--jid", jid, "-n", "news", "-P",
                                   str(tmp_path / "on_post.py")), **{"/home/me/hooks": tmp_path}),
        as_on_the_page(stderr_line("pubsub", "hook", "create", "--jid", jid, "-n", "news", "-P",
                                   hook_file(tmp_path / "on_post.py", "print('new post:', item.id)\n")),
                       **{"/home/me/hooks": tmp_path}),
        stderr_line("pubsub", "hook", "create", "--jid", jid, "-n", "news", "-P", "-t", "python_code", "1 +"),
        stderr_line("pubsub", "hook", "create", "--jid", jid, "-n", "news", "-P", "on_post"),
        stderr_line("pubsub", "hook", "create", "--jid", jid, "-n", "news", "on_post"),
        stderr_line("pubsub", "publish", "--jid", jid, "-s", server.pubsub, "-n", missing_node, *at, "--cafile",
                    server.cafile, "<x xmlns='urn:example'/>", HOOKNB_PASSWORD=password).replace(missing_node, "news"),
    ]
    with pytest.raises(HooknbError) as no_account:
        Host(store_path=str(tmp_path / "unused.sqlite3")).account()
    messages.append(f"UsageError: {no_account.value}")

    home.chmod(0o777)
    messages.append(stderr_line("pubsub", "hook", "create", "--jid", jid, "-n", "news", "-P", "-t", "python_code",
                                "item.id"))
    home.chmod(0o700)
    (home / "hooknb.sqlite3").write_text("not a database, " * 10)
    (home / "hooknb.sqlite3").chmod(0o600)
    messages.append(stderr_line("pubsub", "hook", "list"))
    (home / "hooknb.sqlite3").unlink()
    (home / "hooknb.sqlite3").touch(mode=0o600)
    messages.append(stderr_line("pubsub", "hook", "list"))
    (home / "hooknb.sqlite3").unlink()
    for spoil in ("PRAGMA user_version = 999", "CREATE TABLE songs (title TEXT)"):
        db = sqlite3.connect(home / "hooknb.sqlite3")
        db.execute(spoil)
        db.commit()
        db.close()
        (home / "hooknb.sqlite3").chmod(0o600)
        messages.append(stderr_line("pubsub", "hook", "list"))
        (home / "hooknb.sqlite3").unlink()
    home_file = tmp_path / "hooknb-home"
    home_file.write_text("")
    messages.append(stderr_line("pubsub", "hook", "list", HOOKNB_HOME=str(home_file)).replace(
        str(home_file), "/home/me/hooknb-home"))

    monkeypatch.setenv("PATH", str(tmp_path))  # no prosody there
    with pytest.raises(HooknbError) as missing:
        srv.start(tmp_path / "server", kind="prosody")
    messages.append(str(missing.value))

    for message in messages:
        assert as_on_the_page(message, **home_on_page) in QUOTED, f"not on the page: {message}"
