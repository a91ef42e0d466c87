"""The local server's process: found, spawned in a session of its own, waited for (its port
open, its exit), and whether it accepts connections."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from ..errors import HooknbError
from .info import LOOPBACK, ServerInfo


def require(binary: str, package: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)
    if not path:
        raise HooknbError(
            f"{binary} is not installed; install it with: sudo apt-get install -y {package}"
        )
    return path


def wait_port(port: int, proc: subprocess.Popen, timeout: float, log: Path) -> None:
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


def spawn(cmd: list[str], d: Path) -> subprocess.Popen:
    """Run the server in the foreground of a new session (it outlives this process); its
    output goes to ``d/stdout.log``."""
    with open(d / "stdout.log", "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=d)


def server_process(pid: int, d: Path) -> bool:
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


def wait_exit(pids: list[int], d: Path, timeout: float) -> bool:
    """Wait until none of ``pids`` is a live process of the server in ``d``; False on timeout."""
    deadline = time.monotonic() + timeout
    while any(server_process(pid, d) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def is_running(info: ServerInfo) -> bool:
    """Whether the server described by ``info`` accepts connections."""
    try:
        with socket.create_connection((info.host, info.port), timeout=0.5):
            return True
    except OSError:
        return False
