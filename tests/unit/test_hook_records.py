"""Hook specs, validation and the registry, without a server."""

from __future__ import annotations

import pytest

from hooknb.errors import HookCreateError, HooknbError
from hooknb.core.hooks import (
    SUMMARY_FIELDS,
    Hook,
    HookSpec,
    check_action,
    hook_id,
    parse_kinds,
)
from hooknb.core.registry import Registry
from unit.fakes import ACCOUNT, SERVICE


def spec(node="n", arg="1", **options):
    return HookSpec.make(ACCOUNT, SERVICE, node, "python_code", arg, **options)


def test_a_spec_survives_the_store_round_trip_and_is_frozen():
    original = spec(persistent=True, kinds=frozenset({"publish", "retract"}), priority=3,
                    timeout=2.5, publishers=frozenset({"bob@localhost"}), name="cell", sha256="ab")
    assert HookSpec.from_record(original.to_record()) == original
    with pytest.raises(AttributeError):
        original.node = "other"  # type: ignore[misc]


def test_ids_are_stable_and_depend_on_attachment_and_action():
    assert spec().id == spec().id == hook_id(ACCOUNT, SERVICE, "n", "python_code", "1")
    assert len({spec().id, spec(arg="2").id, spec(node="m").id,
                HookSpec.make(ACCOUNT, SERVICE, "n", "python_code", "1", "before").id}) == 4


def test_a_hook_reads_its_spec_and_statistics_as_attributes():
    hook = Hook(spec(priority=4))
    hook.stats.record("error", 10.0, "boom")
    assert (hook.node, hook.priority, hook.runs, hook.failures, hook.last_error) == ("n", 4, 1, 1, "boom")
    assert tuple(hook.summary()) == SUMMARY_FIELDS
    with pytest.raises(AttributeError):
        hook.runs = 5  # counters have one writer: the statistics


@pytest.mark.parametrize(("node", "arg", "type_", "phase", "timeout", "message"), [
    ("", "1", "python_code", "event", 1, "a node is required"),
    ("n", "1", "python_code", "sideways", 1, "unknown phase 'sideways'"),
    ("n", "1", "python_code", "event", 0, "the timeout must be a positive number"),
    ("n", "1", "perl", "event", 1, "unknown hook type 'perl'"),
    ("n", "missing_file.py", None, "event", 1, "does not exist"),
])
def test_bad_hooks_are_refused_with_one_line(node, arg, type_, phase, timeout, message):
    with pytest.raises(HookCreateError, match=message) as caught:
        check_action(node, arg, type_, phase, timeout, None)
    assert "\n" not in str(caught.value)


def test_event_kinds_and_operations_parse_or_are_refused():
    assert parse_kinds("publish, retract") == {"publish", "retract"}
    assert parse_kinds("all", "before") == {"publish", "retract"}
    with pytest.raises(HooknbError, match="unknown operation purge"):
        parse_kinds("purge", "after")


def test_the_registry_finds_a_nodes_hooks_in_run_order():
    registry = Registry()
    late, early = Hook(spec(arg="late", priority=5)), Hook(spec(arg="early", priority=-1))
    other = Hook(spec(node="other"))
    for hook in (late, early, other):
        registry.add(hook)
    assert registry.lookup(ACCOUNT, SERVICE, "n") == (early, late)
    assert registry.nodes(ACCOUNT) == {(SERVICE, "n"), (SERVICE, "other")}
    assert registry.remove([late.id, "nope"]) == [late]
    assert registry.lookup(ACCOUNT, SERVICE, "n") == (early,)
