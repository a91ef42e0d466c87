"""A read-only element answering Twisted's ``domish.Element`` reading API, without Twisted.

Libervia hands its hooks the ``<item/>`` element of a PubSub notification as a Twisted
``domish.Element`` (see :mod:`hooknb.compat.libervia`).  :func:`parse` builds the same tree that
Twisted's expat-based stream builds (``twisted.words.xish.domish.ExpatElementStream``): the
same ``uri``, ``name``, ``defaultUri``, ``attributes`` (a namespaced attribute keyed by the
tuple ``(uri, name)``), ``localPrefixes`` and ``children`` (text as ``str``, consecutive text
merged), and :meth:`Element.toXml` serialises it as Twisted's ``_ListSerializer`` does (single
quotes, ``<a/>`` for an empty element, prefixes ``xn0``, ``xn1``... for attributes in other
namespaces), so a hook that compares or stores ``toXml()`` sees the text it saw under Libervia.

Twisted's own behaviour is kept where it surprises: ``elements(uri)`` with no ``name`` yields
*every* child element (the namespace is only used with a name), ``elements(name=...)`` with no
``uri`` matches only elements without a namespace, ``str(element)`` is the *first* text node
only, ``element.foo`` is the first child element named ``foo`` (or None), and
``getAttribute`` does not accept an ``(empty uri, name)`` tuple where ``[...]`` does.

Unlike Twisted's, the element is read-only: a hook gets a view of the item it was sent, so the
mutators (``el[k] = v``, ``addChild``, ``addElement``, ``addContent``...) raise
:class:`~hooknb.errors.CompatError` with one line; ``attributes`` is a read-only mapping and
``children`` a tuple.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from typing import Any
from xml.parsers import expat

from ..errors import CompatError, HooknbError

_FIELDS = ("uri", "name", "defaultUri", "attributes", "children", "parent", "localPrefixes")
#: Twisted's always-known prefix (``xml:lang``).
_G_PREFIXES = {"http://www.w3.org/XML/1998/namespace": "xml"}
_MUTATORS = ("addChild", "addContent", "addElement", "addRawXml", "addUniqueId", "swapAttributeValues")


class Element:
    """One element of the tree :func:`parse` builds; reads like ``domish.Element``."""

    __slots__ = _FIELDS

    def __init__(self, qname: tuple[str | None, str], defaultUri: str | None,  # noqa: N803 - Twisted's name
                 attributes: dict[Any, str], children: tuple[Any, ...],
                 localPrefixes: dict[str, str]) -> None:  # noqa: N803
        for key, value in (("uri", qname[0]), ("name", qname[1]), ("defaultUri", defaultUri),
                           ("attributes", types.MappingProxyType(attributes)), ("children", children),
                           ("parent", None), ("localPrefixes", types.MappingProxyType(localPrefixes))):
            object.__setattr__(self, key, value)
        for child in children:
            if isinstance(child, Element):
                object.__setattr__(child, "parent", self)

    # ------------------------------------------------------------------ reading
    def __getattr__(self, key: str) -> Element | None:
        """The first child element named ``key`` (any namespace), else None (as Twisted)."""
        if key.startswith("_") or key in _MUTATORS:
            if key in _MUTATORS:
                _read_only(key)
            raise AttributeError(key)
        for child in self.children:
            if isinstance(child, Element) and child.name == key:
                return child
        return None

    def __getitem__(self, key: str | tuple[str, str]) -> str:
        return self.attributes[_dqa(key)]

    def getAttribute(self, attribname: Any, default: Any = None) -> Any:  # noqa: N802, N803
        """The attribute's value, else ``default``."""
        return self.attributes.get(attribname, default)

    def hasAttribute(self, attrib: str | tuple[str, str]) -> bool:  # noqa: N802
        """Whether the element has the attribute."""
        return _dqa(attrib) in self.attributes

    def compareAttribute(self, attrib: str | tuple[str, str], value: Any) -> bool:  # noqa: N802
        """Whether the attribute is there and equals ``value`` (None-safe)."""
        return self.attributes.get(_dqa(attrib), None) == value

    def elements(self, uri: str | None = None, name: str | None = None) -> Iterator[Element]:
        """The child elements; with ``name``, those of that name and namespace ``uri``."""
        if name is None:
            return (c for c in self.children if isinstance(c, Element))
        return (c for c in self.children if isinstance(c, Element) and c.name == name and c.uri == uri)

    def firstChildElement(self) -> Element | None:  # noqa: N802
        """The first child element, or None."""
        return next(self.elements(), None)

    def toXml(self, prefixes: dict[str, str] | None = None, closeElement: int = 1,  # noqa: N802, N803
              defaultUri: str = "", prefixesInScope: list[Any] | None = None) -> str:  # noqa: N803
        """The element serialised as Twisted serialises it."""
        out = _Serializer(prefixes, prefixesInScope)
        out.serialize(self, closeElement, defaultUri)
        return "".join(out.parts)

    def __str__(self) -> str:
        """The first text node (as Twisted), or ``""``."""
        return next((c for c in self.children if isinstance(c, str)), "")

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8")

    def __repr__(self) -> str:
        return f"<hooknb domish-like Element {{{self.uri}}}{self.name} (read-only)>"

    # ------------------------------------------------------------------ read-only
    def __setattr__(self, key: str, value: Any) -> None:
        _read_only(f"setting .{key}")

    def __setitem__(self, key: Any, value: Any) -> None:
        _read_only("setting an attribute")

    def __delitem__(self, key: Any) -> None:
        _read_only("deleting an attribute")


def _read_only(what: str) -> None:
    raise CompatError(f"{what}: the item a hook receives is read-only (a copy of the notification); "
                      "build a new payload string and publish it instead")


def _dqa(attr: Any) -> Any:
    """Twisted's ``_dqa``: an ``("", name)`` or ``(None, name)`` key means ``name``."""
    return attr[1] if isinstance(attr, tuple) and not attr[0] else attr


def parse(xml: str) -> Element:
    """The tree of one XML element, built as Twisted's expat stream builds it;
    :class:`~hooknb.errors.HooknbError` if it is not well-formed."""
    parser = expat.ParserCreate("UTF-8", " ")
    default_ns: list[str | None] = [""]
    declared: dict[str, str] = {}
    stack: list[tuple[tuple[str, str], str | None, dict[Any, str], dict[str, str], list[Any]]] = []
    done: list[Element] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal declared
        qname = name.rsplit(" ", 1)
        plain = {k: v for k, v in attrs.items() if " " not in k}
        qualified = {tuple(k.rsplit(" ", 1)): v for k, v in attrs.items() if " " in k}
        stack.append(((qname[0], qname[1]) if len(qname) == 2 else ("", name), default_ns[-1],
                      {**plain, **qualified}, declared, []))
        declared = {}

    def end(_name: str) -> None:
        qname, default, attributes, prefixes, children = stack.pop()
        if default is None and qname[0] not in prefixes.values():  # as Twisted's Element.__init__
            default = qname[0]
        element = Element(qname, default, attributes, tuple(children), prefixes)
        (stack[-1][4] if stack else done).append(element)

    def text(data: str) -> None:
        if stack:
            children = stack[-1][4]
            if children and isinstance(children[-1], str):
                children[-1] += data
            else:
                children.append(data)

    def ns_start(prefix: str | None, uri: str) -> None:
        if prefix is None:
            default_ns.append(uri)
        else:
            declared[prefix] = uri

    def ns_end(prefix: str | None) -> None:
        if prefix is None:
            default_ns.pop()

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = text
    parser.StartNamespaceDeclHandler, parser.EndNamespaceDeclHandler = ns_start, ns_end
    try:
        parser.Parse(xml, True)
    except expat.ExpatError as exc:
        raise HooknbError(f"the item is not well-formed XML: {exc}") from None
    return done[0]


def _escape(text: str, attribute: bool = False) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("'", "&apos;").replace('"', "&quot;") if attribute else text


class _Serializer:
    """Twisted's ``_ListSerializer``, over :class:`Element`."""

    def __init__(self, prefixes: Mapping[str, str] | None, in_scope: list[Any] | None) -> None:
        self.parts: list[str] = []
        self.prefixes = {**(prefixes or {}), **_G_PREFIXES}
        self.stack: list[Any] = [list(_G_PREFIXES.values()), *(in_scope or [])]
        self.counter = 0

    def prefix(self, uri: str) -> str:
        if uri not in self.prefixes:
            self.prefixes[uri] = f"xn{self.counter}"
            self.counter += 1
        return self.prefixes[uri]

    def in_scope(self, prefix: str) -> bool:
        return any(prefix in scope for scope in reversed(self.stack))

    def serialize(self, elem: Any, close: int = 1, current_default: str | None = "") -> None:
        write = self.parts.append
        if isinstance(elem, str):
            write(_escape(elem))
            return
        for p, u in elem.localPrefixes.items():
            self.prefixes[u] = p
        self.stack.append(list(elem.localPrefixes))
        default = current_default if elem.defaultUri is None else elem.defaultUri
        uri = default if elem.uri is None else elem.uri
        prefix, in_scope = None, False
        if uri != default or uri in self.prefixes:
            prefix = self.prefix(uri)
            in_scope = self.in_scope(prefix)
        if not prefix:
            write(f"<{elem.name}")
        else:
            write(f"<{prefix}:{elem.name}")
            if not in_scope:
                write(f" xmlns:{prefix}='{uri}'")
                self.stack[-1].append(prefix)
                in_scope = True
        if default != current_default and (uri != default or not prefix or not in_scope):
            write(f" xmlns='{default}'")
        for p, u in elem.localPrefixes.items():
            write(f" xmlns:{p}='{u}'")
        for key, value in elem.attributes.items():
            if isinstance(key, tuple):
                attr_prefix = self.prefix(key[0])
                if not self.in_scope(attr_prefix):
                    write(f" xmlns:{attr_prefix}='{key[0]}'")
                    self.stack[-1].append(attr_prefix)
                write(f" {attr_prefix}:{key[1]}='{_escape(value, True)}'")
            else:
                write(f" {key}='{_escape(value, True)}'")
        if close == 0:
            write(">")
            return
        if elem.children:
            write(">")
            for child in elem.children:
                self.serialize(child, 1, default)
            write(f"</{elem.name}>" if not prefix else f"</{prefix}:{elem.name}>")
        else:
            write("/>")
        self.stack.pop()


__all__ = ["Element", "parse"]
