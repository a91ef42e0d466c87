"""Starting, stopping and adding accounts to a local server, whichever its kind."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from ..errors import HooknbError
from ..storage.trust import private_dir
from . import ejabberd, prosody
from .certs import certificates
from .info import (DOMAIN, KINDS, LOOPBACK, PUBSUB, RESUME_WINDOW, STANZA_LIMIT, ServerInfo, check_name, free_port,
                   new_password, read_info, save_info)
from .processes import is_running, server_process, wait_exit, wait_port


def start(directory: str | os.PathLike, accounts: list[str] | tuple[str, ...] = ("alice", "bob"),
          kind: str | None = None, storage: str | None = None, port: int | None = None,
          tls: bool | None = None, stanza_limit: int | None = None, stream_limits: bool | None = None,
          resume_window: int | None = None, timeout: float = 60.0) -> ServerInfo:
    """Start a local server in ``directory`` (created if needed) and return its description.

    Restarting in a directory that already holds a stopped server reuses its kind, storage,
    ports, TLS setting, certificates, accounts and stored data, so a restart keeps what the
    server had persisted.  ``kind`` is "prosody" (the default) or "ejabberd"; ``storage``
    ("internal", the default, or "memory") applies to Prosody's PubSub component; ``tls``
    (default True) requires STARTTLS on ``port`` and offers direct TLS on ``direct_tls_port``,
    ``tls=False`` accepts plaintext clients only.  ``stanza_limit``: the largest stanza in bytes
    (default 4 MiB); ``stream_limits`` (Prosody only): advertise it (XEP-0478).
    ``resume_window``: the seconds a cut stream's session is kept for its client to resume it
    (XEP-0198 stream management; default :data:`RESUME_WINDOW`; 0: never resumed, Prosody then
    offering no stream management at all, ejabberd offering it without resumption).
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
        passwords.setdefault(check_name(name), new_password())
    if tls is None:
        tls = old is None or old.cafile is not None
    stanza_limit = stanza_limit or (old.stanza_limit if old else STANZA_LIMIT)
    stream_limits = (old.stream_limits if old else False) if stream_limits is None else stream_limits
    if stream_limits and kind != "prosody":
        raise HooknbError(f"{kind} cannot advertise its stanza size limit here (stream_limits needs Prosody)")
    if resume_window is None:
        resume_window = old.resume_window if old else RESUME_WINDOW
    if resume_window < 0:
        raise HooknbError(f"the resumption window is {resume_window} s: give 0 or more seconds")
    port = port or (old.port if old else free_port())
    direct_tls_port = None
    if tls:
        direct_tls_port = old.direct_tls_port if old and old.direct_tls_port else free_port()
        while direct_tls_port == port:
            direct_tls_port = free_port()
    info = ServerInfo(host=LOOPBACK, port=port, domain=DOMAIN, pubsub=PUBSUB, accounts=passwords,
                      kind=kind, dir=str(d), storage=storage,
                      cafile=certificates(d) if tls else None, direct_tls_port=direct_tls_port,
                      stanza_limit=stanza_limit, stream_limits=stream_limits,
                      resume_window=resume_window, extra=dict(old.extra) if old else {})
    proc, log = (prosody.launch if kind == "prosody" else ejabberd.launch)(info)
    info.pid = proc.pid
    save_info(info)
    try:
        for listening in (info.port, info.direct_tls_port):
            if listening is not None:
                wait_port(listening, proc, timeout, log)
        if kind == "ejabberd":  # its accounts live in its database: create them now
            for name, password in info.accounts.items():
                ejabberd.register(info, name, password)
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
    if info is None or not server_process(info.pid, d):
        return False
    pids = [info.pid]
    if info.kind == "ejabberd" and (beam := ejabberd.beam(info)):
        pids.append(beam)
    os.kill(pids[-1], signal.SIGTERM)
    if not wait_exit(pids, d, timeout):
        for pid in pids:
            if server_process(pid, d):
                os.kill(pid, signal.SIGKILL)
        wait_exit(pids, d, timeout)
    return True


def add_account(info: ServerInfo, name: str, password: str | None = None) -> str:
    """Create account ``name`` on a running server; returns its password."""
    check_name(name)
    password = password or new_password()
    if info.kind == "prosody":
        prosody.write_account(Path(info.dir) / "data", info.domain, name, password)
    else:
        ejabberd.register(info, name, password)
    info.accounts[name] = password
    save_info(info)
    return password
