"""Local XMPP servers for notebooks: the one Binder's ``start`` launched, or a throwaway one.

``local_server()`` uses the server living in ``$HOOKNB_SERVER_DIR`` when that names a running
one (Binder's ``start`` script sets it), and otherwise starts a local server in a temporary
directory, stopped by :meth:`LocalServer.stop` (or at the latest when Python exits)::

    from hooknb.local import local_server
    server = local_server()
    client = server.connect("alice")     # STARTTLS with the server's CA, through hooknb.get_host()
    ...
    server.stop()                        # only stops a server this process started

``scratch_server()`` is what the tutorials in ``notebooks/`` use, so that they never touch the
user's hooks: a hook store of their own (``$HOOKNB_HOME`` pointed at a new directory) and a
server of their own, even where ``$HOOKNB_SERVER_DIR`` names one (every local server's domain
is ``localhost``: a user's own hooks on ``alice@localhost`` would otherwise run on, or be
deleted by, a tutorial's).  Its :meth:`LocalServer.stop` removes both.

``cells()`` gives the first cells of a notebook that reaches a local server, whole (the README
starts with them); ``python -m hooknb.local [DIR]`` prints them, for the server that
``python -m hooknb.server start --dir DIR`` started when DIR is given, and says when a directory
named ``hooknb`` here would shadow the package in a kernel started from here.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import server as srv
from .xmpp.client import Client
from .errors import HooknbError
from .host import Host, get_host

#: The environment variable naming the directory of an already running server.
ENV = "HOOKNB_SERVER_DIR"


class LocalServer:
    """A running local server and its accounts; ``owned`` if this process started it."""

    def __init__(self, info: srv.ServerInfo, owned: bool, scratch: Path | None = None) -> None:
        self.info = info
        self.owned = owned
        #: The directory of a :func:`scratch_server` (its server and its ``$HOOKNB_HOME``).
        self.scratch = scratch
        self._home = os.environ.get("HOOKNB_HOME")  # given back by stop() if scratch
        self.host, self.port, self.domain, self.pubsub = info.host, info.port, info.domain, info.pubsub
        self.cafile, self.direct_tls_port = info.cafile, info.direct_tls_port

    def __repr__(self) -> str:
        origin = "started by this process" if self.owned else f"from ${ENV}"
        return f"<local XMPP server {self.host}:{self.port}, {self.domain}, {origin}>"

    def jid(self, name: str) -> str:
        """The bare JID of account ``name``."""
        return self.info.jid(name)

    def password(self, name: str) -> str:
        """The password of account ``name`` (created on the server if it does not exist)."""
        if name not in self.info.accounts:
            srv.add_account(self.info, name)
        return self.info.accounts[name]

    def connect(self, name: str, host: Host | None = None, resource: str = "") -> Client:
        """Connect account ``name`` (optionally as ``resource``) through ``host`` (default: the
        process-wide one): STARTTLS trusting the server's CA, or plaintext to a server started
        without TLS."""
        jid = f"{self.jid(name)}/{resource}" if resource else self.jid(name)
        return (host or get_host()).connect(jid, self.password(name), host=self.host, port=self.port,
                                            cafile=self.cafile, plaintext=self.cafile is None)

    def stop(self) -> None:
        """Stop the server and remove its directory if this process started it; else do nothing.
        A :func:`scratch_server` also removes its store and gives ``$HOOKNB_HOME`` back."""
        if self.owned and Path(self.info.dir).exists():
            srv.stop(self.info.dir)
            shutil.rmtree(self.info.dir, ignore_errors=True)
        if self.scratch is not None and self.scratch.exists():
            shutil.rmtree(self.scratch, ignore_errors=True)
            if self._home is None:
                os.environ.pop("HOOKNB_HOME", None)
            else:
                os.environ["HOOKNB_HOME"] = self._home

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.stop()


def local_server(accounts: tuple[str, ...] = ("alice", "bob"), directory: str | None = None) -> LocalServer:
    """The server running in ``directory`` (one that ``python -m hooknb.server start --dir
    DIRECTORY`` started: an error if none runs there), else the one ``$HOOKNB_SERVER_DIR`` names if
    it is running, else a new one in a temporary directory (with ``accounts``)."""
    if directory is not None:
        info = srv.read_info(directory)
        if info is None or not srv.is_running(info):
            raise HooknbError(f"no local server runs in {directory}: start one with "
                              f"python -m hooknb.server start --dir {directory}")
    directory = directory or os.environ.get(ENV)
    if directory:
        info = srv.read_info(directory)
        if info is not None and srv.is_running(info):
            server = LocalServer(info, owned=False)
            for name in accounts:
                server.password(name)
            return server
    directory = tempfile.mkdtemp(prefix="hooknb-server-")
    try:
        info = srv.start(directory, list(accounts))
    except HooknbError:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    server = LocalServer(info, owned=True)
    atexit.register(server.stop)
    return server


def scratch_server(accounts: tuple[str, ...] = ("alice", "bob")) -> LocalServer:
    """A new local server (with ``accounts``) and a new hook store, both in one new temporary
    directory, whatever ``$HOOKNB_HOME`` and ``$HOOKNB_SERVER_DIR`` say: call it first, before
    anything opens the store (``$HOOKNB_HOME`` names the scratch store from now on, for this
    process and those it starts).  :meth:`LocalServer.stop` (at the latest when Python exits)
    stops the server, removes the directory and gives ``$HOOKNB_HOME`` back its value."""
    scratch = Path(tempfile.mkdtemp(prefix="hooknb-scratch-"))
    home = scratch / "home"
    try:
        info = srv.start(scratch / "server", list(accounts))
    except HooknbError:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    server = LocalServer(info, owned=True, scratch=scratch)
    os.environ["HOOKNB_HOME"] = str(home)
    atexit.register(server.stop)
    return server


def cells(directory: str | None = None, account: str = "alice") -> list[str]:
    """The first cells of a notebook that connects ``account`` to a local server, whole: a new
    scratch server (and hook store) of the notebook's own, or the server running in ``directory``;
    then ``%load_ext hooknb`` and ``%hook connect`` with the server's address, CA and password."""
    start = ("from hooknb.local import scratch_server\n\n"
             "server = scratch_server()  # Prosody on loopback, accounts alice and bob, a hook store of its own"
             if directory is None else
             f"from hooknb.local import local_server\n\nserver = local_server(directory={str(directory)!r})")
    connect = (f'%load_ext hooknb\n%hook connect {{server.jid("{account}")}} '
               f'--password={{server.password("{account}")}} --host={{server.host}} --port={{server.port}} '
               "--cafile={server.cafile}")
    return [start, connect]


def shadowing(directory: str | os.PathLike = ".") -> Path | None:
    """A directory named ``hooknb`` in ``directory`` that is not this package (a checkout of the
    repository, say): Python started there imports it instead of the installed package, as a
    namespace package, and ``%load_ext hooknb`` says "The hooknb module is not an IPython
    extension".  None when there is none."""
    here = Path(directory, "hooknb")
    package = Path(__file__).resolve().parent
    if here.is_dir() and not (here / "__init__.py").exists() and here.resolve() != package:
        return here.resolve()
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m hooknb.local [DIR]``: print the first notebook cells for a local server."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["-h"], ["--help"]) or len(args) > 1:
        print("usage: python -m hooknb.local [DIR]\n\nPrint the first cells of a notebook that connects "
              "alice to a local server: a scratch server of its own, or the one that `python -m "
              "hooknb.server start --dir DIR` started.")
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    shadow = shadowing()
    if shadow is not None:
        print(f"warning: {shadow} is a directory named hooknb without __init__.py: a kernel started in "
              f"{Path.cwd()} imports it instead of hooknb, and %load_ext hooknb then says \"The hooknb "
              "module is not an IPython extension\": start Jupyter from another directory", file=sys.stderr)
    for number, cell in enumerate(cells(args[0] if args else None), 1):
        print(f"# --- cell {number} ---\n{cell}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
