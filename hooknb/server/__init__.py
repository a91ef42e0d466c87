"""A throwaway local XMPP server (Prosody by default, ejabberd on request) on a loopback port.

The server lives in a directory of its own: its configuration, data, log and a ``server.json``
describing it (host, port, domain, PubSub component JID, accounts and passwords, pid, CA file).
It is the embedded default of hooknb: the demo, the notebooks and the test suite all start one.

It speaks TLS: a private CA and a certificate for ``localhost`` (and ``pubsub.localhost``) are
made on the first start and kept in the directory (``ca.pem``, ``cert.pem``, ``cert.key``; the
key is readable by its owner only; files already there are used as they are).  The client port
requires STARTTLS and a second port offers direct TLS (XEP-0368); clients trust ``cafile``.
``tls=False`` (``--plaintext``) starts a server without TLS, for tests of plaintext itself.

Stanzas may take up to ``stanza_limit`` bytes (4 MiB unless told: Prosody's
``c2s_stanza_size_limit``, ejabberd's ``max_stanza_size``).  Prosody 0.12 does not tell clients
its limit; ``stream_limits=True`` adds a small module that advertises it in the stream features
(XEP-0478), as Prosody 13 does.

From the shell::

    python -m hooknb.server start --dir DIR [--accounts alice,bob] [--kind prosody|ejabberd]
                                  [--plaintext] [--stanza-limit BYTES] [--stream-limits]
    python -m hooknb.server stop --dir DIR

``start`` prints one JSON object and leaves the server running in the background.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import trustme

from ..errors import HooknbError
from ..storage.trust import private_dir, write_private

DOMAIN = "localhost"
PUBSUB = f"pubsub.{DOMAIN}"
#: Prosody only: a second PubSub component left as Prosody ships it (``expose_publisher = false``),
#: whose notifications and items never name the publisher (tests of ``--from`` use it).
PUBSUB_HIDDEN = f"pubsub-hidden.{DOMAIN}"
LOOPBACK = "127.0.0.1"
INFO_FILE = "server.json"
KINDS = ("prosody", "ejabberd")
#: The certificate files in a server's directory: the CA clients trust, the server's certificate
#: (with its chain) and its private key.
CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "cert.pem", "cert.key"
CERT_LIFETIME = timedelta(days=3650)
#: The largest stanza a local server takes unless told otherwise (4 MiB).
STANZA_LIMIT = 4 << 20


@dataclass
class ServerInfo:
    """What a client needs to reach a running local server (the JSON that ``start`` prints)."""

    host: str
    port: int
    domain: str
    pubsub: str
    accounts: dict[str, str]
    kind: str = "prosody"
    dir: str = ""
    pid: int = 0
    storage: str = "internal"
    cafile: str | None = None  # the CA that signed the server's certificate; None: no TLS
    direct_tls_port: int | None = None  # the direct TLS (XEP-0368) port; None: no TLS
    stanza_limit: int = STANZA_LIMIT  # the largest stanza a client may send, in bytes
    stream_limits: bool = False  # whether the server advertises stanza_limit (XEP-0478)
    extra: dict = field(default_factory=dict)  # not printed; ejabberd: its HTTP API port

    def jid(self, name: str) -> str:
        """The bare JID of account ``name``."""
        return f"{name}@{self.domain}"

    def public(self) -> dict:
        """The JSON object printed by ``start``."""
        return {k: v for k, v in asdict(self).items() if k != "extra"}


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)
    if not path:
        raise HooknbError(
            f"{binary} is not installed; install it with: sudo apt-get install -y {package}"
        )
    return path


def _wait_port(port: int, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip()[-300:] if log.exists() else ""
            raise HooknbError(f"the XMPP server exited with code {proc.returncode}: {tail} (see {log})")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise HooknbError(f"the XMPP server did not open port {port} within {timeout:.0f} s (see {log})")


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a file only its owner can read, from its creation on."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _certificates(d: Path) -> str:
    """The CA file of the server in ``d``.  On first use a CA is made and signs a certificate for
    the domain and the PubSub component; later starts keep the files as they are."""
    ca_file, cert_file, key_file = d / CA_FILE, d / CERT_FILE, d / KEY_FILE
    if not (ca_file.exists() and cert_file.exists() and key_file.exists()):
        ca = trustme.CA(organization_name="hooknb local server")
        # ten years: ejabberd 23.01 crashes on the timer of trustme's default (the year 3000)
        leaf = ca.issue_cert(DOMAIN, PUBSUB, not_after=datetime.now(timezone.utc) + CERT_LIFETIME)
        _write_private(key_file, leaf.private_key_pem.bytes())
        cert_file.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
        ca_file.write_bytes(ca.cert_pem.bytes())
    return str(ca_file)


def _spawn(cmd: list[str], d: Path) -> subprocess.Popen:
    """Run the server in the foreground of a new session (it outlives this process); its
    output goes to ``d/stdout.log``."""
    with open(d / "stdout.log", "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=d)


def _server_process(pid: int, d: Path) -> bool:
    """Whether ``pid`` is a live process of the server living in ``d`` (its command line names
    ``d``, so a recycled pid never matches).  Zombies count as dead; ours are reaped here."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state != "Z" and str(d).encode() in cmdline


def _wait_exit(pids: list[int], d: Path, timeout: float) -> bool:
    """Wait until none of ``pids`` is a live process of the server in ``d``; False on timeout."""
    deadline = time.monotonic() + timeout
    while any(_server_process(pid, d) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --------------------------------------------------------------------------------------- Prosody

PROSODY_CONFIG = """\
-- generated by hooknb.server: a throwaway loopback-only Prosody
daemonize = false
run_as_root = true
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = "{dir}/prosody.log" }} }}
interfaces = {{ "{loopback}" }}
local_interfaces = {{ "{loopback}" }}
c2s_ports = {{ {port} }}
{tls}
s2s_ports = {{}}
http_ports = {{}}
https_ports = {{}}
component_ports = {{}}
admin_interfaces = {{}}
plugin_paths = {{ "{dir}" }}
modules_enabled = {{ "roster", "saslauth", "disco", "pep", "ping", "posix"{tls_module}{limits_module} }}
modules_disabled = {{ "s2s", "admin_shell", "offline" }}
authentication = "internal_plain"
storage = "internal"
admins = {{ {admins} }}
limits = {{ c2s = {{ rate = "100mb/s" }} }}
c2s_stanza_size_limit = {stanza_limit}
-- read up to 1 MiB at a time (4 KiB by default, with a pause of a millisecond or more between
-- reads: a stanza of 1 MB took 0.28 s to arrive instead of 0.03 s)
network_default_read_size = 1048576
pep_max_items = 1000

VirtualHost "{domain}"

Component "{pubsub}" "pubsub"
    storage = "{storage}"
    expose_publisher = true
    pubsub_max_items = 10000

Component "{pubsub_hidden}" "pubsub"
    storage = "{storage}"
"""


# Prosody 0.12 does not advertise its stanza size limit; Prosody 13's mod_c2s does (XEP-0478).
# This module does the same, after mod_c2s (lower priority), unless the limit is already there:
# the limit in force at each step (10,000 bytes before authentication, then stanza_limit).
PROSODY_LIMITS_MODULE = "hooknb_stream_limits"
PROSODY_LIMITS = """\
-- generated by hooknb.server: advertise the stanza size limit (XEP-0478), as Prosody 13 does
local xmlns_limits = "urn:xmpp:stream-limits:0";
module:hook("stream-features", function (event)
	local origin, features = event.origin, event.features;
	if not origin.type:match("^c2s") or not origin.stanza_size_limit then return; end
	if features:get_child("limits", xmlns_limits) then return; end
	features:tag("limits", { xmlns = xmlns_limits })
		:text_tag("max-bytes", string.format("%d", origin.stanza_size_limit)):up();
end, -100);
"""

PROSODY_TLS = """\
c2s_direct_tls_ports = {{ {direct_tls_port} }}
c2s_require_encryption = true
allow_unencrypted_plain_auth = false
ssl = {{ certificate = {cert}, key = {key} }}
certificates = {dir}"""

PROSODY_PLAINTEXT = """\
c2s_direct_tls_ports = {}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true"""


def _lua_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _encode_host(host: str) -> str:
    """Prosody's datamanager escapes every non-alphanumeric byte of a host as %xx."""
    return "".join(c if c.isalnum() else f"%{ord(c):02x}" for c in host)


def _prosody_write_account(data: Path, domain: str, name: str, password: str) -> None:
    accounts = data / _encode_host(domain) / "accounts"
    accounts.mkdir(parents=True, exist_ok=True)
    write_private(accounts / f"{name}.dat", f"return {{\n\t[\"password\"] = {_lua_str(password)};\n}};\n")


def _prosody_launch(info: ServerInfo) -> tuple[subprocess.Popen, Path]:
    binary = _require("prosody", "prosody")
    d = Path(info.dir)
    (d / "data").mkdir(parents=True, exist_ok=True)
    admins = ", ".join(_lua_str(info.jid(n)) for n in info.accounts)
    cfg = d / "prosody.cfg.lua"
    tls = PROSODY_PLAINTEXT if info.cafile is None else PROSODY_TLS.format(
        direct_tls_port=info.direct_tls_port, cert=_lua_str(str(d / CERT_FILE)),
        key=_lua_str(str(d / KEY_FILE)), dir=_lua_str(str(d)))
    cfg.write_text(PROSODY_CONFIG.format(
        dir=d, loopback=LOOPBACK, port=info.port, tls=tls,
        tls_module="" if info.cafile is None else ', "tls"', domain=info.domain, pubsub=info.pubsub,
        pubsub_hidden=PUBSUB_HIDDEN, admins=admins, storage=info.storage, stanza_limit=info.stanza_limit,
        limits_module=f', "{PROSODY_LIMITS_MODULE}"' if info.stream_limits else ""))
    if info.stream_limits:
        (d / f"mod_{PROSODY_LIMITS_MODULE}.lua").write_text(PROSODY_LIMITS)
    for name, password in info.accounts.items():
        _prosody_write_account(d / "data", info.domain, name, password)
    return _spawn([binary, "--config", str(cfg)], d), d / "prosody.log"


# -------------------------------------------------------------------------------------- ejabberd

EJABBERD_CONFIG = """\
# generated by hooknb.server: a throwaway loopback-only ejabberd
hosts:
  - "{domain}"
loglevel: info
{tls}
  -
    port: {api_port}
    ip: "{loopback}"
    module: ejabberd_http
    request_handlers:
      /api: mod_http_api
api_permissions:
  "accounts from loopback":
    from:
      - mod_http_api
    who:
      ip: 127.0.0.1/8
    what:
      - register
      - change_password
access_rules:
  local:
    allow: all
  c2s:
    allow: all
  pubsub_createnode:
    allow: all
shaper_rules:
  c2s_shaper: none
auth_method: internal
auth_password_format: plain
modules:
  mod_admin_extra: {{}}
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_caps: {{}}
  mod_pubsub:
    hosts:
      - "{pubsub}"
    access_createnode: pubsub_createnode
    ignore_pep_from_offline: false
    last_item_cache: false
    max_items_node: 10000
    plugins:
      - "flat"
      - "pep"
    default_node_config:
      itemreply: publisher
      publish_model: open
      notify_retract: true
      notify_delete: true
      notify_config: true
      max_payload_size: 4194304
"""

EJABBERD_C2S = """\
  -
    port: {port}
    ip: "{loopback}"
    module: ejabberd_c2s
    {tls}
    max_stanza_size: {stanza_limit}
    shaper: none"""

EJABBERD_TLS = """\
certfiles:
  - "{cert}"
  - "{key}"
listen:
{c2s}
{direct_tls}"""

EJABBERD_PLAINTEXT = """\
certfiles: []
listen:
{c2s}"""

# Sourced by ejabberdctl (it replaces Debian's /etc/default/ejabberd, which forces the system
# config and pid file): the Erlang distribution and epmd listen on loopback only.  EXEC_CMD
# keeps the node running as the invoking user, like the Prosody instance: run as root,
# ejabberdctl would otherwise su to "ejabberd", who cannot reach files under a private parent
# directory (a test's 0700 temporary directory, /root).
EJABBERDCTL_CONFIG = """\
# generated by hooknb.server
EXEC_CMD=as_current_user
ERLANG_NODE={node}
EJABBERD_PID_PATH={dir}/db/ejabberd.pid
ERL_EPMD_ADDRESS={loopback}
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -kernel inet_dist_use_interface {{{erl_loopback}}}"
"""


def _ejabberd_node(d: Path) -> str:
    """The Erlang node name of the server in ``d``: stable (its Mnesia data is bound to it) and
    unique per directory."""
    digest = hashlib.sha1(str(d).encode()).hexdigest()[:12]
    return f"hooknb{digest}@localhost"


def _ejabberd_api(info: ServerInfo, command: str, args: dict[str, str], timeout: float = 10.0) -> int:
    """Call ejabberd's HTTP API (loopback only); returns the HTTP status (200 or 409, conflict)."""
    request = urllib.request.Request(
        f"http://{LOOPBACK}:{info.extra['api_port']}/api/{command}", data=json.dumps(args).encode(),
        headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    deadline = time.monotonic() + timeout
    while True:
        try:
            opener.open(request, timeout=timeout).close()
            return 200
        except urllib.error.HTTPError as exc:
            if exc.code == 409:
                return 409
            raise HooknbError(f"ejabberd refused {command} for {args.get('user')}@{info.domain}: "
                              f"{exc.read().decode(errors='replace')[:300]}") from None
        except urllib.error.URLError as exc:  # the HTTP listener may open just after c2s
            if time.monotonic() > deadline:
                raise HooknbError(f"ejabberd's HTTP API does not answer: {exc.reason}") from None
            time.sleep(0.05)


def _ejabberd_register(info: ServerInfo, name: str, password: str) -> None:
    """Create account ``name``, or set its password if it exists (as Prosody's files do)."""
    if _ejabberd_api(info, "register", {"user": name, "host": info.domain, "password": password}) == 409:
        _ejabberd_api(info, "change_password", {"user": name, "host": info.domain, "newpass": password})


def _ejabberd_launch(info: ServerInfo) -> tuple[subprocess.Popen, Path]:
    d = Path(info.dir)
    binary = _require("ejabberdctl", "ejabberd")
    etc, db, logs = d / "etc", d / "db", d / "log"
    for sub in (etc, db, logs):
        sub.mkdir(exist_ok=True)
    erl_loopback = LOOPBACK.replace(".", ",")
    (etc / "ejabberdctl.cfg").write_text(EJABBERDCTL_CONFIG.format(
        node=_ejabberd_node(d), dir=d, loopback=LOOPBACK, erl_loopback=erl_loopback))
    (etc / "inetrc").write_text(f'{{lookup, ["file", "native"]}}.\n'
                                f'{{host, {{{erl_loopback}}}, ["localhost"]}}.\n')
    info.extra.setdefault("api_port", free_port())
    if info.cafile is None:
        tls = EJABBERD_PLAINTEXT.format(c2s=EJABBERD_C2S.format(
            port=info.port, loopback=LOOPBACK, tls="starttls: false", stanza_limit=info.stanza_limit))
    else:
        tls = EJABBERD_TLS.format(
            cert=d / CERT_FILE, key=d / KEY_FILE,
            c2s=EJABBERD_C2S.format(port=info.port, loopback=LOOPBACK, tls="starttls_required: true",
                                    stanza_limit=info.stanza_limit),
            direct_tls=EJABBERD_C2S.format(port=info.direct_tls_port, loopback=LOOPBACK, tls="tls: true",
                                           stanza_limit=info.stanza_limit))
    (etc / "ejabberd.yml").write_text(EJABBERD_CONFIG.format(
        domain=info.domain, tls=tls, api_port=info.extra["api_port"], loopback=LOOPBACK,
        pubsub=info.pubsub))
    return _spawn([binary, "--config-dir", str(etc), "--config", str(etc / "ejabberd.yml"),
                   "--spool", str(db), "--logs", str(logs), "--node", _ejabberd_node(d),
                   "foreground-quiet"], d), d / "stdout.log"


def _ejabberd_beam(info: ServerInfo) -> int | None:
    """The pid of the Erlang VM (``su`` puts it in a session of its own, out of our reach)."""
    with contextlib.suppress(OSError, ValueError):
        return int((Path(info.dir) / "db" / "ejabberd.pid").read_text())
    return None


# ------------------------------------------------------------------------------------ public API

def read_info(directory: str | os.PathLike) -> ServerInfo | None:
    """The description of the server living in ``directory``, or None if there is none."""
    path = Path(directory) / INFO_FILE
    if not path.exists():
        return None
    return ServerInfo(**json.loads(path.read_text()))


def _save(info: ServerInfo) -> None:
    """Write ``server.json`` (it holds the accounts' passwords: 0600, whatever the umask)."""
    write_private(Path(info.dir) / INFO_FILE, json.dumps(asdict(info), indent=1))


def _check_name(name: str) -> str:
    if not name.isalnum():
        raise HooknbError(f"account names must be letters and digits, got {name!r}")
    return name


def is_running(info: ServerInfo) -> bool:
    """Whether the server described by ``info`` accepts connections."""
    try:
        with socket.create_connection((info.host, info.port), timeout=0.5):
            return True
    except OSError:
        return False


def start(directory: str | os.PathLike, accounts: list[str] | tuple[str, ...] = ("alice", "bob"),
          kind: str | None = None, storage: str | None = None, port: int | None = None,
          tls: bool | None = None, stanza_limit: int | None = None, stream_limits: bool | None = None,
          timeout: float = 60.0) -> ServerInfo:
    """Start a local server in ``directory`` (created if needed) and return its description.

    Restarting in a directory that already holds a stopped server reuses its kind, storage,
    ports, TLS setting, certificates, accounts and stored data, so a restart keeps what the
    server had persisted.  ``kind`` is "prosody" (the default) or "ejabberd"; ``storage``
    ("internal", the default, or "memory") applies to Prosody's PubSub component; ``tls``
    (default True) requires STARTTLS on ``port`` and offers direct TLS on ``direct_tls_port``,
    ``tls=False`` accepts plaintext clients only.  ``stanza_limit``: the largest stanza in bytes
    (default 4 MiB); ``stream_limits`` (Prosody only): advertise it (XEP-0478).
    """
    d = Path(directory).resolve()
    private_dir(d)
    old = read_info(d)
    if old is not None and is_running(old):
        return old
    kind = kind or (old.kind if old else "prosody")
    storage = storage or (old.storage if old else "internal")
    if kind not in KINDS:
        raise HooknbError(f"unknown server kind {kind!r}; choose one of {', '.join(KINDS)}")
    passwords = dict(old.accounts) if old else {}
    for name in (a.strip() for a in accounts if a.strip()):
        passwords.setdefault(_check_name(name), new_password())
    if tls is None:
        tls = old is None or old.cafile is not None
    stanza_limit = stanza_limit or (old.stanza_limit if old else STANZA_LIMIT)
    stream_limits = (old.stream_limits if old else False) if stream_limits is None else stream_limits
    if stream_limits and kind != "prosody":
        raise HooknbError(f"{kind} cannot advertise its stanza size limit here (stream_limits needs Prosody)")
    port = port or (old.port if old else free_port())
    direct_tls_port = None
    if tls:
        direct_tls_port = old.direct_tls_port if old and old.direct_tls_port else free_port()
        while direct_tls_port == port:
            direct_tls_port = free_port()
    info = ServerInfo(host=LOOPBACK, port=port, domain=DOMAIN, pubsub=PUBSUB, accounts=passwords,
                      kind=kind, dir=str(d), storage=storage,
                      cafile=_certificates(d) if tls else None, direct_tls_port=direct_tls_port,
                      stanza_limit=stanza_limit, stream_limits=stream_limits, extra=dict(old.extra) if old else {})
    proc, log = (_prosody_launch if kind == "prosody" else _ejabberd_launch)(info)
    info.pid = proc.pid
    _save(info)
    try:
        for listening in (info.port, info.direct_tls_port):
            if listening is not None:
                _wait_port(listening, proc, timeout, log)
        if kind == "ejabberd":  # its accounts live in its database: create them now
            for name, password in info.accounts.items():
                _ejabberd_register(info, name, password)
    except BaseException:
        stop(d)
        raise
    return info


def stop(directory: str | os.PathLike, timeout: float = 20.0) -> bool:
    """Stop the server living in ``directory`` and wait until it has exited; False if none was
    running.  The server gets SIGTERM (the Erlang VM of ejabberd then stops ejabberd cleanly;
    its ``epmd`` stays) and SIGKILL if it has not exited within ``timeout`` seconds."""
    d = Path(directory).resolve()
    info = read_info(d)
    if info is None or not _server_process(info.pid, d):
        return False
    pids = [info.pid]
    if info.kind == "ejabberd" and (beam := _ejabberd_beam(info)):
        pids.append(beam)
    os.kill(pids[-1], signal.SIGTERM)
    if not _wait_exit(pids, d, timeout):
        for pid in pids:
            if _server_process(pid, d):
                os.kill(pid, signal.SIGKILL)
        _wait_exit(pids, d, timeout)
    return True


def new_password() -> str:
    """A random password for a scratch account, never starting with ``-``: one that did (one in 64
    of ``token_urlsafe``) read as an option in ``--password PASSWORD``."""
    password = secrets.token_urlsafe(9)
    return password if not password.startswith("-") else "p" + password[1:]


def add_account(info: ServerInfo, name: str, password: str | None = None) -> str:
    """Create account ``name`` on a running server; returns its password."""
    _check_name(name)
    password = password or new_password()
    if info.kind == "prosody":
        _prosody_write_account(Path(info.dir) / "data", info.domain, name, password)
    else:
        _ejabberd_register(info, name, password)
    info.accounts[name] = password
    _save(info)
    return password


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m hooknb.server``."""
    parser = argparse.ArgumentParser(prog="python -m hooknb.server", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="start a local server in the background, print JSON")
    p_start.add_argument("--dir", required=True, help="directory holding the server's files")
    p_start.add_argument("--accounts", default="alice,bob", help="comma-separated account names")
    p_start.add_argument("--kind", choices=KINDS, default=None,
                         help="server (default: prosody, or the kind already in --dir)")
    p_start.add_argument("--storage", choices=("internal", "memory"), default=None,
                         help="storage of the PubSub component (default: internal)")
    p_start.add_argument("--port", type=int, default=None)
    p_start.add_argument("--plaintext", dest="tls", action="store_false", default=None,
                         help="no TLS: accept plaintext clients only (for tests of plaintext)")
    p_start.add_argument("--stanza-limit", type=int, default=None, metavar="BYTES",
                         help="the largest stanza clients may send (default 4 MiB)")
    p_start.add_argument("--stream-limits", action="store_true", default=None,
                         help="Prosody: advertise the stanza limit to clients (XEP-0478)")
    p_stop = sub.add_parser("stop", help="stop the server living in --dir")
    p_stop.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            info = start(args.dir, args.accounts.split(","), kind=args.kind, storage=args.storage,
                         port=args.port, tls=args.tls, stanza_limit=args.stanza_limit,
                         stream_limits=args.stream_limits)
            print(json.dumps(info.public()))
        else:
            print(json.dumps({"stopped": stop(args.dir)}))
    except HooknbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


