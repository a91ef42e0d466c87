"""Handing the persistent hooks over, against the real local server over TLS: a clean end of the
process that runs them (SIGTERM of ``hooknb run``, ``host.close()``, the interpreter's exit, a
kernel restarted) frees the lease at once and the next process takes it within a second; taking
the lease, whenever it happens, runs what arrived meanwhile, the newest item of the window
included; a runner restarted right after ``kill -9`` needs no further restart.

Each test publishes from another account to a ``pubsub`` component node hooked by a persistent
``python_file`` hook that appends ``ITEM-ID DIGEST`` to a file, and counts the lines.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from jupyter_client.manager import start_new_kernel
from kernels import cell_runner, connecting
from processes import count, hook_file, hooknb, wait_until

from hooknb.storage.store import Store

HANDOVER = 1.0  # seconds: a clean end to the next process holding the lease


def lease_row(home, jid):
    """The account's lease as the store has it (None: free), looked at without taking it."""
    store = Store(home / "hooknb.sqlite3")
    try:
        return store.acquire_lease(jid, "a reader", 6.0, take=False)
    finally:
        store.close()


@pytest.mark.parametrize("items", [1, 3])
def test_a_runner_restarted_right_after_kill_9_runs_the_items_of_the_lease_window(hooked, runner, items):
    hooked.hook()
    first = runner(hooked.jid, hooked.password)
    assert first.wait_record("lease")["held"] is True
    hooked.publish(["before"])
    wait_until(lambda: count(hooked.out)["before"] == 1)
    first.proc.send_signal(signal.SIGKILL)              # fault: the runner dies, its lease valid for 6 s
    first.proc.wait(10)
    second = runner(hooked.jid, hooked.password)         # restarted at once, as a service manager does
    assert second.wait_record("lease")["held"] is False  # the dead runner's lease has not expired yet
    window = [f"w{i}" for i in range(items)]
    hooked.publish(window)                              # seen live by the standby, run by nobody yet
    second.wait_record("lease", held=True, timeout=15)
    took = time.monotonic()
    wait_until(lambda: set(window) <= set(count(hooked.out)), 5)
    print(f"{items} item(s) of the window ran {time.monotonic() - took:.2f} s after the lease was logged taken")
    assert count(hooked.out) == {"before": 1, **{w: 1 for w in window}}
    assert second.stop() == 0


def test_sigterm_of_the_runner_hands_the_lease_to_a_waiting_one_within_a_second(hooked, runner):
    hooked.hook()
    holder = runner(hooked.jid, hooked.password)
    assert holder.wait_record("lease")["held"] is True
    standby = runner(hooked.jid, hooked.password)
    assert standby.wait_record("lease")["held"] is False
    assert holder.stop() == 0                           # SIGTERM: a clean end
    ended = time.monotonic()
    standby.wait_record("lease", held=True, timeout=10)
    moved = time.monotonic() - ended
    print(f"lease taken {moved:.2f} s after the holder exited")
    assert moved < HANDOVER
    hooked.publish(["after"])
    wait_until(lambda: count(hooked.out)["after"] == 1)
    assert standby.stop() == 0


@pytest.mark.parametrize("end", ["close", "exit"])
def test_a_notebook_process_ending_cleanly_frees_the_lease_at_once(hooked, server, home, tmp_path, end):
    """A process that ran the persistent hooks ends by ``host.close()`` or just by returning (the
    interpreter's exit): the lease row is gone when it has exited."""
    hooked.hook()
    script = tmp_path / "notebook.py"
    script.write_text(textwrap.dedent(f"""
        import hooknb
        host = hooknb.get_host()
        host.connect({hooked.jid!r}, {hooked.password!r}, host={server.host!r}, port={server.port},
                     cafile={server.cafile!r})
        assert host.runs_here({hooked.jid!r})
        print("holding", flush=True)
        {"host.close()" if end == "close" else ""}
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "holding\n", done.stderr
    assert lease_row(home, hooked.jid) is None


@pytest.mark.integration  # starts kernels
def test_a_kernel_restarted_while_items_arrive_loses_none_and_runs_them_at_once(hooked, server, tmp_path):
    """Kernel 1 runs the persistent hook; it is restarted (as Jupyter does: a clean shutdown, then
    a new kernel) while another account publishes an item every 100 ms; kernel 2 connects: every
    item runs, once, each within 2 s of kernel 2 connecting (or of its publication, if later)."""
    out = tmp_path / "timed"
    path = hook_file(tmp_path / "timed.py", f"""
        import time
        def hook(host, client, item):
            with open({str(out)!r}, "a") as f:
                f.write(f"{{item.id}} {{time.time()}}\\n")
    """)
    made = hooknb("pubsub", "hook", "create", "--jid", hooked.jid, "-s", server.pubsub, "-n", hooked.node,
                  "-P", path)
    assert made.returncode == 0, made.stderr
    connect = textwrap.dedent(connecting(hooked.jid, hooked.password, server)) + f"assert host.runs_here({hooked.jid!r})\n"
    published: dict[str, float] = {}
    stop = threading.Event()

    def publish_every_100_ms() -> None:
        for i in range(40):
            if stop.is_set():
                return
            published[f"r{i:02d}"] = time.time()
            hooked.publish([f"r{i:02d}"])
            time.sleep(0.1)

    def timed() -> dict[str, list[float]]:
        seen: dict[str, list[float]] = {}
        for line in (out.read_text().splitlines() if out.exists() else []):
            item, when = line.split()
            seen.setdefault(item, []).append(float(when))
        return seen

    km, kc = start_new_kernel(kernel_name="python3")
    publisher = threading.Thread(target=publish_every_100_ms)
    try:
        cell_runner(kc, {})("kernel 1", connect)
        hooked.publish(["k1"])
        wait_until(lambda: "k1" in timed())
        publisher.start()
        time.sleep(0.5)
        km.restart_kernel(now=False)
        kc.stop_channels()
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        cell_runner(kc, {})("kernel 2", connect)
        connected = time.time()
        publisher.join(30)
        wait_until(lambda: set(published) <= set(timed()), 10)
    finally:
        stop.set()
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    seen = timed()
    assert {item: len(when) for item, when in seen.items() if len(when) != 1} == {}, "none twice"
    assert set(seen) == {"k1", *published}, "none lost"
    late = {item: round(seen[item][0] - max(connected, at), 2) for item, at in published.items()}
    print(f"{len(published)} items across the restart; slowest {max(late.values()):.2f} s after kernel 2 "
          "connected (or after its publication)")
    assert max(late.values()) <= 2.0, late
