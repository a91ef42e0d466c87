"""Driving a real kernel from a test: run cells by name, read what they print on IOPub, and the
cell that loads the magics and connects an account."""

from __future__ import annotations

import queue
import textwrap
import time
from collections.abc import Callable

from hooknb.server import ServerInfo


def stream_texts(kc, parents: dict[str, str], until: Callable[[list[tuple[str, str]]], bool],
                 timeout: float = 20.0) -> list[tuple[str, str]]:
    """(cell, text) of the stream messages on IOPub, ``cell`` named by its parent msg_id, until
    ``until`` is true of them (and one more second, for late ones)."""
    seen: list[tuple[str, str]] = []
    deadline, settle = time.monotonic() + timeout, None
    while settle is None or time.monotonic() < settle:
        assert time.monotonic() < deadline, f"not seen in time; seen: {seen}"
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
        except queue.Empty:
            continue
        if msg["msg_type"] == "stream":
            seen.append((parents.get(msg["parent_header"].get("msg_id"), "other"), msg["content"]["text"]))
        if settle is None and until(seen):
            settle = time.monotonic() + 1.0
    return seen


def cell_runner(kc, cells: dict[str, str]) -> Callable[[str, str], None]:
    """``run(name, code)``: execute ``code`` in the kernel (dedented) as the cell ``name``
    (noted in ``cells`` by its msg_id), and wait for it to end, ok."""
    def run(name: str, code: str) -> None:
        msg_id = kc.execute(textwrap.dedent(code))
        cells[msg_id] = name
        while True:
            reply = kc.get_shell_msg(timeout=120)
            if reply["parent_header"].get("msg_id") == msg_id:
                assert reply["content"]["status"] == "ok", "\n".join(reply["content"].get("traceback", []))
                return
    return run


def connecting(jid: str, password: str, server: ServerInfo) -> str:
    """A cell that loads the magics and connects ``jid`` (``host``, ``client``)."""
    return f"""
        import time, hooknb
        %load_ext hooknb
        host = hooknb.get_host()
        client = host.connect({jid!r}, {password!r}, host={server.host!r}, port={server.port},
                              cafile={server.cafile!r})
    """
