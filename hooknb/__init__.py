"""hooknb: XMPP PubSub hooks in Jupyter.

Connect an account, hook PubSub nodes (XEP-0060, and PEP nodes such as
``urn:xmpp:microblog:0``) and watch events and hook runs as DataFrames and live widgets::

    import hooknb
    client = hooknb.connect("alice@example.org", "secret")
    host = hooknb.get_host()
    host.create_hook("urn:xmpp:microblog:0", "print(item.id)", type="python_code")

In IPython/Jupyter: ``%load_ext hooknb`` then ``%hook ...`` and ``%%hook``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    ConnectError,
    HookCreateError,
    HooknbError,
    PayloadTooLargeError,
    PubSubError,
    Veto,
    VetoError,
)
from .xmpp.events import Event, Item
from .core.hooks import Hook
from .host import Host, connect, get_host
from .core.publishing import Publish, Retract

if TYPE_CHECKING:
    from .xmpp.client import Client

__version__ = "0.1.0"

__all__ = ["Client", "ConnectError", "Event", "Hook", "HookCreateError", "HooknbError", "Host",
           "Item", "PayloadTooLargeError", "PubSubError", "Publish", "Retract", "Veto", "VetoError", "connect",
           "get_host", "load_ipython_extension", "__version__"]


def __getattr__(name: str) -> Any:
    """``hooknb.Client``, imported on first use: it brings slixmpp, which the commands that do not
    connect (``hooknb pubsub hook list``...) do without."""
    if name == "Client":
        from .xmpp.client import Client

        return Client
    raise AttributeError(f"module 'hooknb' has no attribute {name!r}")


def load_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%load_ext hooknb``: register the ``%hook`` / ``%%hook`` magics."""
    from .frontends.magics import load_ipython_extension as load

    load(ipython)
