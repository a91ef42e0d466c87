"""Typed columns from known payloads: a small registry of extractors keyed by a payload's root tag.

``host.events_frame(expand=True)`` looks up each event's payload here and adds one column per
key its extractor returns.  An extractor maps the payload's root element to a dict of columns
(``{"title": "Hello", "published": datetime(...)}``); :func:`register` adds one for a root tag
written ``"{namespace}name"``, as ElementTree writes it.  Built in: Atom entries, hence
XEP-0277 microblog posts (``title``, ``author``, ``published``, ``updated``, ``link``,
``summary``), XEP-0118 tunes, XEP-0107 moods and XEP-0080 locations.

A payload without an extractor, not well-formed, or whose extractor raises, gives no columns:
its row stays empty there, and the frame is built all the same.  The helpers :func:`text`,
:func:`timestamp`, :func:`number` and :func:`integer` turn what an element holds into typed
values (None when missing or malformed) for extractors of your own.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger(__name__)

#: What an extractor is: the payload's root element in, columns out.
Extractor = Callable[[ET.Element], Mapping[str, Any]]

ATOM = "http://www.w3.org/2005/Atom"
TUNE = "http://jabber.org/protocol/tune"
MOOD = "http://jabber.org/protocol/mood"
GEOLOC = "http://jabber.org/protocol/geoloc"

_extractors: dict[str, Extractor] = {}


def register(tag: str, extractor: Extractor | None) -> None:
    """Use ``extractor`` for payloads whose root element is ``tag`` (``"{namespace}name"``),
    replacing the one registered for it before; ``None`` removes it."""
    namespace, _, name = tag.partition("}")
    if not (namespace.startswith("{") and len(namespace) > 1 and name):
        raise ValueError(f"a payload's root tag is written '{{namespace}}name', not {tag!r}")
    if extractor is None:
        _extractors.pop(tag, None)
    else:
        _extractors[tag] = extractor


def registered() -> dict[str, Extractor]:
    """The extractors in use, by root tag (a copy)."""
    return dict(_extractors)


def extract(payload: str | ET.Element | None) -> dict[str, Any]:
    """The columns of one payload (an XML string or an element); ``{}`` when there is no
    payload, no extractor for its root tag, it is not well-formed, or its extractor fails."""
    if payload is None:
        return {}
    try:
        element = ET.fromstring(payload) if isinstance(payload, str) else payload
        extractor = _extractors.get(element.tag)
        return {} if extractor is None else {str(k): v for k, v in extractor(element).items()}
    except Exception as exc:  # noqa: BLE001 - a bad payload or extractor only empties its row
        log.debug("no columns for a payload: %r", exc)
        return {}


# ------------------------------------------------------------------------------------ helpers
def text(element: ET.Element, path: str) -> str | None:
    """The stripped text at ``path`` under ``element`` (None when missing or empty)."""
    found = element.findtext(path)
    return (found.strip() or None) if found is not None else None


def timestamp(value: str | None) -> datetime | None:
    """An XEP-0082 / RFC 3339 date-time as an aware UTC datetime (one without an offset is
    taken as UTC); None when missing or malformed."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def number(value: str | None) -> float | None:
    """A decimal number (None when missing or malformed)."""
    try:
        return float(value) if value else None
    except ValueError:
        return None


def integer(value: str | None) -> int | None:
    """A whole number (None when missing or malformed)."""
    try:
        return int(value) if value else None
    except ValueError:
        return None


# ------------------------------------------------------------------------------------ built in
def atom_entry(entry: ET.Element) -> dict[str, Any]:
    """An Atom entry (XEP-0277 microblog post): title, author (name, else URI), published and
    updated (UTC datetimes), link (the alternate one, else the first) and summary."""
    a = f"{{{ATOM}}}"
    links = entry.findall(f"{a}link")
    alternate = [link for link in links if link.get("rel", "alternate") == "alternate"]
    link = (alternate or links or [None])[0]
    return {"title": text(entry, f"{a}title"),
            "author": text(entry, f"{a}author/{a}name") or text(entry, f"{a}author/{a}uri"),
            "published": timestamp(text(entry, f"{a}published")),
            "updated": timestamp(text(entry, f"{a}updated")),
            "link": link.get("href") if link is not None else None,
            "summary": text(entry, f"{a}summary")}


def tune(element: ET.Element) -> dict[str, Any]:
    """An XEP-0118 tune: artist, title, source, track, length (seconds) and rating (1 to 10)."""
    t = f"{{{TUNE}}}"
    return {"artist": text(element, f"{t}artist"), "title": text(element, f"{t}title"),
            "source": text(element, f"{t}source"), "track": text(element, f"{t}track"),
            "length": integer(text(element, f"{t}length")), "rating": integer(text(element, f"{t}rating"))}


def mood(element: ET.Element) -> dict[str, Any]:
    """An XEP-0107 mood: mood (the name of its mood element; None when cleared) and mood_text."""
    names = [child.tag.rpartition("}")[2] for child in element if child.tag != f"{{{MOOD}}}text"]
    return {"mood": names[0] if names else None, "mood_text": text(element, f"{{{MOOD}}}text")}


def geoloc(element: ET.Element) -> dict[str, Any]:
    """An XEP-0080 location: lat, lon, alt, accuracy (numbers), country, region, locality,
    street, description and timestamp (a UTC datetime)."""
    g = f"{{{GEOLOC}}}"
    numbers = {name: number(text(element, g + name)) for name in ("lat", "lon", "alt", "accuracy")}
    places = {name: text(element, g + name) for name in ("country", "region", "locality", "street",
                                                         "description")}
    return {**numbers, **places, "timestamp": timestamp(text(element, f"{g}timestamp"))}


register(f"{{{ATOM}}}entry", atom_entry)
register(f"{{{TUNE}}}tune", tune)
register(f"{{{MOOD}}}mood", mood)
register(f"{{{GEOLOC}}}geoloc", geoloc)
