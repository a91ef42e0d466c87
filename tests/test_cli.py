"""The ``hooknb`` console script as real subprocesses: hook create/list/delete, exit codes, and the
``hooknb run`` runner against the real local server (publish, pickup of new hooks, SIGTERM)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import hiding_node
from processes import JID, RunnerProcess, appender, hook_file, hooknb, lines, publish, wait_until

from hooknb.core.hooks import PUBLISHER_UNKNOWN
from hooknb.storage.store import Store

pytestmark = pytest.mark.integration  # every test runs the console script as a process


def listed() -> list[dict[str, Any]]:
    result = hooknb("pubsub", "hook", "list", "-O", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# ------------------------------------------------------------------------------------ offline
def test_create_list_delete_round_trip(home, tmp_path):
    assert listed() == []
    path = appender(tmp_path / "on_news.py", tmp_path / "out")
    creates = [["-n", "news", "-P", path],  # type inferred from the file
               ["-n", "news", "-P", "-t", "python_code", "print(item.id)\nitem.id"],
               ["-n", "news", "-P", "-t", "python_code", "pass"],
               ["-u", "xmpp:pubsub.localhost?;node=blog", "-P", "-t", "python_code", "pass"]]
    with ThreadPoolExecutor(4) as pool:  # four writers of the store at once
        made = list(pool.map(lambda args: hooknb("pubsub", "hook", "create", "--jid", JID, *args), creates))
    assert [m.returncode for m in made] == [0] * 4, [m.stderr for m in made]
    ids = [m.stdout.split()[1] for m in made]

    hooks = sorted(listed(), key=lambda h: ids.index(h["id"]))
    assert [set(h) for h in hooks] == [{"service", "node", "type", "arg", "persistent", "id", "account",
                                        "pin", "code_changed", "status", "items_waiting", "quarantined",
                                        "executor"}] * 4
    assert {(h["pin"], h["code_changed"], h["status"], h["items_waiting"], h["quarantined"], h["executor"])
            for h in hooks} == {(False, False, "active", 0, 0, "thread")}
    assert [(h["service"], h["node"], h["type"], h["arg"], h["persistent"], h["id"]) for h in hooks] == [
        (JID, "news", "python_file", path, True, ids[0]),
        (JID, "news", "python_code", "print(item.id)\nitem.id", True, ids[1]),
        (JID, "news", "python_code", "pass", True, ids[2]),
        ("pubsub.localhost", "blog", "python_code", "pass", True, ids[3])]
    simple = hooknb("pubsub", "hook", "list", "--jid", JID).stdout.splitlines()
    assert simple[0].split() == ["id", "account", "service", "node", "type", "persistent", "pin",
                                 "code_changed", "status", "items_waiting", "quarantined", "executor", "arg"]
    assert sorted(row.split()[0] for row in simple[1:]) == sorted(ids)

    gone = hooknb("pubsub", "hook", "delete", "--jid", JID, "-n", "news", "-t", "python_file", "-a", path)
    assert (gone.returncode, gone.stdout) == (0, "1 hook(s) deleted\n")
    gone = hooknb("pubsub", "hook", "delete", "--jid", JID, "-n", "news")  # empty type and arg: all
    assert gone.stdout == "2 hook(s) deleted\n"
    assert [h["id"] for h in listed()] == [ids[3]]
    gone = hooknb("pubsub", "hook", "delete", "--jid", JID, "-s", "pubsub.localhost", "-n", "blog")
    assert gone.stdout == "1 hook(s) deleted\n"
    assert listed() == []
    assert Store(home / "hooknb.sqlite3").load_hooks() == []


EXIT_CASES = [  # (arguments, environment, exit code, what stderr says; None: help on stdout)
    (["--help"], {}, 0, None),
    (["pubsub", "hook", "delete", "--help"], {}, 0, None),
    ([], {}, 2, "required: COMMAND"),
    (["pubsub", "hook", "frobnicate"], {}, 2, "invalid choice"),
    (["pubsub", "hook", "create", "--jid", JID, "-P", "-t", "python_code", "pass"], {}, 2, "node is required"),
    (["pubsub", "hook", "create", "--jid", JID, "-n", "x", "-t", "python_code", "pass"], {}, 2, "--persistent"),
    (["pubsub", "hook", "delete", "--jid", "@@", "-n", "x"], {}, 2, "not a valid JID"),
    (["run"], {"HOOKNB_PASSWORD": ""}, 2, "no password for alice@localhost"),  # the store's one account
    (["run", "--jid", JID, "--host", "192.0.2.1", "--plaintext"], {"HOOKNB_PASSWORD": "x"}, 2, "loopback"),
    (["run", "--jid", "alice@example.org", "--plaintext"], {"HOOKNB_PASSWORD": "x"}, 2, "not 'example.org'"),
    (["run", "--jid", JID, "--plaintext", "--direct-tls"], {"HOOKNB_PASSWORD": "x"}, 2, "exclude each other"),
    (["run", "--jid", JID], {"HOOKNB_PASSWORD": ""}, 2, "no password"),
    (["pubsub", "hook", "create", "--jid", JID, "-n", "x", "-P", "/nonexistent/hook.py"], {}, 4,
     "does not exist"),
    (["pubsub", "hook", "create", "--jid", JID, "-n", "x", "-P", "-t", "python_code", "def ("], {}, 4,
     "syntax error"),
    (["pubsub", "hook", "create", "--jid", JID, "-n", "storage:bookmarks", "-P", "-t", "python_code", "pass"],
     {}, 4, "restricted"),
    (["pubsub", "hook", "list"], {"HOOKNB_HOME": "a-file"}, 3, "a-file"),  # cannot be a directory
]


def test_exit_codes(home, tmp_path):
    (tmp_path / "a-file").write_text("")
    kept = hooknb("pubsub", "hook", "create", "--jid", JID, "-n", "x", "-P", "-t", "python_code", "pass")
    cases = [(args, {k: str(tmp_path / v) if v == "a-file" else v for k, v in env.items()}, code, message)
             for args, env, code, message in EXIT_CASES]
    with ThreadPoolExecutor(4) as pool:  # each is a process start: run a few at once
        results = list(pool.map(lambda case: hooknb(*case[0], env=case[1]), cases))
    for (args, _env, code, message), result in zip(cases, results):
        where = f"hooknb {' '.join(args)}: {result.stderr!r}"
        assert result.returncode == code, where
        assert "Traceback" not in result.stderr, where
        if message is None:
            assert result.stdout.startswith("usage: hooknb") and result.stderr == "", where
        else:
            assert result.stderr.count("\n") == 1 and message in result.stderr, where
            assert result.stdout == "", where
    assert [h["id"] for h in listed()] == [kept.stdout.split()[1]]  # failures left the store alone


def test_run_exits_1_on_wrong_password_with_one_line(home, server, account):
    jid, _password = account("w")
    result = hooknb("run", "--jid", jid, "--host", server.host, "--port", str(server.port),
                    "--cafile", server.cafile, env={"HOOKNB_PASSWORD": "wrong"})
    assert result.returncode == 1
    # hooknb's one line only: not slixmpp's "No appropriate login method." before it
    assert result.stderr == f"hooknb: cannot connect {jid}: authentication failed (wrong JID or password)\n"


def test_run_verbose_shows_the_xmpp_librarys_log(home, server, account):
    jid, _password = account("v")
    result = hooknb("run", "--verbose", "--jid", jid, "--host", server.host, "--port", str(server.port),
                    "--cafile", server.cafile, env={"HOOKNB_PASSWORD": "wrong"})
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any("slixmpp" in line and "No appropriate login method." in line for line in lines)
    assert lines[-1] == f"hooknb: cannot connect {jid}: authentication failed (wrong JID or password)"


def test_run_without_the_servers_ca_exits_1_naming_the_certificate(home, server, account):
    jid, password = account("ca")
    result = hooknb("run", "--jid", jid, "--host", server.host, "--port", str(server.port),
                    env={"HOOKNB_PASSWORD": password})
    assert result.returncode == 1
    assert result.stderr == (f"hooknb: cannot connect {jid}: "
                             "certificate of localhost not trusted: unknown CA (give --cafile)\n")


@pytest.mark.parametrize("direct", [False, True], ids=["starttls-at-the-direct-tls-port",
                                                        "direct-tls-at-the-starttls-port"])
def test_run_at_a_port_of_the_other_tls_exits_1_at_once(home, server, account, direct):
    jid, password = account("tls")
    port = server.port if direct else server.direct_tls_port
    started = time.monotonic()
    result = hooknb("run", "--jid", jid, "--host", server.host, "--port", str(port), "--cafile", server.cafile,
                    *(["--direct-tls"] if direct else []), env={"HOOKNB_PASSWORD": password})
    assert time.monotonic() - started < 10  # not the 20 s connection timeout (a process start included)
    where = f"{server.host}:{port}"
    assert (result.returncode, result.stderr) == (1, f"hooknb: cannot connect {jid}: " + (
        f"{where} does not speak direct TLS (wrong version number): is it a STARTTLS port?\n" if direct else
        f"{where} closed the connection before the XMPP stream began: is it a direct TLS port? "
        "(give --direct-tls)\n"))


@pytest.mark.parametrize("args, message", [
    (["--jid", JID, "--port", "99999"], "port 99999 is out of range: give a port from 1 to 65535"),
    (["--jid", "alice"], "not an account JID: 'alice' (expected name@domain)"),
    (["--jid", JID, "--cafile", "/nonexistent/ca.pem"], "CA file /nonexistent/ca.pem not found"),
])
def test_bad_connection_options_exit_2_before_connecting_or_asking(home, args, message):
    """192.0.2.1 (TEST-NET) never answers: a run that tried to connect would wait 20 s, and one
    that asked for the password first would say there is none."""
    started = time.monotonic()
    result = hooknb("run", *args, "--host", "192.0.2.1", env={"HOOKNB_PASSWORD": ""})
    assert (result.returncode, result.stderr) == (2, f"hooknb: {message}\n")
    assert time.monotonic() - started < 10


def test_two_processes_write_the_store_at_once(home):
    """A notebook-like process and a runner-like one creating, deleting and marking runs at once."""
    script = textwrap.dedent("""
        import sys
        from hooknb.host import Host
        tag, jid = sys.argv[1], sys.argv[2]
        host = Host()
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(60):
            hook = host.create_hook(f"{tag}-{i}", "pass", type="python_code", persistent=True, account=jid)
            (seq,) = host.store.write_batch([(hook.id, jid, jid, f"{tag}-{i}", "publish", "item", "d", None,
                                              None, 0.0)], [(jid, jid, f"{tag}-{i}", "item", "d")])
            host.store.write_batch([], done=[(seq, 1.0)])
            if i % 2:
                assert host.delete_hooks(f"{tag}-{i}", account=jid) == 1
        print("done", flush=True)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, tag, jid], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
             for tag, jid in (("a", "a@localhost"), ("b", "b@localhost"))]
    for proc in procs:
        assert proc.stdout.readline() == "ready\n"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.stdout.readline() == "done\n" and proc.wait(30) == 0
    store = Store(home / "hooknb.sqlite3")
    for tag in "ab":
        nodes = sorted(h["node"] for h in store.load_hooks(f"{tag}@localhost"))
        assert nodes == sorted(f"{tag}-{i}" for i in range(0, 60, 2))
    assert store._query("PRAGMA integrity_check") == [("ok",)]
    assert len(listed()) == 60


# ------------------------------------------------------------------------------------ hooknb run
def test_run_over_direct_tls(home, server, account, tmp_path):
    jid, password = account("direct")
    proc = RunnerProcess(["--jid", jid, "--host", server.host, "--port", str(server.direct_tls_port),
                          "--cafile", server.cafile, "--direct-tls", "--log-format", "json"],
                         {"HOOKNB_PASSWORD": password}, tmp_path / "runner.err")
    try:
        assert proc.wait_record("ready")["account"] == jid
        assert proc.stop() == 0
    finally:
        proc.kill()


def test_run_plaintext_to_the_jids_localhost_domain(home, plaintext_server, tmp_path):
    jid = plaintext_server.jid("alice")  # no --host: the JID's domain, localhost, is loopback
    proc = RunnerProcess(["--jid", jid, "--port", str(plaintext_server.port), "--plaintext",
                          "--log-format", "json"],
                         {"HOOKNB_PASSWORD": plaintext_server.accounts["alice"]}, tmp_path / "runner.err")
    try:
        assert proc.wait_record("ready")["account"] == jid
        assert proc.stop() == 0
    finally:
        proc.kill()


def test_runner_runs_a_python_file_hook_on_a_publish(runner, account, server, pubsub_node, tmp_path):
    publisher, node = pubsub_node
    jid, password = account("r")
    out = tmp_path / "out"
    path = appender(tmp_path / "hook.py", out)
    assert hooknb("pubsub", "hook", "create", "--jid", jid, "-s", server.pubsub, "-n", node, "-P",
                  path).returncode == 0
    proc = runner(jid, password, "--log-format", "text")
    wait_until(lambda: any(" ready " in line for line in proc.lines))
    assert any(" hook-loaded " in line and f"node={node}" in line for line in proc.lines)
    publish(publisher, node, server.pubsub, "p1")
    wait_until(lambda: lines(out) == ["p1"])
    run = wait_until(lambda: [line for line in proc.lines if " run " in line])
    assert f"node={node}" in run[0] and "item=p1" in run[0] and "status=ok" in run[0]
    assert proc.stop(signal.SIGINT) == 0
    assert proc.lines[-3].split()[1:3] == ["stopping", "signal=SIGINT"]
    assert proc.lines[-2].split()[1] == "stopped" and "runs=1" in proc.lines[-2]
    assert proc.lines[-1].split()[1:] == ["exit", "code=0"]


def test_runner_picks_up_hooks_added_and_deleted_while_it_runs(runner, account, server, pubsub_node,
                                                               make_host, home, tmp_path):
    publisher, node = pubsub_node
    jid, password = account("r")
    proc = runner(jid, password)
    assert proc.wait_record("ready")["hooks"] == 0

    out_file, out_code = tmp_path / "file", tmp_path / "code"
    path = appender(tmp_path / "hook.py", out_file)
    made = hooknb("pubsub", "hook", "create", "--jid", jid, "-s", server.pubsub, "-n", node, "-P", path)
    file_id = made.stdout.split()[1]
    added = proc.wait_record("hook-added", hook=file_id)
    store = Store(home / "hooknb.sqlite3")
    created = next(h["created"] for h in store.load_hooks(jid) if h["id"] == file_id)
    latency = datetime.fromisoformat(added["ts"]).timestamp() - created  # stored -> subscribed
    print(f"runner pickup latency: {latency * 1000:.0f} ms")
    assert 0 < latency < 1.0
    # the runner remembered the node's newest item ("": none yet) for an exact catch-up later
    assert wait_until(lambda: store.get_position(jid, server.pubsub, node))[0] == ""

    notebook = make_host()  # a notebook's host on the same store, not connected
    code_hook = notebook.create_hook(node, f"open({str(out_code)!r}, 'a').write(item.id + '\\n')",
                                     type="python_code", service=server.pubsub, persistent=True,
                                     account=jid)
    proc.wait_record("hook-added", hook=code_hook.id)
    publish(publisher, node, server.pubsub, "i1")
    wait_until(lambda: lines(out_file) == ["i1"] and lines(out_code) == ["i1"])

    gone = hooknb("pubsub", "hook", "delete", "--jid", jid, "-s", server.pubsub, "-n", node,
                  "-t", "python_file", "-a", path)
    assert gone.stdout == "1 hook(s) deleted\n"
    proc.wait_record("hook-removed", hook=file_id)
    publish(publisher, node, server.pubsub, "i2")
    wait_until(lambda: lines(out_code) == ["i1", "i2"])
    proc.wait_record("run", hook=code_hook.id, item="i2")
    assert lines(out_file) == ["i1"]
    assert sorted((r["hook"], r["item"], r["status"]) for r in proc.records("run")) == sorted(
        [(file_id, "i1", "ok"), (code_hook.id, "i1", "ok"), (code_hook.id, "i2", "ok")])
    assert proc.stop() == 0


def test_sigterm_waits_for_running_hooks_and_loses_no_run(runner, account, server, pubsub_node, home,
                                                         tmp_path):
    publisher, node = pubsub_node
    jid, password = account("r")
    out = tmp_path / "out"
    path = appender(tmp_path / "slow.py", out, delay=0.3)
    made = hooknb("pubsub", "hook", "create", "--jid", jid, "-s", server.pubsub, "-n", node, "-P", path)
    hook_id = made.stdout.split()[1]
    proc = runner(jid, password)
    proc.wait_record("ready")
    ids = ["s1", "s2", "s3", "s4"]
    publish(publisher, node, server.pubsub, *ids)
    proc.wait_record("run")  # one run done, three queued or running
    assert proc.stop(signal.SIGTERM) == 0
    stopping, stopped = proc.records("stopping")[0], proc.records("stopped")[0]
    assert stopping["signal"] == "SIGTERM" and stopping["pending"] >= 1
    assert (stopped["runs"], stopped["unfinished"]) == (4, 0)
    assert [(r["item"], r["status"]) for r in proc.records("run")] == [(i, "ok") for i in ids]
    assert lines(out) == ids
    assert [r["event"] for r in proc.records()[-2:]] == ["stopped", "exit"] and proc.records()[-1]["code"] == 0
    store = Store(home / "hooknb.sqlite3")
    assert [item for item, _kind, _digest in store.done_items(hook_id)] == ids
    assert store.pending(jid) == [] and stopped["pending"] == 0


def test_runner_skips_and_warns_once_where_the_service_hides_publishers(runner, account, connect,
                                                                        make_host, server, node):
    owner = connect(make_host())
    service = hiding_node(owner, server, node)
    jid, password = account("r")
    made = hooknb("pubsub", "hook", "create", "--jid", jid, "-s", service, "-n", node, "-P",
                  "--from", owner.jid, "-t", "python_code", "item.id")
    assert made.returncode == 0
    # create does not connect: the service's answer comes with the first item
    assert made.stderr.startswith("note: ") and made.stderr.endswith("`hooknb run` logs it\n")
    hook_id = made.stdout.split()[1]
    proc = runner(jid, password)
    proc.wait_record("ready")
    publish(owner, node, service, "o1", "o2")
    warning = proc.wait_record("warning", hook=hook_id)
    assert PUBLISHER_UNKNOWN in warning["error"] and warning["node"] == node
    proc.wait_record("run", count=2)
    reason = f"--from: publisher unknown, {service} did not say who published the item"
    assert [(r["item"], r["status"], r["error"]) for r in proc.records("run")] == [
        ("o1", "skipped", reason), ("o2", "skipped", reason)]
    assert proc.stop() == 0
    assert len(proc.records("warning")) == 1


# ------------------------------------------------------------------------------------ trust
def inject(home: Path, jid: str, service: str, node: str, mark: Path) -> None:
    """Write a python_code hook (appending each item id to ``mark``) straight into the store, as
    someone who can write it would, with the node seen empty: a session catches up every item."""
    store = Store(home / "hooknb.sqlite3")
    store.save_hook({"id": "injected", "account": jid, "service": service, "node": node,
                     "type": "python_code", "arg": f"open({str(mark)!r}, 'a').write(item.id + '\\n')",
                     "options": {}, "created": 1.0})
    store.set_position(jid, service, node, "")
    store.close()


def _mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


LOOSE_STORES = {
    "data directory group-writable": lambda home: os.chmod(home, 0o770),
    "store group-writable": lambda home: os.chmod(home / "hooknb.sqlite3", 0o664),
    "store of another user": lambda home: os.chown(home / "hooknb.sqlite3", 65534, -1),
    "restrict policy group-writable": lambda home: (home / "restrict.json").chmod(0o664),
}


@pytest.mark.parametrize("case", list(LOOSE_STORES))
def test_run_refuses_a_loose_store_and_its_injected_hook_never_runs(case, runner, account, server,
                                                                    pubsub_node, home, tmp_path):
    if "another user" in case and os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")
    publisher, node = pubsub_node
    jid, password = account("inj")
    mark = tmp_path / "injected-ran"
    inject(home, jid, server.pubsub, node, mark)
    (home / "restrict.json").write_text('{"restrict": []}')  # nothing restricted (0600)
    (home / "restrict.json").chmod(0o600)
    publish(publisher, node, server.pubsub, "waiting")  # a session would catch it up: runs it
    LOOSE_STORES[case](home)
    refused = hooknb("run", "--jid", jid, "--host", server.host, "--port", str(server.port), "--cafile",
                     server.cafile, env={"HOOKNB_PASSWORD": password})
    assert refused.returncode == 1 and refused.stdout.split()[1:3] == ["exit", "code=1"], "its log's last record"
    assert "refusing it as a source of code" in refused.stdout and refused.stdout.count("\n") == 1
    assert len(refused.stderr.splitlines()) == 1 and "refusing it as a source of code" in refused.stderr
    assert not mark.exists()

    fix = re.search(r"(?:fix: |then )(ch(?:mod|own) \S+ \S+)", refused.stderr).group(1)
    subprocess.run(fix.split(), check=True)  # the command the message gave
    proc = runner(jid, password)
    proc.wait_record("ready")
    publish(publisher, node, server.pubsub, "fixed")
    proc.wait_record("run", hook="injected", item="fixed")
    assert lines(mark) == ["waiting", "fixed"]  # the refusal was all that kept it from running
    assert proc.stop() == 0


def test_list_and_delete_work_on_a_loose_store_and_create_is_refused(home, tmp_path):
    inject(home, JID, "pubsub.localhost", "news", tmp_path / "never")
    os.chmod(home, 0o770)
    reason = (f"the hook store's directory {home} is group- or world-writable (mode 770): refusing it as a "
              f"source of code; fix: chmod 700 {home}")
    made = hooknb("pubsub", "hook", "create", "--jid", JID, "-n", "news", "-P", "-t", "python_code", "1")
    assert (made.returncode, made.stdout, made.stderr) == (1, "", f"hooknb: {reason}\n")
    shown = hooknb("pubsub", "hook", "list", "-O", "json")
    assert (shown.returncode, shown.stderr) == (0, f"hooknb: warning: {reason}\n")
    assert [h["id"] for h in json.loads(shown.stdout)] == ["injected"]  # what was injected, to see
    gone = hooknb("pubsub", "hook", "delete", "--jid", JID, "-s", "pubsub.localhost", "-n", "news")
    assert (gone.returncode, gone.stdout) == (0, "1 hook(s) deleted\n")
    assert _mode(home) == 0o770  # left for the user to fix


def test_runner_journals_changed_files_and_refuses_pinned_ones_until_re_created(runner, account, server,
                                                                               pubsub_node, tmp_path):
    publisher, node = pubsub_node
    jid, password = account("pin")
    v1 = "def hook(host, client, item):\n    return 'v1'\n"
    paths = {name: hook_file(tmp_path / f"{name}.py", v1) for name in ("free", "pinned")}
    create = ["pubsub", "hook", "create", "--jid", jid, "-s", server.pubsub, "-n", node, "-P"]
    ids = {"free": hooknb(*create, paths["free"]).stdout.split()[1],
           "pinned": hooknb(*create, "--pin", paths["pinned"]).stdout.split()[1]}
    marks = {name: tmp_path / f"{name}-v2-ran" for name in paths}
    for name, path in paths.items():
        hook_file(Path(path), f"""\
            open({str(marks[name])!r}, "w").close()
            def hook(host, client, item):
                return "v2"
        """)
    assert {h["id"]: (h["pin"], h["code_changed"]) for h in listed()} == {
        ids["free"]: (False, True), ids["pinned"]: (True, True)}
    proc = runner(jid, password)
    proc.wait_record("ready")
    assert {r["hook"]: (r.get("code_changed"), r["error"]) for r in proc.records("hook-loaded")} == {
        ids["free"]: (True, None), ids["pinned"]: (True, None)}
    publish(publisher, node, server.pubsub, "p1")
    free, pinned = (proc.wait_record("run", hook=ids[name], item="p1") for name in ("free", "pinned"))
    assert (free["status"], free["code_changed"], free["error"]) == ("ok", True, None)
    assert (pinned["status"], pinned["code_changed"]) == ("refused", True)
    assert "changed since the hook was created" in pinned["error"] and "re-create" in pinned["error"]
    assert marks["free"].exists() and not marks["pinned"].exists()

    assert hooknb(*create, "--pin", paths["pinned"]).returncode == 0  # accepts the change
    updated = proc.wait_record("hook-updated", hook=ids["pinned"])
    assert "code_changed" not in updated
    publish(publisher, node, server.pubsub, "p2")
    again = proc.wait_record("run", hook=ids["pinned"], item="p2")
    assert again["status"] == "ok" and "code_changed" not in again
    assert proc.stop() == 0
