"""Progress bars (:mod:`hooknb.core.progress`, ``tqdm.auto``) on long work: a replay of many
items shows one, counting every item; short work and ``enabled = False`` show none."""

from __future__ import annotations

from hooknb.core import progress
from hooknb.core.hooks import HookSpec
from unit.fakes import ACCOUNT, SERVICE, FakeClient


def test_a_replay_of_many_items_shows_a_bar(host, monkeypatch, capsys):
    monkeypatch.setattr(progress, "enabled", True)  # pytest's stderr is no terminal
    bars = []
    make = progress.bar
    monkeypatch.setattr(progress, "bar", lambda *a, **k: bars.append(make(*a, **k)) or bars[-1])
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
