"""In a real kernel: Tab completion of ``%hook`` lines (the kernel's ``complete_request``, as
JupyterLab sends it) offers subcommands and hook ids, and a hook and an item display as HTML
(JupyterLab renders ``text/html``), their outside text escaped."""

from __future__ import annotations

import queue
import textwrap
import time

import pytest
from jupyter_client.manager import start_new_kernel
from kernels import connecting

from hooknb.server import ServerInfo

pytestmark = pytest.mark.integration  # a kernel and the server

ENTRY = '<entry xmlns="http://www.w3.org/2005/Atom"><title>a &lt;b&gt; title</title></entry>'


def execute(kc, code: str) -> dict:
    """Run ``code``; the ``data`` of its result (empty if none); fails on an error."""
    msg_id = kc.execute(textwrap.dedent(code))
    data: dict = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        assert kind != "error", "\n".join(content["traceback"])
        if kind == "execute_result":
            data = content["data"]
        if kind == "status" and content["execution_state"] == "idle":
            return data
    raise AssertionError(f"no end of {code!r}")


def completions(kc, code: str) -> list[str]:
    msg_id = kc.complete(code, len(code))
    while True:
        reply = kc.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]["matches"]


def test_completion_and_rich_displays_in_a_kernel(server: ServerInfo, home, account, node):
    jid, password = account("nice")
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        execute(kc, connecting(jid, password, server))
        execute(kc, "items = []")
        execute(kc, f"""
            %%hook -n {node}
            import __main__; __main__.items.append(item)  # the notebook's namespace
        """)
        hook_id = execute(kc, "host.hooks()[0].id")["text/plain"].strip("'")
        assert "output" in completions(kc, "%hook out")
        assert completions(kc, f"%hook output {hook_id[:3]}") == [hook_id]
        assert jid in completions(kc, "%hook create --jid ")

        execute(kc, f"""
            total = host.runs.total
            client.publish({node!r}, {ENTRY!r}, item_id="shown")
            assert host.wait_runs(total + 1, 20)
        """)
        shown = execute(kc, "host.hooks()[0]")
        assert f"<b>hook {hook_id}</b>" in shown["text/html"] and ">active</span>" in shown["text/html"]
        assert "1 runs, 0 failures" in shown["text/html"] and shown["text/plain"].startswith("<Hook ")
        item = execute(kc, "items[0]")
        assert "<b>item shown</b>" in item["text/html"]
        assert "&lt;title&gt;a &amp;lt;b&amp;gt; title&lt;/title&gt;" in item["text/html"]
        assert "<title>" not in item["text/html"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
