"""A newcomer's first steps, as the README gives them: its notebook cells, copied as they are,
run in a real kernel and get a hook running on an item another account published; ``make demo``
shows the hook's code beside its results."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from hooknb import local
from hooknb.frontends import demo

pytestmark = pytest.mark.integration  # a kernel and a server of its own

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_cells() -> list[str]:
    """The Python cells of the README's "In a notebook" section, in order."""
    text = README.read_text()
    section = text[text.index("## In a notebook"):]
    section = section[:section.index("\n## ", 1)]
    return [block.strip("\n") for block in re.findall(r"```python\n(.*?)```", section, re.S)]


def test_the_readme_starts_with_the_cells_hooknb_local_gives():
    cells = readme_cells()
    assert cells[:2] == local.cells()
    assert any(cell.startswith("%%hook -s {server.pubsub} -n news") for cell in cells)  # not alice's own node


def test_the_readme_cells_get_a_hook_running_on_another_accounts_item(home, tmp_path):
    """Copied into a fresh kernel, the cells connect alice to a server of their own, hook a node, and
    bob's post runs her hook; then the same server and store are gone."""
    check = ("import hooknb\n"
             "last = hooknb.get_host().runs.snapshot()[-1]\n"
             "print('RUN', last.status, last.output, last.account)\n"
             "scratch = server.scratch\n"
             "server.stop()\n"
             "print('GONE', not scratch.exists())")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in [*readme_cells(), check]])
    NotebookClient(nb, timeout=60, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = ["".join(o.get("text", "") + "".join(map(str, o.get("data", {}).values())) for o in cell.outputs)
            for cell in nb.cells]
    assert "connected as alice@localhost" in text[1]
    assert "hook" in text[2] and "runs on each publish event" in text[2]
    assert text[3].strip() == "True"  # wait_runs: the run came
    assert "bob@localhost" in text[4] and "ok" in text[4]  # %hook runs, a DataFrame
    assert "RUN ok new post from bob@localhost : Hello from bob\n alice@localhost" in text[-1]
    assert "GONE True" in text[-1]
    assert not any(o.output_type == "error" for cell in nb.cells for o in cell.outputs)
    assert list(home.iterdir()) == []  # the user's store was never touched


def test_make_demo_shows_the_hooks_code_beside_its_results():
    done = subprocess.run([sys.executable, "-m", "hooknb.frontends.demo"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    code, runs = out.index(f"    {demo.CODE}\n"), out.index("Runs of alice's hook")
    assert code < runs and "'HELLO'" in out[runs:] and "'THIRD ITEM'" in out[runs:]
