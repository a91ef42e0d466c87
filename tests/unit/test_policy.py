"""The restrict policy: the default rules, ``restrict.json`` in ``$HOOKNB_HOME`` (patterns, types,
phases, exceptions), and a one-line error for an invalid file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hooknb.core import policy
from hooknb.errors import HookCreateError, HooknbError
from hooknb.core.policy import DEFAULT_RULES, Rule


@pytest.fixture
def restrict(home: Path):
    """``restrict(data)`` writes ``data`` as ``restrict.json`` in the test's HOOKNB_HOME."""
    return lambda data: (home / policy.FILENAME).write_text(data if isinstance(data, str) else json.dumps(data))


def refusal(service: str, node: str, type_: str = "python_code", phase: str = "event") -> str | None:
    """The message of the refusal of such a hook under the current policy, or None if allowed."""
    try:
        policy.check(service, node, type_, phase)
    except HookCreateError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("node, rule", [
    ("urn:xmpp:bookmarks:1", "bookmarks"), ("storage:bookmarks", "bookmarks-legacy"),
    ("storage:rosternotes", "private-xml-storage"), ("jabber:iq:private", "private-xml-storage-iq")])
def test_default_rules_protect_private_storage(home, node, rule):
    assert policy.load_rules() == DEFAULT_RULES
    message = refusal("alice@example.org", node, "python_file", "before")
    assert message == (f"node {node!r} on alice@example.org is restricted by rule {rule!r}: "
                       "before hooks of type python_file may not be attached there")


@pytest.mark.parametrize("node", ["urn:xmpp:microblog:0", "news", "storagebookmarks", "urn:xmpp:bookmarks"])
def test_default_rules_allow_other_nodes(home, node):
    assert refusal("pubsub.example.org", node) is None


def test_a_rule_matches_service_node_type_and_phase(restrict):
    restrict({"restrict": [{"name": "no-code-on-secrets", "service": "*.example.org", "node": "secret-*",
                            "types": ["python_code"], "phases": ["event"], "except": ["secret-ok*"]}]})
    assert "rule 'no-code-on-secrets'" in refusal("pubsub.example.org", "secret-1")
    assert refusal("pubsub.example.net", "secret-1") is None  # other service
    assert refusal("pubsub.example.org", "public") is None  # other node
    assert refusal("pubsub.example.org", "secret-1", "python_file") is None  # other type
    assert refusal("pubsub.example.org", "secret-1", phase="before") is None  # other phase
    assert refusal("pubsub.example.org", "secret-ok-2") is None  # an exception


def test_a_file_replaces_the_defaults_and_a_list_is_accepted(restrict):
    restrict([{"node": "a?c"}, {"node": "[xy]"}])
    assert policy.load_rules() == (Rule("rule 1", "a?c"), Rule("rule 2", "[xy]"))
    assert "rule 'rule 1'" in refusal("s", "abc")
    assert "rule 'rule 2'" in refusal("s", "y")
    assert refusal("s", "storage:bookmarks") is None


def test_an_empty_file_list_allows_everything(restrict):
    restrict({"restrict": []})
    assert refusal("alice@example.org", "storage:bookmarks") is None


def test_patterns_are_case_sensitive(restrict):
    restrict([{"node": "Secret"}])
    assert refusal("s", "Secret") and refusal("s", "secret") is None


def test_rules_given_explicitly_are_used_instead_of_the_file(restrict):
    restrict([{"node": "*"}])
    policy.check("s", "news", "python", "event", rules=(Rule("other", "x"),))
    with pytest.raises(HookCreateError, match="rule 'other'"):
        policy.check("s", "x", "python", "event", rules=(Rule("other", "x"),))


@pytest.mark.parametrize("content, why", [
    ("{not json", "JSONDecodeError"),
    ('{"rules": []}', "KeyError"),
    ('[{"name": "no node"}]', "KeyError: 'node'"),
    ('["storage:*"]', "AttributeError"),
    ("null", "TypeError"),
    ("42", "TypeError"),
])
def test_an_invalid_file_is_a_one_line_error(restrict, home, content, why):
    restrict(content)
    with pytest.raises(HooknbError) as info:
        policy.load_rules()
    message = str(info.value)
    assert message.startswith(f"the restrict policy {home / policy.FILENAME} is invalid (") and why in message
    assert "\n" not in message
    with pytest.raises(HooknbError, match="is invalid"):
        policy.check("s", "n", "python", "event")  # never silently allowed


def test_a_string_instead_of_a_list_of_types_is_refused_or_honoured(restrict):
    restrict([{"name": "no-code", "node": "secret", "types": "python_code"}])
    with pytest.raises(HooknbError):
        policy.check("s", "secret", "python_code", "event")


def test_a_list_as_node_pattern_is_an_invalid_file(restrict):
    restrict([{"name": "two", "node": ["a", "b"]}])
    with pytest.raises(HooknbError, match="is invalid"):
        policy.load_rules()
