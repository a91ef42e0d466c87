"""Accounts and passwords against the real local server, over STARTTLS with its CA.

* Which account the magics, the API and the command line act on: ``--jid``, else ``$HOOKNB_JID``,
  else the account connected last (connecting again makes it the default again), else the only
  account with hooks in the store; with several connected, the magics name the account.
* Where the password comes from: the argument, ``$HOOKNB_PASSWORD``, the keyring (keyrings.alt's
  file backend in a scratch directory: a real backend, headless), a prompt, else one line, in a
  kernel run without input too; ``--password`` warns, ``--password-file`` must be private.
* No password reaches a log, the store, an exception or a notebook's outputs, after a failed and
  after a successful connection.
"""

from __future__ import annotations

import base64
import getpass
import json
import logging
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.interactiveshell import InteractiveShell
from nbclient import NotebookClient
from processes import HOOKNB, RunnerProcess, hooknb

import hooknb as api
from hooknb.xmpp import connection
from hooknb import host as host_module
from hooknb.xmpp import passwords
from hooknb.errors import ConnectError, HooknbError
from hooknb.host import Host
from hooknb.server import ServerInfo

pytestmark = pytest.mark.integration  # real server, processes, a kernel

NOBODY = "nobody can be asked here (no terminal, or a kernel run without input)"


@pytest.fixture
def magic(make_host: Callable[[], Host]) -> Iterator[Callable[[str], object]]:
    """``magic("connect ...")`` runs ``%hook connect ...`` on a Host of the test (``magic.host``)."""
    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("hooknb")
    magics = shell.magics_manager.registry["HookMagics"]
    magics.host = make_host()

    def run(line: str) -> object:
        return shell.run_line_magic("hook", line)

    run.host = magics.host
    yield run
    magics.host = None


@pytest.fixture
def where(server: ServerInfo) -> str:
    return f"--host {server.host} --port {server.port} --cafile {server.cafile}"


@pytest.fixture
def no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOKNB_PASSWORD", raising=False)


def private_file(path: Path, text: str) -> str:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


# ------------------------------------------------------------------------------------ one account model
def test_connecting_an_account_again_makes_it_the_default_again(magic, account, where, node, capsys):
    """The issue's sequence: connect alice, bob, alice: the magics act on alice."""
    (alice, alice_password), (bob, bob_password) = account("alice"), account("bob")
    magic(f"connect {alice} --password {alice_password} {where}")
    magic(f"connect {bob} --password {bob_password} {where}")
    magic(f"connect {alice} --password {alice_password} {where}")
    out = capsys.readouterr()
    assert out.out.splitlines() == [f"connected as {alice}", f"connected as {bob}, the default account",
                                    f"connected as {alice}, the default account"]
    assert out.err == ""  # no cell holds these passwords (run_line_magic)

    magic(f"create -n {node} -t python_code item.id")
    assert capsys.readouterr().out.startswith(f"{alice}: hook ")  # several connected: named
    magic(f"create -n {node} -t python_code item.kind --jid {bob}")
    assert capsys.readouterr().out.startswith(f"{bob}: hook ")
    host = magic.host
    assert [(h.account, h.service, h.arg) for h in host.hooks()] == [(alice, alice, "item.id"),
                                                                     (bob, bob, "item.kind")]
    assert list(magic(f"list --jid {bob}")["arg"]) == ["item.kind"]
    assert list(magic(f"status --jid {bob}")["account"]) == [bob]

    magic(f"delete -s {alice} -n {node}")
    assert capsys.readouterr().out == f"{alice}: 1 hook(s) deleted\n"
    assert [h.account for h in host.hooks()] == [bob]
    magic(f"publish -n {node} -i p1 '<x xmlns=\"urn:t\"/>'")
    assert capsys.readouterr().out == f"{alice}: published item 'p1' to node '{node}' on {alice}\n"
    magic(f"delete -n {node} --jid {bob}")
    assert capsys.readouterr().out == f"{bob}: 1 hook(s) deleted\n"


def test_a_password_written_in_a_cell_is_warned_about(magic, account, where, capsys):
    """A password written on a %hook line is saved with the notebook; one put there by {expr} is not."""
    shell = InteractiveShell.instance()
    jid, password = account("typed")
    assert shell.run_cell(f"%hook connect {jid} --password {password} {where}", store_history=True).success
    assert capsys.readouterr().err == (
        "warning: a password written on a %hook line stays in the notebook and in IPython's history: prefer "
        "$HOOKNB_PASSWORD, the keyring (%hook password set JID) or no password (you are asked for it)\n")
    shell.user_ns["secret"] = password
    assert shell.run_cell(f"%hook connect {jid} --password {{secret}} {where}", store_history=True).success
    assert capsys.readouterr() == (f"connected as {jid}\n", "")


def test_hooknb_jid_comes_before_the_account_connected_last(magic, account, where, node, capsys, monkeypatch):
    (alice, alice_password), (bob, bob_password) = account("alice"), account("bob")
    monkeypatch.setenv("HOOKNB_JID", bob)
    magic(f"connect --password {bob_password} {where}")  # no JID: $HOOKNB_JID's
    magic(f"connect {alice} --password {alice_password} {where}")
    assert capsys.readouterr().out.splitlines() == [
        f"connected as {bob}", f"connected as {alice} (the magics act on {bob} unless --jid names another)"]
    magic(f"create -n {node} -t python_code item.id")
    assert [h.account for h in magic.host.hooks()] == [bob]
    assert magic.host.account() == bob


def test_the_only_account_in_the_store_is_the_default(make_host, connect, node, capsys):
    first = make_host()
    jid = connect(first).jid
    first.create_hook(node, "item.id", type="python_code", persistent=True)
    first.close()
    later = make_host()  # a new process, as it were: nothing connected
    assert later.account() == jid
    assert later.delete_hooks(node) == 1  # on that account
    with pytest.raises(HooknbError, match="^no account: give --jid JID"):
        later.account()


def test_the_magics_connect_and_create_without_any_jid_when_the_store_knows_one(magic, make_host, account,
                                                                                  server, where, node):
    jid, password = account("stored")
    seed = make_host()
    seed.create_hook(node, "item.id", type="python_code", persistent=True, account=jid)
    magic(f"connect --password {password} {where}")
    assert magic.host.client().jid == jid


def test_several_accounts_in_the_store_need_jid_on_the_command_line(home):
    for jid in ("a@localhost", "b@localhost"):
        assert hooknb("pubsub", "hook", "create", "--jid", jid, "-n", "x", "-P", "-t", "python_code",
                      "pass").returncode == 0
    result = hooknb("run", env={"HOOKNB_PASSWORD": "x"})
    assert (result.returncode, result.stderr) == (
        2, "hooknb: which account? the store holds hooks of a@localhost, b@localhost: give --jid (or set "
           "$HOOKNB_JID)\n")
    result = hooknb("pubsub", "hook", "delete", "-n", "x", env={"HOOKNB_JID": "b@localhost"})
    assert (result.returncode, result.stdout) == (0, "1 hook(s) deleted\n")
    assert hooknb("pubsub", "hook", "delete", "-n", "x").stdout == "1 hook(s) deleted\n"  # a's, the one left


def test_run_without_jid_runs_the_stores_one_account(home, server, account, tmp_path):
    jid, password = account("runner")
    assert hooknb("pubsub", "hook", "create", "--jid", jid, "-n", "n", "-P", "-t", "python_code",
                  "pass").returncode == 0
    proc = RunnerProcess(["--host", server.host, "--port", str(server.port), "--cafile", server.cafile,
                          "--log-format", "json"], {"HOOKNB_PASSWORD": password}, tmp_path / "err")
    try:
        assert proc.wait_record("ready")["account"] == jid
        assert proc.stop() == 0
    finally:
        proc.kill()


def test_every_command_takes_the_connection_options(home, tmp_path):
    """The issue's "unrecognized arguments: --host --port 15333 --plaintext FILE": commands that do
    not connect take the options and ignore them."""
    script = tmp_path / "hook.py"
    script.write_text("def hook(host, client, item):\n    pass\n")
    options = ["--jid", "alice@localhost", "--host", "h.example", "--port", "15333", "--plaintext",
               "--cafile", "/nonexistent/ca.pem"]
    made = hooknb("pubsub", "hook", "create", *options, "-n", "x", "-P", str(script))
    assert made.returncode == 0, made.stderr
    listed = hooknb("pubsub", "hook", "list", *options, "-O", "json")
    assert [h["arg"] for h in json.loads(listed.stdout)] == [str(script)]
    assert hooknb("pubsub", "hook", "delete", *options, "-n", "x").stdout == "1 hook(s) deleted\n"
    usage = hooknb("run", "--help").stdout
    assert "[--jid JID]" in usage and "--jid JID             the account's JID (default: $HOOKNB_JID, else " \
        "the only" in usage
    help_ = hooknb("pubsub", "hook", "list", "--help").stdout
    assert "this command does not connect: the connection options are ignored" in " ".join(help_.split())


# ------------------------------------------------------------------------------------ password order
@pytest.fixture
def global_host(make_host, monkeypatch) -> Host:
    """``hooknb.connect`` acts on the process-wide host: the test's own."""
    host = make_host()
    monkeypatch.setattr(host_module, "_host", host)
    return host


def test_the_api_takes_the_password_in_order(global_host, account, server, keyring_backend, monkeypatch,
                                             no_password):
    jid, password = account("order")
    options = {"host": server.host, "port": server.port, "cafile": server.cafile}
    passwords.keep(jid, "wrong-in-keyring")
    monkeypatch.setenv("HOOKNB_PASSWORD", password)
    with pytest.raises(ConnectError, match="authentication failed"):  # the argument first
        api.connect(jid, "wrong-given", **options)
    assert api.connect(jid, **options).state == "connected"  # the environment before the keyring
    global_host.disconnect(jid)
    monkeypatch.setenv("HOOKNB_PASSWORD", "wrong-in-env")
    with pytest.raises(ConnectError, match="authentication failed"):
        api.connect(jid, **options)
    monkeypatch.delenv("HOOKNB_PASSWORD")
    passwords.keep(jid, password)
    assert api.connect(jid, **options).state == "connected"  # the keyring before a prompt
    global_host.disconnect(jid)
    passwords.forget(jid)
    asked = []
    monkeypatch.setattr(getpass, "getpass", lambda question: asked.append(question) or password)
    monkeypatch.setattr(passwords, "can_ask", lambda: True)  # a terminal, as it were
    assert api.connect(jid, **options).state == "connected"
    assert asked == [f"password for {jid}: "]
    global_host.disconnect(jid)

    def kernel_without_input(_question: str) -> str:  # what ipykernel's getpass raises then
        raise StdinNotImplementedError("getpass was called, but this frontend does not support input requests.")

    monkeypatch.setattr(getpass, "getpass", kernel_without_input)
    with pytest.raises(HooknbError) as info:
        api.connect(jid, **options)
    assert str(info.value) == (f"no password for {jid} and {NOBODY}: set $HOOKNB_PASSWORD, give --password-file "
                               f"or keep it in the system keyring (hooknb password set {jid})")


def test_the_command_line_keeps_passwords_in_the_keyring(home, server, account, keyring_backend, no_password):
    jid, password = account("kept")
    options = ["--jid", jid, "--host", server.host, "--port", str(server.port), "--cafile", server.cafile]
    env = {**os.environ, **keyring_backend}
    kept = subprocess.run([*HOOKNB, "password", "set", jid], input=f"{password}\n", capture_output=True,
                          text=True, env=env, timeout=60)
    assert (kept.returncode, kept.stdout) == (0, f"password of {jid} kept in the keyring (file PlaintextKeyring)\n")
    published = hooknb("pubsub", "publish", *options, "-n", "kept", "-i", "one", "<x xmlns='urn:t'/>", env=env)
    assert (published.returncode, published.stderr) == (0, "")  # no password given: the keyring's
    assert published.stdout == f"published item 'one' to node 'kept' on {jid}\n"

    removed = hooknb("password", "delete", "--jid", jid, env=env)
    assert (removed.returncode, removed.stdout) == (0, f"password of {jid} removed from the keyring\n")
    again = hooknb("password", "delete", jid, env=env)
    assert (again.returncode, again.stderr) == (1, f"hooknb: no password of {jid} in the keyring (file "
                                                   "PlaintextKeyring)\n")
    refused = hooknb("pubsub", "publish", *options, "-n", "kept", "<x xmlns='urn:t'/>", env=env)
    assert refused.returncode == 2
    assert refused.stderr == (f"hooknb: no password for {jid} and {NOBODY}: set $HOOKNB_PASSWORD, give "
                              f"--password-file or keep it in the system keyring (hooknb password set {jid})\n")


def test_the_keyring_through_the_magics(magic, account, where, keyring_backend, no_password, monkeypatch, capsys):
    jid, password = account("magic")
    answers = iter([password, password])
    monkeypatch.setattr(getpass, "getpass", lambda _question: next(answers))
    magic(f"password set {jid}")
    assert capsys.readouterr().out == f"password of {jid} kept in the keyring (file PlaintextKeyring)\n"
    magic(f"connect {jid} {where}")
    assert magic.host.client(jid).state == "connected"
    magic(f"password delete {jid}")
    with pytest.raises(UsageError, match=f"^no password of {jid} in the keyring"):
        magic(f"password delete {jid}")


def test_password_options_on_the_command_line(home, server, account, tmp_path, no_password):
    jid, password = account("file")
    options = ["run", "--jid", jid, "--host", server.host, "--port", str(server.port), "--cafile",
               server.cafile]
    loose = tmp_path / "loose"
    loose.write_text(password + "\n")
    loose.chmod(0o644)
    result = hooknb(*options, "--password-file", str(loose))
    assert (result.returncode, result.stderr) == (2, f"hooknb: password file {loose} may be read by group or "
                                                     f"others (mode 644): make it private with chmod 600 {loose}\n")
    both = hooknb(*options, "--password", "x", "--password-file", str(loose))
    assert both.returncode == 2 and "not allowed with argument --password" in both.stderr
    warned = hooknb(*options, "--password", "wrong-on-the-line")
    assert warned.returncode == 1
    assert warned.stderr.splitlines() == [
        "hooknb: warning: every user of this machine can read --password (ps, /proc) and your shell history "
        "keeps it: prefer $HOOKNB_PASSWORD, --password-file or the keyring (hooknb password set JID)",
        f"hooknb: cannot connect {jid}: authentication failed (wrong JID or password)"]
    private = private_file(tmp_path / "private", password)
    proc = RunnerProcess([*options[1:], "--password-file", private, "--log-format", "json"], {},
                         tmp_path / "runner.err")
    try:
        assert proc.wait_record("ready")["account"] == jid
        assert proc.stop() == 0
    finally:
        proc.kill()


# ------------------------------------------------------------------------------------ no password leaks
def leaks(password: str, *texts: str | bytes) -> list[str]:
    """The texts holding ``password`` (as text, or in bytes: a store file)."""
    needle = password.encode()
    return [str(t)[:200] for t in texts if needle in (t if isinstance(t, bytes) else t.encode())]


def store_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1", "PLAIN"])
def test_no_password_in_logs_journals_store_or_errors_in_process(make_host, account, server, home, node, caplog,
                                                                monkeypatch, mechanism):
    """With PLAIN, what the client sends to log in is the password in base64: hidden in the log."""
    prepare = connection.apply

    def apply(xmpp, options):
        prepare(xmpp, options)
        xmpp.plugin["feature_mechanisms"].use_mech = mechanism

    monkeypatch.setattr(connection, "apply", apply)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("slixmpp").setLevel(logging.DEBUG)  # every stanza, as hooknb run -vv
    try:
        jid, password = account("leak")
        wrong = f"wrong-{uuid.uuid4().hex}"
        options = {"host": server.host, "port": server.port, "cafile": server.cafile}
        host = make_host()
        with pytest.raises(ConnectError) as failed:
            host.connect(jid, wrong, **options)
        client = host.connect(jid, password, **options)
        host.create_hook(node, "item.id", type="python_code", persistent=True, create_node=True)
        client.publish(node, "<x xmlns='urn:t'/>", item_id="i1")
        assert host.wait_runs(1)
        texts = [caplog.text, str(failed.value), repr(failed.value), repr(host), repr(client),
                 host.status().to_string(), host.hooks_frame().to_string(), host.events_frame().to_string(),
                 host.runs_frame().to_string(), repr(host.events.snapshot()), repr(host.runs.snapshot()),
                 client.last_error or ""]
        host.close()
        assert f"mechanism=\"{mechanism}\">[hidden]</auth>" in caplog.text  # the stanzas were logged
        for secret in (wrong, password):
            plain = base64.b64encode(f"\0{jid.split('@')[0]}\0{secret}".encode()).decode()
            assert leaks(secret, *texts, store_bytes(home)) == [] and leaks(plain, *texts) == []
    finally:
        logging.getLogger("slixmpp").setLevel(logging.NOTSET)


def test_no_password_in_the_command_lines_logs_or_store(home, server, account, tmp_path, no_password):
    jid, password = account("cli")
    wrong = f"wrong-{uuid.uuid4().hex}"
    options = ["--jid", jid, "--host", server.host, "--port", str(server.port), "--cafile", server.cafile]
    failed = hooknb("run", "-vv", *options, env={"HOOKNB_PASSWORD": wrong})
    assert failed.returncode == 1 and "SEND:" in failed.stderr
    proc = RunnerProcess([*options, "-vv", "--log-format", "json", "--password-file",
                          private_file(tmp_path / "pw", password)], {}, tmp_path / "runner.err")
    try:
        assert proc.wait_record("ready")["account"] == jid
        assert proc.stop() == 0
    finally:
        proc.kill()
    logged = "\n".join(proc.lines) + (tmp_path / "runner.err").read_text()
    assert "SEND:" in logged
    for secret in (wrong, password):
        assert leaks(secret, failed.stdout, failed.stderr, logged, store_bytes(home)) == []


def test_a_kernel_without_input_says_so_in_one_line_and_outputs_hold_no_password(
        server, account, tmp_path, monkeypatch, no_password):
    """nbclient runs kernels as nbconvert and papermill do: no input requests.  The notebook fails
    to connect (nobody to ask; a wrong password), then connects (a password file): the saved
    notebook's outputs hold neither password."""
    jid, password = account("kernel")
    wrong = f"wrong-{uuid.uuid4().hex}"
    monkeypatch.setenv("HOOKNB_HOME", str(tmp_path / "home"))
    where = f"--host {server.host} --port {server.port} --cafile {server.cafile}"
    cells = ["%load_ext hooknb",
             f"%hook connect {jid} {where}",
             f"import os\nos.environ['HOOKNB_PASSWORD'] = open({private_file(tmp_path / 'wrong', wrong)!r}).read().strip()",
             f"%hook connect {jid} {where}",
             f"del os.environ['HOOKNB_PASSWORD']\n%hook connect {jid} --password-file {private_file(tmp_path / 'pw', password)} {where}",
             "%hook status",
             "%hook publish -n leak -i i1 \"<x xmlns='urn:t'/>\"\n%hook events"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    # coalesce_streams: the kernel may flush one print's text and its newline apart (it did in CI);
    # a notebook frontend shows them as one stream, and so does the saved notebook here.
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True, coalesce_streams=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = [[(o.output_type, o.get("name"), o.get("text")) for o in cell.outputs] for cell in nb.cells]
    assert shown[1] == [("stream", "stderr", f"UsageError: no password for {jid} and {NOBODY}: set "
                         "$HOOKNB_PASSWORD, give --password-file or keep it in the system keyring (hooknb "
                         f"password set {jid})\n")]  # IPython's one line for a UsageError
    assert shown[3] == [("stream", "stderr", f"UsageError: cannot connect {jid}: authentication failed (wrong "
                         "JID or password)\n")]
    assert shown[4] == [("stream", "stdout", f"connected as {jid}\n")]
    saved = nbformat.writes(nb)
    assert "StdinNotImplementedError" not in saved and "Traceback" not in saved
    assert jid in saved and "i1" in saved  # the status and events are there
    assert leaks(wrong, saved) == [] and leaks(password, saved) == []
