"""Fixtures of the unit layer.  Unit tests open no network connection (a test that tries fails
and names the address), and never read the real data directory: ``$HOOKNB_HOME`` (where the
restrict policy is read from) is a private directory of the test.  ``host`` here is a Host with
no server (the integration layer's, in ``tests/conftest.py``, is on the session's server)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hooknb.host import Host
from hooknb.storage.store import Store
from unit.fakes import make_host


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any ``connect`` on a socket fails the test."""

    def refuse(_sock: socket.socket, address: object) -> None:
        raise AssertionError(f"a unit test tried to connect to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("HOOKNB_HOME", str(path))
    return path


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    """A Host on a scratch store, with no account connected; closed after the test."""
    made = make_host(tmp_path)
    yield made
    made.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A Store on a scratch file; closed after the test."""
    made = Store(tmp_path / "store.sqlite3")
    yield made
    made.close()
