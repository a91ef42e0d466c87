"""The unit layer never reads the real data directory: ``$HOOKNB_HOME`` (where the restrict
policy is read from) is a private directory of the test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("HOOKNB_HOME", str(path))
    return path
