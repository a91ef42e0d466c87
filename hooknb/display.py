"""Rich displays of a hook and an item for JupyterLab (``_repr_html_`` of
:class:`~hooknb.core.hooks.Hook` and :class:`~hooknb.xmpp.events.Item`).

A hook shows its status, where it is attached, its counters, its last error and output, and
its code; an item its id, node, service, publisher and kind, then its payload as indented XML.
Everything that comes from outside (payloads, errors, code, JIDs) is escaped: a payload is
text, never markup the notebook would render.  A payload longer than :data:`PAYLOAD_SHOWN`
characters is shown cut, with its length.  Only the standard library is used here.
"""

from __future__ import annotations

import html
import xml.dom.minidom
from datetime import datetime, timezone
from typing import Any

#: Characters of a payload (or code, output) shown in a display; the rest is counted.
PAYLOAD_SHOWN = 16 * 1024
#: The colour of each hook status.
STATUS_COLOURS = {"active": "#1a7f37", "disabled": "#6e7781", "stalled": "#cf222e"}
STYLE = ("<style>.hooknb-card{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px}"
         ".hooknb-card th{text-align:left;padding-right:1em;font-weight:600}"
         ".hooknb-card pre{max-height:24em;overflow:auto;background:var(--jp-layout-color2,#f6f8fa);"
         "padding:.5em;white-space:pre-wrap}"
         ".hooknb-status{color:#fff;border-radius:.6em;padding:0 .5em}</style>")


def pretty_xml(payload: str) -> str:
    """``payload`` indented (as it is if it does not parse), cut to :data:`PAYLOAD_SHOWN`."""
    try:
        dom = xml.dom.minidom.parseString(payload)  # noqa: S318 - a payload slixmpp already parsed: no DTD
        text = dom.documentElement.toprettyxml(indent="  ").strip()
    except Exception:  # noqa: BLE001 - shown as it came
        text = payload
    return _cut(text)


def _cut(text: str) -> str:
    if len(text) <= PAYLOAD_SHOWN:
        return text
    return f"{text[:PAYLOAD_SHOWN]}\n[… {len(text) - PAYLOAD_SHOWN:,} more characters]"


def _when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(rows: list[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _pre(title: str, text: str | None) -> str:
    if not text:
        return ""
    return f"<div><b>{html.escape(title)}</b><pre>{html.escape(_cut(text))}</pre></div>"


def hook_html(hook: Any) -> str:
    """A card for a :class:`~hooknb.core.hooks.Hook`: status, target, counters, last error,
    last output, code."""
    status = hook.status
    colour = STATUS_COLOURS.get(status, "#9a6700")
    head = (f"<b>hook {html.escape(hook.id)}</b> <span class='hooknb-status' style='background:{colour}'>"
            f"{html.escape(status)}</span> {html.escape(hook.type)}, "
            f"{'persistent' if hook.persistent else 'temporary'}")
    s = hook.stats
    counters = (f"{s.runs} runs, {s.failures} failures, {s.timeouts} timeouts, {s.skipped} skipped, "
                f"{s.dropped} dropped, {s.loops} stopped as loops")
    rows = [("account", html.escape(hook.account)), ("service", html.escape(hook.service)),
            ("node", html.escape(hook.node)), ("on", html.escape(", ".join(sorted(hook.kinds)))),
            ("phase", html.escape(hook.phase)), ("executor", html.escape(hook.executor)),
            ("counters", counters), ("last run", _when(s.last_run))]
    code = hook.arg if hook.type == "python_code" else None
    argument = [] if code else [("argument", html.escape(hook.arg))]
    return (f"{STYLE}<div class='hooknb-card'><div>{head}</div>{_table(rows + argument)}"
            f"{_pre('last error', hook.last_error)}{_pre('last output', s.last_output)}{_pre('code', code)}</div>")


def item_html(item: Any) -> str:
    """A card for an :class:`~hooknb.xmpp.events.Item`: what it is, then its payload as XML."""
    rows = [("node", html.escape(item.node)), ("service", html.escape(item.service)),
            ("publisher", html.escape(item.publisher or "not given by the service")),
            ("kind", html.escape(item.kind)), ("received", _when(item.event.ts))]
    if item.depth:
        rows.append(("depth", str(item.depth)))
    payload = item.payload
    body = (f"<pre>{html.escape(pretty_xml(payload))}</pre>" if payload is not None
            else "<div><i>no payload</i></div>")
    return (f"{STYLE}<div class='hooknb-card'><div><b>item {html.escape(str(item.id))}</b></div>"
            f"{_table(rows)}{body}</div>")
