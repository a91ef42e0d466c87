"""Live widgets: an event feed and a hook manager, redrawn at most 10 times a second.

Both are ipywidgets boxes changed only by setting widget state, never by capturing output in a
callback.  A :class:`Refresher` task on hooknb's event loop looks at a widget's ``version()`` at
most ``rate`` times a second (10 at most) and calls ``update()`` when it changed, so a burst of
a thousand events costs a handful of redraws whatever the event rate; ``update()`` sends only
the parts that changed.  Where widgets cannot render (a terminal, a static export) both show as
a plain HTML table (``_repr_html_``) or as text (``repr``).

Stable CSS classes, for styling and browser tests: ``hooknb-feed`` (with ``hooknb-feed-summary``,
``hooknb-feed-counts``, ``hooknb-feed-rows``; one ``tr.hooknb-event`` per event) and
``hooknb-manager`` (with ``hooknb-manager-summary``, ``hooknb-manager-status``,
``hooknb-manager-rows``; one ``hooknb-hook`` box per hook holding a ``run`` and a ``delete``
button).
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from datetime import datetime, timezone
from typing import Any, TypeVar

import ipywidgets as widgets
from tabulate import tabulate

from ..xmpp import loop as _loop
from ..executors.dask_cluster import dashboard_link
from ..errors import HooknbError
from ..xmpp.events import Event
from ..host import Host
from ..storage.journal import Run

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Redraws per second never exceeded, whatever the rate asked for.
MAX_RATE = 10.0
#: Characters of a payload or hook argument shown in a cell.
SHORT = 80

Rows = Sequence[Sequence[Any]]


def _short(value: Any, limit: int = SHORT) -> str:
    """``value`` on one line, cut to ``limit`` characters."""
    text = "" if value is None else " ⏎ ".join(str(value).strip().splitlines())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _time(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def html_table(columns: Sequence[str], rows: Rows, css: str, row_css: str = "") -> str:
    """An escaped HTML table; each body row gets the class ``row_css``."""
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    tr = f'<tr class="{row_css}">' if row_css else "<tr>"
    body = "".join(tr + "".join(f"<td>{esc(_short(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def text_table(columns: Sequence[str], rows: Rows) -> str:
    """A plain-text table with aligned columns."""
    return tabulate([[_short(v) for v in row] for row in rows], columns, tablefmt="plain",
                    disable_numparse=True)


def _linked(text: str) -> str:
    """``text``, escaped, with the addresses in it (the Dask dashboard's) as links."""
    return re.sub(r"https?://[^\s<>&\"']+", lambda m: f'<a href="{m[0]}" target="_blank">{m[0]}</a>',
                  html.escape(text))


def _html(css: str) -> widgets.HTML:
    widget = widgets.HTML()
    widget.add_class(css)
    return widget


def _send(widget: widgets.Widget, **state: Any) -> bool:
    """Set the traits of ``widget`` that differ from ``state``; True if anything was sent."""
    changed = {k: v for k, v in state.items() if getattr(widget, k) != v}
    if changed:
        with widget.hold_sync():
            for key, value in changed.items():
                setattr(widget, key, value)
    return bool(changed)


def _close(widget: widgets.Widget) -> None:
    """Close a widget and everything it contains."""
    for child in getattr(widget, "children", ()):
        _close(child)
    widget.close()


def _on_loop(fn: Callable[[], T]) -> T:
    """Run ``fn`` on hooknb's loop thread, so that no event batch is handled meanwhile."""
    if _loop.on_loop_thread():
        return fn()

    async def run() -> T:
        return fn()

    return _loop.call(run())


class Refresher:
    """Calls ``box.refresh()`` on hooknb's loop ``rate`` times a second (10 at most) until stopped."""

    def __init__(self, box: LiveBox, rate: float) -> None:
        self.interval = 1.0 / min(rate, MAX_RATE)
        self._future = asyncio.run_coroutine_threadsafe(self._run(box), _loop.get_loop())

    async def _run(self, box: LiveBox) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                box.refresh()
            except Exception:  # noqa: BLE001 - one failed redraw must not stop the next ones
                log.exception("redrawing %s failed", type(box).__name__)

    def stop(self) -> None:
        """Stop refreshing."""
        self._future.cancel()


class LiveBox(widgets.VBox):
    """A box redrawn by a :class:`Refresher` whenever its ``version()`` changes.

    ``redraws`` counts the updates that sent something to the front end.
    """

    css_class = "hooknb-live"
    # set by __init__; ipywidgets closes even a widget whose __init__ failed
    host: Host | None = None
    _refresher: Refresher | None = None

    def __init__(self, host: Host, rate: float, children: Sequence[widgets.Widget]) -> None:
        if not rate > 0:
            raise HooknbError(f"the refresh rate must be a positive number of redraws per second, "
                              f"not {rate!r}")
        super().__init__(children=tuple(children))
        self.add_class(self.css_class)
        self.host = host
        self.redraws = 0
        self._lock = threading.RLock()
        self._version: Hashable = None
        self.refresh()
        self._refresher = Refresher(self, rate)

    def version(self) -> Hashable:
        """A cheap value that changes whenever the widget has something new to show."""
        raise NotImplementedError

    def update(self) -> bool:
        """Recompute the content and send the parts that changed; True if anything was sent."""
        raise NotImplementedError

    def refresh(self) -> bool:
        """:meth:`update` if the version changed since the last refresh."""
        with self._lock:
            version = self.version()
            if version == self._version:
                return False
            self._version = version
            return self.update()

    def _sent(self, changed: bool) -> bool:
        if changed:
            self.redraws += 1
        return changed

    def close(self) -> None:
        """Stop refreshing and close the widget and its parts."""
        if self._refresher is not None:
            self._refresher.stop()
        for child in self.children:
            _close(child)
        super().close()


class EventFeed(LiveBox):
    """The latest ``rows`` events (newest first) and a count of events per node, live.

    Counts include every event of the journal when the feed was made, and every later one;
    ``account``: only that account's events (default: every account's).
    """

    css_class = "hooknb-feed"
    COLUMNS = ("received (UTC)", "kind", "service", "node", "item", "publisher", "payload")
    COUNT_COLUMNS = ("service", "node", "events")

    def __init__(self, host: Host, rows: int = 20, rate: float = MAX_RATE, account: str | None = None) -> None:
        self.rows = rows
        self.account = account
        self._summary = _html("hooknb-feed-summary")
        self._counts_html = _html("hooknb-feed-counts")
        self._table = _html("hooknb-feed-rows")
        self._counts: Counter[tuple[str, str]] = Counter()
        self._counts_lock = threading.Lock()
        super().__init__(host, rate, [self._summary, self._counts_html, self._table])

        def attach() -> None:  # on the loop thread: no batch is counted twice or missed
            self._count(host.events.snapshot())
            host.events.listeners.append(self._count)

        _on_loop(attach)
        self.update()

    def _count(self, events: list[Event]) -> None:
        with self._counts_lock:
            self._counts.update((e.service, e.node) for e in events if self._shown(e))

    def _shown(self, event: Event) -> bool:
        return self.account is None or event.account == self.account

    def version(self) -> Hashable:
        return self.host.events.total

    def content(self) -> tuple[str, Rows, Rows]:
        """What the feed shows: a summary line, (service, node, count) rows, event rows."""
        if self.account is None:
            events = self.host.events.snapshot(last=self.rows)
        else:
            events = [e for e in self.host.events.snapshot() if self._shown(e)][-self.rows:]
        with self._counts_lock:
            counts = sorted(self._counts.items(), key=lambda kv: (-kv[1], kv[0]))
        total = sum(n for _, n in counts)
        if events:
            summary = (f"{total} event(s) on {len(counts)} node(s), "
                       f"last at {_time(events[-1].ts)} UTC")
        else:
            summary = "no events yet"
        event_rows = [(_time(e.ts), e.kind, e.service, e.node, e.item_id, e.publisher, e.payload)
                      for e in reversed(events)]
        return summary, [(s, n, c) for (s, n), c in counts], event_rows

    def _html_parts(self) -> tuple[str, str, str]:
        summary, counts, events = self.content()
        return (f"<b>{html.escape(summary)}</b>",
                html_table(self.COUNT_COLUMNS, counts, "hooknb-counts", "hooknb-count"),
                html_table(self.COLUMNS, events, "hooknb-events", "hooknb-event"))

    def update(self) -> bool:
        with self._lock:
            parts = zip((self._summary, self._counts_html, self._table), self._html_parts())
            return self._sent(any([_send(widget, value=value) for widget, value in parts]))

    def close(self) -> None:
        if self.host is not None and self._count in self.host.events.listeners:
            self.host.events.listeners.remove(self._count)
        super().close()

    def _repr_html_(self) -> str:
        return f'<div class="{self.css_class}">{"".join(self._html_parts())}</div>'

    def __repr__(self) -> str:
        summary, counts, events = self.content()
        return "\n\n".join((summary, text_table(self.COUNT_COLUMNS, counts),
                            text_table(self.COLUMNS, events)))


class HookManager(LiveBox):
    """The hook table (status, with the items waiting when there are: "stalled, 12 waiting", or
    "disabled", and the quarantined ones: "active, 1 quarantined"; runs, failures, last error, ``code``: "changed" when its code is not the code it
    was created with, "pinned", what its last run printed, what the service shows of publishers
    for a ``--from`` hook, the executor, the Dask worker of the last run and its queue time: from
    the item's reception to the run's start), with buttons to run a hook once on the latest item
    of its node and to delete it; the summary links the Dask dashboard once a ``dask`` hook uses one."""

    css_class = "hooknb-manager"
    COLUMNS = ("id", "service", "node", "type", "arg", "persistent", "code", "status", "runs", "failures",
               "last error", "last output", "executor", "worker", "queue", "--from")
    WIDTHS = (11, 18, 22, 12, 28, 10, 16, 18, 6, 8, 36, 36, 9, 22, 8, 34)  # in ch

    def __init__(self, host: Host, rate: float = MAX_RATE, account: str | None = None) -> None:
        self.account = account  # only this account's hooks (default: every account's)
        self._summary = _html("hooknb-manager-summary")
        self.status = _html("hooknb-manager-status")
        self._rows_box = widgets.VBox()
        self._rows_box.add_class("hooknb-manager-rows")
        self._rows: dict[str, widgets.HBox] = {}
        #: The last run started by a ``run`` button (a Future of the journaled :class:`Run`).
        self.action: Future[Run | None] | None = None
        header = _html("hooknb-manager-header")
        header.value = self._cells(self.COLUMNS, bold=True)
        super().__init__(host, rate, [self._summary, self.status, header, self._rows_box])

    def version(self) -> Hashable:
        return tuple((h.id, h.runs, h.failures, h.skipped, h.last_error, h.load_error, h.persistent,
                      h.publisher_check, h.code_changed, h.status, self.host.waiting(h.id),
                      h.stats.last_output)
                     for h in self.host.hooks(self.account, stored=False)) + (dashboard_link(),)

    def content(self) -> tuple[str, list[tuple[str, tuple[Any, ...]]]]:
        """A summary line and one (hook id, cells) row per hook."""
        rows = []
        runs = failures = skipped = quarantined = 0
        for s in self.host.list_hooks(self.account):
            runs, failures, skipped = runs + s["runs"], failures + s["failures"], skipped + s["skipped"]
            code = ", ".join(w for w, on in (("changed", s["code_changed"]), ("pinned", s["pin"])) if on)
            status = s["status"] + (f", {s['items_waiting']} waiting" if s["items_waiting"] else "") + (
                f", {s['quarantined']} quarantined" if s["quarantined"] else "")  # %hook retry / discard
            quarantined += s["quarantined"]
            queue = "" if s["last_queued"] is None else f"{s['last_queued'] * 1000:.0f} ms"
            rows.append((s["id"], (s["id"], s["service"], s["node"], s["type"], s["arg"],
                                   "yes" if s["persistent"] else "no", code, status, s["runs"], s["failures"],
                                   s["last_error"], s["last_output"], s["executor"], s["last_worker"], queue,
                                   s["publisher_check"])))
        summary = f"{len(rows)} hook(s), {runs} run(s), {failures} failure(s)"
        if skipped:
            summary += f", {skipped} item(s) skipped (--from)"
        if quarantined:
            summary += f", {quarantined} item(s) quarantined (%hook retry or discard)"
        dashboard = dashboard_link()
        if dashboard:
            summary += f"; Dask dashboard: {dashboard}"
        return summary, rows

    def _cells(self, values: Sequence[Any], bold: bool = False) -> str:
        style = ("display:inline-block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;"
                 "vertical-align:middle;padding-right:1ch;" + ("font-weight:bold;" if bold else ""))
        return "".join(f'<span class="hooknb-cell" style="{style}width:{w}ch" '
                       f'title="{html.escape(_short(v, 500))}">{html.escape(_short(v))}</span>'
                       for v, w in zip(values, self.WIDTHS))

    def _row(self, hook_id: str) -> widgets.HBox:
        run = widgets.Button(description="run", tooltip=f"run hook {hook_id} once on the latest item "
                                                        "of its node")
        delete = widgets.Button(description="delete", button_style="danger",
                                tooltip=f"delete hook {hook_id}")
        run.add_class("hooknb-run")
        delete.add_class("hooknb-delete")
        run.on_click(lambda _b: self.run(hook_id))
        delete.on_click(lambda _b: self.delete(hook_id))
        row = widgets.HBox([_html("hooknb-hook-cells"), run, delete])
        row.add_class("hooknb-hook")
        row.add_class(f"hooknb-hook-{hook_id}")
        return row

    def update(self) -> bool:
        with self._lock:
            summary, content = self.content()
            changed = _send(self._summary, value=f"<b>{_linked(summary)}</b>")
            rows = {hook_id: self._rows.get(hook_id) or self._row(hook_id) for hook_id, _ in content}
            for hook_id, cells in content:
                changed |= _send(rows[hook_id].children[0], value=self._cells(cells))
            if list(rows) != list(self._rows):
                self._rows_box.children = tuple(rows.values())
                for gone in self._rows.keys() - rows.keys():
                    _close(self._rows[gone])
                changed = True
            self._rows = rows
            return self._sent(changed)

    def _say(self, text: str, error: bool = False) -> None:
        css = "hooknb-error" if error else "hooknb-ok"
        self.status.value = f'<span class="{css}">{html.escape(text)}</span>'

    def delete(self, hook_id: str) -> bool:
        """Delete a hook (its ``delete`` button); False if it was already gone."""
        deleted = self.host.delete_hook(hook_id)
        self._say(f"hook {hook_id} deleted" if deleted else f"hook {hook_id} was already deleted",
                  error=not deleted)
        self.update()
        return deleted

    def run(self, hook_id: str) -> Future[Run | None]:
        """Run a hook once on the latest item of its node, in the background (its ``run``
        button); the status line says how it went once the returned future is done."""
        self._say(f"running hook {hook_id}…")
        self.action = asyncio.run_coroutine_threadsafe(self._arun(hook_id), _loop.get_loop())
        return self.action

    async def _arun(self, hook_id: str) -> Run | None:
        try:
            run = await self.host.arun_hook(hook_id)
        except HooknbError as exc:
            self._say(f"hook {hook_id} not run: {exc}", error=True)
            return None
        detail = f": {run.error}" if run.error else ""
        detail += f"; it printed: {_short(run.output)}" if run.output else ""
        self._say(f"hook {hook_id} ran on item {run.item_id}: {run.status}{detail}",
                  error=run.status != "ok")
        self.update()
        return run

    def _repr_html_(self) -> str:
        summary, rows = self.content()
        return (f'<div class="{self.css_class}"><b>{_linked(summary)}</b>'
                f'{html_table(self.COLUMNS, [r for _, r in rows], "hooknb-hooks", "hooknb-hook")}</div>')

    def __repr__(self) -> str:
        summary, rows = self.content()
        return f"{summary}\n\n{text_table(self.COLUMNS, [r for _, r in rows])}"
