"""Connection options: where and how an account reaches its server, the same in the API
(``hooknb.connect(..., cafile=, direct_tls=)``), the ``%hook connect`` magic and the command line
(``--host --port --cafile --direct-tls --plaintext``).

* No host: the JID's domain is looked up in DNS, SRV records ``_xmpps-client._tcp`` (direct TLS)
  and ``_xmpp-client._tcp`` (STARTTLS), else the domain itself on port 5222 (5223 with direct
  TLS).  A port without a host means the JID's domain on that port.
* ``direct_tls``: TLS from the first byte (XEP-0368), chosen by itself for ports 5223 and 443;
  otherwise STARTTLS.
* ``cafile``: PEM certificates of the CAs to trust (a self-hosted server's own CA).
* ``plaintext``: no TLS at all, to a loopback host only.
* ``max_bytes``: the largest stanza to send to a server that does not advertise its own limit
  (XEP-0478); a publish above the limit in force is refused before it is sent.

:class:`ConnectOptions` checks its values when it is made and :meth:`ConnectOptions.check` the
JID, both before any connection; :func:`tls_context` is the TLS context a slixmpp client is
built with, :func:`apply` prepares the client;
:func:`describe_failure` turns TLS and certificate failures into one line.  slixmpp is imported
only when a JID is parsed or a client prepared (the commands that do not connect start faster).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import os
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import HooknbError

if TYPE_CHECKING:
    import slixmpp
    from slixmpp.xmlstream.resolver import ResolverProtocol

STARTTLS_PORT, DIRECT_TLS_PORT = 5222, 5223
#: Ports where TLS starts with the first byte: the XEP-0368 default, and 443 (the one port open
#: from restricted networks such as mybinder.org's).
DIRECT_TLS_PORTS = frozenset({DIRECT_TLS_PORT, 443})

#: The largest stanza sent to a server that does not advertise its limit (XEP-0478): 1 MiB.
DEFAULT_MAX_BYTES = 1 << 20


def _default_resolver(loop: asyncio.AbstractEventLoop) -> ResolverProtocol | None:
    from slixmpp.xmlstream.resolver import default_resolver

    return default_resolver(loop)


#: Makes the DNS resolver used for SRV lookups on a client's loop (aiodns, through slixmpp).
#: The seam for tests, which point it at a DNS server of their own.
new_resolver: Callable[[asyncio.AbstractEventLoop], ResolverProtocol | None] = _default_resolver

# OpenSSL's verification codes of the failures users meet
_UNTRUSTED = {2, 18, 19, 20, 21}  # unknown issuer, self-signed leaf or chain, cannot verify
_EXPIRED, _NOT_YET_VALID, _HOSTNAME_MISMATCH = 10, 9, 62
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names a loopback address (``localhost`` or 127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ConnectOptions:
    """How to reach an account's server; values are checked when the options are made."""

    host: str | None = None
    port: int | None = None
    cafile: str | None = None
    direct_tls: bool = False
    plaintext: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if self.host is not None and not self.host.strip():
            raise HooknbError("the host is empty: give a host name or address, or no --host")
        if self.port is not None and (isinstance(self.port, bool) or not isinstance(self.port, int)
                                      or not 1 <= self.port <= 65535):
            raise HooknbError(f"port {self.port!r} is out of range: give a port from 1 to 65535")
        if isinstance(self.max_bytes, bool) or not isinstance(self.max_bytes, int) or self.max_bytes < 1:
            raise HooknbError(f"max_bytes {self.max_bytes!r} is not a size: give a number of bytes")
        if self.plaintext and self.direct_tls:
            raise HooknbError("--plaintext and --direct-tls exclude each other")
        if self.plaintext and self.cafile:
            raise HooknbError("--cafile has no use with --plaintext (no TLS)")
        if self.cafile:
            object.__setattr__(self, "cafile", _check_cafile(self.cafile))

    @property
    def uses_dns(self) -> bool:
        """Whether the server's address comes from DNS (SRV records): no host, no port, TLS."""
        return self.host is None and self.port is None and not self.plaintext

    @property
    def uses_direct_tls(self) -> bool:
        """Whether TLS starts with the first byte (XEP-0368) rather than with STARTTLS."""
        return not self.plaintext and (self.direct_tls or self.port in DIRECT_TLS_PORTS)

    def check(self, jid: str) -> None:
        """Refuse a JID without a name and a domain, and plaintext to a non-loopback host."""
        parsed = account_jid(jid)
        if self.plaintext and not is_loopback(self.host or parsed.domain):
            raise HooknbError("--plaintext (no TLS) is only allowed to a loopback host, "
                              f"not {self.host or parsed.domain!r}")

    def address(self, domain: str) -> tuple[str | None, int | None]:
        """Where to connect for an account of ``domain``: (host, port), or (None, None) to look
        the domain up in DNS."""
        if self.uses_dns:
            return None, None
        default = DIRECT_TLS_PORT if self.direct_tls else STARTTLS_PORT
        return self.host or domain, self.port or default


def split_jid(jid: str) -> slixmpp.JID:
    """A slixmpp JID, with a clear error for a malformed one."""
    import slixmpp

    try:
        parsed = slixmpp.JID(jid)
    except Exception as exc:  # slixmpp raises InvalidJID
        raise HooknbError(f"not a valid JID: {jid!r} ({exc})") from None
    if not parsed.domain:
        raise HooknbError(f"not a valid JID: {jid!r}")
    return parsed


def account_jid(jid: str) -> slixmpp.JID:
    """:func:`split_jid` of an account's JID, which must have a name and a domain (``name@domain``)."""
    parsed = split_jid(jid)
    if not parsed.user:
        raise HooknbError(f"not an account JID: {jid!r} (expected name@domain)")
    return parsed


def _check_cafile(cafile: str) -> str:
    """The absolute path of a readable PEM file holding at least one certificate."""
    path = Path(cafile).expanduser()
    if not path.is_file():
        raise HooknbError(f"CA file {cafile} not found" if not path.exists()
                          else f"CA file {cafile} is not a file")
    if not os.access(path, os.R_OK):
        raise HooknbError(f"CA file {cafile} is not readable")
    try:  # a bare context: the system's CAs are not loaded for this check
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(path))
    except (ssl.SSLError, ValueError):
        raise HooknbError(f"CA file {cafile} holds no PEM certificate") from None
    return str(path.resolve())


class HideSasl(logging.Filter):
    """Blanks what SASL sends in slixmpp's stanza log (``SEND: <auth ...>``, ``<response>``): with
    the PLAIN mechanism that is the password, merely base64-encoded."""

    _PAYLOAD = re.compile(r"(<(auth|response)\b[^>]*>)[^<]+(</\2>)")

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.msg == "SEND: %s" and isinstance(record.args, tuple) and record.args
                and isinstance(record.args[0], str) and SASL_NS in record.args[0]):
            record.args = (self._PAYLOAD.sub(r"\1[hidden]\3", record.args[0]),)
        return True


def quiet_slixmpp() -> None:
    """Keep slixmpp's own log lines (e.g. "No appropriate login method.") from users: hooknb
    reports failures in its own one-line errors.  A level set on the ``slixmpp`` logger (by the
    user, or by ``hooknb --verbose``) is kept: that is how to see them, SASL payloads hidden."""
    logger = logging.getLogger("slixmpp")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.CRITICAL + 1)
    stream = logging.getLogger("slixmpp.xmlstream.xmlstream")
    if not any(isinstance(f, HideSasl) for f in stream.filters):
        stream.addFilter(HideSasl())


def tls_context(options: ConnectOptions) -> ssl.SSLContext:
    """The TLS context of a client with ``options``, given to slixmpp's constructor: the
    system's CAs and the CA file's certificates, made once per process and CA file (its
    contents: an edited file is read again) and shared by every client.  slixmpp would make its
    own for each client it builds, loading the system's CAs twice (0.15 s each time on the
    bench's machine, connect after connect), even for a plaintext connection, which gets a bare
    context here: it is never used.  slixmpp changes the context it is given only for the
    ciphers, client certificate or ``ca_certs`` set on it, which hooknb never sets."""
    if options.plaintext:
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not options.cafile:
        return _tls_context(None, None)
    try:
        stat = os.stat(options.cafile)
        return _tls_context(options.cafile, (stat.st_mtime_ns, stat.st_size, stat.st_ino))
    except (OSError, ssl.SSLError, ValueError):  # removed or spoilt since the options were made
        _check_cafile(options.cafile)  # says what is wrong with it now, in one line
        raise


@functools.lru_cache(maxsize=8)
def _tls_context(cafile: str | None, _version: tuple[int, int, int] | None) -> ssl.SSLContext:
    context = ssl.create_default_context()  # hostname checked, certificate required
    if cafile:
        context.load_verify_locations(cafile=cafile)
    return context


def apply(xmpp: slixmpp.ClientXMPP, options: ConnectOptions) -> None:
    """Prepare ``xmpp`` for ``options``, before ``xmpp.connect(*options.address(domain))``."""
    quiet_slixmpp()
    if options.plaintext:
        xmpp.enable_direct_tls = xmpp.enable_starttls = False
        xmpp.enable_plaintext = True
        xmpp.plugin["feature_mechanisms"].unencrypted_scram = True
        return
    xmpp.enable_plaintext = False
    if options.uses_direct_tls:
        xmpp.enable_direct_tls, xmpp.enable_starttls = True, False
        xmpp.default_port = DIRECT_TLS_PORT
    elif not options.uses_dns:
        # On an explicit host and port slixmpp 1.17 tries direct TLS first, then STARTTLS on the
        # same port.  On a STARTTLS port (the usual case) the direct TLS handshake fails with
        # [SSL: WRONG_VERSION_NUMBER]: a wasted round trip, and a misleading error when the
        # STARTTLS attempt fails too.  Direct TLS is asked for explicitly: STARTTLS only.
        xmpp.enable_direct_tls = False
    fallback = "xmpps-client" if options.uses_direct_tls else "xmpp-client"
    xmpp.get_dns_records = partial(_dns_records, xmpp, fallback)


async def _dns_records(xmpp: slixmpp.ClientXMPP, fallback: str, domain: str,
                       port: int | None = None) -> list[tuple[str, str, str, int]]:
    """slixmpp's ``get_dns_records``, through :data:`new_resolver`: the addresses of the SRV
    records of the services enabled on ``xmpp`` in the order of their priorities; without any,
    the domain itself on the default port as service ``fallback`` (slixmpp would try direct TLS,
    then STARTTLS, on that one port)."""
    from slixmpp.xmlstream.resolver import resolve

    services = [*(xmpp.tls_services if xmpp.enable_direct_tls else ()),
                *(xmpp.starttls_services if xmpp.enable_starttls else ())]
    records = await resolve(domain, port or xmpp.default_port, services=services,
                            resolver=new_resolver(xmpp.loop), use_ipv6=xmpp.use_ipv6,
                            use_aiodns=xmpp.use_aiodns, loop=xmpp.loop)
    return [(service or fallback, host, address, port) for service, host, address, port in records]


def describe_failure(error: BaseException | str, domain: str, where: str) -> str:
    """One line saying why connecting to ``where`` (for an account of ``domain``) failed, naming
    a certificate problem when there is one."""
    if isinstance(error, ssl.SSLCertVerificationError):
        code = error.verify_code
        if code in _UNTRUSTED:
            return f"certificate of {domain} not trusted: unknown CA (give --cafile)"
        if code == _HOSTNAME_MISMATCH:
            return f"certificate of {domain} is for another host name (wrong host name)"
        if code == _EXPIRED:
            return f"certificate of {domain} has expired"
        if code == _NOT_YET_VALID:
            return f"certificate of {domain} is not valid yet"
        return f"certificate of {domain} refused: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        reason = (error.reason or str(error)).replace("_", " ").lower()
        if error.reason == "WRONG_VERSION_NUMBER":
            return f"{where} does not speak direct TLS ({reason}): is it a STARTTLS port?"
        return f"TLS with {where} failed ({reason})"
    if isinstance(error, str) and error.startswith("No DNS record"):  # slixmpp's gaierror
        return f"{where} unreachable (host not found)"
    if isinstance(error, OSError):
        # asyncio's strerror is "Connect call failed (address)": name the errno instead
        detail = os.strerror(error.errno) if error.errno else str(error) or type(error).__name__
        return f"{where} unreachable ({detail[0].lower()}{detail[1:]})"
    return f"{where} unreachable ({error})"
