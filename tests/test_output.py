"""What hooks print, against the real local server: kept with each run (``output``, bounded),
shown by ``%hook output``, and, in a real kernel, sent under the cell that created the hook, never
under the cell that happens to be running (ipykernel 7 sends other threads' output there)."""

from __future__ import annotations


import pytest
from jupyter_client.manager import start_new_kernel
from helpers import usage_error
from kernels import cell_runner, connecting, stream_texts
from processes import hooknb

from hooknb.core.capture import OUTPUT_MAX
from hooknb.server import ServerInfo

ENTRY = '<entry xmlns="http://www.w3.org/2005/Atom"><title>hello</title></entry>'


def test_output_is_journaled_and_shown_by_hook_output(hook, host, alice, shell, node, capsys):  # noqa: F811
    shell.run_cell_magic("hook", f"-n {node}", "print('saw', item.id)\nprint('big' * 5000)\nitem.id\n")
    hook(f"create -n {node} -t python_code 'item.id'")  # prints nothing
    [printing, quiet] = [h for h in host.registry.all() if h.node == node]
    capsys.readouterr()
    total = host.runs.total
    for i in range(3):
        host.client().publish(node, ENTRY, item_id=f"p{i}")
    assert host.wait_runs(total + 6)

    runs = {(r.hook_id, r.item_id): r for r in host.runs.snapshot()[-6:]}
    first = runs[(printing.id, "p0")]
    assert first.output.startswith("saw p0\nbigbig") and first.output.endswith("more bytes of output not kept]\n")
    assert len(first.output.encode()) < OUTPUT_MAX + 100 and first.replay is False
    assert runs[(quiet.id, "p0")].output is None
    frame = host.runs_frame(hook=printing.id)
    assert list(frame["output"].str[:7]) == ["saw p0\n", "saw p1\n", "saw p2\n"]
    assert frame["replay"].dtype == bool and not frame["replay"].any()
    assert "saw p2" in capsys.readouterr().out, "outside a kernel a hook's output also goes to the console"
    assert printing.summary()["last_output"].startswith("saw p2\n")

    hook(f"output {printing.id} --last 2")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"--- run on item p1 of node '{node}' at ") and out[0].endswith("UTC: ok")
    assert out[1] == "saw p1" and "--- run on item p2" in "\n".join(out) and "p0" not in "\n".join(out)
    hook(f"output {quiet.id}")
    assert capsys.readouterr().out == f"hook {quiet.id}: none of its 3 journaled run(s) printed anything\n"
    assert usage_error(lambda: hook("output 0123456789")) == \
        "no hook with id '0123456789', and no run of one in the runs journal"


@pytest.mark.integration  # starts a kernel
def test_in_a_kernel_output_goes_under_the_cell_that_made_the_hook(server: ServerInfo, home, account,
                                                                      node, monkeypatch):
    jid, password = account("k")
    # A persistent hook made by another process: the kernel restores it, and has no cell for it.
    made = hooknb("pubsub", "hook", "create", "--jid", jid, "-P", "-n", node, "-t", "python_code",
                  "print('from the stored hook', item.id)")
    assert made.returncode == 0, made.stderr
    km, kc = start_new_kernel(kernel_name="python3")
    cells: dict[str, str] = {}
    run = cell_runner(kc, cells)
    try:
        run("setup", connecting(jid, password, server))
        run("cell 1", f"""
            %%hook -n {node}
            print("cell hook saw", item.id)
            import sys; print("cell hook warns", file=sys.stderr)
        """)
        run("cell 2", f"""
            %hook create -n {node} -t python_code "print('line hook saw', item.id)"
        """)
        run("cell 3", f"""
            host.create_hook({node!r}, "print('api hook saw', item.id)", type="python_code")
        """)
        # Cell 4 is running while the hooks run: their output must not land here.
        run("cell 4", f"""
            total = host.runs.total
            client.publish({node!r}, '<x xmlns="urn:t"/>', item_id="live")
            assert host.wait_runs(total + 4, 20)
            time.sleep(0.5)  # still running while the hooks' output is flushed
            print("cell 4 done")
        """)
        seen = stream_texts(kc, cells, lambda s: sum("saw live" in t for _, t in s) == 3)
        placed = {text: cell for cell, text in seen}
        assert placed["cell hook saw live\n"] == "cell 1"
        assert placed["cell hook warns\n"] == "cell 1"
        assert placed["line hook saw live\n"] == "cell 2"
        assert placed["api hook saw live\n"] == "cell 3"
        assert [t for c, t in seen if c == "cell 4"] == ["cell 4 done\n"]
        assert not any("from the stored hook" in t for _, t in seen), "a hook without a cell prints nowhere"

        run("cell 5", "stored = [h.id for h in host.hooks() if 'stored hook' in h.arg][0]\n%hook output {stored}")
        seen = stream_texts(kc, cells, lambda s: any("from the stored hook live" in t for _, t in s))
        assert [c for c, t in seen if "from the stored hook live" in t] == ["cell 5"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
