"""The command layer shared by the magics and the command line, without a server: hooks made
from parsed arguments, deletion, listing rows."""

from __future__ import annotations

import pytest

from hooknb.frontends import commands, grammar
from hooknb.errors import HookCreateError
from unit.fakes import ACCOUNT


def args(line: str):
    parser = grammar.magic_parser()
    return grammar.parse(parser, line)


def test_create_list_and_delete_persistent_hooks_offline(host):
    hook = commands.create(host, args("create -P -s pubsub.localhost -n news -t python_code item.id"), ACCOUNT)
    commands.create(host, args("create -P -n mine -t python_code 1"), ACCOUNT)
    assert commands.describe(hook) == f"hook {hook.id} (python_code, persistent) on pubsub.localhost node 'news'"
    rows = commands.list_rows(host)
    assert [tuple(r) for r in rows] == [commands.LIST_FIELDS] * 2
    assert [(r["service"], r["node"], r["account"]) for r in rows] == [
        ("pubsub.localhost", "news", ACCOUNT), (ACCOUNT, "mine", ACCOUNT)]
    assert commands.delete(host, args("delete -s pubsub.localhost -n news"), ACCOUNT) == 1
    assert [r["node"] for r in commands.list_rows(host)] == ["mine"]
    assert [r["node"] for r in host.store.load_hooks()] == ["mine"]


def test_a_temporary_hook_needs_a_connection(host):
    with pytest.raises(Exception, match="not connected: temporary hooks need a connection"):
        commands.create(host, args("create -n news -t python_code 1"), ACCOUNT)


def test_a_restricted_node_cannot_be_hooked(host):
    with pytest.raises(HookCreateError, match="restricted by rule 'bookmarks-legacy'"):
        commands.create(host, args("create -P -n storage:bookmarks -t python_code 1"), ACCOUNT)
    assert host.store.load_hooks() == []


def test_plaintext_to_a_remote_host_is_refused_before_any_prompt():
    parsed = args("connect bob@example.org --host 192.0.2.1 --plaintext")
    with pytest.raises(Exception, match="only allowed to a loopback host"):
        commands.connect_options(parsed, "bob@example.org")
