"""Every notebook in ``notebooks/`` runs top to bottom in a fresh kernel (this venv's Python),
never touches the user's data, and is committed with the outputs of such a run.

* **User data**: each run happens beside a user's own setup, as on Binder: a persistent hook of
  ``alice@localhost`` in the default store (``$HOOKNB_HOME``, which the kernel inherits) on every
  node the tutorials use, run by the user's ``hooknb run`` on the server ``$HOOKNB_SERVER_DIR``
  names.  The tutorials use a store and a server of their own (``scratch_server()``), so the
  hook must survive (its store row unchanged) and never run (its side-effect file never
  written); a post made on the user's server at the end shows that it would have.
* **Committed outputs**: the committed notebook has the same cells as the one just run, numbered
  1, 2, 3... (one run, top to bottom), with outputs of the same kinds where it has them, the
  expected text and plots included: what the docs render is what a run shows.
  ``python tests/test_notebooks.py`` (``make notebooks``) runs every notebook and writes it back.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from processes import lines, wait_until

from hooknb.host import Host
from hooknb.local import ENV
from hooknb.server import ServerInfo
from hooknb.storage.store import Store

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

#: Text each notebook's outputs must contain once executed.
EXPECTED = {
    "quickstart": ["connected as alice@localhost", "new post post-3: Third post", "1 hook(s) deleted"],
    "hook_types": ["type inferred from the argument: python_file",
                   "type inferred from the argument: python", "'FOUR HOOKS ONE POST'", "'EDITED!!!'",
                   "4 hook(s) deleted"],
    "persistent_hooks": ["hooks after the restart: [('python_file', True)]", "while-away",
                         "after-restart", "python_file  True", "[]"],
    "dashboard": ["hooknb-feed", "connected", "rich post 2", "Alice", "https://blog.example/2",
                  "No hook runs on Dask yet"],
    "tour": ["created node 'news' on pubsub.localhost", "'bob@localhost says: Release 1.0 is out'",
             "--from: published by alice@localhost, not in the list", "retract", "purge",
             "vetoed by before hook", "a post needs a title", "Hooks in notebooks",
             "deleted node 'news' on pubsub.localhost"],
}
#: Notebooks that draw a plot.
PLOTS = {"dashboard", "tour"}
#: The nodes the tutorials use, each hooked by the user's own hook: (service or None for PEP, node).
USED_NODES = [(None, "urn:xmpp:microblog:0"), (None, "dashboard-news"), ("pubsub", "news")]


def execute(path: Path, cwd: Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` run top to bottom in a fresh kernel, in directory ``cwd``."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=60, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def outputs(nb: nbformat.NotebookNode) -> str:
    """All the text a notebook's cells produced."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


def shape(cell: nbformat.NotebookNode) -> list[tuple[str, ...]]:
    """What kinds of output a cell has: streams by name (consecutive ones as one), results and
    displays by their MIME types."""
    kinds: list[tuple[str, ...]] = []
    for out in cell.get("outputs", []):
        kind = (("stream", out["name"]) if out["output_type"] == "stream" else
                (out["output_type"], *sorted(out.get("data", {}))))
        if not (kinds and kind == kinds[-1] and kind[0] == "stream"):
            kinds.append(kind)
    return kinds


@pytest.fixture
def user(home: Path, server: ServerInfo, runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The user's own setup (see the module docstring); yields (store, side-effect file, runner)."""
    monkeypatch.setenv(ENV, server.dir)
    alice = server.jid("alice")
    touched = tmp_path / "users-hook-ran"
    mine = Host(store_path=str(home / "hooknb.sqlite3"))
    for service, node in USED_NODES:
        mine.create_hook(node, f"open({str(touched)!r}, 'a').write(item.id + '\\n')", type="python_code",
                         service=server.pubsub if service else None, persistent=True, account=alice)
    mine.close()
    proc = runner(alice, server.accounts["alice"])
    proc.wait_record("ready")
    yield Store(home / "hooknb.sqlite3"), touched, proc


@pytest.mark.integration  # a kernel per notebook
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_top_to_bottom_untouching_user_data(name: str, user, server: ServerInfo,
                                                          tmp_path: Path) -> None:
    store, touched, users_runner = user
    rows = store.load_hooks()
    assert len(rows) == len(USED_NODES)
    path = NOTEBOOKS / f"{name}.ipynb"
    nb = execute(path, tmp_path)

    text = outputs(nb)
    for expected in EXPECTED[name]:
        assert expected in text, f"{name}: {expected!r} not in the outputs"
    images = [out for cell in nb.cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
    assert bool(images) == (name in PLOTS), f"{name}: {len(images)} plot(s)"

    # the user's hook survived, unchanged, and never ran
    assert store.load_hooks() == rows
    assert not touched.exists() and users_runner.records("run") == []
    # ... though it would have, had the notebook posted on the user's server
    phone = Host(store_path=str(tmp_path / "phone.sqlite3"))
    try:
        client = phone.connect(f"{server.jid('alice')}/phone", server.accounts["alice"], host=server.host,
                               port=server.port, cafile=server.cafile)
        client.publish("urn:xmpp:microblog:0", f"<n xmlns='urn:test'>{name}</n>", item_id=f"control-{name}")
        wait_until(lambda: lines(touched) == [f"control-{name}"])
    finally:
        phone.close()

    # the committed notebook holds the outputs of such a run
    committed = nbformat.read(path, as_version=4)
    assert [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in nb.cells], \
        f"{name}: the committed cells differ from those run: run `make notebooks`"
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), \
        f"{name}: not committed from one run top to bottom: run `make notebooks`"
    ran = [c for c in nb.cells if c.cell_type == "code"]
    for i, (kept, fresh) in enumerate(zip(code, ran)):
        assert shape(kept) == shape(fresh), f"{name}: code cell {i + 1}: committed outputs {shape(kept)}, " \
                                            f"a run gives {shape(fresh)}: run `make notebooks`"
    kept_text = outputs(committed)
    assert all(expected in kept_text for expected in EXPECTED[name]), f"{name}: run `make notebooks`"


def test_every_notebook_is_tested() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED)


def main(names: list[str]) -> None:
    """Run the notebooks named (default: all) and write them back with their outputs."""
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        if not names or path.stem in names:
            with tempfile.TemporaryDirectory() as cwd:
                nbformat.write(execute(path, Path(cwd)), path)
            print(f"{path.name}: executed and written")


if __name__ == "__main__":
    main(sys.argv[1:])
