"""In a real kernel, what a hook's run sends to the notebook is bounded: a hook printing 10 MB
sends at most ``HookMagics.output_limit`` bytes (64 KiB) and one line saying how much was cut;
a hook that fails shows one line under its cell (type, message, where the traceback is)."""

from __future__ import annotations

import pytest
from jupyter_client.manager import start_new_kernel
from kernels import cell_runner, connecting, stream_texts

from hooknb.server import ServerInfo

pytestmark = pytest.mark.integration  # starts a kernel and the server


def test_a_run_s_output_and_failure_under_the_cell_are_bounded(server: ServerInfo, home, account, node):
    jid, password = account("bounds")
    km, kc = start_new_kernel(kernel_name="python3")
    cells: dict[str, str] = {}
    run = cell_runner(kc, cells)
    try:
        run("setup", connecting(jid, password, server))
        run("flood", f"""
            %%hook -n {node}
            for _ in range(10_000):
                print("x" * 999)  # 10 MB
        """)
        run("fails", f"""
            host.create_hook({node!r}, 'raise ValueError("no such thing as " + "a very long message " * 100)',
                             type="python_code")
        """)
        run("publish", f"""
            total = host.runs.total
            client.publish({node!r}, '<x xmlns="urn:t"/>', item_id="big")
            assert host.wait_runs(total + 2, 60)
        """)
        seen = stream_texts(kc, cells, lambda s: any("more bytes" in t for _, t in s)
                            and any("failed" in t for _, t in s), timeout=60)
        flood = [t for c, t in seen if c == "flood"]
        body = "".join(t for t in flood if not t.strip("x\n"))
        [notice] = [t.removeprefix("[hooknb: ") for t in flood if t.startswith("[hooknb: ")]
        assert len(body.encode()) == 64 * 1024 and body.startswith("x" * 999 + "\n")
        assert notice == (f"{10_000_000 - len(body.encode()):,} more bytes of this run's output not shown "
                          "(limit: %config HookMagics.output_limit = 65536); its first 8,192 bytes are "
                          "kept: %hook output " + notice.rsplit(" ", 1)[1])
        sent = sum(len(t.encode()) for _, t in seen)
        assert sent < 64 * 1024 + 1024, f"{sent:,} bytes sent to the notebook"
        [failed] = [t for c, t in seen if c == "fails"]
        assert failed.count("\n") == 1 and len(failed) <= 301
        assert failed.startswith("hook ") and " failed: ValueError: no such thing as a very long" in failed
        assert failed.endswith("(traceback: %hook runs; output: %hook output "
                               + failed.split()[1] + ")\n")
        assert not [t for c, t in seen if c == "publish"], "nothing lands under the cell running meanwhile"

        run("config", "%config HookMagics.output_limit = 1000")
        run("publish again", f"""
            total = host.runs.total
            client.publish({node!r}, '<x xmlns="urn:t"/>', item_id="again")
            assert host.wait_runs(total + 2, 60)
        """)
        seen = stream_texts(kc, cells, lambda s: any("more bytes" in t for _, t in s), timeout=60)
        flood = [t for c, t in seen if c == "flood"]
        assert "".join(t for t in flood if not t.strip("x\n")) == "x" * 999 + "\n"  # 1,000 bytes
        assert [t for t in flood if "(limit: %config HookMagics.output_limit = 1000)" in t]

        run("traceback", """
            failing = [h.id for h in host.hooks() if 'ValueError' in h.arg][0]
            %hook output {failing}
        """)
        seen = stream_texts(kc, cells, lambda s: any("Traceback" in t for _, t in s))
        assert "ValueError: no such thing as" in "".join(t for c, t in seen if c == "traceback")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
