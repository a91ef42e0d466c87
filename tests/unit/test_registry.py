"""The registry's indexes against a plain list of its hooks: whatever hooks are added, given new
options or removed, in any order, dispatch, the nodes of an account, a node's hooks and whether an
account has persistent hooks are what scanning every hook would say (the indexes are what make
registration cost the same at the ten-thousandth hook as at the first)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from hooknb.core.hooks import PHASES, Hook, HookSpec
from hooknb.core.registry import Registry

ACCOUNTS = ("a@x", "b@x")
NODES = ("n1", "n2", "n3")

spec_st = st.builds(
    lambda account, node, phase, code, persistent, priority: HookSpec.make(
        account, "pubsub.x", node, "python_code", code, phase, persistent=persistent, priority=priority),
    st.sampled_from(ACCOUNTS), st.sampled_from(NODES), st.sampled_from(PHASES),
    st.sampled_from(("1", "2")), st.booleans(), st.integers(0, 2))
ops_st = st.lists(st.tuples(st.sampled_from(("add", "respec", "remove")), spec_st), max_size=40)


@settings(max_examples=200, deadline=None)
@given(ops_st)
def test_the_indexes_say_what_a_scan_of_every_hook_says(ops):
    registry = Registry()
    for op, spec in ops:
        hook = registry.get(spec.id)
        if op == "add":
            registry.add(Hook(spec))
        elif op == "respec" and hook is not None:
            registry.respec(hook, replace(hook.spec, persistent=not hook.persistent, priority=spec.priority))
        elif op == "remove":
            registry.remove([spec.id])
    hooks = registry.all()
    for account in ACCOUNTS:
        mine = [h for h in hooks if h.account == account]
        assert registry.has_persistent(account) == any(h.persistent for h in mine)
        assert registry.nodes(account) == {(h.service, h.node) for h in mine if h.phase == "event"}
        assert registry.all(account) == mine
        for node in NODES:
            on_node = [h for h in mine if h.node == node]
            assert registry.find(account, "pubsub.x", node) == on_node
            assert registry.hooked(account, "pubsub.x", node) == bool(on_node)
            for phase in PHASES:
                assert registry.lookup(account, "pubsub.x", node, phase) == tuple(
                    sorted((h for h in on_node if h.phase == phase), key=lambda h: h.order))
