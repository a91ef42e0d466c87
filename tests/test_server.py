"""The throwaway local server itself: the command line, missing binaries, account names, restarts.

Each test starts its own server in its own directory (not the session's shared one).  The
Prosody tests always run; the ejabberd variants run where ejabberd is installed (CI installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from hooknb import server as srv
from hooknb.errors import HooknbError
from hooknb.host import Host

pytestmark = pytest.mark.integration  # every test starts a server of its own

BINARIES = {"prosody": "prosody", "ejabberd": "ejabberdctl"}


def installed(kind: str) -> bool:
    binary = BINARIES[kind]
    return bool(shutil.which(binary) or os.path.exists(f"/usr/sbin/{binary}"))


KIND = pytest.mark.parametrize("kind", [
    pytest.param(kind, marks=pytest.mark.skipif(not installed(kind), reason=f"{kind} is not installed"))
    for kind in srv.KINDS])


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hooknb.server", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def accepts(port: int) -> bool:
    try:
        with socket.create_connection((srv.LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


def live_processes_of(directory: Path) -> list[int]:
    """Pids of the live (not zombie) processes whose command line names ``directory``."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z" and str(directory).encode() in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except (OSError, IndexError):
            continue
    return pids


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    """A server directory, whatever is left running in it stopped at the end."""
    path = tmp_path / "server"
    yield path
    srv.stop(path)


@KIND
def test_cli_start_prints_json_and_stop_stops(kind: str, directory: Path) -> None:
    started = cli("start", "--dir", str(directory), "--accounts", "alice,bob", "--kind", kind)
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert info["host"] == "127.0.0.1" and isinstance(info["port"], int)
    assert (info["domain"], info["pubsub"], info["kind"]) == ("localhost", "pubsub.localhost", kind)
    assert set(info["accounts"]) == {"alice", "bob"} and all(info["accounts"].values())
    assert accepts(info["port"]) and accepts(info["direct_tls_port"])
    assert info["cafile"] == str(directory.resolve() / srv.CA_FILE)
    again = cli("start", "--dir", str(directory), "--kind", kind)  # already running: same server
    assert json.loads(again.stdout)["port"] == info["port"]

    stopped = cli("stop", "--dir", str(directory))
    assert (stopped.returncode, json.loads(stopped.stdout)) == (0, {"stopped": True})
    assert not accepts(info["port"])
    assert live_processes_of(directory.resolve()) == []  # the Erlang VM too, for ejabberd
    assert json.loads(cli("stop", "--dir", str(directory)).stdout) == {"stopped": False}


def test_missing_prosody_is_a_clear_error_with_the_install_command(directory: Path, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    done = cli("start", "--dir", str(directory), env={**os.environ, "PATH": str(empty)})
    assert done.returncode == 2
    assert "prosody is not installed" in done.stderr
    assert "apt-get install -y prosody" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["bad name", "../etc", "a@b", "x/y", "é-"])
def test_account_names_must_be_letters_and_digits(directory: Path, name: str) -> None:
    with pytest.raises(HooknbError, match="letters and digits"):
        srv.start(directory, ["alice", name])
    assert srv.read_info(directory) is None  # refused before anything started


def test_cli_refuses_bad_account_names(directory: Path) -> None:
    done = cli("start", "--dir", str(directory), "--accounts", "alice,../bob")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: account names must be letters and digits, got '../bob'"
    assert srv.read_info(directory) is None


def test_add_account_refuses_bad_names_too(directory: Path) -> None:
    info = srv.start(directory, ["alice"])
    with pytest.raises(HooknbError, match="letters and digits"):
        srv.add_account(info, "../alice")
    assert set(srv.read_info(directory).accounts) == {"alice"}


@KIND
def test_restart_in_the_same_directory_keeps_data(kind: str, directory: Path, tmp_path: Path) -> None:
    info = srv.start(directory, ["alice"], kind=kind)
    password = srv.add_account(info, "carol")
    host = Host(store_path=str(tmp_path / "store.sqlite3"))
    options = {"host": info.host, "port": info.port, "cafile": info.cafile}
    try:
        alice = host.connect(info.jid("alice"), info.accounts["alice"], **options)
        alice.create_node("kept", info.pubsub)
        alice.publish("kept", "<x xmlns='urn:test'>persisted</x>", item_id="k1", service=info.pubsub)
    finally:
        host.disconnect(info.jid("alice"))
    certificates = {name: (directory / name).read_bytes() for name in (srv.CA_FILE, srv.CERT_FILE, srv.KEY_FILE)}
    assert srv.stop(directory)
    assert live_processes_of(directory.resolve()) == []

    again = srv.start(directory, ["alice"], kind=kind)
    assert (again.port, again.accounts) == (info.port, {"alice": info.accounts["alice"], "carol": password})
    assert (again.kind, again.direct_tls_port, again.cafile) == (kind, info.direct_tls_port, info.cafile)
    assert {name: (directory / name).read_bytes() for name in certificates} == certificates
    try:  # an account added later, over the direct TLS port kept by the restart
        carol = host.connect(again.jid("carol"), password, host=again.host, port=again.direct_tls_port,
                             cafile=again.cafile, direct_tls=True)
        items = carol.get_items("kept", again.pubsub)
    finally:
        host.disconnect(again.jid("carol"))
        host.store.close()
    assert [(e.item_id, e.payload) for e in items] == [("k1", '<x xmlns="urn:test">persisted</x>')]


@KIND
def test_the_certificate_is_made_for_the_domain_with_a_private_key(kind: str, directory: Path) -> None:
    info = srv.start(directory, ["alice"], kind=kind)
    assert stat.S_IMODE((directory / srv.KEY_FILE).stat().st_mode) == 0o600
    certificate = x509.load_pem_x509_certificate((directory / srv.CERT_FILE).read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [srv.DOMAIN, srv.PUBSUB]
    ca = x509.load_pem_x509_certificate(Path(info.cafile).read_bytes())
    assert certificate.issuer == ca.subject


def test_a_plaintext_server_stays_plaintext_across_restarts(directory: Path, tmp_path: Path) -> None:
    started = cli("start", "--dir", str(directory), "--accounts", "alice", "--plaintext")
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert (info["cafile"], info["direct_tls_port"]) == (None, None)
    assert srv.stop(directory)
    again = srv.start(directory, ["alice"])
    assert (again.port, again.cafile, again.direct_tls_port) == (info["port"], None, None)
    host = Host(store_path=str(tmp_path / "store.sqlite3"))
    try:
        client = host.connect(again.jid("alice"), again.accounts["alice"], host="localhost",
                              port=again.port, plaintext=True)
        assert client.xmpp.transport.get_extra_info("ssl_object") is None
    finally:
        host.close()
