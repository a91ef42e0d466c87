"""Progress bars (:mod:`hooknb.core.progress`, ``tqdm.auto``) on long work: a replay of many
items shows one, counting every item; short work and ``enabled = False`` show none."""

from __future__ import annotations

import pytest
from libervia_fixtures import hooks_value, make_db, write_hook

from hooknb.core import progress
from hooknb.core.hooks import HookSpec
from hooknb.frontends import imports
from unit.fakes import ACCOUNT, SERVICE, FakeClient


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> list:
    """The bars made from now on (shown on pytest's stderr, which is no terminal)."""
    made: list = []
    make = progress.bar
    monkeypatch.setattr(progress, "enabled", True)
    monkeypatch.setattr(progress, "bar", lambda *a, **k: made.append(make(*a, **k)) or made[-1])
    return made


def test_a_replay_of_many_items_shows_a_bar(host, bars, monkeypatch, capsys):
    client = FakeClient()
    client.hold("news", *(f"i{n}" for n in range(120)))
    hook = host.engine.install(HookSpec.make(ACCOUNT, SERVICE, "news", "python_code", "item.id"))
    runs = host.replay(hook, client=client)
    assert len(runs) == 120 and {r.status for r in runs} == {"ok"}
    err = capsys.readouterr().err
    assert f"replay of hook {hook.id}:   0%" in err and "0/120" in err
    assert [(b.n, b.total) for b in bars] == [(120, 120)], "every item counted"

    client.hold("short", "a", "b")
    short = host.engine.install(HookSpec.make(ACCOUNT, SERVICE, "short", "python_code", "item.id"))
    assert len(host.replay(short, client=client)) == 2
    assert "replay of hook" not in capsys.readouterr().err, "short work shows no bar"
    assert not hasattr(bars[-1], "total")

    monkeypatch.setattr(progress, "enabled", False)
    host.replay(hook, client=client)
    assert capsys.readouterr().err == ""


def test_by_default_tqdm_shows_nothing_where_nobody_watches(capsys):
    with progress.bar(100, "work") as shown:
        for _ in range(100):
            shown.update()
    assert capsys.readouterr().err == "", "stderr is not a terminal here"


def test_an_import_of_many_hooks_shows_a_bar(host, bars, tmp_path, capsys):
    hook = write_hook(tmp_path / "h.py", tmp_path / "out.jsonl")
    nodes = {f"n{n}": hooks_value(("pubsub.example.org", "python_file", hook)) for n in range(60)}
    path = make_db(tmp_path / "libervia.db", {"default": ("alice@example.org/libervia", nodes)})
    plan = imports.libervia_hooks(host, str(path), "default")
    assert plan.created == 60 and [(b.n, b.total) for b in bars] == [(60, 60)]
    assert "import:   0%" in capsys.readouterr().err
