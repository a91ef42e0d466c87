"""The done log (hooknb.storage.donelog) on a scratch store: marks folded by the inbox thread, files
rotated and removed once folded, the logs of killed processes folded and removed by the next
reader of pending entries, a live process's log folded and left alone, partial lines ignored,
and a log that cannot be written falling back to the inbox's memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hooknb.storage import donelog
from hooknb.errors import StoreError
from hooknb.core.inbox import Entry, Inbox
from hooknb.storage.store import Store

ACCOUNT = "alice@example.org"


def row(item_id: str) -> tuple:
    """An inbox row (hooknb.storage.inbox_rows.INBOX_COLUMNS)."""
    return ("h1", ACCOUNT, "pubsub.example.org", "news", "publish", item_id, "d", None, "<p/>", 1.0)


def pending_ids(store: Store) -> list[str]:
    """The pending entries' item ids, read as every reader does: the done logs folded first."""
    return [r[6] for r in Inbox(lambda: store).pending(ACCOUNT)]


def logs(store: Store) -> list[Path]:
    return sorted(donelog.directory(store.path).glob("*.log"))


def test_a_mark_is_in_the_file_at_once_and_in_the_store_after_a_fold(store):
    seqs = store.write_batch([row("a"), row("b")])
    log = donelog.DoneLog(store)
    assert log.append(seqs[0], 5.0) == 1
    (path,) = logs(store)
    data = path.read_bytes()
    assert data.rstrip(b"\0") == f"store {store.id}\n{seqs[0]} 5.0\n".encode() and len(data) == donelog.SIZE
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    store.write_batch([], done=log.take())  # what the inbox thread does
    log.folded()
    assert log.waiting == 0 and pending_ids(store) == ["b"]
    log.close(folded=True)
    assert logs(store) == []


def test_a_big_log_is_rotated_and_removed_once_its_marks_are_in_the_store(store, monkeypatch):
    monkeypatch.setattr(donelog, "ROTATE", 20)
    seqs = store.write_batch([row(str(i)) for i in range(10)])
    log = donelog.DoneLog(store)
    for seq in seqs[:5]:
        log.append(seq, 1.0)
    first = logs(store)
    marks = log.take()  # past ROTATE: the file is retired
    log.append(seqs[5], 1.0)
    assert len(logs(store)) == 2 and first[0] in logs(store)
    store.write_batch([], done=marks)
    log.folded()
    assert first[0] not in logs(store) and len(logs(store)) == 1
    assert pending_ids(store) == [str(i) for i in range(6, 10)], "the live log is read too"


def test_only_whole_well_formed_lines_after_the_stores_header_are_marks():
    assert donelog._parse(b"store ab\n1 2.0\n12", "ab") == ([(1, 2.0)], set()), "a last line without its newline"
    assert donelog._parse(b"store ab\n1 2.0\n\x00\x00\n3 x\n4 5.0 6\n12\x00 1.0\n", "ab") == ([(1, 2.0)], set())
    assert donelog._parse(b"store ab\na 3\n1 2.0\na 4\na x\na 5", "ab") == ([(1, 2.0)], {3, 4}), "attempts"
    assert donelog._parse(b"store cd\n1 2.0\n", "ab") is None, "another store's"
    assert donelog._parse(b"1 2.0\n", "ab") is None


WRITER = textwrap.dedent("""
    import sys
    from hooknb.storage.donelog import DoneLog
    from hooknb.storage.store import Store
    log = DoneLog(Store(sys.argv[1]))
    for seq in sys.argv[2:]:
        log.append(int(seq), 7.0)
    print("written", flush=True)
    sys.stdin.readline()
""")


def writer(store: Store, seqs: list[int]) -> subprocess.Popen:
    """Another process that writes marks of ``seqs`` to its done log and then waits."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store.path), *map(str, seqs)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "written\n"
    return proc


def test_the_log_of_a_killed_process_is_folded_and_removed_by_the_next_reader(store):
    seqs = store.write_batch([row(str(i)) for i in range(4)])
    proc = writer(store, seqs[:3])
    proc.kill()  # kill -9: its marks were never folded
    proc.wait()
    assert len(logs(store)) == 1
    assert pending_ids(store) == ["3"], "the runs that ended are not pending"
    assert logs(store) == []


def test_the_log_of_a_live_process_is_folded_and_left_to_it(store):
    seqs = store.write_batch([row(str(i)) for i in range(4)])
    proc = writer(store, seqs[:2])
    try:
        assert pending_ids(store) == ["2", "3"]
        assert len(logs(store)) == 1, "still written by its process"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()


def test_a_failed_fold_leaves_the_log_to_fold_again(store, monkeypatch):
    seqs = store.write_batch([row("a"), row("b")])
    proc = writer(store, seqs[:1])
    proc.kill()
    proc.wait()

    def locked(*_args, **_kwargs):
        raise StoreError("the hook store is locked by another process")

    with monkeypatch.context() as m:
        m.setattr(store, "write_batch", locked)
        with pytest.raises(StoreError):
            Inbox(lambda: store).pending(ACCOUNT)
    assert len(logs(store)) == 1, "kept until its marks are in the store"
    assert pending_ids(store) == ["b"] and logs(store) == []


def test_a_mark_the_log_cannot_take_waits_in_memory_and_reaches_the_store(store):
    donelog.directory(store.path).write_text("not a directory")  # every open fails
    (seq,) = store.write_batch([row("a")])
    inbox = Inbox(lambda: store)
    inbox.done(Entry("h1", None, "d", seq), 3.0)
    assert inbox.flush(10) and inbox.status is None
    assert pending_ids(store) == [] and store.done_items("h1") == [("a", "publish", "d")]


def test_the_inbox_folds_marks_soon_and_closing_leaves_no_file(store):
    seqs = store.write_batch([row(str(i)) for i in range(3)])
    inbox = Inbox(lambda: store)
    for seq in seqs:
        inbox.done(Entry("h1", None, "d", seq), 3.0)
    assert inbox.busy and len(logs(store)) == 1
    assert inbox.flush(10) and not inbox.busy
    assert store.waiting([ACCOUNT]) == {}
    inbox.close()
    assert logs(store) == [] and os.listdir(donelog.directory(store.path)) == []


def test_a_full_file_gives_way_to_a_new_one_and_every_mark_is_read(store, monkeypatch):
    monkeypatch.setattr(donelog, "SIZE", 55)  # a header of 23 bytes, then room for 5 marks of "N 1.0"
    seqs = store.write_batch([row(str(i)) for i in range(11)])
    log = donelog.DoneLog(store)
    for seq in seqs[:10]:
        assert log.append(seq, 1.0) is not None
    assert len(logs(store)) == 2
    assert pending_ids(store) == ["10"]


def test_a_log_of_another_store_at_this_path_is_never_folded(tmp_path):
    path = tmp_path / "store.sqlite3"
    old = Store(path)
    (seq,) = old.write_batch([row("a")])
    proc = writer(old, [seq])  # killed: its log stays
    proc.kill()
    proc.wait()
    old.close()
    for suffix in ("", "-wal", "-shm"):  # the user starts afresh, the done logs left behind
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    new = Store(path)
    try:
        assert new.id != old.id
        assert new.write_batch([row("b")]) == [seq], "the same row number, another entry"
        assert pending_ids(new) == ["b"], "the old log's mark is not for this entry"
        assert logs(new) == [], "removed: its process is dead"
    finally:
        new.close()


def test_a_done_log_directory_others_can_write_is_neither_written_nor_read(store):
    (seq,) = store.write_batch([row("a")])
    folder = donelog.directory(store.path)
    folder.mkdir(mode=0o700)
    forged = folder / "1-forged.log"
    forged.write_bytes(f"store {store.id}\n{seq} 1.0\n".encode())
    os.chmod(folder, 0o777)
    assert pending_ids(store) == ["a"], "a mark anyone could have written is not taken"
    assert donelog.DoneLog(store).append(seq, 1.0) is None, "nor is ours written there"
    os.chmod(folder, 0o700)
    os.chmod(forged, 0o666)
    assert pending_ids(store) == ["a"] and forged.exists()
