"""pandas DataFrames of what the core holds: journals, hooks, gaps, accounts (read only).

The only module of the core that imports pandas, and only the front ends and :class:`Host`'s
``*_frame`` methods call it, so a command line that builds no DataFrame never imports pandas.
Times are UTC datetimes; repetitive strings are categoricals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

import pandas as pd

from .xmpp.events import Event
from .core.hooks import SUMMARY_FIELDS

#: Columns turned into categoricals when they appear in a record type.
CATEGORICAL = frozenset({"account", "service", "node", "kind", "status", "type", "hook_id"})
GAP_COLUMNS = ("account", "service", "node", "last_seen", "fetched", "ts")
STATUS_COLUMNS = ("account", "state", "last_error", "reconnects", "resumed", "replayed", "subscriptions",
                  "persistent_hooks_run_by", "gaps", "store", "quarantined", "warnings", "waiting", "unsolicited")


def _utc(values: Any) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype="float64"), unit="s", utc=True)


def records(rows: list, record_type: type, renames: dict[str, str] | None = None) -> pd.DataFrame:
    """A DataFrame of ``rows`` (records of ``record_type``) with proper dtypes."""
    names = [f.name for f in fields(record_type)]
    data = {}
    for name in names:
        column = [getattr(r, name) for r in rows]
        if name.endswith("ts"):
            data[name] = _utc(column)
        elif name in CATEGORICAL:
            data[name] = pd.Categorical(column)
        elif name == "duration":
            data[name] = pd.Series(column, dtype="float64")
        elif name in ("code_changed", "replay"):
            data[name] = pd.Series(column, dtype="bool")
        else:
            data[name] = pd.Series(column, dtype="object")
    df = pd.DataFrame(data, columns=names)
    return df.rename(columns=renames) if renames else df


def expand(df: pd.DataFrame, rows: list[Mapping[str, Any]]) -> pd.DataFrame:
    """``df`` with a column for each key of ``rows`` (one mapping per row of ``df``), in the order
    keys first appear, typed after their values: datetimes in UTC, whole numbers as ``Int64``,
    numbers as ``float64``, booleans as ``boolean``, anything else as objects; empty where a row
    has no value.  A key naming one of ``df``'s own columns is left out."""
    names = [n for n in dict.fromkeys(k for row in rows for k in row) if n not in df.columns]
    if not names:
        return df
    extra = pd.DataFrame({n: _typed([row.get(n) for row in rows]) for n in names})
    return pd.concat([df, extra.set_axis(df.index)], axis=1)


def _typed(values: list[Any]) -> pd.Series:
    present = [v for v in values if v is not None]
    if not present:
        return pd.Series(values, dtype="object")
    if all(isinstance(v, datetime) for v in present):
        return pd.to_datetime(pd.Series(values, dtype="object"), utc=True)
    if all(isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="boolean")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="Int64")
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="float64")
    return pd.Series(values, dtype="object")


def hooks(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Hook listing records (:meth:`hooknb.core.hooks.Hook.summary`), ``last_run`` in UTC."""
    df = pd.DataFrame(list(rows), columns=list(SUMMARY_FIELDS))
    for col in ("persistent", "code_changed", "pin"):
        df[col] = df[col].astype(bool)
    df["last_run"] = _utc(df["last_run"])
    for col in ("items_waiting", "runs", "failures", "timeouts", "dropped", "skipped", "loops", "blocked_loop",
                "max_depth"):
        df[col] = df[col].astype("int64")
    return df


def gaps(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Recorded gaps (:meth:`hooknb.storage.store.Store.gaps`), ``noticed`` in UTC."""
    df = pd.DataFrame(list(rows), columns=list(GAP_COLUMNS))
    df["ts"] = _utc(df["ts"])
    return df.rename(columns={"ts": "noticed"})


def accounts(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per connected account."""
    return pd.DataFrame(list(rows), columns=list(STATUS_COLUMNS))


def events(rows: list[Event], typed: bool = False) -> pd.DataFrame:
    """Events (``received`` in UTC); ``typed``: known payloads add typed columns (see
    :mod:`hooknb.xmpp.views`)."""
    from .xmpp import views

    df = records(rows, Event, {"ts": "received"})
    return expand(df, [views.extract(e.payload) for e in rows]) if typed else df
