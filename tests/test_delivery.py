"""The delivery promise of persistent hooks, under faults, with ``hooknb run`` as real processes
against the real local server: every item runs at least once; a run that ended is never run
again; only a run in flight at a crash may run again (at most one per crash, as each hook has
one lane).

Each test publishes from another account to a ``pubsub`` component node hooked by a persistent
``python_file`` hook that appends ``ITEM-ID DIGEST`` to a file, injects a fault, and counts the
lines: 0 lost, at most one repeat per crash.
"""

from __future__ import annotations

import shutil
import hashlib
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from helpers import NODE_CONFIG, versioned_payload
from processes import count, ran, recorder, wait_until

from hooknb.storage.store import Store


def digest_of(payload: str) -> str:
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def assert_all_once_but(out: Path, ids: list[str], repeats: int) -> None:
    """Every id ran; at most ``repeats`` of them twice, none more."""
    seen = count(out)
    assert set(seen) == set(ids), sorted(set(ids) - set(seen))[:10]
    twice = [i for i, n in seen.items() if n > 1]
    assert len(twice) <= repeats and all(seen[i] == 2 for i in twice), twice


def test_kill_9_mid_burst_loses_nothing_and_repeats_at_most_one(hooked, runner):
    hooked.hook(delay=0.02)
    first = runner(hooked.jid, hooked.password)
    first.wait_record("ready")
    ids = [f"k{i:03d}" for i in range(200)]
    publishing = threading.Thread(target=hooked.publish, args=(ids,))
    publishing.start()
    wait_until(lambda: len(ran(hooked.out)) >= 50, 30)
    first.proc.send_signal(signal.SIGKILL)               # fault: the runner dies mid-burst
    first.proc.wait(10)
    publishing.join(60)
    done_at_kill = len(ran(hooked.out))
    assert done_at_kill < 200
    second = runner(hooked.jid, hooked.password)
    wait_until(lambda: set(count(hooked.out)) == set(ids), 60)
    second.wait_record("run", count=200 - done_at_kill - 1, timeout=30)
    assert_all_once_but(hooked.out, ids, repeats=1)
    assert [item for item, _ in ran(hooked.out)][:done_at_kill] == ids[:done_at_kill]  # in order
    print(f"kill -9: {done_at_kill} ran before the kill, {len(ran(hooked.out))} runs in all for 200 items")
    assert second.stop() == 0


def test_sigterm_with_a_backlog_leaves_the_rest_pending_for_the_next_start(hooked, runner, home):
    hooked.hook(delay=0.05)
    first = runner(hooked.jid, hooked.password, "--log-format", "json", "--grace", "1")
    first.wait_record("ready")
    ids = [f"t{i:03d}" for i in range(200)]
    hooked.publish(ids)
    first.wait_record("run")
    assert first.stop(signal.SIGTERM) == 0               # clean: the run in progress ended
    stopped = first.records("stopped")[0]
    before = len(ran(hooked.out))
    assert stopped["pending"] == 200 - before and stopped["pending"] > 0
    assert len(Store(home / "hooknb.sqlite3").pending(hooked.jid)) == stopped["pending"]
    second = runner(hooked.jid, hooked.password)
    wait_until(lambda: set(count(hooked.out)) == set(ids), 60)
    assert_all_once_but(hooked.out, ids, repeats=0)
    assert [item for item, _ in ran(hooked.out)] == ids
    print(f"SIGTERM with --grace 1: {before} ran before stopping, {stopped['pending']} left pending, "
          f"{len(ran(hooked.out))} runs in all for 200 items")
    assert second.stop() == 0


def test_a_republished_item_runs_once_per_version_across_a_restart(hooked, runner):
    hooked.hook()
    first = runner(hooked.jid, hooked.password)
    first.wait_record("ready")
    for version in (1, 2):
        hooked.publish(["same"], version)
        wait_until(lambda: len(ran(hooked.out)) == version)
    assert first.stop() == 0
    second = runner(hooked.jid, hooked.password)
    second.wait_record("ready")
    for version in (3, 4):
        hooked.publish(["same"], version)
        wait_until(lambda: len(ran(hooked.out)) == version)
    hooked.publish(["same"], 4)                         # a copy of the last version: not again
    hooked.publish(["other"])
    wait_until(lambda: ran(hooked.out)[-1][0] == "other")
    assert ran(hooked.out) == [("same", digest_of(versioned_payload("same", v))) for v in (1, 2, 3, 4)] + [
        ("other", digest_of(versioned_payload("other")))]
    assert second.stop() == 0


def test_a_node_seen_empty_and_full_after_an_outage_is_a_logged_gap(hooked, runner, server, home):
    hooked.owner.delete_node(hooked.node, server.pubsub)
    hooked.owner.create_node(hooked.node, server.pubsub, config={**NODE_CONFIG, "max_items": 10})
    hooked.hook()
    first = runner(hooked.jid, hooked.password)
    first.wait_record("ready")                          # the node is seen empty
    assert first.stop() == 0
    ids = [f"g{i:02d}" for i in range(50)]
    hooked.publish(ids)                                 # 50 while nobody runs: the node keeps 10
    second = runner(hooked.jid, hooked.password)
    gap = second.wait_record("gap", node=hooked.node)
    assert gap["service"] == server.pubsub
    wait_until(lambda: len(ran(hooked.out)) == 10)
    assert [item for item, _ in ran(hooked.out)] == ids[-10:]
    (row,) = Store(home / "hooknb.sqlite3").gaps(hooked.jid)
    assert (row["node"], row["last_seen"], row["fetched"]) == (hooked.node, "", 10)
    assert second.stop() == 0


def test_a_node_seen_empty_when_its_hook_was_made_keeps_its_room_and_fewer_items_after_an_outage_are_no_gap(
        hooked, runner, server, home, tmp_path):
    """A persistent hook made while connected on an empty node notes how many items the node
    keeps (Prosody answers its owner); after an outage in which fewer were published, the
    catch-up runs them all and records no gap."""
    hooked.owner.delete_node(hooked.node, server.pubsub)
    hooked.owner.create_node(hooked.node, server.pubsub, config={**NODE_CONFIG, "max_items": 10})
    setup = hooked.hosts[0]
    setup.create_hook(hooked.node, recorder(tmp_path / "hook.py", hooked.out), "python_file",
                      service=server.pubsub, persistent=True)
    assert setup.inbox.flush()
    assert Store(home / "hooknb.sqlite3").get_position(hooked.jid, server.pubsub, hooked.node) == ("", "room:10")
    hooked.leave_store()                                # the outage: nobody runs the hook
    ids = [f"r{i}" for i in range(9)]
    hooked.publish(ids)                                 # one fewer than the node keeps
    back = runner(hooked.jid, hooked.password)
    wait_until(lambda: len(ran(hooked.out)) == 9)
    back.wait_record("ready")
    assert [item for item, _ in ran(hooked.out)] == ids
    assert back.records("gap") == [] and Store(home / "hooknb.sqlite3").gaps(hooked.jid) == []
    assert back.stop() == 0


def test_a_store_locked_for_seconds_delays_runs_without_losing_or_repeating_any(hooked, runner, home):
    hooked.hook()
    first = runner(hooked.jid, hooked.password)
    first.wait_record("ready")
    hooked.publish(["warm"])
    wait_until(lambda: len(ran(hooked.out)) == 1)
    locker = sqlite3.connect(home / "hooknb.sqlite3", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")                   # fault: another process holds the store
    ids = [f"l{i}" for i in range(10)]
    hooked.publish(ids)
    first.wait_record("store", timeout=30)              # "cannot be written", said once
    assert len(ran(hooked.out)) == 1                    # written before run: they wait
    locker.execute("ROLLBACK")
    locker.close()
    wait_until(lambda: len(ran(hooked.out)) == 11, 30)
    assert first.stop() == 0
    stores = [r["error"] for r in first.records("store")]
    assert "locked" in stores[0] and stores[-1] == "the store can be written again"
    second = runner(hooked.jid, hooked.password)
    second.wait_record("ready")
    hooked.publish(["after"])
    wait_until(lambda: ran(hooked.out)[-1][0] == "after")
    assert_all_once_but(hooked.out, ["warm", *ids, "after"], repeats=0)
    assert second.stop() == 0


@pytest.mark.parametrize("names", [("",), ("", "-wal", "-shm"), ("", "-wal", "-shm", "-done")],
                         ids=["file", "with-wal", "with-wal-and-done-logs"])
def test_a_store_deleted_under_the_runner_mid_burst_is_restored_losing_nothing(hooked, runner, home, names):
    hooked.leave_store()  # else whichever process writes first restores it (the other: "replaced")
    hooked.hook(delay=0.01)
    first = runner(hooked.jid, hooked.password)
    first.wait_record("ready")
    ids = [f"x{i:03d}" for i in range(200)]
    publishing = threading.Thread(target=hooked.publish, args=(ids,))
    publishing.start()
    wait_until(lambda: len(ran(hooked.out)) >= 20, 30)
    for name in names:                                  # fault: the user deletes the store
        each = home / f"hooknb.sqlite3{name}"
        shutil.rmtree(each) if each.is_dir() else each.unlink(missing_ok=True)
    record = first.wait_record("store", timeout=30)
    assert "deleted under this process: restored from the open copy" in record["error"]
    publishing.join(60)
    wait_until(lambda: len(ran(hooked.out)) == 200, 60)
    assert first.stop() == 0
    second = runner(hooked.jid, hooked.password)        # the restored store has the hook and marks
    second.wait_record("ready")
    hooked.publish(["after"])
    wait_until(lambda: ran(hooked.out)[-1][0] == "after")
    assert_all_once_but(hooked.out, [*ids, "after"], repeats=0)
    assert second.stop() == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs for the store (root only: the suite runs as root in CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Fill a file system up; returns the filler file."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:  # unbuffered: no partial write left to fail at close
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_holds_items_in_memory_until_space_returns(hooked, runner, small_disk):
    env = {"HOOKNB_HOME": str(small_disk)}
    hooked.hook(env=env)
    first = runner(hooked.jid, hooked.password, env=env)
    first.wait_record("ready")
    filler = fill(small_disk)                           # fault: the disk is full
    ids = [f"d{i:03d}" for i in range(200)]
    publishing = threading.Thread(target=hooked.publish, args=(ids,))
    publishing.start()
    first.wait_record("store", timeout=30)
    publishing.join(60)
    assert len(ran(hooked.out)) < 200
    filler.unlink()                                     # space comes back
    wait_until(lambda: len(ran(hooked.out)) == 200, 60)
    assert first.stop() == 0
    assert first.records("store")[-1]["error"] == "the store can be written again"
    second = runner(hooked.jid, hooked.password, env=env)
    second.wait_record("ready")
    hooked.publish(["after"])
    wait_until(lambda: ran(hooked.out)[-1][0] == "after")
    assert_all_once_but(hooked.out, [*ids, "after"], repeats=0)
    assert second.stop() == 0


def test_the_lease_moves_to_a_second_runner_when_the_holder_dies(hooked, runner):
    hooked.hook(delay=0.02)
    holder = runner(hooked.jid, hooked.password)
    assert holder.wait_record("lease")["held"] is True
    standby = runner(hooked.jid, hooked.password)
    lease = standby.wait_record("lease")
    assert lease["held"] is False and lease["by"].startswith("hooknb run (pid")
    ids = [f"f{i:03d}" for i in range(100)]
    hooked.publish(ids[:50])
    wait_until(lambda: len(ran(hooked.out)) >= 10, 30)
    holder.proc.send_signal(signal.SIGKILL)             # fault: the runner holding the lease dies
    killed = time.monotonic()
    holder.proc.wait(10)
    hooked.publish(ids[50:])                            # while nobody runs them
    standby.wait_record("lease", held=True, timeout=15)
    moved = time.monotonic() - killed
    print(f"lease moved {moved:.1f} s after the kill")
    assert moved < 10                                   # LEASE_TTL + LEASE_BEAT = 8 s at most
    wait_until(lambda: set(count(hooked.out)) == set(ids), 60)
    assert_all_once_but(hooked.out, ids, repeats=1)
    assert standby.stop() == 0


def test_a_notebook_sees_who_runs_the_hooks_and_can_take_over(hooked, runner, make_host, connect):
    hooked.hook()
    proc = runner(hooked.jid, hooked.password)
    assert proc.wait_record("lease")["held"] is True
    notebook = make_host()
    connect(notebook, hooked.jid, hooked.password, resource="notebook")
    status = notebook.status().iloc[0]
    assert status["persistent_hooks_run_by"].startswith("hooknb run (pid")
    hooked.publish(["r1"])
    wait_until(lambda: len(ran(hooked.out)) == 1)
    assert not notebook.wait_runs(1, 0.5)               # the notebook does not run them too
    notebook.take_over(hooked.jid)
    assert notebook.status().iloc[0]["persistent_hooks_run_by"] == "this process"
    assert proc.wait_record("lease", held=False, timeout=10)
    hooked.publish(["r2"])
    assert notebook.wait_runs(1, 10)
    assert [r.item_id for r in notebook.runs.snapshot()] == ["r2"]
    assert [item for item, _ in ran(hooked.out)] == ["r1", "r2"]
    assert proc.stop() == 0
