"""Hooks as code: ``hooknb apply``, ``%hook apply`` and ``hooknb run --manifest`` as real processes
and a real IPython shell, against the real local server (issue 29)."""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from processes import (
    RunnerProcess,
    appender,
    hook_file,
    hooknb,
    lines,
    publish,
    wait_until,
)

from hooknb.storage.store import Store

pytestmark = pytest.mark.integration

#: The example of issue 29, as written.
EXAMPLE = """\
[[hooks]]
jid = "alice@example.org"       # optional when --jid or the default account names it
service = "pubsub.example.org"  # optional: the account's own PEP service
node = "news"
type = "python_file"
arg = "hooks/on_news.py"        # relative to this file
timeout = 10

[[hooks]]
jid = "alice@example.org"
node = "urn:xmpp:microblog:0"
type = "python_code"
arg = "print(item.id)"
"""


#: What an unknown key of a hook says: the keys there are.
KEYS = ("unknown key; the keys are jid, service, node, uri, type, on, phase, priority, timeout, from, pin, "
        "max-depth, disabled, executor, concurrency, unordered, compat, arg, sha256")


def manifest(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    path.chmod(0o600)
    return path


def stored(home: Path) -> list[dict]:
    return Store(home / "hooknb.sqlite3").load_hooks()


def applied(*args: str) -> list[str]:
    result = hooknb("apply", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory with the example's hook file."""
    root = tmp_path / "project"
    (root / "hooks").mkdir(parents=True)
    hook_file(root / "hooks" / "on_news.py", "def hook(host, client, item):\n    print(item.id)\n")
    return root


# ------------------------------------------------------------------------------------ offline
def test_the_issues_example_plan_apply_twice_change_remove(home, project):
    path = manifest(project / "hooks.toml", EXAMPLE)
    plan = applied(str(path), "--dry-run")
    assert plan[0] == f"plan of {path}:"
    assert [line.split()[:3] for line in plan[1:3]] == [["create", "hook", plan[1].split()[2]],
                                                       ["create", "hook", plan[2].split()[2]]]
    assert " python_file hooks/on_news.py on pubsub.example.org node 'news' (alice@example.org)" in plan[1]
    assert plan[3:] == ["2 to create, 0 to change, 0 to delete, 0 unchanged", "dry run: nothing applied"]
    assert stored(home) == []

    assert applied(str(path))[-1] == "applied"
    first = stored(home)
    assert [(h["account"], h["service"], h["node"], h["type"], h["arg"], h["options"]["timeout"],
             h["options"]["manifest"]) for h in first] == [
        ("alice@example.org", "pubsub.example.org", "news", "python_file", str(project / "hooks" / "on_news.py"),
         10.0, str(path)),
        ("alice@example.org", "alice@example.org", "urn:xmpp:microblog:0", "python_code", "print(item.id)",
         30.0, str(path))]

    again = applied(str(path))  # applying twice changes nothing
    assert again[-2:] == ["0 to create, 0 to change, 0 to delete, 2 unchanged", "nothing to change"]
    assert stored(home) == first

    path.write_text(EXAMPLE.replace("timeout = 10", "timeout = 20"))
    changed = applied(str(path))
    assert changed[1].startswith(f"  change     hook {first[0]['id']} ") and changed[1].endswith(
        ": timeout 10.0 -> 20.0")
    assert changed[-2:] == ["0 to create, 1 to change, 0 to delete, 1 unchanged", "applied"]
    now = stored(home)
    assert now[0]["options"]["timeout"] == 20.0 and now[0]["created"] == first[0]["created"]
    assert now[1] == first[1]

    path.write_text(EXAMPLE.split("\n\n")[0].replace("timeout = 10", "timeout = 20") + "\n")
    removed = applied(str(path))
    assert removed[1] == (f"  delete     hook {first[1]['id']} python_code 'print(item.id)' on alice@example.org "
                          "node 'urn:xmpp:microblog:0' (alice@example.org)")
    assert [h["id"] for h in stored(home)] == [first[0]["id"]]


def test_hooks_made_by_hand_or_by_another_manifest_are_left_alone(home, project, tmp_path):
    jid = "bob@example.org"
    made = hooknb("pubsub", "hook", "create", "--jid", jid, "-n", "news", "-P", "-t", "python_code", "pass")
    assert made.returncode == 0, made.stderr
    hand = made.stdout.split()[1]
    ours = manifest(project / "ours.toml", 'name = "ours"\n[[hooks]]\nnode = "news"\ntype = "python_code"\n'
                                           'arg = "print(1)"\n')
    theirs = manifest(project / "theirs.toml", 'name = "theirs"\n[[hooks]]\nnode = "blog"\n'
                                               'type = "python_code"\narg = "print(2)"\n')
    applied(str(ours), "--jid", jid)
    applied(str(theirs), "--jid", jid)
    assert len(stored(home)) == 3

    ours.write_text('name = "ours"\n')  # every hook of "ours" goes, and only those
    plan = applied(str(ours), "--jid", jid)
    assert [line.split()[0] for line in plan[1:-2]] == ["delete"]
    assert {(h["id"] == hand, h["options"].get("manifest")) for h in stored(home)} == {(True, None),
                                                                                        (False, "theirs")}

    steal = manifest(project / "steal.toml", 'name = "ours"\n[[hooks]]\nnode = "blog"\n'
                                             'type = "python_code"\narg = "print(2)"\n')
    result = hooknb("apply", str(steal), "--jid", jid)
    assert result.returncode == 2
    assert result.stderr == f"hooknb: {steal}:2: hooks[0]: hook {stored(home)[1]['id']} is declared by " \
                            "another manifest (theirs)\n"


def test_an_invalid_manifest_is_one_line_per_problem_and_changes_nothing(home, project):
    good = manifest(project / "hooks.toml", EXAMPLE)
    applied(str(good))
    before = stored(home)
    bad = manifest(project / "bad.toml", """\
        [[hooks]]
        jid = "alice@example.org"
        node = "news"
        arg = "hooks/missing.py"
        retries = 3

        [[hooks]]
        jid = "alice@example.org"
        type = "python_code"
        arg = "print(1)"

        [[hooks]]
        jid = "alice@example.org"
        node = "n"
        type = "python_code"
        arg = "print(1)"
        timeout = "ten"

        [[hooks]]
        jid = "alice@example.org"
        node = "n"
        arg = "hooks/on_news.py"
        sha256 = "0000"

        [[hooks]]
        jid = "alice@example.org"
        node = "fine"
        type = "python_code"
        arg = "print('fine')"
    """)
    result = hooknb("apply", str(bad))
    assert result.returncode == 2 and result.stdout == ""
    problems = result.stderr.splitlines()
    digest = __import__("hashlib").sha256((project / "hooks" / "on_news.py").read_bytes()).hexdigest()
    assert problems == [
        f"hooknb: {bad}:4: hooks[0].arg: hook file '{project / 'hooks' / 'missing.py'}' does not exist",
        f"hooknb: {bad}:5: hooks[0].retries: {KEYS}",
        f"hooknb: {bad}:7: hooks[1].node: a node is required: node = NODE (or uri = 'xmpp:SERVICE?;node=NODE')",
        f"hooknb: {bad}:17: hooks[2].timeout: must be a number, not 'ten'",
        (f"hooknb: {bad}:23: hooks[3].sha256: the code of hooks/on_news.py has SHA-256 {digest}, not the "
        "0000 this manifest pins")]
    assert stored(home) == before  # the valid entry was not applied either

    broken = manifest(project / "broken.toml", "[[hooks]]\nnode = \n")
    result = hooknb("apply", str(broken))
    assert (result.returncode, result.stderr) == (2, f"hooknb: {broken}:2: invalid TOML: Invalid value\n")
    result = hooknb("apply", str(project / "nowhere.toml"))
    assert (result.returncode, result.stderr) == (2, f"hooknb: {project / 'nowhere.toml'}: no such manifest file\n")
    assert stored(home) == before


def test_a_pinned_hook_whose_code_changed_needs_its_new_digest(home, project):
    path = manifest(project / "hooks.toml", EXAMPLE.replace("timeout = 10", "timeout = 10\npin = true"))
    applied(str(path))
    code = project / "hooks" / "on_news.py"
    code.write_text("def hook(host, client, item):\n    return 2\n")
    result = hooknb("apply", str(path))
    digest = __import__("hashlib").sha256(code.read_bytes()).hexdigest()
    assert result.returncode == 2 and result.stderr.splitlines() == [
        (f"hooknb: {path}:6: hooks[0].arg: the hook is pinned and its code changed since it was stored "
        f"(SHA-256 {stored(home)[0]['options']['sha256']} -> {digest}): add sha256 = \"{digest}\" to accept "
        "the change")]
    path.write_text(EXAMPLE.replace("timeout = 10", f"timeout = 10\npin = true\nsha256 = \"{digest}\""))
    old = stored(home)[0]["options"]["sha256"]
    assert applied(str(path))[1].endswith(f": sha256 {old[:12]} -> {digest[:12]}")
    assert stored(home)[0]["options"]["sha256"] == digest


@pytest.mark.parametrize("loose", ["file", "directory"])
def test_a_manifest_others_can_write_is_refused(home, project, loose):
    path = manifest(project / "hooks.toml", EXAMPLE)
    (path if loose == "file" else project).chmod(0o664 if loose == "file" else 0o775)
    result = hooknb("apply", str(path))
    what = f"the manifest {path}" if loose == "file" else f"the manifest's directory {project}"
    assert result.returncode == 1 and result.stderr.splitlines() == [
        (f"hooknb: {what} is group- or world-writable (mode {'664' if loose == 'file' else '775'}): refusing it "
        f"as a source of code; fix: chmod go-w {path if loose == 'file' else project}")]
    assert stored(home) == []


def test_pyproject_tool_hooknb_and_restrict(home, project):
    (home / "restrict.json").write_text(json.dumps({"restrict": [{"name": "mine", "node": "secret-*"}]}))
    (home / "restrict.json").chmod(0o600)
    path = manifest(project / "pyproject.toml", """\
        [project]
        name = "app"

        [tool.hooknb]
        name = "app"

        [[tool.hooknb.hooks]]
        jid = "alice@example.org"
        node = "news"
        type = "python_code"
        arg = "print(item.id)"

        [[tool.hooknb.restrict]]
        name = "app-private"
        node = "app:private:*"
        types = ["python_code"]
    """)
    plan = applied(str(path))
    assert plan[0] == f"plan of {path} (manifest 'app'):"
    assert plan[2] == "  create     restrict rule 'app-private'"
    rules = json.loads((home / "restrict.json").read_text())["restrict"]
    assert rules == [{"name": "mine", "node": "secret-*"},
                     {"name": "app-private", "service": "*", "node": "app:private:*", "types": ["python_code"],
                      "phases": ["*"], "except": [], "manifest": "app"}]
    assert [(h["node"], h["options"]["manifest"]) for h in stored(home)] == [("news", "app")]

    path.write_text(path.read_text().replace('node = "news"', 'node = "app:private:x"'))
    result = hooknb("apply", str(path))  # the manifest's own rule holds for its hooks
    assert result.returncode == 2 and "hooks[0].node: node 'app:private:x' on alice@example.org is " \
                                      "restricted by rule 'app-private'" in result.stderr
    path.write_text(path.read_text().split("[[tool.hooknb.hooks]]")[0])
    plan = applied(str(path))
    assert sorted(line.split()[0] for line in plan[1:-2]) == ["delete", "delete"]
    assert json.loads((home / "restrict.json").read_text())["restrict"] == [{"name": "mine", "node": "secret-*"}]
    assert stored(home) == []

    (project / "other").mkdir()
    other = manifest(project / "other" / "pyproject.toml", "[project]\nname = 'x'\n")
    result = hooknb("apply", str(other))
    assert (result.returncode, result.stderr) == (2, (f"hooknb: {other}: no [tool.hooknb] table: nothing "
                                                     "declares hooks there\n"))


# ------------------------------------------------------------------------------------ a runner
def test_a_running_runner_picks_up_what_apply_changes(runner, account, server, pubsub_node, home, tmp_path):
    publisher, node = pubsub_node
    jid, password = account("r")
    proc = runner(jid, password)
    proc.wait_record("ready")
    out = tmp_path / "out"
    code = f"open({str(out)!r}, 'a').write(item.id + '\\n')"
    path = manifest(tmp_path / "hooks.toml", f"""\
        [[hooks]]
        service = "{server.pubsub}"
        node = "{node}"
        type = "python_code"
        arg = "{code.replace(chr(92), chr(92) * 2)}"
    """)
    plan = applied(str(path), "--jid", jid)
    hook_id = plan[1].split()[2]
    proc.wait_record("hook-added", hook=hook_id)
    publish(publisher, node, server.pubsub, "a1")
    wait_until(lambda: lines(out) == ["a1"])

    path.write_text(path.read_text() + "disabled = true\n")  # change an option
    assert applied(str(path), "--jid", jid)[1].endswith(": disabled False -> True")
    proc.wait_record("hook-updated", hook=hook_id)
    publish(publisher, node, server.pubsub, "a2")
    proc.wait_record("run", hook=hook_id, item="a2", status="would_run")

    path.write_text("")  # remove the entry
    assert applied(str(path), "--jid", jid)[1].startswith(f"  delete     hook {hook_id} ")
    proc.wait_record("hook-removed", hook=hook_id)
    assert lines(out) == ["a1"]
    assert proc.stop() == 0


def test_run_with_a_manifest_applies_it_at_start_and_on_sighup(runner, account, server, pubsub_node, home,
                                                              tmp_path):
    publisher, node = pubsub_node
    jid, password = account("r")
    first, second = tmp_path / "first", tmp_path / "second"
    entry = '[[hooks]]\nservice = "{}"\nnode = "{}"\narg = "{}"\n'
    path = manifest(tmp_path / "hooks.toml", entry.format(server.pubsub, node, appender(tmp_path / "a.py", first)))
    proc = runner(jid, password, "--log-format", "json", "--manifest", str(path))
    record = proc.wait_record("manifest")
    assert (record["file"], record["create"], record["unchanged"]) == (str(path), 1, 0)
    assert proc.wait_record("ready")["hooks"] == 1
    publish(publisher, node, server.pubsub, "s1")
    wait_until(lambda: lines(first) == ["s1"])

    path.write_text(path.read_text() + entry.format(server.pubsub, node, appender(tmp_path / "b.py", second)))
    proc.proc.send_signal(signal.SIGHUP)
    record = proc.wait_record("manifest", count=2)
    assert (record["create"], record["change"], record["delete"], record["unchanged"]) == (1, 0, 0, 1)
    proc.wait_record("hook-added")
    publish(publisher, node, server.pubsub, "s2")
    wait_until(lambda: lines(first) == ["s1", "s2"] and lines(second) == ["s2"])

    path.write_text(path.read_text() + "colour = 1\n")  # invalid: logged, nothing changes
    proc.proc.send_signal(signal.SIGHUP)
    error = proc.wait_record("error")
    assert error["error"] == f"manifest not applied: {path}:9: hooks[1].colour: {KEYS}"
    assert len(stored(home)) == 2 and proc.proc.poll() is None

    path.write_text(path.read_text().replace("colour = 1\n", ""))
    path.chmod(0o666)  # others could write it: refused, as the store would be
    proc.proc.send_signal(signal.SIGHUP)
    error = proc.wait_record("error", count=2)
    assert error["error"] == (f"manifest not applied: the manifest {path} is group- or world-writable (mode 666): "
                              f"refusing it as a source of code; fix: chmod go-w {path}")
    assert len(proc.records("manifest")) == 2 and len(stored(home)) == 2
    assert proc.stop() == 0


def test_run_with_an_invalid_manifest_exits_2_before_connecting(home, server, account, tmp_path):
    jid, password = account("r")
    path = manifest(tmp_path / "hooks.toml", "[[hooks]]\narg = 'print(1)'\ntype = 'python_code'\n")
    proc = RunnerProcess(["--jid", jid, "--host", server.host, "--port", str(server.port), "--cafile",
                          server.cafile, "--manifest", str(path)], {"HOOKNB_PASSWORD": password},
                         tmp_path / "err")
    try:
        assert proc.proc.wait(30) == 2
        assert (tmp_path / "err").read_text() == (f"hooknb: {path}:1: hooks[0].node: a node is required: "
                                                  "node = NODE (or uri = 'xmpp:SERVICE?;node=NODE')\n")
        proc.reader.join(5)
        assert [line.split()[1:3] for line in proc.lines] == [["exit", "code=2"]], "only the exit record"
    finally:
        proc.kill()


# ------------------------------------------------------------------------------------ the magic
def test_hook_apply_magic(hook, host, alice, node, tmp_path, capsys):
    path = manifest(tmp_path / "hooks.toml", f"""\
        [[hooks]]
        node = "{node}"
        type = "python_code"
        arg = "item.id.upper()"
    """)
    hook(f"apply {path} --dry-run")
    assert capsys.readouterr().out.splitlines()[-1] == "dry run: nothing applied"
    assert host.hooks() == []
    hook(f"apply {path}")
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("  create     hook ") and out[1].endswith(f"on {alice} node '{node}' ({alice})")
    (made,) = host.hooks()
    assert (made.persistent, made.manifest) == (True, str(path))
    hook(f"publish -n {node} -i first '<n xmlns=\"urn:test\"/>'")
    assert host.wait_runs(1)
    assert host.runs.latest().result == "'FIRST'"

    path.write_text(f'[[hooks]]\nnode = "{node}"\ntimeout = 0\nretries = 1\n')
    with pytest.raises(UsageError) as info:
        hook(f"apply {path}")
    assert str(info.value).splitlines() == [
        f"{path}:1: hooks[0]: no arg: a module (type python), a file (python_file) or code (python_code)",
        f"{path}:3: hooks[0].timeout: must be a positive number: '0'",
        f"{path}:4: hooks[0].retries: {KEYS}"]
    assert [h.id for h in host.hooks()] == [made.id]
