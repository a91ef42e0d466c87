"""Helpers for tests that drive ``hooknb`` as real subprocesses: the console script, hook files
that note what they ran, and a ``hooknb run`` whose JSON log is read line by line."""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCRIPT = shutil.which("hooknb", path=str(Path(sys.executable).parent))
HOOKNB = [SCRIPT] if SCRIPT else [sys.executable, "-m", "hooknb"]
JID = "alice@localhost"


def hooknb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the console script (with the test's $HOOKNB_HOME) and wait for it."""
    return subprocess.run([*HOOKNB, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def hook_file(path: Path, body: str) -> str:
    path.write_text(textwrap.dedent(body))
    path.chmod(0o644)
    return str(path)


def appender(path: Path, out: Path, delay: float = 0.0) -> str:
    """A python_file hook appending each item id to ``out`` (after ``delay`` seconds)."""
    return hook_file(path, f"""
        import time
        def hook(host, client, item):
            time.sleep({delay})
            with open({str(out)!r}, "a") as f:
                f.write(item.id + "\\n")
            return item.id
    """)


def recorder(path: Path, out: Path, delay: float = 0.0) -> str:
    """A python_file hook appending ``item-id payload-digest`` to ``out`` (after ``delay`` s)."""
    return hook_file(path, f"""
        import hashlib, time
        def hook(host, client, item):
            time.sleep({delay})
            digest = hashlib.sha256((item.payload or "").encode()).hexdigest()[:12]
            with open({str(out)!r}, "a") as f:
                f.write(item.id + " " + digest + "\\n")
    """)


def ran(out: Path) -> list[tuple[str, str]]:
    """The (item id, payload digest) pairs a :func:`recorder` hook ran, in order."""
    return [tuple(line.split()) for line in out.read_text().splitlines()] if out.exists() else []


def count(out: Path) -> collections.Counter:
    """How many times a :func:`recorder` hook ran each item id."""
    return collections.Counter(item for item, _digest in ran(out))


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return result


class RunnerProcess:
    """A ``hooknb run`` subprocess whose stdout is read line by line on a thread."""

    def __init__(self, args: list[str], env: dict[str, str], stderr: Path) -> None:
        self.err = stderr.open("w")
        self.proc = subprocess.Popen([*HOOKNB, "run", *args], stdout=subprocess.PIPE, stderr=self.err,
                                     stdin=subprocess.DEVNULL, text=True, env={**os.environ, **env})
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def records(self, event: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        """The JSON records logged so far, of one event and with these field values."""
        out = [json.loads(line) for line in list(self.lines)]
        return [r for r in out if (event is None or r["event"] == event)
                and all(r.get(k) == v for k, v in fields.items())]

    def wait_record(self, event: str, count: int = 1, timeout: float = 15.0, **fields: Any) -> dict[str, Any]:
        """Wait until ``count`` such records were logged; returns the last."""
        return wait_until(lambda: len(found := self.records(event, **fields)) >= count and found[-1],
                          timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.err.close()


def publish(client, node: str, service: str, *ids: str) -> None:
    for item_id in ids:
        client.publish(node, f"<n xmlns='urn:test'>{item_id}</n>", item_id=item_id, service=service)
