"""Plain helpers shared by several integration test modules (fixtures live in ``conftest.py``;
helpers that drive ``hooknb`` as a process live in ``processes.py``): payloads of a measured
size, nodes whose notifications hide the publisher, the delivery tests' node and items, the
one-line message of a magic's ``UsageError``, and :func:`eventually` for states no event
announces."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
from IPython.core.error import UsageError

from hooknb import server as srv
from hooknb.xmpp.operations import Operation, publish_size

TEN_MIB = 10 << 20
NODE_CONFIG = {"max_items": 250, "publish_model": "open"}  # the delivery tests' node


def payload(size: int, service: str, node: str, item_id: str) -> str:
    """A payload whose publish (to ``node`` of ``service`` as ``item_id``) measures ``size`` bytes."""
    base = publish_size(Operation("publish", service, node, item_id, ET.fromstring("<p xmlns='urn:t'>a</p>")))
    return f"<p xmlns='urn:t'>{'a' * (size - base + 1)}</p>"


def versioned_payload(item_id: str, version: int = 0) -> str:
    """The delivery tests' payload of ``item_id`` at ``version``."""
    return f'<n xmlns="urn:test">{item_id} v{version}</n>'


def hiding_node(client: Any, server: srv.ServerInfo, node: str) -> str:
    """Create ``node`` where notifications will not name the publisher; returns its service."""
    if server.kind == "prosody":
        client.create_node(node, srv.PUBSUB_HIDDEN)
        return srv.PUBSUB_HIDDEN
    client.create_node(node, server.pubsub, config={"itemreply": "none"})
    return server.pubsub


def usage_error(run: Callable[[], object]) -> str:
    """The one-line message of the UsageError that ``run()`` raises."""
    with pytest.raises(UsageError) as info:
        run()
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether ``predicate()`` became true within ``timeout`` seconds, looked at every 10 ms: for
    a state that no event announces (how many items wait in a lane)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
