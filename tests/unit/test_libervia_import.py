"""``import libervia`` against a database built with Libervia's schema and pickles (Twisted's JID,
protocol 0): the plan, the hooks created (persistent, python_file, Libervia's convention), nothing
created twice, what cannot be imported listed with its reason, and a hostile pickle refused with
nothing of it run."""

from __future__ import annotations

import pickle

import pytest
from libervia_fixtures import hooks_value, hostile, make_db, write_hook

from hooknb.compat import libervia_db
from hooknb.errors import GrammarError, HooknbError
from hooknb.frontends import imports

BLOG = "urn:xmpp:microblog:0"


@pytest.fixture
def database(tmp_path):
    hook = write_hook(tmp_path / "neat.py", tmp_path / "out.jsonl")
    canary = tmp_path / "canary"
    nodes = {BLOG: hooks_value(("alice@example.org", "python_file", hook),
                               ("alice@example.org", "python_code", "print(item)")),
             "news": hooks_value(("pubsub.example.org", "python_file", str(tmp_path / "gone.py"))),
             "odd": hooks_value(("pubsub.example.org", "javascript", "x.js")),
             "evil": hostile(canary)}
    path = make_db(tmp_path / "libervia.db", {"default": ("alice@example.org/libervia", nodes),
                                              "other": (None, {"n": hooks_value(("o.example", "python_file", hook))})})
    return path, hook, canary


def test_a_dry_run_plans_and_creates_nothing(host, database):
    path, hook, canary = database
    plan = imports.libervia_hooks(host, str(path), "default", dry_run=True)
    assert (plan.created, plan.existing, plan.cannot) == (1, 0, 4)
    assert [line for line in plan.lines if line.startswith("create")] == [
        f"create   python_file {hook} on alice@example.org node '{BLOG}' (profile default): "
        "would create it for alice@example.org"]
    reasons = "\n".join(plan.lines)
    assert "python_code was never implemented by Libervia" in reasons
    assert "unknown hook type 'javascript'" in reasons and "gone.py' does not exist" in reasons
    assert "its pickle names os.system, which a Libervia hook record never holds: refused" in reasons
    assert host.store.load_hooks() == [] and not canary.exists()


def test_the_import_creates_persistent_libervia_hooks_once(host, database):
    path, hook, canary = database
    plan = imports.libervia_hooks(host, str(path), "default")
    assert (plan.created, plan.existing, plan.cannot) == (1, 0, 4)
    [record] = host.store.load_hooks()
    assert (record["account"], record["service"], record["node"], record["type"], record["arg"]) == \
        ("alice@example.org", "alice@example.org", BLOG, "python_file", hook)
    assert record["options"]["compat"] == "libervia"
    again = imports.libervia_hooks(host, str(path), "default")
    assert (again.created, again.existing, again.cannot) == (0, 1, 4)
    assert sum(line.startswith("exists ") for line in again.lines) == 1 and len(host.store.load_hooks()) == 1
    assert not canary.exists()


def test_profiles_and_accounts(host, database):
    path, _hook, _canary = database
    with pytest.raises(GrammarError, match="--jid names one account, and 2 profiles have hooks"):
        imports.libervia_hooks(host, str(path), jid="bob@example.org")
    with pytest.raises(HooknbError, match="profile 'nobody' has no persistent hooks"):
        imports.libervia_hooks(host, str(path), "nobody")
    plan = imports.libervia_hooks(host, str(path), "other", dry_run=True)
    assert plan.lines == [f"cannot   python_file {_hook} on o.example node 'n' (profile other): profile other "
                          "has no JID in the database: give --jid"]
    plan = imports.libervia_hooks(host, str(path), "other", jid="bob@example.org/x")
    assert plan.created == 1 and host.store.load_hooks()[0]["account"] == "bob@example.org"


def test_not_a_libervia_database_is_one_line(host, tmp_path):
    (tmp_path / "x.db").write_bytes(b"not sqlite at all, just text" * 10)
    with pytest.raises(HooknbError, match="is not an SQLite database|is not a Libervia database"):
        imports.libervia_hooks(host, str(tmp_path / "x.db"))
    with pytest.raises(HooknbError, match="no Libervia database at"):
        imports.libervia_hooks(host, str(tmp_path / "missing.db"))


def test_the_unpickler_reads_python_2_records_and_refuses_any_other_name():
    py2 = (b"(lp0\n(dp1\nS'arg'\np2\nS'/home/a/h.py'\np3\nsS'type'\np4\nVpython_file\np5\nsS'service'\np6\n"
           b"ccopy_reg\n_reconstructor\np7\n(ctwisted.words.protocols.jabber.jid\nJID\np8\nc__builtin__\n"
           b"object\np9\nNtp10\nRp11\n(dp12\nS'host'\np13\nVexample.org\np14\nsS'resource'\np15\nNsS'user'\n"
           b"p16\nValice\np17\nsbsa.")
    [hook] = libervia_db.decode(py2)
    assert (hook["service"].userhost(), hook["type"], hook["arg"]) == ("alice@example.org", "python_file", "/home/a/h.py")
    for bad in (pickle.dumps([print], 0), b"cbuiltins\neval\n(S'1'\ntR.", pickle.dumps({1}, 0)[:5]):
        with pytest.raises(libervia_db.Refused):
            libervia_db.decode(bad)
