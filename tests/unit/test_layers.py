"""The layers of docs/architecture.md, held against the code: what import-linter cannot see.

``lint-imports`` (pyproject.toml) checks which modules import which, without the imports made
for type checking only.  Here: no import cycle is left *with* them (but the client/operations
seam, where the client hands operations to a handler it only knows as a protocol); front ends
never reach the engine, the inbox, the store, the registry or a session through the host's
attributes; no module is longer than a reader can hold (450 lines).
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

PACKAGE = Path(__file__).resolve().parents[2] / "hooknb"
# the client is a PubSub (xmpp.pubsub, a mixin): both sides of the seam
ALLOWED_CYCLES = [{"hooknb.xmpp.client", "hooknb.xmpp.pubsub", "hooknb.xmpp.operations"}]
FRONT_ENDS = [*sorted((PACKAGE / "frontends").glob("*.py")), PACKAGE / "local.py"]
INTERNALS = {"engine", "inbox", "store", "registry", "handler", "sessions", "positions", "invoker"}
MAX_LINES = 450


def cycles(graph: grimp.ImportGraph) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    modules = sorted(m for m in graph.modules if m.startswith("hooknb"))
    edges = {m: {d for d in graph.find_modules_directly_imported_by(m) if d.startswith("hooknb")} for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_is_left_but_the_client_operations_seam():
    graph = grimp.build_graph("hooknb", exclude_type_checking_imports=False)
    assert cycles(graph) == ALLOWED_CYCLES


def test_front_ends_never_reach_into_the_core_through_the_host():
    reaching = []
    for path in FRONT_ENDS:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in INTERNALS:
                reaching.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert reaching == []


def test_the_check_sees_a_front_end_reaching_in(tmp_path):
    """The check above can fail: a line like the runner's old ones is found."""
    tree = ast.parse("left = len(self.host.store.pending(self.account))")
    assert [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in INTERNALS] == ["store"]


def test_no_module_is_over_450_lines():
    long = {str(path.relative_to(PACKAGE)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}
