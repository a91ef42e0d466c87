"""Every notebook in ``notebooks/`` runs top to bottom in a fresh kernel (this venv's Python).

The quickstart starts a local server of its own (no ``$HOOKNB_SERVER_DIR``, as on a laptop); the
others use the test session's server through ``$HOOKNB_SERVER_DIR``, as on Binder.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from hooknb.local import ENV
from hooknb.server import ServerInfo

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

#: Text each notebook's outputs must contain once executed.
EXPECTED = {
    "quickstart": ["connected as alice@localhost", "new post post-3: Third post", "1 hook(s) deleted"],
    "hook_types": ["type inferred from the argument: python_file",
                   "type inferred from the argument: python", "'FOUR HOOKS ONE POST'", "'EDITED!!!'",
                   "4 hook(s) deleted"],
    "persistent_hooks": ["hooks after the restart: [('python_file', True)]", "while-away",
                         "after-restart", "[]"],
    "dashboard": ["hooknb-feed", "connected", "rich post 2", "Alice", "https://blog.example/2",
                  "No hook runs on Dask yet"],
}
#: Notebooks that draw a plot.
PLOTS = {"dashboard"}


def outputs(nb: nbformat.NotebookNode) -> str:
    """All the text a notebook's cells produced."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


@pytest.mark.integration  # a kernel per notebook
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_top_to_bottom(name: str, server: ServerInfo, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKNB_HOME", str(tmp_path / "home"))
    if name == "quickstart":
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, server.dir)
    path = NOTEBOOKS / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=60, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = outputs(nb)
    for expected in EXPECTED[name]:
        assert expected in text, f"{name}: {expected!r} not in the outputs"
    images = [out for cell in nb.cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
    assert bool(images) == (name in PLOTS), f"{name}: {len(images)} plot(s)"


def test_every_notebook_is_tested() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED)
