"""What a newcomer meets before any server: the first notebook cells ``python -m hooknb.local``
prints, its warning about a directory that shadows the package, and a package whose metadata
builds without a warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hooknb import local

ROOT = Path(__file__).resolve().parents[2]


def run_local(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "hooknb.local", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=60)


def test_python_m_hooknb_local_prints_the_first_cells(tmp_path):
    done = run_local(cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "".join(f"# --- cell {n} ---\n{cell}\n\n" for n, cell in enumerate(local.cells(), 1))
    assert "server = scratch_server()" in local.cells()[0] and "%load_ext hooknb" in local.cells()[1]
    for_dir = run_local("/srv/xmpp", cwd=tmp_path)
    assert "server = local_server(directory='/srv/xmpp')" in for_dir.stdout


def test_a_directory_named_hooknb_here_is_named_as_a_shadow(tmp_path):
    (tmp_path / "hooknb").mkdir()  # a checkout of the repository, say: no __init__.py
    assert local.shadowing(tmp_path) == (tmp_path / "hooknb").resolve()
    done = run_local(cwd=tmp_path)
    assert done.returncode == 0 and done.stderr.count("\n") == 1
    assert f"{tmp_path / 'hooknb'} is a directory named hooknb" in done.stderr
    assert "The hooknb module is not an IPython extension" in done.stderr
    assert local.shadowing(ROOT) is None  # the package itself
    (tmp_path / "hooknb" / "__init__.py").write_text("")
    assert local.shadowing(tmp_path) is None  # a package: not a namespace one


def test_the_package_metadata_builds_without_a_warning(tmp_path):
    """Setuptools' deprecation warnings (project.license as a table) turned into errors."""
    build = f"import setuptools.build_meta as b; print(b.prepare_metadata_for_build_wheel({str(tmp_path)!r}))"
    done = subprocess.run([sys.executable, "-W", "error", "-c", build], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    metadata = (tmp_path / done.stdout.split()[-1] / "METADATA").read_text()
    assert "License-Expression: MIT" in metadata
