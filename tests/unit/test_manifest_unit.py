"""Manifests of hooks without a server: reading, where problems are, plans (hooks and restrict
rules), and applying one on a scratch store (:mod:`hooknb.frontends.manifest`)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from hooknb.errors import ManifestError
from hooknb.frontends import manifest
from hooknb.host import Host

JID = "alice@example.org"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    path.chmod(0o600)
    return path


def problems(host: Host, path: Path, jid: str | None = JID) -> list[str]:
    with pytest.raises(ManifestError) as info:
        manifest.load(host, path, jid)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


@pytest.fixture
def options() -> dict:
    return manifest._options()


def test_the_keys_are_creates_long_options(options):
    assert list(options) == ["service", "node", "uri", "type", "on", "phase", "priority", "timeout", "from", "pin",
                             "max-depth", "disabled", "executor", "concurrency", "unordered", "compat", "arg"]


@pytest.mark.parametrize(("key", "value", "converted"), [
    ("timeout", 10, 10.0), ("timeout", 2.5, 2.5), ("priority", -3, -3), ("pin", True, True),
    ("unordered", True, False), ("unordered", False, True), ("from", ["bob@example.org"], ["bob@example.org"]),
    ("on", "publish,retract", "publish,retract"), ("on", ["publish", "retract"], "publish,retract"),
    ("phase", "before", "before"), ("max-depth", 3, 3), ("type", "python_code", "python_code")])
def test_values_convert_as_the_options_do(options, key, value, converted):
    assert manifest._convert(options[key], value) == converted


@pytest.mark.parametrize(("key", "value", "message"), [
    ("timeout", "10", "must be a number, not '10'"), ("timeout", True, "must be a number, not True"),
    ("timeout", 0, "must be a positive number: '0'"), ("priority", 1.5, "invalid value 1.5"),
    ("pin", "yes", "must be true or false, not 'yes'"), ("from", "bob@example.org", "must be a list of strings"),
    ("on", ["publish", "nope"], "unknown event kind nope"), ("phase", "during", "must be one of event, before, after"),
    ("max-depth", 0, "must be at least 1: '0'"), ("node", 3, "must be a string, not 3")])
def test_bad_values_say_why(options, key, value, message):
    with pytest.raises(ValueError, match=None) as info:
        manifest._convert(options[key], value)
    assert message in str(info.value)


def test_problems_name_the_line_and_key_sorted_by_line(host, tmp_path):
    path = write(tmp_path / "m.toml", """\
        name = "m"
        extra = 1

        [[hooks]]
        jid = "alice@example.org"
        node = "n"
        type = "python_code"
        arg = "print(1)"

        [[hooks]]
        node = "n"
        type = "python_code"
        arg = "print(1)"
        max_depth = 0

        [[restrict]]
        name = "r"
        node = 3
    """)
    assert problems(host, path) == [
        f"{path}:2: extra: unknown key; the keys are name, hooks, restrict",
        f"{path}:14: hooks[1].max_depth: must be at least 1: '0'",
        f"{path}:16: restrict[0]: 'node' must be a string, not int"]


def test_the_same_hook_twice_is_a_problem(host, tmp_path):
    entry = '[[hooks]]\nnode = "n"\ntype = "python_code"\narg = "print(1)"\n'
    path = write(tmp_path / "m.toml", entry + "\n" + entry.replace('node = "n"', f'uri = "xmpp:{JID}?;node=n"'))
    assert problems(host, path) == [f"{path}:6: hooks[1]: the same hook as hooks[0]"]


def test_invalid_toml_and_no_account(host, tmp_path, monkeypatch):
    path = write(tmp_path / "m.toml", "[[hooks]]\nnode = 'n'\narg = ")
    assert problems(host, path) == [f"{path}:3: invalid TOML: Invalid value"]
    monkeypatch.delenv("HOOKNB_JID", raising=False)
    path = write(tmp_path / "m.toml", "[[hooks]]\nnode = 'n'\ntype = 'python_code'\narg = 'pass'\n")
    (line,) = problems(host, path, jid=None)
    assert line.startswith(f"{path}:1: hooks[0]: ") and "account" in line


def test_pyproject_keys_are_found_in_the_tool_table(host, tmp_path):
    path = write(tmp_path / "pyproject.toml", """\
        [project]
        name = "app"

        [tool.hooknb]
        name = 7

        [[tool.hooknb.hooks]]
        node = "n"
        kind = "x"
    """)
    assert problems(host, path) == [
        f"{path}:5: name: must be a non-empty string, not 7",
        f"{path}:7: hooks[0]: no arg: a module (type python), a file (python_file) or code (python_code)",
        (f"{path}:9: hooks[0].kind: unknown key; the keys are jid, service, node, uri, type, on, phase, priority, "
        "timeout, from, pin, max-depth, disabled, executor, concurrency, unordered, compat, arg, sha256")]


def test_plan_apply_and_plan_again(host, tmp_path):
    code = "for x in range(3):\n    print(item.id, x, 'a long line of code that goes on')\n"
    path = write(tmp_path / "m.toml", f"""\
        [[hooks]]
        jid = "{JID}"
        node = "n"
        type = "python_code"
        arg = {json.dumps(code)}
        on = ["publish", "retract"]
    """)
    plan = manifest.load(host, path)
    (change,) = plan.changes
    assert (change.action, change.spec.manifest, change.spec.kinds) == ("create", str(path),
                                                                       frozenset({"publish", "retract"}))
    assert plan.lines() == [
        f"plan of {path}:",
        f"  create     hook {change.spec.id} python_code 'for x in range(3):...' on {JID} node 'n' ({JID})",
        "1 to create, 0 to change, 0 to delete, 0 unchanged", "dry run: nothing applied"]
    assert host.stored_hooks() == []
    manifest.apply(host, plan)
    (stored,) = host.stored_hooks()
    assert stored == change.spec and stored.manifest == str(path)
    again = manifest.run(host, path)
    assert [c.action for c in again.changes] == ["unchanged"] and again.lines()[-1] == "nothing to change"

    path.write_text(path.read_text().replace('"retract"]', '"retract"]\npriority = 2\nfrom = ["bob@example.org"]'))
    plan = manifest.run(host, path)
    assert plan.lines()[1].endswith(": priority 0 -> 2, publishers  -> bob@example.org")
    assert host.stored_hooks()[0].created == stored.created


def test_restrict_rules_are_the_manifests_own(host, tmp_path, private_home):
    policy = private_home / "restrict.json"
    path = write(tmp_path / "m.toml", """\
        name = "app"
        [[restrict]]
        name = "app-private"
        node = "app:*"
    """)
    plan = manifest.run(host, path)  # no restrict.json yet: the default rules are kept with the manifest's
    assert [(c.action, c.rule["name"]) for c in plan.changes] == [("create", "app-private")]
    rules = json.loads(policy.read_text())["restrict"]
    assert [(r["name"], r.get("manifest")) for r in rules] == [
        ("bookmarks", None), ("bookmarks-legacy", None), ("private-xml-storage", None),
        ("private-xml-storage-iq", None), ("app-private", "app")]
    assert policy.stat().st_mode & 0o777 == 0o600
    assert manifest.run(host, path).empty

    path.write_text(path.read_text().replace('"app:*"', '"app:*"\nexcept = ["app:public"]'))
    plan = manifest.run(host, path)
    assert plan.lines()[1] == "  change     restrict rule 'app-private': except  -> app:public"

    write(tmp_path / "n.toml", 'name = "other"\n[[restrict]]\nname = "app-private"\nnode = "x"\n')
    assert problems(host, tmp_path / "n.toml") == [
        (f"{tmp_path / 'n.toml'}:3: restrict[0].name: a rule named 'app-private' exists already (made by hand, "
        "by another manifest or above)")]

    path.write_text('name = "app"\n')
    assert [c.action for c in manifest.run(host, path).changes] == ["delete"]
    assert [r["name"] for r in json.loads(policy.read_text())["restrict"]] == [
        "bookmarks", "bookmarks-legacy", "private-xml-storage", "private-xml-storage-iq"]


def test_a_hook_made_by_hand_is_taken_over_when_declared_and_left_alone_otherwise(host, tmp_path):
    hand = host.create_hook("n", "print(1)", "python_code", persistent=True, account=JID)
    other = host.create_hook("m", "print(2)", "python_code", persistent=True, account=JID)
    path = write(tmp_path / "m.toml", f'[[hooks]]\njid = "{JID}"\nnode = "n"\ntype = "python_code"\narg = "print(1)"\n')
    plan = manifest.run(host, path)
    assert [(c.action, c.spec.id) for c in plan.changes] == [("change", hand.id)]
    assert plan.lines()[1].endswith(f": manifest None -> {path}")
    path.write_text("")
    assert [(c.action, c.spec.id) for c in manifest.run(host, path).changes] == [("delete", hand.id)]
    assert [s.id for s in host.stored_hooks()] == [other.id]


def test_the_hooks_change_in_one_transaction_or_not_at_all(host, tmp_path):
    """A failure in the middle of the store's transaction (a record SQLite refuses, after one it
    took) leaves every hook as it was: none saved, none deleted."""
    from hooknb.errors import StoreError

    kept = host.create_hook("n", "print(1)", "python_code", persistent=True, account=JID)
    before = host.stored_hooks()
    good = {**kept.spec.to_record(), "id": "fresh", "node": "m"}
    bad = {**good, "id": "bad", "node": None}  # NOT NULL
    with pytest.raises(StoreError):
        host.store.change_hooks([good, bad], [kept.id])
    assert host.stored_hooks() == before


def test_options_added_to_create_are_manifest_keys_too(host, tmp_path):
    """The keys come from create's grammar: its --compat is a key, checked as the option is."""
    entry = f'[[hooks]]\njid = "{JID}"\nnode = "n"\ntype = "python_code"\narg = "pass"\ncompat = "%s"\n'
    (change,) = manifest.load(host, write(tmp_path / "m.toml", entry % "libervia")).changes
    assert change.spec.compat == "libervia"
    (line,) = problems(host, write(tmp_path / "m.toml", entry % "nope"))
    assert line.startswith(f"{tmp_path / 'm.toml'}:6: hooks[0].compat: must be one of ")
