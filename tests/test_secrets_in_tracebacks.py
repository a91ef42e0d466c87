"""A password never reaches a notebook: failed connections (wrong port, wrong password) under
``%xmode Verbose`` and ``Context``, which print every frame's arguments and local variables, in
a real kernel run by nbclient; the notebook saved afterwards holds no trace of the password,
nor does a connected client's ``vars``."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from hooknb.server import ServerInfo

pytestmark = pytest.mark.integration  # a kernel and the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_failed_connect_under_verbose_tracebacks_shows_no_password(server: ServerInfo, home, account,
                                                                      tmp_path: Path, monkeypatch):
    jid, password = account("secretive")
    wrong = f"wrong-{secrets.token_hex(8)}"
    monkeypatch.setenv("HOOKNB_PASSWORD", password)  # the kernel inherits it; no cell holds it
    monkeypatch.setenv("TEST_WRONG_PASSWORD", wrong)
    where = f"host={server.host!r}, cafile={server.cafile!r}, timeout=10"
    cells = ["import os, hooknb\nfrom hooknb.xmpp import passwords"]
    for mode in ("Verbose", "Context"):
        cells += [
            f"%xmode {mode}",
            f"hooknb.connect({jid!r}, port={free_port()}, {where})",  # nothing listens there
            f"hooknb.connect({jid!r}, passwords.resolve({jid!r}), port={free_port()}, {where})",
            "os.environ['HOOKNB_PASSWORD'], real = os.environ['TEST_WRONG_PASSWORD'], os.environ['HOOKNB_PASSWORD']\n"
            f"try:\n    hooknb.connect({jid!r}, port={server.port}, {where})\n"
            "finally:\n    os.environ['HOOKNB_PASSWORD'] = real",
        ]
    cells += [f"client = hooknb.connect({jid!r}, port={server.port}, {where})\nvars(client)",
              "vars(client.xmpp)",
              "passwords.resolve(client.jid)"]
    nb = new_notebook(cells=[new_code_cell(source) for source in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    saved = tmp_path / "saved.ipynb"
    nbformat.write(nb, saved)

    text = saved.read_text()
    errors = [out for cell in nb.cells for out in cell.outputs if out.output_type == "error"]
    assert [e.ename for e in errors] == ["ConnectError"] * 6, [(e.ename, e.evalue) for e in errors]
    tracebacks = "\n".join("\n".join(e.traceback) for e in errors)
    assert "Secret(" in tracebacks and "password" in tracebacks, "the frames' arguments were shown"
    assert "authentication failed" in tracebacks
    assert password not in text and wrong not in text
    assert "Secret('********')" in "".join(str(out.get("data", "")) for out in nb.cells[-1].outputs)
