"""Bounded journals: what is kept and dropped, readers that follow with ``since``, waiting for
appends from another thread, and DataFrames with UTC datetimes and categoricals."""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import fields

import pandas as pd

from hooknb.xmpp.events import Event
from hooknb.frames import CATEGORICAL
from hooknb.frames import records as frame
from hooknb.storage.journal import Journal, Run

from helpers import eventually


def event(item_id: str, node: str = "news", ts: float = 1_700_000_000.5) -> Event:
    return Event("alice@example.org", "pubsub.example.org", node, "publish", item_id, None, None, ts)


def run(item_id: str, status: str = "ok", duration: float = 0.25) -> Run:
    return Run("h1", "alice@example.org", "pubsub.example.org", "news", "publish", item_id,
               1_700_000_000.0, duration, status, result=repr(item_id))


def ids(rows: list[Event]) -> list[str]:
    return [r.item_id for r in rows]


def test_keeps_the_newest_and_counts_what_it_dropped():
    journal: Journal[Event] = Journal(maxlen=3)
    for i in range(5):
        journal.append(event(str(i)))
    assert ids(journal.snapshot()) == ["2", "3", "4"]
    assert (len(journal), journal.total, journal.dropped, journal.maxlen) == (3, 5, 2, 3)
    assert journal.latest().item_id == "4"


def test_extend_is_append_in_order():
    journal: Journal[Event] = Journal(maxlen=4)
    journal.extend(event(str(i)) for i in range(3))
    journal.extend([event("3"), event("4")])
    assert ids(journal.snapshot()) == ["1", "2", "3", "4"] and journal.total == 5


def test_snapshot_of_the_last_few():
    journal: Journal[Event] = Journal()
    journal.extend(event(str(i)) for i in range(4))
    assert ids(journal.snapshot(last=2)) == ["2", "3"]
    assert ids(journal.snapshot(last=0)) == []
    assert ids(journal.snapshot(last=10)) == ["0", "1", "2", "3"]


def test_resize_keeps_the_newest():
    journal: Journal[Event] = Journal(maxlen=10)
    journal.extend(event(str(i)) for i in range(6))
    journal.resize(2)
    assert ids(journal.snapshot()) == ["4", "5"] and (journal.maxlen, journal.dropped) == (2, 4)
    journal.resize(5)
    journal.append(event("6"))
    assert ids(journal.snapshot()) == ["4", "5", "6"]


def test_a_reader_following_with_since_misses_nothing_still_kept():
    journal: Journal[Event] = Journal(maxlen=3)
    new, seen = journal.since(0)
    assert (new, seen) == ([], 0)
    journal.extend([event("0"), event("1")])
    new, seen = journal.since(seen)
    assert (ids(new), seen) == (["0", "1"], 2)
    assert journal.since(seen) == ([], 2)
    journal.extend(event(str(i)) for i in range(2, 7))  # more than maxlen while the reader was away
    new, seen = journal.since(seen)
    assert (ids(new), seen) == (["4", "5", "6"], 7)


def test_clear_forgets_the_records_but_not_the_total():
    journal: Journal[Event] = Journal()
    journal.extend([event("0"), event("1")])
    journal.clear()
    assert (journal.snapshot(), journal.latest(), journal.total, journal.dropped) == ([], None, 2, 2)
    journal.append(event("2"))
    assert ids(journal.since(2)[0]) == ["2"]


def test_wait_returns_once_another_thread_has_appended():
    journal: Journal[Event] = Journal()
    writer = threading.Thread(target=journal.extend, args=([event("0"), event("1"), event("2")],))
    writer.start()
    assert journal.wait(3, timeout=30)
    writer.join()
    assert journal.wait_for(lambda: journal.latest().item_id == "2", timeout=0)


def test_a_waiter_is_woken_only_once_what_it_waits_for_has_come():
    journal: Journal[Event] = Journal()
    wakes, notify_all = [], journal._lock.notify_all
    journal._lock.notify_all = lambda: (wakes.append(journal.total), notify_all())
    waited: list[bool] = []
    waiter = threading.Thread(target=lambda: waited.append(journal.wait(100, timeout=30)))
    waiter.start()
    assert eventually(lambda: journal._wanted == [100])
    for i in range(99):
        journal.append(event(str(i)))
    assert wakes == [] and waiter.is_alive()
    journal.append(event("99"))
    waiter.join(30)
    assert waited == [True] and wakes == [100] and journal._wanted == []


def test_wait_times_out_with_false():
    journal: Journal[Event] = Journal()
    journal.append(event("0"))
    assert journal.wait(1, timeout=0) is True
    assert journal.wait(2, timeout=0.01) is False
    assert journal.wait_for(lambda: len(journal) > 1, timeout=0.01) is False


def test_events_frame_has_utc_times_and_categoricals():
    df = frame([event("1", "a"), event("2", "b", ts=1_700_000_001.0)], Event, renames={"ts": "received"})
    assert list(df.columns) == ["account", "service", "node", "kind", "item_id", "publisher", "payload",
                                "received"]
    assert isinstance(df["received"].dtype, pd.DatetimeTZDtype) and str(df["received"].dt.tz) == "UTC"
    assert df["received"].tolist() == [pd.Timestamp("2023-11-14 22:13:20.5", tz="UTC"),
                                       pd.Timestamp("2023-11-14 22:13:21", tz="UTC")]
    for name in ("account", "service", "node", "kind"):
        assert isinstance(df[name].dtype, pd.CategoricalDtype), name
    assert df["node"].tolist() == ["a", "b"] and df["item_id"].dtype == object
    assert df["publisher"].tolist() == [None, None]


def test_runs_frame_dtypes():
    df = frame([run("1"), run("2", "error", 1.5)], Run)
    assert list(df.columns) == [f.name for f in fields(Run)]
    assert df["duration"].dtype == "float64" and df["duration"].tolist() == [0.25, 1.5]
    assert isinstance(df["ts"].dtype, pd.DatetimeTZDtype)
    assert {name for name in df.columns if isinstance(df[name].dtype, pd.CategoricalDtype)} == (
        CATEGORICAL & set(df.columns))
    assert df["status"].tolist() == ["ok", "error"] and df["result"].tolist() == ["'1'", "'2'"]


def test_an_empty_frame_has_every_column_and_the_same_kinds_of_dtype():
    empty, full = frame([], Run), frame([run("1")], Run)
    assert len(empty) == 0 and list(empty.columns) == list(full.columns)
    for name in full.columns:
        assert type(empty[name].dtype) is type(full[name].dtype), name


def test_a_journal_of_plain_values_does_not_crash_the_interpreter():
    code = ("import gc\nfrom hooknb.storage.journal import Journal\nj = Journal()\n"
            "for i in range(1000):\n    j.append(f'row {i}')\n    j.append(float(i))\ngc.collect()\n")
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert child.returncode == 0, child.stderr.decode()[-500:]
