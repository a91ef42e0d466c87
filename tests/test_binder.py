"""Binder's ``start`` script, run for real: it launches the local server, exports
``HOOKNB_SERVER_DIR`` and then becomes the command it was given (``exec "$@"``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hooknb import server as srv

pytestmark = pytest.mark.integration  # binder/start launches a server

BINDER = Path(__file__).resolve().parent.parent / "binder"

#: Run in place of Jupyter: the server named by $HOOKNB_SERVER_DIR is up, and the notebooks'
#: helper uses it rather than starting its own.
CHECK = """
import os
from hooknb import server
from hooknb.local import local_server
info = server.read_info(os.environ["HOOKNB_SERVER_DIR"])
assert info is not None and server.is_running(info), "no server"
assert sorted(info.accounts) == ["alice", "bob"]
assert not local_server().owned
print("server up at", os.environ["HOOKNB_SERVER_DIR"])
"""


def start(*command: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``binder/start COMMAND`` with this venv's Python first on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    environ = {k: v for k, v in os.environ.items() if k != "HOOKNB_SERVER_DIR"}
    return subprocess.run([str(BINDER / "start"), *command], capture_output=True, text=True,
                          timeout=120, env={**environ, "PATH": path, **env})


@pytest.fixture
def server_dir(tmp_path: Path):
    directory = tmp_path / "server"
    yield directory
    srv.stop(directory)


def test_start_launches_the_server_then_runs_the_command(server_dir, tmp_path):
    done = start("python", "-c", CHECK, HOOKNB_SERVER_DIR=str(server_dir), HOME=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"server up at {server_dir}\n"
    assert f"local XMPP server running (HOOKNB_SERVER_DIR={server_dir})" in done.stderr


def test_start_defaults_to_a_directory_in_home(tmp_path):
    try:
        done = start("python", "-c", CHECK, HOME=str(tmp_path))
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"server up at {tmp_path}/.hooknb/server\n"
    finally:
        srv.stop(tmp_path / ".hooknb" / "server")


def test_a_server_that_cannot_start_is_not_fatal(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = start("python", "-c", "import os; print(os.environ.get('HOOKNB_SERVER_DIR'))",
                 HOOKNB_SERVER_DIR=str(blocker / "server"), HOME=str(tmp_path))
    assert done.returncode == 0
    assert done.stdout == "None\n"
    assert "could not start the local XMPP server; each notebook will start its own" in done.stderr


def test_the_command_replaces_the_script(server_dir, tmp_path):
    done = start("sh", "-c", "exit 7", HOOKNB_SERVER_DIR=str(server_dir), HOME=str(tmp_path))
    assert done.returncode == 7


def test_binder_files():
    assert "prosody" in (BINDER / "apt.txt").read_text().split()
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    assert "pip install --no-cache-dir -e '.[notebooks]'" in (BINDER / "postBuild").read_text()
    for script in ("start", "postBuild"):
        assert os.access(BINDER / script, os.X_OK)
        assert subprocess.run(["bash", "-n", str(BINDER / script)]).returncode == 0
