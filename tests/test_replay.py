"""Trying hooks before enabling them, against the real local server over TLS: replays over a
node's stored items in publish order (paged where the server pages), journaled as replays, the
store's inbox and node positions untouched; disabled hooks journal what they would have run.
Through the API, the magics, the command line and ``hooknb run``."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from helpers import usage_error
from processes import appender, hooknb, lines, wait_until

from hooknb.xmpp import pubsub as pubsub_module
from hooknb.xmpp import loop as _loop
from hooknb.xmpp.client import Client
from hooknb.errors import HooknbError
from hooknb.host import Host
from hooknb.server import ServerInfo

PRINTER = "print('replaying', item.id)\nitem.id"


def entry(title: str, published: datetime | None = None) -> str:
    date = f"<published>{published.isoformat()}</published>" if published else ""
    return f'<entry xmlns="http://www.w3.org/2005/Atom"><title>{title}</title>{date}</entry>'


def holding(client: Client, node: str) -> Client:
    """``client`` once its own PEP ``node`` exists and keeps 50 items (a PEP node made by a publish
    keeps only the last one)."""
    client.create_node(node, config={"max_items": 50})
    return client


def tables(of: Host) -> dict[str, list[tuple]]:
    """Every row of the store's inbox and positions, once what is queued is written."""
    assert _loop.call(of.engine.idle()) and of.inbox.flush()
    with sqlite3.connect(f"file:{of.store.path}?mode=ro", uri=True) as db:
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall()) for t in ("inbox", "positions")}


def publish_order(server: ServerInfo, published: list[str], again: str) -> list[str]:
    """The order the server keeps items published as ``published``, then ``again`` once more:
    Prosody moves an item published again to the end, ejabberd keeps its first place."""
    if server.kind == "prosody":
        return [i for i in published if i != again] + [again]
    return published


def test_replay_runs_stored_items_in_publish_order_as_replays_and_leaves_the_store_alone(
        host, connect, server, node):
    client = holding(connect(host), node)
    live = host.create_hook(node, PRINTER, type="python_code", persistent=True)
    ids = [f"p{i}" for i in range(5)]
    total = host.runs.total
    for item_id in ids:
        client.publish(node, entry(item_id), item_id=item_id)
    client.publish(node, entry("p1 again"), item_id="p1")
    assert host.wait_runs(total + 6)
    before = tables(host)
    assert any(row[1] == live.id for row in before["inbox"]) and before["positions"]
    order = publish_order(server, ids, "p1")

    replay = host.replay(live.id, last=3)
    assert [r.item_id for r in replay] == order[-3:]
    assert all(r.replay and r.status == "ok" and r.hook_id == live.id for r in replay)
    assert [r.output for r in replay] == [f"replaying {i}\n" for i in order[-3:]]
    assert [r.result for r in replay] == [repr(i) for i in order[-3:]]
    assert replay.summary() == f"hook {live.id} replayed on 3 item(s): 3 ok"

    everything = host.replay(live.id)
    assert [r.item_id for r in everything] == order
    assert tables(host) == before, "a replay writes neither inbox entries nor node positions"
    frame = host.runs_frame(hook=live.id)
    assert list(frame["replay"]) == [False] * 6 + [True] * 8

    # New items after the replays run live, once: the replays took nothing from the inbox.
    total = host.runs.total
    client.publish(node, entry("p5"), item_id="p5")
    assert host.wait_runs(total + 1)
    assert [(r.item_id, r.replay) for r in host.runs.snapshot()[-1:]] == [("p5", False)]


def test_replay_since_a_date_keeps_the_items_dated_since(host, connect, node):
    client = holding(connect(host), node)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    client.publish(node, entry("old", now - timedelta(days=2)), item_id="old")
    client.publish(node, entry("undated"), item_id="undated")
    client.publish(node, entry("new", now - timedelta(hours=1)), item_id="new")
    client.publish(node, entry("newer", now), item_id="newer")
    made = host.create_hook(node, "item.id", type="python_code")

    replay = host.replay(made.id, since=now - timedelta(days=1))
    assert [r.item_id for r in replay] == ["new", "newer"]
    assert (replay.fetched, replay.undated) == (4, 1)
    assert replay.summary().endswith("; 1 item(s) left out: their payload gives no date to compare with --since")
    naive = host.replay(made.id, since=(now - timedelta(hours=2)).replace(tzinfo=None))  # taken as UTC
    assert [r.item_id for r in naive] == ["new", "newer"]


def test_what_cannot_be_replayed_says_why(host, connect, node):
    connect(host)
    retracts = host.create_hook(node, "item.id", type="python_code", on="retract")
    before = host.create_hook(node, "item.id", type="python_code", phase="before")
    with pytest.raises(HooknbError, match="runs on retract events: a replay runs a hook on stored items"):
        host.replay(retracts.id)
    with pytest.raises(HooknbError, match="is a before hook: it runs on this toolkit's own publish"):
        host.replay(before.id)
    with pytest.raises(HooknbError, match="give last or since, not both"):
        host.replay(retracts.id, last=1, since=datetime.now(timezone.utc))
    with pytest.raises(HooknbError, match="no hook with id 'nope'"):
        host.replay("nope")
    ok = host.create_hook(node, "item.id", type="python_code")
    with pytest.raises(HooknbError, match=f"node {node!r} not found"):
        host.replay(ok.id)


def test_a_disabled_hook_journals_what_it_would_run_and_runs_after_a_replay_when_enabled(
        host, connect, node, tmp_path):
    client = holding(connect(host), node)
    out = tmp_path / "ran.txt"
    made = host.create_hook(node, appender(tmp_path / "h.py", out), persistent=True, disabled=True)
    assert (made.status, made.disabled) == ("disabled", True)
    assert host.store.load_hooks()[0]["options"]["disabled"] is True
    total = host.runs.total
    client.publish(node, entry("a"), item_id="a")
    client.publish(node, entry("b"), item_id="b")
    assert host.wait_runs(total + 2)
    assert [(r.item_id, r.status) for r in host.runs.snapshot()[-2:]] == [("a", "would_run"), ("b", "would_run")]
    assert lines(out) == [] and (made.runs, made.failures) == (0, 0)
    assert not any(row[1] == made.id for row in tables(host)["inbox"]), "nothing waits to run"

    tried = host.replay(made.id, last=2)
    assert [(r.item_id, r.status, r.replay) for r in tried] == [("a", "ok", True), ("b", "ok", True)]
    assert lines(out) == ["a", "b"]

    host.enable(made.id)
    assert made.status == "active" and host.store.load_hooks()[0]["options"]["disabled"] is False
    client.publish(node, entry("c"), item_id="c")
    wait_until(lambda: lines(out) == ["a", "b", "c"])
    assert host.enable(made.id, False).disabled and host.store.load_hooks()[0]["options"]["disabled"] is True


def test_a_disabled_before_hook_neither_runs_nor_vetoes(host, connect, node):
    client = connect(host)
    veto = host.create_hook(node, "raise hooknb.Veto('no')", type="python_code", phase="before",
                            disabled=True)
    client.publish(node, entry("sent"), item_id="sent")
    assert [r.status for r in host.runs.snapshot() if r.hook_id == veto.id] == ["would_run"]


def test_replay_follows_pages_where_the_server_pages(host, connect, server, node, monkeypatch):
    """ejabberd pages items with RSM (here 4 at a time); Prosody 0.12 answers in one reply."""
    client = holding(connect(host), node)
    monkeypatch.setattr(pubsub_module, "RSM_PAGE", 4)
    asked: list[str] = []
    real_iq = Client._iq

    def counting(self, what, service, node_, request):
        asked.append(what)
        return real_iq(self, what, service, node_, request)

    monkeypatch.setattr(Client, "_iq", counting)
    ids = [f"i{n:02d}" for n in range(10)]

    async def publish_all() -> None:
        await asyncio.gather(*(client.apublish(node, entry(i), item_id=i) for i in ids[:1]))
        for i in ids[1:]:
            await client.apublish(node, entry(i), item_id=i)

    _loop.call(publish_all())
    made = host.create_hook(node, "item.id", type="python_code")
    asked.clear()
    assert [r.item_id for r in host.replay(made.id)] == ids
    assert asked.count("get items") == (3 if server.kind == "ejabberd" else 1)
    asked.clear()
    assert [r.item_id for r in host.replay(made.id, last=6)] == ids[-6:]
    assert asked.count("get items") == (2 if server.kind == "ejabberd" else 1)


# ------------------------------------------------------------------------------------ magics
def test_replay_enable_disable_magics(hook, host, alice, shell, node, capsys):  # noqa: F811
    client = holding(host.client(), node)
    for i in range(3):
        client.publish(node, entry(f"m{i}"), item_id=f"m{i}")
    hook(f"create -n {node} -t python_code --disabled \"print('magic', item.id)\"")
    [made] = host.registry.all()
    assert capsys.readouterr().out.endswith(" created disabled: it journals what it would run\n")

    frame = hook(f"replay {made.id} --last 2")
    out = capsys.readouterr().out
    assert "magic m1\nmagic m2\n" in out, "outside a kernel a replay's output goes to the console too"
    assert out.endswith(f"hook {made.id} replayed on 2 item(s): 2 ok\n")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["item_id"]) == ["m1", "m2"] and list(frame["output"]) == ["magic m1\n", "magic m2\n"]
    assert frame["replay"].all()

    hook(f"enable {made.id}")
    assert capsys.readouterr().out.endswith("enabled\n") and not made.disabled
    hook(f"disable {made.id}")
    assert "disabled: it journals what it would run (would_run)" in capsys.readouterr().out and made.disabled

    cell = shell.run_cell_magic("hook", f"replay -n {node} --since 2000-01-01", "print('cell', item.id)\n")
    assert cell.empty and "replayed on 0 item(s); 3 item(s) left out" in capsys.readouterr().out
    cell = shell.run_cell_magic("hook", f"replay -n {node} --last 1", "print('cell', item.id)\nitem.id\n")
    assert list(cell["result"]) == ["'m2'"] and list(cell["output"]) == ["cell m2\n"]
    assert [h.id for h in host.registry.all()] == [made.id], "a %%hook replay cell creates no hook"
    shell.run_cell_magic("hook", f"-n {node} --disabled", "item.id\n")
    assert "journals each item it would run on (disabled: %hook enable to run it)" in capsys.readouterr().out
    assert [h.status for h in host.registry.all()] == ["disabled", "disabled"]

    assert usage_error(lambda: hook(f"replay {made.id} --last 1 --since 2024-01-01")) == \
        "%hook replay: argument --since: not allowed with argument --last"
    assert usage_error(lambda: hook(f"replay {made.id} --since yesterday")) == \
        "%hook replay: argument --since: not an ISO 8601 date and time: 'yesterday' (e.g. 2024-05-01T12:00:00Z)"
    assert usage_error(lambda: hook("replay 0123456789")) == "no hook with id '0123456789'"
    assert usage_error(lambda: hook("enable 0123456789")) == "no hook with id '0123456789'"
    assert usage_error(lambda: shell.run_cell_magic("hook", f"replay -n {node}", "1 +\n")) == \
        "syntax error in hook code, line 2: invalid syntax"


# ------------------------------------------------------------------------------------ command line
def test_command_line_replay_enable_disable_and_the_runner(server, account, runner, node, tmp_path):
    jid, password = account("cli")
    connection = ["--jid", jid, "--host", server.host, "--port", str(server.port), "--cafile", server.cafile]
    env = {"HOOKNB_PASSWORD": password}
    out = tmp_path / "ran.txt"
    created = hooknb("pubsub", "node", "create", *connection, "-n", node, "--node-config", "max_items=50", env=env)
    assert created.returncode == 0, created.stderr
    code = f"print('cli', item.id)\nopen({str(out)!r}, 'a').write(item.id + '\\n')\nitem.id"
    made = hooknb("pubsub", "hook", "create", "--jid", jid, "-P", "--disabled", "-n", node, "-t", "python_code", code)
    assert made.returncode == 0, made.stderr
    hook_id = made.stdout.split()[1]
    listed = hooknb("pubsub", "hook", "list", "--jid", jid, "-O", "json")
    assert [h["id"] for h in json.loads(listed.stdout)] == [hook_id]

    run = runner(jid, password)
    run.wait_record("ready")
    for i in range(3):
        published = hooknb("pubsub", "publish", *connection, "-n", node, "-i", f"c{i}", entry(f"c{i}"), env=env)
        assert published.returncode == 0, published.stderr
    run.wait_record("run", 3, hook=hook_id, status="would_run")
    assert lines(out) == []

    replayed = hooknb("pubsub", "hook", "replay", *connection, hook_id, "--last", "2", env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.splitlines() == ["c1\tok\t'c1'", "  | cli c1", "c2\tok\t'c2'", "  | cli c2",
                                            f"hook {hook_id} replayed on 2 item(s): 2 ok"]  # all on stdout
    assert lines(out) == ["c1", "c2"]

    enabled = hooknb("pubsub", "hook", "enable", "--jid", jid, hook_id)
    assert enabled.returncode == 0 and enabled.stdout.strip().endswith("enabled"), enabled.stderr
    run.wait_record("hook-updated", hook=hook_id)
    hooknb("pubsub", "publish", *connection, "-n", node, "-i", "c3", entry("c3"), env=env)
    record = run.wait_record("run", hook=hook_id, item="c3", status="ok")
    assert record["output"] == "cli c3\n", "the runner logs what a run printed, and keeps it off stdout"
    assert lines(out) == ["c1", "c2", "c3"]

    unknown = hooknb("pubsub", "hook", "replay", *connection, "0123456789", env=env)
    assert (unknown.returncode, unknown.stderr.strip()) == (2, "hooknb: no hook with id '0123456789'")
    both = hooknb("pubsub", "hook", "replay", *connection, hook_id, "--last", "1", "--since", "2024-01-01")
    assert both.returncode == 2 and "not allowed with argument --last" in both.stderr
