"""The ``%hook`` / ``%%hook`` magics in a real IPython shell, against the real local server.

Every subcommand is driven through ``run_line_magic`` / ``run_cell_magic``; every bad input must
give a one-line ``UsageError``.
"""

from __future__ import annotations

import getpass
import json
import time
import uuid

import pandas as pd
import pytest
from IPython.core.completer import provisionalcompleter
from helpers import hiding_node, payload, usage_error
from processes import hook_file
from traitlets import TraitError

from hooknb.frontends import magics as magics_module
from hooknb.frontends.commands import LIST_FIELDS as JSON_FIELDS
from hooknb.xmpp.connection import DEFAULT_MAX_BYTES
from hooknb.core.hooks import PUBLISHER_UNKNOWN
from hooknb.storage.journal import MAX_BYTES
from hooknb.frontends.magics import HookMagics
from hooknb.frontends.widgets import EventFeed, HookManager

ENTRY = '<entry xmlns="http://www.w3.org/2005/Atom"><title>hello</title></entry>'


# ------------------------------------------------------------------------------ connect / status

def test_connect_with_password_and_status(hook, host, account, server, capsys):
    jid, password = account("alice")
    hook(f"connect {jid} --password={password} --host {server.host} --port {server.port} "
         f"--cafile {server.cafile}")
    assert capsys.readouterr().out == f"connected as {jid}\n"
    status = hook("status")
    assert isinstance(status, pd.DataFrame)
    assert status.set_index("account").loc[jid, "state"] == "connected"


def test_connect_prompts_for_the_password(hook, host, account, server, monkeypatch, capsys):
    jid, password = account("prompted")
    asked = []
    monkeypatch.delenv("HOOKNB_PASSWORD", raising=False)
    monkeypatch.setattr(getpass, "getpass", lambda prompt: asked.append(prompt) or password)
    hook(f"connect {jid} --host {server.host} --port {server.port} --cafile {server.cafile}")
    assert asked == [f"password for {jid}: "]
    assert host.client(jid).state == "connected"


def test_plaintext_to_a_remote_host_is_refused_before_the_prompt(hook, monkeypatch):
    asked = []
    monkeypatch.delenv("HOOKNB_PASSWORD", raising=False)
    monkeypatch.setattr(getpass, "getpass", lambda prompt: asked.append(prompt) or "x")
    assert usage_error(lambda: hook("connect alice@example.org --host example.org --plaintext")) \
        == "--plaintext (no TLS) is only allowed to a loopback host, not 'example.org'"
    assert asked == []


def test_connect_errors(hook, server, account):
    assert usage_error(lambda: hook("connect alice@example.org --password x --host example.org --plaintext")) \
        == "--plaintext (no TLS) is only allowed to a loopback host, not 'example.org'"
    jid, _ = account("wrong")
    message = usage_error(lambda: hook(
        f"connect {jid} --password nope --host {server.host} --port {server.port} --cafile {server.cafile}"))
    assert message == f"cannot connect {jid}: authentication failed (wrong JID or password)"
    assert usage_error(lambda: hook("connect")).startswith("no account: give --jid JID, set $HOOKNB_JID")
    assert usage_error(lambda: hook("connect a@b --port many")) == \
        "%hook connect: argument --port: invalid int value: 'many'"
    assert usage_error(lambda: hook(f"connect {jid} --password x --port 99999")) == \
        "port 99999 is out of range: give a port from 1 to 65535"
    assert usage_error(lambda: hook("connect alice --password x --host 192.0.2.1")) == \
        "not an account JID: 'alice' (expected name@domain)"
    assert usage_error(lambda: hook(
        f"connect {jid} --password nope --host {server.host} --port {server.port}")) == \
        f"cannot connect {jid}: certificate of localhost not trusted: unknown CA (give --cafile)"


def test_connect_over_direct_tls(hook, host, account, server, capsys):
    jid, password = account("direct")
    hook(f"connect {jid} --password={password} --host {server.host} --port {server.direct_tls_port} "
         f"--cafile {server.cafile} --direct-tls")
    assert capsys.readouterr().out == f"connected as {jid}\n"
    assert "starttls" not in host.client(jid).xmpp.features


# ------------------------------------------------------------------------------ grammar and help

def test_help_and_unknown_commands(hook, capsys):
    hook("--help")
    out = capsys.readouterr().out
    assert out.startswith("usage: %hook") and "create" in out and "manager" in out
    hook("create -h")
    assert "usage: %hook create" in capsys.readouterr().out
    assert usage_error(lambda: hook("")) == "%hook: the following arguments are required: COMMAND"
    assert usage_error(lambda: hook("frobnicate")).startswith(
        "%hook: argument COMMAND: invalid choice: 'frobnicate'")
    assert usage_error(lambda: hook("list -n 'unbalanced")) == \
        "cannot parse the arguments: No closing quotation"


def test_magic_docstrings_hold_the_generated_help():
    assert "usage: %hook" in HookMagics.hook.__doc__
    assert "usage: %%hook" in HookMagics.hook_cell.__doc__


# ------------------------------------------------------------------------------ create

def test_create_python_code_runs_on_publish(hook, host, alice, node, capsys):
    hook(f'create -n {node} -t python_code "item.id.upper()"')
    out = capsys.readouterr().out
    assert f"on {alice} node '{node}' created" in out and "inferred" not in out
    hook(f"publish -n {node} -i first '{ENTRY}'")
    assert f"published item 'first' to node '{node}' on {alice}" in capsys.readouterr().out
    assert host.wait_runs(1)
    runs = hook(f"runs -n {node}")
    assert list(runs["status"]) == ["ok"] and list(runs["result"]) == ["'FIRST'"]


def test_create_infers_python_file(hook, host, alice, node, tmp_path, capsys):
    path = hook_file(tmp_path / "on_item.py", """
        def hook(host, client, item):
            return f"file saw {item.id}"
    """)
    hook(f"create -n {node} {path}")
    out = capsys.readouterr().out
    assert "type inferred from the argument: python_file" in out
    (hooked,) = host.hooks()
    assert (hooked.type, hooked.arg) == ("python_file", path)
    hook(f"publish -n {node} -i one '{ENTRY}'")
    assert host.wait_runs(1)
    assert host.runs.latest().result == "'file saw one'"


def test_create_infers_python_module_and_persistent(hook, host, alice, node, tmp_path, monkeypatch, capsys):
    name = f"hookmod_{uuid.uuid4().hex[:8]}"
    hook_file(tmp_path / f"{name}.py", """
        async def hook(host, client, item):
            return item.kind
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    hook(f"create -P -n {node} {name}")
    out = capsys.readouterr().out
    assert "type inferred from the argument: python" in out and "(python, persistent)" in out
    assert [r["arg"] for r in host.store.load_hooks(alice)] == [name]


def test_create_with_an_xmpp_uri(hook, host, alice, node):
    hook(f"create -u 'xmpp:{alice}?;node={node}' -t python_code 'item.id'")
    (hooked,) = host.hooks()
    assert (hooked.service, hooked.node) == (alice, node)


@pytest.mark.parametrize("line, message", [
    ("create -t python_code 'item.id'",
     "a node is required: -n NODE (or -u 'xmpp:SERVICE?;node=NODE')"),
    ("create -n x -t perl 'print 1'", "%hook create: argument -t/--type: invalid choice: 'perl' (choose from"),
    ("create -u http://example.org/x -t python_code 'item.id'",
     "malformed xmpp: URI 'http://example.org/x': it must start with 'xmpp:'"),
    ("create -u 'xmpp:?;node=x' -t python_code 'item.id'",
     "malformed xmpp: URI 'xmpp:?;node=x': no service JID"),
    ("create -n x -t python_file /nonexistent/hook.py",
     "hook file '/nonexistent/hook.py' does not exist"),
    ("create -n x /nonexistent/hook.py", "hook file '/nonexistent/hook.py' does not exist"),
    ("create -n x no_such_module_xyz",
     "cannot tell the hook type of 'no_such_module_xyz': not an existing .py file nor an importable "
     "module; give -t python|python_file|python_code"),
    ("create -n x -t python_code 'if :'", "syntax error in hook code, line 1: "),
    ("create -n x", "%hook create: the following arguments are required: ARG"),
    ("create -n x --on sneeze -t python_code 'item.id'",
     "%hook create: argument --on: unknown event kind sneeze; choose among publish, retract, purge, "
     "delete, config, all"),
])
def test_create_bad_input(hook, alice, line, message):
    assert usage_error(lambda: hook(line)).startswith(message)


def test_create_without_an_account(hook):
    assert usage_error(lambda: hook("create -n x -t python_code 'item.id'")).startswith("no account:")


# ------------------------------------------------------------------------------ delete / list

def test_delete_one_then_all(hook, host, alice, node, capsys):
    for code in ("item.id", "item.kind", "item.node"):
        hook(f"create -n {node} -t python_code '{code}'")
    capsys.readouterr()
    hook(f"delete -n {node} -t python_code -a item.kind")
    assert capsys.readouterr().out == "1 hook(s) deleted\n"
    hook(f"delete -n {node}")
    assert capsys.readouterr().out == "2 hook(s) deleted\n"
    hook(f"delete -n {node}")
    assert capsys.readouterr().out == "0 hook(s) deleted\n"


def test_delete_by_id_any_account_and_refuses_unknown_ids(hook, host, alice, node, capsys):
    made = [host.create_hook(node, code, "python_code", persistent=True) for code in ("item.id", "item.kind")]
    stored = host.create_hook(node, "item.node", "python_code", persistent=True, account="carol@localhost")
    capsys.readouterr()
    hook(f"delete {made[0].id} {stored.id}")  # carol is not connected: her stored hook goes too
    assert capsys.readouterr().out == "2 hook(s) deleted\n"
    assert [h.id for h in host.hooks()] == [made[1].id]
    assert usage_error(lambda: hook(f"delete {made[1].id} nope")) == "no hook with id 'nope': nothing deleted"
    assert usage_error(lambda: hook(f"delete {made[1].id} -n {node}")) == (
        "delete: give hook ids, or -s/-n/-u with -t/-a, not both")
    assert [h.id for h in host.hooks()] == [made[1].id]


def test_delete_bad_input(hook, alice):
    assert usage_error(lambda: hook("delete -t python_code")) == \
        "a node is required: -n NODE (or -u 'xmpp:SERVICE?;node=NODE')"
    assert usage_error(lambda: hook("delete -n x -t perl")).startswith("unknown hook type 'perl'")
    assert usage_error(lambda: hook("delete -u xmpp:")) == "malformed xmpp: URI 'xmpp:': no service JID"


def test_list_table_and_json(hook, host, alice, node, capsys):
    assert hook("list -O json") == [] and repr(hook("list -O json")) == "[]"
    empty = hook("list")
    assert isinstance(empty, pd.DataFrame) and empty.empty and list(empty.columns[:5]) == [
        "service", "node", "type", "arg", "persistent"]
    hook(f"create -n {node} -t python_code 'item.id'")
    hook(f"create -P -n {node} -t python_code 'item.kind'")
    capsys.readouterr()
    rows = hook("list -O json")  # the rows, shown as the command line's JSON
    assert capsys.readouterr().out == "" and json.loads(repr(rows)) == rows
    assert [tuple(r) for r in rows] == [JSON_FIELDS] * 2
    assert [(r["service"], r["node"], r["type"], r["arg"], r["persistent"]) for r in rows] == [
        (alice, node, "python_code", "item.id", False), (alice, node, "python_code", "item.kind", True)]
    table = hook("list -O table")
    assert list(table["persistent"]) == [False, True] and table["persistent"].dtype == bool
    assert hook("list -O simple").equals(table)  # the command line's former name of table
    assert usage_error(lambda: hook("list -O xml")).startswith(
        "%hook list: argument -O/--output: invalid choice: 'xml'")


def test_create_from_where_the_service_hides_publishers_warns(hook, host, alice, account, connect,
                                                            make_host, server, node, capsys):
    service = hiding_node(host.client(), server, node)
    bob_jid, bob_password = account("bob")
    bob = connect(make_host(), bob_jid, bob_password)
    bob.publish(node, "<x xmlns='urn:t'/>", item_id="b0", service=service)
    capsys.readouterr()
    hook(f"create -s {service} -n {node} --from {bob_jid} -t python_code item.id")
    (created,) = host.hooks()
    assert capsys.readouterr().out.splitlines()[-1] == f"warning: {created.warnings[0]}"
    assert hook("list").loc[0, "publisher_check"] == PUBLISHER_UNKNOWN
    assert hook("status").set_index("account").loc[alice, "warnings"] == created.warnings[0]


# ------------------------------------------------------------------------------ journals, subscribe, publish

def test_events_and_runs_filters(hook, host, alice, node, capsys):
    other = f"{node}-b"
    hook(f"create -n {node} -t python_code 'item.id'")
    hook(f"subscribe -n {other}")
    assert f"subscribed to node '{other}' on {alice}" in capsys.readouterr().out
    for i in range(3):
        hook(f"publish -n {node} -i a{i} '{ENTRY}'")
    hook(f"publish -n {other} -i b0 '{ENTRY}'")
    assert host.wait_events(4) and host.wait_runs(3)
    events = hook("events")
    assert len(events) == 4 and set(events["node"]) == {node, other}
    assert list(hook(f"events -n {node} --last 2")["item_id"]) == ["a1", "a2"]
    assert list(hook("runs --last 1")["item_id"]) == ["a2"]
    assert hook(f"runs -n {other}").empty
    assert usage_error(lambda: hook("events --last 0")) == \
        "%hook events: argument --last: must be at least 1: '0'"
    hook(f"unsubscribe -n {other}")
    assert f"unsubscribed from node '{other}' on {alice}" in capsys.readouterr().out
    assert (alice, other) not in host.client(alice).subscriptions


def test_expanded_events_of_real_microblog_posts(hook, host, account, server, make_host, connect):
    blog = "urn:xmpp:microblog:0"
    alice, password = account("blogger")
    hook(f"connect {alice} --password={password} --host {server.host} --port {server.port} "
         f"--cafile {server.cafile}")
    hook(f"subscribe -n {blog}")
    phone = connect(make_host(), alice, password, resource="phone")  # alice posts from her phone
    posts = [("p1", "First", "2024-05-01T12:00:00+02:00"), ("p2", "Second", "2024-05-02T08:30:00Z")]
    for item_id, title, published in posts:
        phone.publish(blog, f'<entry xmlns="http://www.w3.org/2005/Atom"><title>{title}</title>'
                            f'<author><name>Alice</name><uri>xmpp:{alice}</uri></author>'
                            f'<published>{published}</published><link rel="alternate" '
                            f'href="https://blog.example/{item_id}"/></entry>', item_id=item_id)
    assert host.wait_events(2)
    df = hook(f"events -n {blog} --expand")
    assert list(df["item_id"]) == ["p1", "p2"] and list(df["title"]) == ["First", "Second"]
    assert list(df["author"]) == ["Alice", "Alice"] and str(df["published"].dt.tz) == "UTC"
    assert list(df["published"]) == [pd.Timestamp("2024-05-01T10:00:00Z"), pd.Timestamp("2024-05-02T08:30:00Z")]
    assert list(df["link"]) == ["https://blog.example/p1", "https://blog.example/p2"]
    assert "title" not in hook(f"events -n {blog}").columns


def test_publish_bad_input(hook, alice):
    assert usage_error(lambda: hook("publish -n x '<unclosed>'")).startswith(
        "the payload is not well-formed XML:")
    assert usage_error(lambda: hook("publish -n x")) == \
        "%hook publish: one of the arguments XML -f/--file is required"
    assert usage_error(lambda: hook("publish -n x -f p.xml '<a/>'")) == \
        "%hook publish: argument XML: not allowed with argument -f/--file"
    assert usage_error(lambda: hook("publish -n x -f /nonexistent/p.xml")) == \
        "cannot read the payload file '/nonexistent/p.xml': No such file or directory"
    assert usage_error(lambda: hook("publish '<a/>'")) == \
        "a node is required: -n NODE (or -u 'xmpp:SERVICE?;node=NODE')"


def test_publish_without_a_connection(hook):
    assert usage_error(lambda: hook("publish -n x '<a/>'")).startswith("no account:")


def test_publish_a_payload_from_a_file(hook, host, alice, node, tmp_path, capsys):
    path = tmp_path / "post.xml"
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n{ENTRY}\n', encoding="utf-8")
    hook(f"publish -n {node} --id from-file -f {path}")
    assert capsys.readouterr().out == f"published item 'from-file' to node '{node}' on {alice}\n"
    (item,) = host.client(alice).get_items(node)
    assert (item.item_id, item.payload) == ("from-file", ENTRY)


# ------------------------------------------------------------------------------ %%hook publish

def big_payload(size: int) -> str:
    """An XML payload of about ``size`` characters, full of braces and dollars that IPython
    would try to expand in a magic's line."""
    lines, total, i = [], 0, 0
    while total < size:
        lines.append(f"<p n='{i}'>{{not python}} ${{x}} {{i}} &amp; $HOME {i}</p>\n")
        total, i = total + len(lines[-1]), i + 1
    return f'<doc xmlns="urn:test:big">\n{"".join(lines)}</doc>'


def test_cell_publish_sends_a_300_kb_body_as_it_is_and_fast(shell, hook, host, alice, server, node, capsys):
    hook(f"node create -s {server.pubsub} -n {node}")  # (ejabberd's PEP nodes take 250 kB at most)
    capsys.readouterr()
    payload = big_payload(300_000)
    assert len(payload) >= 300_000 and "{not python}" in payload
    start = time.perf_counter()
    result = shell.run_cell(f"%%hook publish -s {server.pubsub} -n {node} --id big\n{payload}\n")
    elapsed = time.perf_counter() - start
    assert result.success, result.error_in_exec
    assert capsys.readouterr().out == f"published item 'big' to node '{node}' on {server.pubsub}\n"
    print(f"\n%%hook publish of {len(payload)} characters: {elapsed:.3f} s")
    assert elapsed < 5  # an upper bound far above the expected (measured: see the report)
    (item,) = host.client(alice).get_items(node, server.pubsub, item_ids=["big"])
    assert item.payload == payload.replace("'", '"')  # attribute quotes as slixmpp writes them


def test_cell_publish_bad_input(shell, alice, node):
    run = shell.run_cell_magic
    assert usage_error(lambda: run("hook", f"publish -n {node}", "<unclosed>\n")).startswith(
        "the payload is not well-formed XML:")
    assert usage_error(lambda: run("hook", "publish", "<a/>\n")) == \
        "a node is required: -n NODE (or -u 'xmpp:SERVICE?;node=NODE')"
    assert usage_error(lambda: run("hook", f"publish -n {node} -t python", "<a/>\n")) == \
        "%%hook publish: unrecognized arguments: -t python"


# ------------------------------------------------------------------------------ %%hook

def test_cell_hook_runs_and_is_replaced_when_run_again(shell, host, alice, node, capsys):
    shell.run_cell_magic("hook", f"-n {node}", "value = item.id\nvalue.upper()\n")
    assert "run this cell again to replace it" in capsys.readouterr().out
    shell.run_cell_magic("hook", f"-n {node}", "f'v2 {item.id}'\n")
    (hooked,) = host.hooks()
    assert hooked.arg == "f'v2 {item.id}'\n"
    shell.run_line_magic("hook", f"publish -n {node} -i x1 '{ENTRY}'")
    assert host.wait_runs(1)
    assert host.runs.latest().result == "'v2 x1'"


def test_cell_hook_options(shell, host, alice, node):
    shell.run_cell_magic("hook", f"-P -n {node} --on retract,purge --timeout 5", "item.kind\n")
    (hooked,) = host.hooks()
    assert hooked.persistent and hooked.kinds == {"retract", "purge"} and hooked.timeout == 5
    assert [r["id"] for r in host.store.load_hooks(alice)] == [hooked.id]


@pytest.mark.parametrize("line, usage", [("--help", "usage: %%hook"), ("-n x -h", "usage: %%hook"),
                                         ("publish --help", "usage: %%hook publish")])
def test_cell_help_whatever_the_body(shell, magics, capsys, line, usage):
    for body in ("", "\n  \n", "item.id\n"):
        result = shell.run_cell(f"%%hook {line}\n{body}")
        assert result.success, result.error_in_exec or result.error_before_exec
        assert capsys.readouterr().out.startswith(usage)
    assert len([t for t in shell.input_transformers_cleanup if t is magics_module.help_without_body]) == 1


def test_a_cell_magic_without_body_and_without_help_is_still_refused(shell, magics):
    result = shell.run_cell("%%hook -n x")
    assert "the cell body is empty" in str(result.error_in_exec)


def test_cell_hook_bad_input(shell, alice, node):
    run = shell.run_cell_magic
    assert usage_error(lambda: run("hook", "", "item.id\n")) == \
        "a node is required: -n NODE (or -u 'xmpp:SERVICE?;node=NODE')"
    # line 1 of the cell is the %%hook line, so the body's second line is the cell's line 3
    assert usage_error(lambda: run("hook", f"-n {node}", "x = 1\nif x print(x)\n")).startswith(
        "syntax error in hook code, line 3: ")
    assert usage_error(lambda: run("hook", f"-n {node}", "\n")) == "the hook code is empty"
    assert usage_error(lambda: run("hook", f"-n {node} -t python", "item.id\n")) == \
        "%%hook: unrecognized arguments: -t python"


# ------------------------------------------------------------------------------ settings, completion, widgets

def test_settings_with_config(shell, magics, host, account, server, capsys):
    shell.run_line_magic("config", "HookMagics.events_max = 50")
    shell.run_line_magic("config", "HookMagics.runs_max = 60")
    assert (host.events.maxlen, host.runs.maxlen) == (50, 60)
    shell.run_line_magic("config", "HookMagics.events_max_bytes = 32 * 2**20")
    shell.run_line_magic("config", "HookMagics.runs_max_bytes = 2**20")
    assert (host.events.max_bytes, host.runs.max_bytes) == (32 * 2**20, 2**20)
    with pytest.raises(TraitError, match="events_max_bytes must be at least 1, not 0"):
        magics.events_max_bytes = 0
    shell.run_line_magic("config", "HookMagics.refresh_rate = 100")
    assert magics.refresh_rate == 10.0
    first, first_password = account("first")
    second, second_password = account("second")
    for jid, password in ((first, first_password), (second, second_password)):
        shell.run_line_magic("hook", f"connect {jid} --password={password} --host {server.host} "
                                     f"--port {server.port} --cafile {server.cafile}")
    shell.run_line_magic("config", f"HookMagics.default_account = '{first}'")
    shell.run_line_magic("hook", "create -n n1 -t python_code 'item.id'")
    assert [h.account for h in host.hooks()] == [first]
    shell.run_line_magic("config", "HookMagics.events_max = 100000")
    shell.run_line_magic("config", "HookMagics.runs_max = 100000")
    shell.run_line_magic("config", f"HookMagics.events_max_bytes = {MAX_BYTES}")
    shell.run_line_magic("config", f"HookMagics.runs_max_bytes = {MAX_BYTES}")


def test_completion(shell, magics, host, alice, node, hook):
    hook(f"create -n {node} -t python_code 'item.id'")
    assert magics.complete("%hook ") == sorted(
        ["connect", "create", "delete", "list", "events", "runs", "subscribe", "unsubscribe",
         "publish", "node", "status", "feed", "manager", "replay", "enable", "disable", "retry", "discard",
         "output", "password", "apply", "import"])
    assert magics.complete("%hook cr") == ["create"]
    assert magics.complete("%hook node ") == ["config", "create", "delete", "purge"]
    assert magics.complete("%hook node c") == ["config", "create"]
    assert magics.complete("%hook node create --n") == ["--node", "--node-config"]
    assert node in magics.complete("%hook node purge -n ")
    assert magics.complete("%hook create -t py") == ["python", "python_code", "python_file"]
    assert node in magics.complete("%hook delete -n ")
    assert "--persistent" in magics.complete("%hook create --p")
    assert magics.complete("%hook list -O ") == ["json", "table"]
    [made] = [h.id for h in host.hooks() if h.node == node]
    assert made in magics.complete("%hook output ")
    assert magics.complete(f"%hook replay {made[:4]}") == [made]
    assert magics.complete("%hook enable --") == ["--help", "--jid"]
    assert alice in magics.complete("%hook create --jid ")
    assert alice in magics.complete(f"%hook create --from {alice[:3]}")
    assert magics.complete("%hook create --executor ") == ["dask", "process", "thread"]
    assert "urn:xmpp:microblog:0" in magics.complete("%hook create -n urn:")

    def completions(line: str) -> list[str]:
        """What IPython's own completer offers at the end of ``line`` (Tab in a notebook)."""
        with provisionalcompleter():
            return [c.text for c in shell.Completer.completions(line, len(line))]

    assert "create" in completions("%hook cr")
    assert made in completions(f"%hook output {made[:3]}")
    assert alice in completions("%hook connect --jid ")
    assert node in completions("%hook events -n node-")


def test_feed_and_manager_commands(hook, magics, host):
    magics.refresh_rate = 4
    feed = hook("feed --rows 5")
    manager = hook("manager")
    try:
        assert isinstance(feed, EventFeed) and feed.rows == 5 and feed._refresher.interval == 0.25
        assert isinstance(manager, HookManager)
    finally:
        feed.close()
        manager.close()
    assert usage_error(lambda: hook("feed --rows 0")) == "%hook feed: argument --rows: must be at least 1: '0'"


def test_a_publish_over_the_size_limit_is_one_usage_error(hook, magics, host, account, server, tmp_path, capsys):
    magics.max_bytes = 64 << 10  # %config HookMagics.max_bytes = 65536
    try:
        jid, password = account("magic")
        hook(f"connect {jid} --password={password} --host {server.host} --port {server.port} "
             f"--cafile {server.cafile}")
    finally:
        magics.max_bytes = DEFAULT_MAX_BYTES
    node = f"magic-{uuid.uuid4().hex[:8]}"
    hook(f"node create -n {node}")
    big = tmp_path / "big.xml"
    big.write_text(payload(100_000, jid, node, ""))
    assert usage_error(lambda: hook(f"publish -n {node} -f {big}")) == (
        f"publish to node {node!r} on {jid} not sent: the item takes 100,000 bytes, over the 65,536-byte "
        "limit for servers that advertise none (raise it with --max-bytes or max_bytes=)")
    assert host.client(jid).state == "connected"
    capsys.readouterr()
    hook(f"""publish -n {node} -i small "<p xmlns='urn:t'>small</p>" """)
    assert capsys.readouterr().out == f"published item 'small' to node {node!r} on {jid}\n"
