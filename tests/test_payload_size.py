"""A publish larger than the server takes is refused before it is sent, in one line, from the API,
the magics (``test_magics.py``) and the command line; the connection stays up and a publish at the limit works.

The limit is the one the server advertises in its stream features (XEP-0478), else the client's
``max_bytes`` (1 MiB unless set).  The session's server advertises none (Prosody 0.12, ejabberd
23.01); ``limits_server`` is a Prosody that advertises a small limit of its own (as Prosody 13
does), and enforces it.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from helpers import TEN_MIB, payload
from processes import hooknb

from hooknb.xmpp import loop as _loop
from hooknb import server as srv
from hooknb.xmpp.connection import DEFAULT_MAX_BYTES
from hooknb.errors import PayloadTooLargeError, PubSubError

pytestmark = pytest.mark.integration
SERVER_LIMIT = 256 << 10  # limits_server's stanza size limit, below the 1 MiB default


@pytest.fixture(scope="module")
def limits_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[srv.ServerInfo]:
    """A Prosody (whatever --server says: only Prosody is made to advertise here) that takes
    stanzas of up to SERVER_LIMIT bytes and says so in its stream features."""
    directory = tmp_path_factory.mktemp("xmpp-limits")
    info = srv.start(directory, ["alice"], kind="prosody", stanza_limit=SERVER_LIMIT, stream_limits=True)
    yield info
    srv.stop(directory)


def test_a_10_mib_publish_is_refused_in_one_line_and_the_connection_stays_up(make_host, connect, server, node):
    client, service = connect(make_host()), server.pubsub
    client.create_node(node, service)
    assert client.max_bytes == DEFAULT_MAX_BYTES  # the server advertises no limit
    with pytest.raises(PayloadTooLargeError) as refused:
        client.publish(node, payload(TEN_MIB, service, node, "big"), item_id="big", service=service)
    assert str(refused.value) == (
        f"publish to node {node!r} on {service} not sent: the item takes 10,485,760 bytes, over the "
        "1,048,576-byte limit for servers that advertise none (raise it with --max-bytes or max_bytes=)")
    assert refused.value.condition == "payload-too-big"
    assert client.state == "connected" and client.reconnects == 0
    at_limit = payload(DEFAULT_MAX_BYTES, service, node, "fits")
    assert client.publish(node, at_limit, item_id="fits", service=service) == "fits"
    with pytest.raises(PayloadTooLargeError):
        client.publish(node, payload(DEFAULT_MAX_BYTES + 1, service, node, "fits"), item_id="fits", service=service)
    (item,) = client.get_items(node, service, item_ids=["fits"])
    assert item.payload == at_limit.replace("'", '"')
    assert client.state == "connected" and client.reconnects == 0


def test_max_bytes_sets_the_limit_where_the_server_advertises_none(make_host, account, server, node):
    jid, password = account("roomy")
    client = make_host().connect(jid, password, host=server.host, port=server.port, cafile=server.cafile,
                                 max_bytes=2 * DEFAULT_MAX_BYTES)
    service = server.pubsub
    client.create_node(node, service)
    two = payload(2 * DEFAULT_MAX_BYTES, service, node, "two")
    assert client.publish(node, two, item_id="two", service=service) == "two"
    with pytest.raises(PayloadTooLargeError, match="over the 2,097,152-byte limit for servers that"):
        client.publish(node, payload(2 * DEFAULT_MAX_BYTES + 1, service, node, "two"), item_id="two",
                       service=service)


def test_the_limit_the_server_advertises_wins_over_max_bytes(make_host, limits_server, node):
    info = limits_server
    options = {"host": info.host, "port": info.port, "cafile": info.cafile}
    default = make_host().connect(info.jid("alice"), info.accounts["alice"], **options)
    assert default.max_bytes == SERVER_LIMIT  # below the 1 MiB default
    default.create_node(node)
    with pytest.raises(PayloadTooLargeError) as refused:
        default.publish(node, payload(SERVER_LIMIT + 1, default.jid, node, "x"), item_id="x")
    assert str(refused.value).endswith(f"over the {SERVER_LIMIT:,}-byte limit that localhost advertises")
    # a publish at the limit hooknb measures is one the server takes (it would close the stream)
    assert default.publish(node, payload(SERVER_LIMIT, default.jid, node, "x"), item_id="x") == "x"
    assert default.state == "connected" and default.reconnects == 0

    small = make_host().connect(f"{info.jid('alice')}/small", info.accounts["alice"], max_bytes=1000, **options)
    assert small.max_bytes == SERVER_LIMIT  # above a max_bytes set lower: what the server says
    assert small.publish(node, payload(SERVER_LIMIT // 2, small.jid, node, "y"), item_id="y") == "y"


def test_the_advertised_limit_is_the_one_the_server_enforces(make_host, limits_server, node):
    """Sent anyway (past hooknb's check), a publish well over the limit makes the server close the
    stream: the limit hooknb keeps to is the one the server enforces (Prosody checks it between
    reads, of up to 1 MiB on the local server, so a stanza up to one read over may pass)."""
    info = limits_server
    client = make_host().connect(f"{info.jid('alice')}/raw", info.accounts["alice"], host=info.host,
                                 port=info.port, cafile=info.cafile)
    client.auto_reconnect = False
    client.create_node(node)
    over = ET.fromstring(payload(SERVER_LIMIT + (2 << 20), client.jid, node, "z"))
    request = client.xmpp.plugin["xep_0060"].publish
    with pytest.raises(PubSubError, match="the connection was lost before the server answered"):
        _loop.call(client._iq("publish", client.jid, node, request(client.jid, node, id="z", payload=over)))
    assert client.state == "reconnecting"


def test_the_command_line_refuses_in_one_line(home, account, server, tmp_path):
    jid, password = account("cli")
    node = f"cli-{uuid.uuid4().hex[:8]}"
    connection = ["--jid", jid, "--host", server.host, "--port", str(server.port), "--cafile", server.cafile]
    env, where = {"HOOKNB_PASSWORD": password}, ["-s", server.pubsub, "-n", node]
    assert hooknb("pubsub", "node", "create", *where, *connection, env=env).returncode == 0
    big = tmp_path / "big.xml"
    big.write_text(payload(TEN_MIB, server.pubsub, node, ""))
    result = hooknb("pubsub", "publish", *where, "-f", str(big), *connection, env=env)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"hooknb: publish to node {node!r} on {server.pubsub} not sent: the item takes "
                             "10,485,760 bytes, over the 1,048,576-byte limit for servers that advertise none "
                             "(raise it with --max-bytes or max_bytes=)\n")
    roomy = tmp_path / "roomy.xml"
    roomy.write_text(payload(2 * DEFAULT_MAX_BYTES, server.pubsub, node, "roomy"))
    result = hooknb("pubsub", "publish", *where, "-i", "roomy", "-f", str(roomy), *connection,
                    "--max-bytes", str(2 * DEFAULT_MAX_BYTES), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"published item 'roomy' to node {node!r} on {server.pubsub}\n"
