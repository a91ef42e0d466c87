"""Libervia's calling convention: run a hook file written for Libervia's PubSub hook plugin unchanged.

What was read (libervia-backend 0.8.0, its source distribution on PyPI, file
``sat/plugins/plugin_exp_pubsub_hook.py``; the same in SàT's Python 2 releases): the plugin
loads a ``python_file`` hook by executing the file and taking its ``hook`` function, then calls
``callback(self.host, client, item)`` for each element of a Wokkel ``ItemsEvent``: ``item`` is
the Twisted ``domish.Element`` of the notification's ``<item id="…">`` (or ``<retract
id="…"/>``) in the ``http://jabber.org/protocol/pubsub#event`` namespace, its payload as its
child; ``client`` is Libervia's ``SatXMPPClient`` of the profile (``client.jid`` a Twisted
``JID``, ``client.profile`` the profile's name); ``host`` is the Libervia instance.

A hook created with ``--compat libervia`` (``compat="libervia"``) gets, for every run and on
every executor:

* ``item``: a read-only :class:`hooknb.compat.domish.Element` over that same element, built from
  the event (``<item id=… publisher=…>`` + payload; ``<retract id=…/>``; for the node-wide
  kinds Libervia never handed to hooks, ``<purge/>``, ``<delete/>`` or ``<configuration/>``
  with the node's name);
* ``client``: a :class:`Client` whose ``jid`` answers as a Twisted ``JID`` (``full()``,
  ``userhost()``, ``userhostJID()``, ``user``, ``host``, ``resource``: the account with this
  connection's resource; on a Dask worker, the bare account) and whose ``profile`` is the
  account; any other attribute raises :class:`~hooknb.errors.CompatError` naming it;
* ``host``: hooknb's :class:`~hooknb.host.Host` (an offline stand-in on a Dask worker), not
  Libervia's.

hooknb's own :class:`~hooknb.xmpp.events.Item` is unchanged for every other hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import CompatError, HooknbError
from ..xmpp.events import NS_EVENT, escape
from .domish import Element, parse

NAME = "libervia"
#: The element a node-wide event becomes (XEP-0060's names in the event namespace).
_NODE_WIDE = {"purge": "purge", "delete": "delete", "config": "configuration"}


class JID:
    """The reading part of Twisted's ``twisted.words.protocols.jabber.jid.JID``."""

    __slots__ = ("user", "host", "resource")

    def __init__(self, text: str) -> None:
        bare, _, resource = text.partition("/")
        user, _, host = bare.rpartition("@")
        self.user, self.host, self.resource = user or None, host, resource or None

    def userhost(self) -> str:
        """``user@host`` (or ``host``)."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def userhostJID(self) -> JID:  # noqa: N802 - Twisted's name
        """The bare JID."""
        return JID(self.userhost())

    def full(self) -> str:
        """``user@host/resource``, without the parts it lacks."""
        return f"{self.userhost()}/{self.resource}" if self.resource else self.userhost()

    __str__ = full

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JID) and self.full() == other.full()

    def __hash__(self) -> int:
        return hash(self.full())

    def __repr__(self) -> str:
        return f"JID({self.full()!r})"


class Client:
    """What ``client`` is to a Libervia-convention hook: ``jid`` and ``profile``, nothing else."""

    __slots__ = ("jid", "profile")

    def __init__(self, jid: str, profile: str) -> None:
        self.jid, self.profile = JID(jid), profile

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise CompatError(f"client.{attr}: Libervia's client internals are not available in hooknb "
                          "(a Libervia-convention hook gets client.jid and client.profile); publish by "
                          "returning hooknb.Publish(...) from the hook")

    def __repr__(self) -> str:
        return f"<Libervia-convention client {self.jid.full()} (profile {self.profile!r})>"


def item_xml(item: Any) -> str:
    """The notification element Libervia would have handed the hook for hooknb's ``item``."""
    event = item.event
    attrs = f' node="{escape(event.node)}"'
    if event.kind in _NODE_WIDE:
        return f'<{_NODE_WIDE[event.kind]} xmlns="{NS_EVENT}"{attrs} />'
    name = "retract" if event.kind == "retract" else "item"
    attrs = f' id="{escape(event.item_id)}"' if event.item_id is not None else ""
    if event.publisher and name == "item":
        attrs += f' publisher="{escape(event.publisher)}"'
    return f'<{name} xmlns="{NS_EVENT}"{attrs}>{event.payload or ""}</{name}>'


def element(item: Any) -> Element:
    """The read-only domish-like element of hooknb's ``item``."""
    return parse(item_xml(item))


def client_of(client: Any, item: Any) -> Client:
    """The Libervia-convention client of a run: the connection's full JID when there is one (a
    Dask worker has none: the bare account), the account as the profile."""
    account = item.event.account
    try:
        bare, resource = client.jid, client.resource
    except (HooknbError, AttributeError):  # a Dask worker's offline client
        return Client(account, account)
    return Client(f"{bare}/{resource}" if isinstance(bare, str) and resource else account, account)


def adapt(fn: Callable[[Any, Any, Any], Any]) -> Callable[[Any, Any, Any], Any]:
    """``fn`` called with Libervia's convention: ``fn(host, client, element)`` (what it returns,
    a coroutine included, is returned as it is)."""
    def libervia_hook(host: Any, client: Any, item: Any) -> Any:
        return fn(host, client_of(client, item), element(item))

    libervia_hook.__wrapped__ = fn  # type: ignore[attr-defined]
    return libervia_hook


__all__ = ["NAME", "JID", "Client", "adapt", "element", "item_xml", "client_of"]
