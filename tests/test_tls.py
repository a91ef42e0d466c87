"""Connecting over TLS to the real local server: STARTTLS and direct TLS with the server's CA,
each certificate failure as one line (unknown CA, a certificate for another name, an expired one),
SRV resolution through a DNS server of the test's own, plaintext only to loopback, and the
checks made before any connection."""

from __future__ import annotations

import logging
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiodns
import pytest
import slixmpp
import trustme
from dnslib import QTYPE, RR, SRV, DNSRecord

from hooknb.xmpp import connection
from hooknb import server as srv
from hooknb.xmpp.client import Client
from hooknb.xmpp.connection import ConnectOptions
from hooknb.errors import ConnectError, HooknbError

pytestmark = pytest.mark.integration

UNKNOWN_CA = "certificate of localhost not trusted: unknown CA (give --cafile)"


def encryption(client: Client) -> str:
    """How the client's stream is encrypted: "starttls", "direct" or "none"."""
    if client.xmpp.transport.get_extra_info("ssl_object") is None:
        return "none"
    return "starttls" if "starttls" in client.xmpp.features else "direct"


# ------------------------------------------------------------------------- with the server's CA

def test_starttls_with_the_servers_ca(make_host, account, server):
    jid, password = account("s")
    client = make_host().connect(jid, password, host=server.host, port=server.port, cafile=server.cafile)
    assert client.state == "connected" and encryption(client) == "starttls"


def test_direct_tls_with_the_servers_ca(make_host, account, server):
    jid, password = account("d")
    client = make_host().connect(jid, password, host=server.host, port=server.direct_tls_port,
                                 cafile=server.cafile, direct_tls=True)
    assert client.state == "connected" and encryption(client) == "direct"


def test_direct_tls_on_a_starttls_port_says_so_at_once(make_host, account, server):
    jid, password = account("w")
    started = time.monotonic()
    with pytest.raises(ConnectError) as info:
        make_host().connect(jid, password, host=server.host, port=server.port, cafile=server.cafile,
                            direct_tls=True)
    assert str(info.value) == (f"cannot connect {jid}: {server.host}:{server.port} does not speak direct "
                               "TLS (wrong version number): is it a STARTTLS port?")
    assert time.monotonic() - started < 5  # not the 20 s connection timeout


def test_starttls_on_a_direct_tls_port_says_so_at_once(make_host, account, server):
    """The server drops a client that starts with XML where it waits for a TLS handshake."""
    jid, password = account("s")
    host = make_host()
    started = time.monotonic()
    with pytest.raises(ConnectError) as info:
        host.connect(jid, password, host=server.host, port=server.direct_tls_port, cafile=server.cafile)
    assert str(info.value) == (f"cannot connect {jid}: {server.host}:{server.direct_tls_port} closed the "
                               "connection before the XMPP stream began: is it a direct TLS port? "
                               "(give --direct-tls)")
    assert time.monotonic() - started < 5
    assert host.clients == {}


def test_a_domain_the_server_does_not_serve_is_one_line(make_host, server):
    with pytest.raises(ConnectError) as info:
        make_host().connect("alice@other.test", "x", host=server.host, port=server.port,
                            cafile=server.cafile, timeout=10)
    assert str(info.value).startswith("cannot connect alice@other.test: the server closed the stream "
                                      "(host-unknown")


@pytest.mark.parametrize("direct", [False, True], ids=["starttls", "direct-tls"])
def test_an_unknown_ca_is_one_line(make_host, account, server, direct):
    jid, password = account("ca")
    host = make_host()
    with pytest.raises(ConnectError) as info:
        host.connect(jid, password, host=server.host,
                     port=server.direct_tls_port if direct else server.port, direct_tls=direct)
    assert str(info.value) == f"cannot connect {jid}: {UNKNOWN_CA}"
    assert host.clients == {}


# ------------------------------------------------------------- a server with another certificate

@dataclass
class OwnCertificate:
    """A server of its own whose certificate (signed by a CA of the test's) is wrong for it."""

    info: srv.ServerInfo
    problem: str  # the one line hooknb gives


@pytest.fixture(scope="module", params=["other-name", "expired"])
def own_certificate(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnCertificate]:
    """The certificate files are written before the first start: the server uses them as they are."""
    directory = tmp_path_factory.mktemp(f"xmpp-{request.param}")
    ca, now = trustme.CA(), datetime.now(timezone.utc)
    if request.param == "other-name":
        leaf = ca.issue_cert("other.test", not_after=now + timedelta(days=30))
        problem = "certificate of localhost is for another host name (wrong host name)"
    else:
        leaf = ca.issue_cert(srv.DOMAIN, srv.PUBSUB, not_before=now - timedelta(days=30),
                             not_after=now - timedelta(days=1))
        problem = "certificate of localhost has expired"
    leaf.private_key_pem.write_to_path(str(directory / srv.KEY_FILE))
    leaf.cert_chain_pems[0].write_to_path(str(directory / srv.CERT_FILE))
    ca.cert_pem.write_to_path(str(directory / srv.CA_FILE))
    info = srv.start(directory, ["alice"], kind=request.config.getoption("--server"))
    yield OwnCertificate(info, problem)
    srv.stop(directory)


@pytest.mark.parametrize("direct", [False, True], ids=["starttls", "direct-tls"])
def test_a_wrong_certificate_is_one_line_naming_it(make_host, own_certificate, direct):
    info = own_certificate.info
    assert Path(info.cafile).read_bytes() == (Path(info.dir) / srv.CA_FILE).read_bytes()
    jid = info.jid("alice")
    with pytest.raises(ConnectError) as error:
        make_host().connect(jid, info.accounts["alice"], host=info.host, cafile=info.cafile,
                            port=info.direct_tls_port if direct else info.port, direct_tls=direct)
    assert str(error.value) == f"cannot connect {jid}: {own_certificate.problem}"


# ------------------------------------------------------------------------------------------- SRV

@dataclass
class DnsServer:
    """A DNS server on a loopback UDP port answering the SRV records a test sets."""

    port: int = 0
    records: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)  # (priority, port, target)
    queries: list[str] = field(default_factory=list)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[DnsServer]:
    """A DNS server of the test's own; hooknb's resolver seam points aiodns (c-ares) at it."""
    state = DnsServer()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            query = DNSRecord.parse(data)
            name = str(query.q.qname).rstrip(".")
            state.queries.append(f"{name} {QTYPE[query.q.qtype]}")
            reply = query.reply()
            if query.q.qtype == QTYPE.SRV:
                for priority, port, target in state.records.get(name, []):
                    reply.add_answer(RR(query.q.qname, QTYPE.SRV, ttl=60,
                                        rdata=SRV(priority=priority, weight=0, port=port, target=target)))
            sock.sendto(reply.pack(), self.client_address)

    udp = socketserver.ThreadingUDPServer((srv.LOOPBACK, 0), Handler)
    state.port = udp.server_address[1]
    thread = threading.Thread(target=udp.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(connection, "new_resolver", lambda loop: aiodns.DNSResolver(
        nameservers=[f"{srv.LOOPBACK}:{state.port}"], loop=loop, tries=1, timeout=1.0))
    yield state
    udp.shutdown()
    udp.server_close()
    thread.join(5)


BOTH_QUERIES = {"_xmpps-client._tcp.localhost SRV", "_xmpp-client._tcp.localhost SRV"}


def test_without_a_host_the_srv_record_is_used(make_host, account, server, dns):
    dns.records["_xmpp-client._tcp.localhost"] = [(0, server.port, "localhost.")]
    jid, password = account("srv")
    client = make_host().connect(jid, password, cafile=server.cafile)
    assert client.state == "connected" and encryption(client) == "starttls"
    assert set(dns.queries) == BOTH_QUERIES


@pytest.mark.parametrize("direct_priority, starttls_priority, expected",
                         [(0, 10, "direct"), (10, 0, "starttls")])
def test_srv_records_are_tried_by_priority(make_host, account, server, dns, direct_priority,
                                           starttls_priority, expected):
    dns.records["_xmpps-client._tcp.localhost"] = [(direct_priority, server.direct_tls_port, "localhost.")]
    dns.records["_xmpp-client._tcp.localhost"] = [(starttls_priority, server.port, "localhost.")]
    jid, password = account("prio")
    client = make_host().connect(jid, password, cafile=server.cafile)
    assert encryption(client) == expected


def test_direct_tls_without_a_host_asks_for_xmpps_client_only(make_host, account, server, dns):
    dns.records["_xmpps-client._tcp.localhost"] = [(0, server.direct_tls_port, "localhost.")]
    jid, password = account("xmpps")
    client = make_host().connect(jid, password, cafile=server.cafile, direct_tls=True)
    assert encryption(client) == "direct"
    assert set(dns.queries) == {"_xmpps-client._tcp.localhost SRV"}


def test_every_srv_address_failing_is_one_line(make_host, account, server, dns):
    closed = srv.free_port()
    dns.records["_xmpp-client._tcp.localhost"] = [(0, closed, "localhost.")]
    jid, password = account("dead")
    with pytest.raises(ConnectError) as info:
        make_host().connect(jid, password, cafile=server.cafile, timeout=10)
    assert str(info.value) == f"cannot connect {jid}: localhost unreachable (connection refused)"


# ------------------------------------------------------------------------------------- plaintext

@pytest.mark.parametrize("address", [{"host": "localhost"}, {"host": "127.0.0.1"}, {}],
                         ids=["localhost", "127.0.0.1", "the-jid-domain"])
def test_plaintext_to_loopback_is_accepted(make_host, plaintext_server, address):
    info = plaintext_server
    client = make_host().connect(info.jid("alice"), info.accounts["alice"], port=info.port,
                                 plaintext=True, **address)
    assert client.state == "connected" and encryption(client) == "none"
    assert (info.cafile, info.direct_tls_port) == (None, None)


def test_plaintext_to_a_server_that_requires_tls_fails_at_once_with_one_line(make_host, server, account):
    jid, password = account("plain")
    started = time.monotonic()
    with pytest.raises(ConnectError) as info:
        make_host().connect(jid, password, host=server.host, port=server.port, plaintext=True)
    assert str(info.value) == f"cannot connect {jid}: {server.host}:{server.port} requires TLS (STARTTLS): " \
                              "drop --plaintext"
    assert time.monotonic() - started < 5  # it waited out the 20 s timeout before


# ------------------------------------------------------------------------- checks before connecting

@pytest.mark.parametrize("options, message", [
    ({"port": 99999}, "port 99999 is out of range: give a port from 1 to 65535"),
    ({"port": 0}, "port 0 is out of range: give a port from 1 to 65535"),
    ({"host": ""}, "the host is empty: give a host name or address, or no --host"),
    ({"cafile": "/nonexistent/ca.pem"}, "CA file /nonexistent/ca.pem not found"),
    ({"plaintext": True, "direct_tls": True}, "--plaintext and --direct-tls exclude each other"),
    ({"plaintext": True, "cafile": "ca.pem"}, "--cafile has no use with --plaintext (no TLS)"),
])
def test_bad_options_are_refused_when_made(options, message):
    with pytest.raises(HooknbError) as info:
        ConnectOptions(**options)
    assert str(info.value) == message


def test_a_cafile_must_hold_a_certificate(tmp_path, server):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(HooknbError, match=f"^CA file {junk} holds no PEM certificate$"):
        ConnectOptions(cafile=str(junk))
    assert ConnectOptions(cafile=server.cafile).cafile == server.cafile


@pytest.mark.parametrize("jid, options, message", [
    ("alice", {}, "not an account JID: 'alice' (expected name@domain)"),
    ("alice@", {}, "not a valid JID: 'alice@'"),
    ("alice@example.org", {"plaintext": True, "host": None},
     "--plaintext (no TLS) is only allowed to a loopback host, not 'example.org'"),
    ("alice@localhost", {"plaintext": True, "host": "192.0.2.1"},
     "--plaintext (no TLS) is only allowed to a loopback host, not '192.0.2.1'"),
])
def test_bad_jids_are_refused_before_connecting(make_host, jid, options, message):
    host = make_host()
    with pytest.raises(HooknbError) as info:  # 192.0.2.1 (TEST-NET) would hang a connection
        host.connect(jid, "secret", **{"host": "192.0.2.1", **options})
    assert not isinstance(info.value, ConnectError)
    assert str(info.value).startswith(message)
    assert host.clients == {}


def test_tls_choice_on_a_real_slixmpp_client():
    def prepared(**options: object) -> slixmpp.ClientXMPP:
        xmpp = slixmpp.ClientXMPP("alice@example.org", "x")
        connection.apply(xmpp, ConnectOptions(**options))
        return xmpp

    def tls(xmpp: slixmpp.ClientXMPP) -> tuple[bool, bool, bool]:
        return xmpp.enable_direct_tls, xmpp.enable_starttls, xmpp.enable_plaintext

    assert tls(prepared(host="h", port=5222)) == (False, True, False)  # STARTTLS only
    assert tls(prepared(port=5269)) == (False, True, False)
    assert tls(prepared(host="h", port=5223)) == tls(prepared(host="h", port=443)) == (True, False, False)
    assert tls(prepared(host="h", direct_tls=True)) == (True, False, False)
    assert tls(prepared()) == (True, True, False)  # SRV: both services
    assert prepared(direct_tls=True).default_port == 5223
    assert tls(prepared(host="127.0.0.1", plaintext=True)) == (False, False, True)
    assert ConnectOptions(host="h", direct_tls=True).address("example.org") == ("h", 5223)
    assert ConnectOptions(port=5269).address("example.org") == ("example.org", 5269)
    assert ConnectOptions(plaintext=True).address("localhost") == ("localhost", 5222)
    assert ConnectOptions().address("example.org") == (None, None)


def test_slixmpp_log_lines_stay_quiet_unless_asked(make_host, account, server, caplog):
    caplog.set_level(logging.DEBUG)
    jid, _ = account("quiet")
    options = {"host": server.host, "port": server.port, "cafile": server.cafile}

    def slixmpp_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name.startswith("slixmpp")]

    with pytest.raises(ConnectError, match="authentication failed"):
        make_host().connect(jid, "wrong", **options)
    assert slixmpp_lines() == []
    caplog.set_level(logging.ERROR, logger="slixmpp")  # asked for
    with pytest.raises(ConnectError, match="authentication failed"):
        make_host().connect(jid, "wrong", **options)
    assert "No appropriate login method." in slixmpp_lines()
