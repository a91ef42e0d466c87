"""Libervia users' hook files run unchanged, against the real server over TLS: in a notebook's
Host (all three hook types), under ``hooknb run`` after ``hooknb import libervia`` read them from a
Libervia database, and on the Dask executor."""

from __future__ import annotations

import json
import signal

import pytest
from libervia_fixtures import entry, hooks_value, hostile, make_db, write_hook
from processes import hooknb, wait_until
from test_dask import dask_client  # noqa: F401 - the module's LocalCluster fixture

pytestmark = pytest.mark.integration
NS_EVENT = "http://jabber.org/protocol/pubsub#event"


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def check(record: dict, item_id: str, title: str, jid: str) -> None:
    assert (record["id"], record["name"], record["uri"], record["has_id"]) == (item_id, "item", NS_EVENT, True)
    assert record["titles"] == [title] and record["me"] == jid and record["profile"] == jid
    assert record["entry"] == entry(title)  # toXml() as Twisted writes it
    assert record["item"].startswith(f"<item xmlns='{NS_EVENT}' id='{item_id}'")


def test_libervia_hook_files_run_unchanged_in_a_notebook(make_host, connect, server, pubsub_node, tmp_path,
                                                          monkeypatch):
    publisher, node = pubsub_node
    host = make_host()
    client = connect(host, resource="nb")
    out = tmp_path / "out.jsonl"
    hooked = host.create_hook(node, write_hook(tmp_path / "neat.py", out), "python_file",
                              service=server.pubsub, compat="libervia")
    (tmp_path / "lib_mod.py").write_text(
        "def hook(host, client, item):\n    return [str(e) for e in item.firstChildElement().elements()]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = host.create_hook(node, "lib_mod", "python", service=server.pubsub, compat="libervia")
    code = host.create_hook(node, "(item['id'], client.jid.full(), client.roster)", "python_code",
                            service=server.pubsub, compat="libervia")
    plain = host.create_hook(node, "item.id", "python_code", service=server.pubsub)
    publisher.publish(node, entry("first"), item_id="e1", service=server.pubsub)
    wait_until(lambda: module.runs and code.runs and plain.runs and records(out), 20)
    check(records(out)[0], "e1", "first", client.jid)
    runs = {r.hook_id: r for r in host.runs.snapshot()}
    assert runs[module.id].status == "ok" and "first" in runs[module.id].result
    assert runs[code.id].status == "error" and runs[code.id].error.startswith(
        "CompatError: client.roster: Libervia's client internals are not available")
    assert runs[plain.id].result == "'e1'"  # hooknb's own item for everyone else
    assert records(out)[0]["full"] == f"{client.jid}/nb"
    assert hooked.summary()["compat"] == "libervia"


def test_the_magics_import_and_create_libervia_hooks(hook, alice, server, pubsub_node, tmp_path, capsys):
    publisher, node = pubsub_node
    out, out2 = tmp_path / "out.jsonl", tmp_path / "out2.jsonl"
    db = make_db(tmp_path / "libervia.db", {"default": (f"{alice}/libervia", {
        node: hooks_value((server.pubsub, "python_file", write_hook(tmp_path / "neat.py", out)))})})
    hook(f"import libervia --db {db}")
    assert "1 hook(s) created, 0 already imported, 0 cannot be imported" in capsys.readouterr().out
    hook(f"create -s {server.pubsub} -n {node} --compat libervia {write_hook(tmp_path / 'other.py', out2)}")
    assert "libervia convention) on" in capsys.readouterr().out
    publisher.publish(node, entry("fourth"), item_id="e4", service=server.pubsub)
    wait_until(lambda: records(out) and records(out2), 20)
    check(records(out)[0], "e4", "fourth", alice)
    check(records(out2)[0], "e4", "fourth", alice)
    hook(f"import libervia --db {db} --jid {alice}")
    assert "0 hook(s) created, 1 already imported" in capsys.readouterr().out


def test_imported_libervia_hooks_run_under_hooknb_run(runner, account, server, pubsub_node, home, tmp_path):
    publisher, node = pubsub_node
    jid, password = account("lib")
    out = tmp_path / "out.jsonl"
    hook = write_hook(tmp_path / "neat.py", out)
    canary = tmp_path / "canary"
    db = make_db(tmp_path / "libervia.db", {"default": (f"{jid}/libervia", {
        node: hooks_value((server.pubsub, "python_file", hook), (server.pubsub, "python_code", "1")),
        "evil": hostile(canary)})})
    dry = hooknb("import", "libervia", "--db", str(db), "--dry-run")
    assert dry.returncode == 4 and "would create it for" in dry.stdout and "refused" in dry.stdout
    assert "1 hook(s) would be created, 0 already imported, 2 cannot be imported" in dry.stdout
    done = hooknb("import", "libervia", "--db", str(db))
    assert done.returncode == 4 and sum(line.startswith("create ") for line in done.stdout.splitlines()) == 1
    again = hooknb("import", "libervia", "--db", str(db))
    assert "0 hook(s) created, 1 already imported, 2 cannot be imported" in again.stdout
    listed = json.loads(hooknb("pubsub", "hook", "list", "-O", "json").stdout)
    assert [(h["node"], h["arg"], h["account"]) for h in listed] == [(node, hook, jid)]
    assert not canary.exists()
    proc = runner(jid, password)
    proc.wait_record("ready")
    publisher.publish(node, entry("second"), item_id="e2", service=server.pubsub)
    wait_until(lambda: records(out), 20)
    check(records(out)[0], "e2", "second", jid)
    assert proc.wait_record("run", status="ok")["item"] == "e2"
    assert proc.stop(signal.SIGTERM) == 0


def test_libervia_hook_files_run_unchanged_on_dask(make_host, connect, server, pubsub_node, dask_client,  # noqa: F811
                                                    tmp_path):
    publisher, node = pubsub_node
    host = make_host()
    client = connect(host)
    out = tmp_path / "out.jsonl"
    hooked = host.create_hook(node, write_hook(tmp_path / "neat.py", out), "python_file",
                              service=server.pubsub, compat="libervia", executor="dask")
    publisher.publish(node, entry("third"), item_id="e3", service=server.pubsub)
    wait_until(lambda: hooked.runs, 60)
    [run] = [r for r in host.runs.snapshot() if r.hook_id == hooked.id]
    assert run.status == "ok" and run.executor == "dask"
    check(records(out)[0], "e3", "third", client.jid)
