"""Poison items on a scratch store, without a server: attempts counted from the done logs of
processes killed mid-run (and only those runs), carried across a file rotation; the columns added
to a store made before them; entries over the limit quarantined (journaled, not pending), retried
(taken once) and discarded."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hooknb.core.hooks import Hook, HookSpec
from hooknb.core.registry import Registry
from hooknb.core.inbox import Inbox
from hooknb.core.invoke import Invoker
from hooknb.core.quarantine import Quarantine
from hooknb.storage import donelog
from hooknb.storage.journal import Journal
from hooknb.storage.store import Store

ACCOUNT = "alice@example.org"
SERVICE = "pubsub.example.org"


def row(item_id: str, hook_id: str = "h1") -> tuple:
    """An inbox row (hooknb.storage.store.INBOX_COLUMNS)."""
    return (hook_id, ACCOUNT, SERVICE, "news", "publish", item_id, "d", None, "<p/>", 1.0)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = Store(tmp_path / "store.sqlite3")
    yield made
    made.close()


def attempts(store: Store) -> dict[str, int]:
    """Each pending entry's attempts, by item id, read as every reader does (the logs folded first)."""
    return {r[6]: r[11] for r in Inbox(lambda: store).pending(ACCOUNT)}


# A process that starts runs (attempt lines), ends some (done marks), then waits to be killed.
WORKER = textwrap.dedent("""
    import sys
    from hooknb.storage import donelog
    from hooknb.storage.store import Store
    if len(sys.argv) > 4:
        donelog.SIZE = int(sys.argv[4])
    log = donelog.DoneLog(Store(sys.argv[1]))
    started, ended = [int(s) for s in sys.argv[2].split(",") if s], [int(s) for s in sys.argv[3].split(",") if s]
    for seq in started:
        assert log.attempt(seq)
    for seq in ended:
        log.append(seq, 7.0)
    print("written", flush=True)
    sys.stdin.readline()
""")


def worker(store: Store, started: list[int], ended: list[int], size: int | None = None) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(store.path), ",".join(map(str, started)),
                             ",".join(map(str, ended)), *([str(size)] if size else [])],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "written\n"
    return proc


def killed(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def test_a_run_in_flight_when_its_process_was_killed_counts_one_attempt(store):
    seqs = store.write_batch([row(str(i)) for i in range(4)])
    # 0 started and ended, 1 started and in flight at the kill, 2 queued (never started), 3 untouched
    killed(worker(store, seqs[:2], seqs[:1]))
    assert attempts(store) == {"1": 1, "2": 0, "3": 0}, "only the run in flight counts"
    assert attempts(store) == {"1": 1, "2": 0, "3": 0}, "counted once: the dead log is removed"
    killed(worker(store, seqs[1:2], []))
    assert attempts(store)["1"] == 2, "the next process killed with it in flight counts again"


def test_a_live_process_attempts_are_never_counted(store):
    seqs = store.write_batch([row("a")])
    proc = worker(store, seqs, [])
    try:
        assert attempts(store) == {"a": 0}, "its run may still end"
    finally:
        killed(proc)
    assert attempts(store) == {"a": 1}


def test_an_attempt_is_carried_into_the_next_file_and_counted_once(store):
    seqs = store.write_batch([row(str(i)) for i in range(12)])
    # files of 60 bytes: the attempt of 0 is written first, then done marks rotate the file
    # several times while 0 is in flight; every file left holds its attempt
    killed(worker(store, seqs[:1], seqs[1:11], size=60))
    assert len(list(donelog.directory(store.path).glob("*.log"))) > 1
    assert attempts(store) == {"0": 1, "11": 0}


def test_a_store_of_schema_version_1_gets_the_columns_and_keeps_its_entries(tmp_path):
    path = tmp_path / "old.sqlite3"
    made = Store(path)
    made.write_batch([row("old")])
    made.close()
    db = sqlite3.connect(path)  # as a store of schema version 1: no attempts, no quarantine
    db.execute("DROP TABLE retries")
    db.execute("ALTER TABLE inbox DROP COLUMN attempts")
    db.execute("ALTER TABLE inbox DROP COLUMN quarantined")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = Store(path)
    try:
        assert attempts(store) == {"old": 0}
        store.add_attempts({1: 2})
        assert attempts(store) == {"old": 2}
    finally:
        store.close()
    again = Store(path)
    assert again.pending(ACCOUNT)[0][11] == 2, "opened again: migrated once"
    assert again._query("PRAGMA user_version") == [(2,)]
    again.close()


def make(store: Store, limit: int = 3) -> tuple[Quarantine, Journal, Registry]:
    registry = Registry()
    registry.add(Hook(HookSpec.make(ACCOUNT, SERVICE, "news", "python_code", "pass", persistent=True)))
    runs = Journal(100)
    inbox = Inbox(lambda: store)
    return Quarantine(Invoker(runs, inbox), registry, lambda: store, inbox, limit), runs, registry


def test_entries_at_the_limit_are_quarantined_journaled_and_no_longer_pending(store):
    quarantine, runs, registry = make(store)
    hook = registry.all()[0]
    seqs = store.write_batch([row("ok", hook.id), row("bad", hook.id)])
    store.add_attempts({seqs[1]: 3})
    assert [e.event.item_id for e in quarantine.pending(ACCOUNT)] == ["ok"]
    (run,) = runs.snapshot()
    assert (run.hook_id, run.node, run.item_id, run.status) == (hook.id, "news", "bad", "quarantined")
    assert f"%hook retry {hook.id} bad" in run.error and "3 attempts" in run.error
    assert hook.stats.runs == 0 and hook.stats.failures == 1
    assert [e.event.item_id for e in quarantine.pending(ACCOUNT)] == ["ok"], "not journaled again"
    assert len(runs.snapshot()) == 1
    assert [q["item"] for q in quarantine.items(ACCOUNT)] == ["bad"]
    assert store.waiting([ACCOUNT]) == {hook.id: 1}, "a quarantined entry does not wait"
    rows = quarantine.listing([hook.summary()])
    assert rows[0]["quarantined"] == 1


def test_retried_entries_are_taken_once_with_their_attempts_from_zero(store):
    quarantine, _runs, registry = make(store)
    hook = registry.all()[0]
    seqs = store.write_batch([row("a", hook.id), row("b", hook.id)])
    store.add_attempts({seqs[0]: 3, seqs[1]: 5})
    assert quarantine.pending(ACCOUNT) == []
    assert quarantine.retry(hook, "a") == 1 and quarantine.retry(hook, "a") == 0
    (entry,) = quarantine.retried(ACCOUNT)
    assert (entry.event.item_id, entry.attempts) == ("a", 0)
    assert quarantine.retried(ACCOUNT) == [], "taken once"
    assert quarantine.retry(hook) == 1
    assert [(e.event.item_id, e.attempts) for e in quarantine.pending(ACCOUNT)] == [("a", 0), ("b", 0)], \
        "a start takes the retried entries with the pending ones"


def test_discarded_entries_are_done_and_never_run(store):
    quarantine, _runs, registry = make(store)
    hook = registry.all()[0]
    seqs = store.write_batch([row("a", hook.id)])
    assert quarantine.discard(hook) == 0, "only quarantined entries are discarded"
    store.add_attempts({seqs[0]: 3})
    quarantine.pending(ACCOUNT)
    assert quarantine.discard(hook, "a") == 1
    assert quarantine.pending(ACCOUNT) == [] and quarantine.items() == []
    assert store.done_items(hook.id) == [("a", "publish", "d")]
