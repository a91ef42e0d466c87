"""Shared fixtures: one real local XMPP server per test session, fresh accounts and hosts per test.

The server is Prosody by default; ``--server ejabberd`` (or ``HOOKNB_TEST_SERVER=ejabberd``)
runs the same suite against ejabberd.  Each test gets its own accounts (so PEP nodes and
subscriptions never leak between tests) and its own :class:`hooknb.Host` with a private store.

Every test that uses the ``server`` fixture (directly or through ``account``, ``make_host``,
``connect``...) is marked ``integration`` here; tests that start a server, a kernel or a process
themselves are marked in their modules.  ``pytest -m "not integration"`` is the fast layer: a
test that is not marked ``integration`` and still starts a server fails.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import NODE_CONFIG, versioned_payload
from IPython.core.interactiveshell import InteractiveShell
from processes import RunnerProcess, hooknb, recorder

from hooknb import server as srv
from hooknb.frontends.magics import HookMagics
from hooknb.xmpp.client import Client
from hooknb.host import Host

_counter = itertools.count()
POOL = 400


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--server", default=os.environ.get("HOOKNB_TEST_SERVER", "prosody"),
                     choices=srv.KINDS, help="which XMPP server the integration tests run against")


def pytest_configure(config: pytest.Config) -> None:
    """No test reads or writes the user's keyring: the null backend (which holds nothing) unless a
    test asks for a keyring of its own (``keyring_backend``); processes the tests start inherit it.
    No default account comes from the environment either."""
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    os.environ.pop("HOOKNB_JID", None)  # the default account is the one a test connects


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``integration`` every test whose fixtures include the session's server."""
    for item in items:
        if "server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Outside ``integration`` tests (their fixtures of every scope included), starting a server
    is an error that names the test."""
    if item.get_closest_marker("integration"):
        return (yield)

    def refuse(*_args: object, **_kwargs: object) -> srv.ServerInfo:
        raise AssertionError(f"{item.nodeid} starts an XMPP server but is not marked integration")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(srv, "start", refuse)
        return (yield)


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[srv.ServerInfo]:
    """A real local XMPP server on a free loopback port, for the whole session."""
    kind = request.config.getoption("--server")
    directory = tmp_path_factory.mktemp(f"xmpp-{kind}")
    # Prosody 0.12 lets only admins create nodes on the pubsub component, and admins are fixed
    # when it starts: make a pool of accounts up front (cheap: one small file each).
    pool = [f"t{i}" for i in range(POOL)] if kind == "prosody" else []
    info = srv.start(directory, ["alice", "bob", *pool], kind=kind)
    yield info
    srv.stop(directory)


@pytest.fixture(scope="session")
def plaintext_server(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[srv.ServerInfo]:
    """A second local server, without TLS, for the tests of plaintext itself (started on first use)."""
    kind = request.config.getoption("--server")
    directory = tmp_path_factory.mktemp(f"xmpp-{kind}-plaintext")
    info = srv.start(directory, ["alice", "bob"], kind=kind, tls=False)
    yield info
    srv.stop(directory)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOOKNB_HOME for the test (0700: a looser one is refused as a source of code)."""
    path = tmp_path / "home"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("HOOKNB_HOME", str(path))
    return path


@pytest.fixture
def keyring_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A real keyring backend that works headless, keyrings.alt's file of passwords, in a scratch
    data directory: this process uses it, and the processes started with the returned environment
    (also set in ``os.environ``)."""
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    previous = keyring.get_keyring()  # the suite's null backend
    data = tmp_path / "keyring-data"
    data.mkdir(mode=0o700)
    env = {"XDG_DATA_HOME": str(data), "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    keyring.set_keyring(PlaintextKeyring())
    assert str(keyring.get_keyring().file_path).startswith(str(data))
    yield env
    keyring.set_keyring(previous)
    assert keyring.get_keyring().name == "null Keyring"


@pytest.fixture
def account(server: srv.ServerInfo) -> Callable[[str], tuple[str, str]]:
    """Make a fresh account on the server: ``account("alice")`` -> (jid, password)."""

    def make(prefix: str = "user") -> tuple[str, str]:
        if server.kind == "prosody":
            name = f"t{next(_counter)}"
            assert name in server.accounts, "the pool of test accounts is used up: raise POOL"
            return server.jid(name), server.accounts[name]
        name = f"{prefix}{next(_counter)}x{uuid.uuid4().hex[:6]}"
        return server.jid(name), srv.add_account(server, name)

    return make


@pytest.fixture
def make_host(home: Path, server: srv.ServerInfo) -> Iterator[Callable[[], Host]]:
    """Make Hosts (each with the test's store) and disconnect them all at the end."""
    hosts: list[Host] = []

    def make() -> Host:
        host = Host(store_path=str(home / "hooknb.sqlite3"))
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.close()


@pytest.fixture
def connect(server: srv.ServerInfo, account: Callable[[str], tuple[str, str]]) -> Callable[..., Client]:
    """``connect(host, jid=None, password=None, resource="", **options)``: connect an account (a
    fresh one by default) over STARTTLS, trusting the server's CA (``options``: more of
    :meth:`Host.aconnect`'s, e.g. ``max_bytes``)."""

    def do(host: Host, jid: str | None = None, password: str | None = None, resource: str = "",
           **options: Any) -> Client:
        if jid is None:
            jid, password = account("u")
        full = f"{jid}/{resource}" if resource else jid
        return host.connect(full, password, host=server.host, port=server.port, cafile=server.cafile, **options)

    return do


@pytest.fixture
def node() -> str:
    """A node name unique to the test."""
    return f"node-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def runner(home, server, tmp_path) -> Iterator[Callable[..., RunnerProcess]]:
    """``runner(jid, password, *extra, env=None, info=None)``: start ``hooknb run`` (JSON log unless
    told) for an account of the session's server (or of ``info``'s)."""
    started: list[RunnerProcess] = []

    def start(jid: str, password: str, *extra: str, env: dict[str, str] | None = None,
              info: srv.ServerInfo | None = None) -> RunnerProcess:
        info = info or server
        args = ["--jid", jid, "--host", info.host, "--port", str(info.port), "--cafile", info.cafile,
                *(extra or ("--log-format", "json"))]
        proc = RunnerProcess(args, {"HOOKNB_PASSWORD": password, **(env or {})},
                             tmp_path / f"runner{len(started)}.err")
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


@pytest.fixture
def pubsub_node(make_host, connect, server, node):
    """(publisher client, node): a node on the pubsub component, made by a fresh account."""
    publisher = connect(make_host())
    publisher.create_node(node, server.pubsub)
    return publisher, node


@pytest.fixture
def host(make_host: Callable[[], Host]) -> Host:
    """A Host on the test's store, with no account connected (``make_host`` closes it)."""
    return make_host()


@pytest.fixture
def hooked(make_host, connect, account, server, node, tmp_path):
    """The scene of the delivery tests (test_delivery, test_new_hooks): the runner's account owns
    a node (open to publishers), a persistent recording hook is stored, and another account
    publishes.  Returns a namespace."""

    class Scene:
        jid, password = account("runner")
        out = tmp_path / "ran"
        hosts = [make_host(), make_host()]
        owner = connect(hosts[0], jid, password, resource="setup")
        publisher = connect(hosts[1])

        def leave_store(self) -> None:
            """Close this process's hosts on the runner's store (each keeps its account's lease
            there) and publish from a host on a store of its own: the runner's store is then the
            runner's alone."""
            for host in self.hosts:
                host.close()
            self.hosts.append(Host(store_path=str(tmp_path / "publisher" / "hooknb.sqlite3")))
            self.publisher = connect(self.hosts[-1])

        def publish(self, ids, version: int = 0) -> None:
            for item_id in ids:
                self.publisher.publish(node, versioned_payload(item_id, version), item_id=item_id,
                                       service=server.pubsub)

        def hook(self, delay: float = 0.0, env: dict[str, str] | None = None) -> None:
            path = recorder(tmp_path / "hook.py", self.out, delay)
            made = hooknb("pubsub", "hook", "create", "--jid", self.jid, "-s", server.pubsub, "-n", node,
                          "-P", path, env=env)
            assert made.returncode == 0, made.stderr

    scene = Scene()
    scene.node = node
    scene.owner.create_node(node, server.pubsub, config=NODE_CONFIG)
    yield scene
    for host in scene.hosts[2:]:  # those make_host did not make
        host.close()


# ----------------------------------------------------------------------------------- the magics

@pytest.fixture(scope="session")
def shell() -> InteractiveShell:
    """One IPython shell for the session, with ``%load_ext hooknb`` done."""
    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("hooknb")
    return ip


@pytest.fixture
def magics(shell: InteractiveShell, host: Host) -> Iterator[HookMagics]:
    """The registered magics, acting on the test's Host; settings restored afterwards."""
    m = shell.magics_manager.registry["HookMagics"]
    m.host = host
    yield m
    m.default_account = ""
    m.refresh_rate = 10.0
    m.host = None


@pytest.fixture
def hook(shell: InteractiveShell, magics: HookMagics) -> Callable[[str], object]:
    """``hook("create -n x ...")`` runs ``%hook create -n x ...``."""
    return lambda line: shell.run_line_magic("hook", line)


@pytest.fixture
def alice(hook: Callable[[str], object], account: Callable[[str], tuple[str, str]],
          server: srv.ServerInfo) -> str:
    """A fresh account connected with ``%hook connect``."""
    jid, password = account("alice")
    hook(f"connect {jid} --password={password} --host {server.host} --port {server.port} "
         f"--cafile {server.cafile}")
    return jid
