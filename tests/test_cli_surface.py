"""The ``hooknb`` command surface as real subprocesses: the seeds' manual's command paths as
written (``pubsub node hook ...``), hook ids, one set of ``-O`` formats, help that shows a
command's own options, normal output on stdout, one JID rule, and every row of the exit-code
table of docs/cli.rst (a connection lost during a publish, cut by a relay, among them)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import HOOKNB, JID, hook_file, hooknb

from hooknb import errors

pytestmark = pytest.mark.integration  # every test runs the console script as a process

MANUAL = Path(__file__).resolve().parent.parent / "docs" / "cli.rst"


def _listed(*path: str) -> list[dict]:
    result = hooknb("pubsub", *path, "list", "-O", "json")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return json.loads(result.stdout)


def test_the_seeds_manual_commands_run_as_written(home, tmp_path):
    """`pubsub node hook create -n urn:xmpp:microblog:0 -t python_file --persistent FILE`, then
    `pubsub node hook delete ... -t python_file --arg FILE`, word for word."""
    neat = hook_file(tmp_path / "do_something_neat.py", """
        def hook(host, client, item):
            return item.id
    """)
    made = hooknb("pubsub", "node", "hook", "create", "--jid", JID, "-n", "urn:xmpp:microblog:0",
                  "-t", "python_file", "--persistent", neat)
    assert (made.returncode, made.stderr) == (0, ""), made.stderr
    assert [(h["node"], h["type"], h["arg"], h["persistent"]) for h in _listed("node", "hook")] == [
        ("urn:xmpp:microblog:0", "python_file", neat, True)]
    assert _listed("node", "hook") == _listed("hook")
    gone = hooknb("pubsub", "node", "hook", "delete", "--jid", JID, "-n", "urn:xmpp:microblog:0",
                  "-t", "python_file", "--arg", neat)
    assert (gone.returncode, gone.stdout, gone.stderr) == (0, "1 hook(s) deleted\n", "")
    assert _listed("hook") == []


def test_delete_takes_hook_ids(home):
    ids = []
    for code in ("item.id", "item.kind", "item.node"):
        made = hooknb("pubsub", "hook", "create", "--jid", JID, "-n", "news", "-P", "-t", "python_code", code)
        ids.append(made.stdout.split()[1])
    gone = hooknb("pubsub", "hook", "delete", ids[0], ids[2])  # no --jid: ids name their hooks
    assert (gone.returncode, gone.stdout, gone.stderr) == (0, "2 hook(s) deleted\n", "")
    assert [h["id"] for h in _listed("hook")] == [ids[1]]
    unknown = hooknb("pubsub", "hook", "delete", ids[1], "0000000000")
    assert (unknown.returncode, unknown.stderr) == (2, "hooknb: no hook with id '0000000000': nothing deleted\n")
    both = hooknb("pubsub", "hook", "delete", ids[1], "-n", "news")
    assert (both.returncode, both.stderr) == (2, "hooknb: delete: give hook ids, or -s/-n/-u with -t/-a, not both\n")
    assert [h["id"] for h in _listed("hook")] == [ids[1]]  # refusals deleted nothing


def test_list_speaks_on_stdout_in_the_formats_of_the_magic(home):
    empty = hooknb("pubsub", "hook", "list")
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, "no hooks\n", "")
    hooknb("pubsub", "hook", "create", "--jid", JID, "-n", "news", "-P", "-t", "python_code", "item.id")
    table, simple = hooknb("pubsub", "hook", "list", "-O", "table"), hooknb("pubsub", "hook", "list", "-O", "simple")
    assert table.stdout == simple.stdout and table.stdout.split()[:2] == ["id", "account"]
    wrong = hooknb("pubsub", "hook", "list", "-O", "xml")
    assert wrong.returncode == 2 and "choose from 'table', 'json'" in wrong.stderr


@pytest.mark.parametrize("path, connects", [
    (["pubsub", "hook", "create"], False), (["pubsub", "node", "hook", "list"], False),
    (["pubsub", "hook", "delete"], False), (["pubsub", "hook", "enable"], False),
    (["pubsub", "publish"], True), (["run"], True)])
def test_help_shows_only_the_options_a_command_uses(path, connects):
    shown = hooknb(*path, "--help")
    assert shown.returncode == 0 and "--jid" in shown.stdout
    assert ("--host" in shown.stdout, "--password" in shown.stdout, "--cafile" in shown.stdout) == (connects,) * 3
    assert ("are ignored (and not shown)" in " ".join(shown.stdout.split())) == (not connects)


def test_a_jid_without_a_name_is_refused_everywhere(home):
    for args in (["pubsub", "hook", "create", "--jid", "alice", "-n", "x", "-P", "-t", "python_code", "pass"],
                 ["pubsub", "hook", "list", "--jid", "alice"], ["pubsub", "hook", "delete", "--jid", "alice", "-n", "x"],
                 ["run", "--jid", "alice"], ["pubsub", "publish", "--jid", "alice", "-n", "x", "<x/>"]):
        refused = hooknb(*args, env={"HOOKNB_PASSWORD": "x"})
        assert (refused.returncode, refused.stderr) == (
            2, "hooknb: not an account JID: 'alice' (expected name@domain)\n"), args
    assert _listed("hook") == []  # nothing stored for 'alice'


# ------------------------------------------------------------------------------------ exit codes
class Relay:
    """A TCP relay in front of the server that cuts both sides once the client has sent more than
    ``cut_after`` bytes (None: never), and notes when a client connected."""

    def __init__(self, target: tuple[str, int] | None, cut_after: int | None = None) -> None:
        self.target, self.cut_after = target, cut_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connected, self.cut = threading.Event(), threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        self._sockets.append(client)
        self.connected.set()
        if self.target is None:  # a server that never answers
            return
        upstream = socket.create_connection(self.target)
        self._sockets.append(upstream)
        threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()
        self._pump(client, upstream, self.cut_after)

    def _pump(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := source.recv(65536):
                sent += len(data)
                if limit is not None and sent > limit:
                    self.close()
                    return
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.cut.set()
        for each in [self.listener, *self._sockets]:
            try:
                each.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            each.close()


@pytest.fixture
def relay() -> Iterator[type[Relay]]:
    made: list[Relay] = []

    def make(*args: object) -> Relay:
        made.append(Relay(*args))
        return made[-1]

    yield make
    for each in made:
        each.close()


def test_a_connection_lost_during_a_publish_exits_1(home, server, account, relay, node, tmp_path):
    """The relay passes the stream, TLS and authentication (a few KiB), and cuts the connection in
    the middle of the publish (a 200 KB payload): a connection failure, exit 1, not 2."""
    jid, password = account("lost")
    cutter = relay((server.host, server.port), 60_000)
    payload = tmp_path / "big.xml"
    payload.write_text(f"<big xmlns='urn:test'>{'x' * 200_000}</big>")
    result = hooknb("pubsub", "publish", "--jid", jid, "--host", "127.0.0.1", "--port", str(cutter.port),
                    "--cafile", server.cafile, "-n", node, "-f", str(payload), env={"HOOKNB_PASSWORD": password})
    assert cutter.cut.is_set()
    assert (result.returncode, result.stdout) == (1, ""), result.stderr
    assert re.fullmatch(r"hooknb: .*connection was lost.*\n", result.stderr), result.stderr


def test_an_interrupted_command_exits_130(home, relay):
    silent = relay(None)  # accepts, never answers: the command waits in its connection
    proc = subprocess.Popen([*HOOKNB, "pubsub", "publish", "--jid", JID, "--host", "127.0.0.1", "--port",
                             str(silent.port), "-n", "x", "<x/>"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "HOOKNB_PASSWORD": "x"})
    assert silent.connected.wait(30)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out, err) == (130, "", "hooknb: interrupted\n")


@pytest.mark.parametrize("store, message", [
    (b"this is not an SQLite database, but a file of the same name" * 100, "unreadable"),
    (None, "is a file, not a directory: point HOOKNB_HOME at a directory"),  # $HOOKNB_HOME names a file
])
def test_a_store_that_cannot_be_used_exits_3(tmp_path, monkeypatch, store, message):
    if store is None:
        (tmp_path / "a-file").write_text("")
        monkeypatch.setenv("HOOKNB_HOME", str(tmp_path / "a-file"))
    else:
        (tmp_path / "home").mkdir(mode=0o700)
        (tmp_path / "home" / "hooknb.sqlite3").write_bytes(store)
        (tmp_path / "home" / "hooknb.sqlite3").chmod(0o600)
        monkeypatch.setenv("HOOKNB_HOME", str(tmp_path / "home"))
    for args in (["pubsub", "hook", "list"], ["pubsub", "hook", "create", "--jid", JID, "-n", "x", "-P", "-t",
                                              "python_code", "pass"]):
        result = hooknb(*args)
        assert (result.returncode, result.stdout) == (3, ""), result.stderr
        assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr
    if store is not None:
        assert (tmp_path / "home" / "hooknb.sqlite3").read_bytes() == store  # left untouched


def test_a_python_file_without_hook_exits_4_saying_what_is_expected(home, tmp_path):
    """The file the README's words led to: code at top level using ``item``."""
    path = hook_file(tmp_path / "on_post.py", "print(item.id)\n")
    result = hooknb("pubsub", "hook", "create", "--jid", JID, "-n", "x", "-P", path)
    assert result.returncode == errors.EXIT_CREATE == 4
    assert "def hook(host, client, item)" in result.stderr and result.stderr.count("\n") == 1


def test_every_code_of_the_table_is_one_of_hooknb_errors():
    """docs/cli.rst has one table of exit codes, and its codes are those of hooknb.errors."""
    text = MANUAL.read_text()
    assert text.count(".. list-table::") == 1
    documented = [int(code) for code in re.findall(r"^   \* - (\d+)$", text, re.M)]
    assert documented == [errors.EXIT_OK, errors.EXIT_FAILURE, errors.EXIT_USAGE, errors.EXIT_STORE,
                          errors.EXIT_CREATE, errors.EXIT_INTERRUPTED]
    assert set(errors.EXIT_CODES.values()) == set(documented) - {errors.EXIT_OK}
