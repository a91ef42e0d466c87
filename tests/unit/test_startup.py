"""What the command line imports before it runs: the commands that do not connect must not pay
for pandas, IPython, ipywidgets, traitlets or slixmpp (the time ``hooknb pubsub hook list`` takes
to start is measured by the ``cli_start`` bench row; this test checks the imports, not a time)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "IPython", "ipywidgets", "traitlets", "slixmpp", "aiodns", "tabulate")


def imported_after(code: str, env: dict[str, str]) -> list[str]:
    """The modules of :data:`HEAVY` that a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return {"HOOKNB_HOME": str(home), "PATH": "/usr/bin:/bin"}


def test_importing_the_command_line_imports_none_of_them(env):
    assert imported_after("import hooknb.frontends.cli", env) == []


def test_hook_list_on_an_empty_store_imports_none_of_them(env):
    code = "import hooknb.frontends.cli\nassert hooknb.frontends.cli.main(['pubsub', 'hook', 'list']) == 0"
    assert imported_after(code, env) == []


def test_connecting_commands_still_find_the_client(env):
    assert "slixmpp" in imported_after("import hooknb\nhooknb.Client", env)
