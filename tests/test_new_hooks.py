"""New hooks start now: a hook never runs on an item published before it was created, however
it was made (the command line, which does not connect, or a connected notebook) and whatever
the node's earlier hooks left in the store.

``hooknb run`` and the notebook's host against the real local server; a component node of the
runner's account, published to by another account; python_file hooks appending the item ids
they ran on to a file of their own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from processes import appender, hooknb, lines, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def scene(hooked):
    """The delivery tests' scene (``hooked``, in conftest.py): the runner's account, its component
    node, a publisher."""
    return hooked


def create(scene, server, tmp_path: Path, name: str) -> tuple[str, Path]:
    """Store a persistent hook with the command line (no connection); (its id, its output file)."""
    out = tmp_path / f"{name}.ran"
    made = hooknb("pubsub", "hook", "create", "--jid", scene.jid, "-s", server.pubsub, "-n", scene.node,
                  "-P", appender(tmp_path / f"{name}.py", out))
    assert made.returncode == 0, made.stderr
    return made.stdout.split()[1], out


def delete(scene, server, hook_file: Path) -> None:
    gone = hooknb("pubsub", "hook", "delete", "--jid", scene.jid, "-s", server.pubsub, "-n", scene.node,
                  "-a", str(hook_file))
    assert gone.stdout == "1 hook(s) deleted\n", gone.stderr


def runs_x(scene, runner, out: Path) -> None:
    """Start a runner, publish X, wait until the hook writing ``out`` ran on it, stop."""
    proc = runner(scene.jid, scene.password)
    proc.wait_record("ready")
    scene.publish(["X"])
    wait_until(lambda: lines(out) == ["X"])
    assert proc.stop() == 0


def runs_only_b(scene, runner, hook_id: str, out: Path) -> None:
    """Start a runner and publish B: the hook runs on B, and nothing else runs at all."""
    proc = runner(scene.jid, scene.password)
    proc.wait_record("ready")
    scene.publish(["B"])
    proc.wait_record("run", hook=hook_id, item="B")
    assert lines(out) == ["B"]
    assert [r["item"] for r in proc.records("run")] == ["B"]
    assert proc.stop() == 0


def test_a_hook_made_on_the_command_line_skips_what_the_node_held(scene, runner, server, tmp_path):
    """The issue's case: A published, the hook created, the runner started, B published."""
    scene.publish(["A"])
    hook_id, out = create(scene, server, tmp_path, "new")
    runs_only_b(scene, runner, hook_id, out)


def test_a_deleted_hooks_position_is_not_where_a_new_hook_starts(scene, runner, server, tmp_path):
    """An earlier hook on the node ran up to X and was deleted; A was published while nothing
    hooked the node; a new hook there starts after A, not after X."""
    _old_id, old_out = create(scene, server, tmp_path, "old")
    runs_x(scene, runner, old_out)
    delete(scene, server, tmp_path / "old.py")
    scene.publish(["A"])
    new_id, new_out = create(scene, server, tmp_path, "new")
    runs_only_b(scene, runner, new_id, new_out)


def test_a_second_hook_skips_the_backlog_the_first_one_catches_up(scene, runner, server, tmp_path):
    """The node's first hook missed A while no runner ran; a second hook created after A runs
    neither A nor anything before it, the first one runs A; both run B."""
    _first_id, first_out = create(scene, server, tmp_path, "first")
    runs_x(scene, runner, first_out)
    scene.publish(["A"])
    second_id, second_out = create(scene, server, tmp_path, "second")
    proc = runner(scene.jid, scene.password)
    proc.wait_record("ready")
    wait_until(lambda: lines(first_out) == ["X", "A"])
    scene.publish(["B"])
    proc.wait_record("run", hook=second_id, item="B")
    wait_until(lambda: lines(first_out) == ["X", "A", "B"])
    assert lines(second_out) == ["B"]
    assert proc.stop() == 0


def test_a_hook_picked_up_live_then_catches_up_what_came_while_away(scene, runner, server, tmp_path):
    """The runner picks a new hook up while it runs (the node hooked already and quiet); after a
    restart, both hooks run what was published in between."""
    first_id, first_out = create(scene, server, tmp_path, "first")
    proc = runner(scene.jid, scene.password)
    proc.wait_record("ready")
    scene.publish(["X"])
    wait_until(lambda: lines(first_out) == ["X"])
    second_id, second_out = create(scene, server, tmp_path, "second")
    proc.wait_record("hook-added", hook=second_id)
    assert proc.stop() == 0
    scene.publish(["C"])
    proc = runner(scene.jid, scene.password)
    wait_until(lambda: lines(first_out) == ["X", "C"] and lines(second_out) == ["C"])
    assert proc.stop() == 0


def test_a_notebooks_persistent_hook_starts_at_creation_and_catches_up_after(scene, runner, make_host,
                                                                             connect, server, tmp_path):
    """The connected path (what ``%hook create -P`` and ``%%hook -P`` do): the node's position is
    taken when the hook is made, so a runner started later runs what came after, and only that."""
    scene.publish(["A"])
    notebook = make_host()
    connect(notebook, scene.jid, scene.password, resource="notebook")
    out = tmp_path / "nb.ran"
    hook = notebook.create_hook(scene.node, appender(tmp_path / "nb.py", out), service=server.pubsub,
                                persistent=True)
    notebook.close()
    scene.publish(["B"])
    proc = runner(scene.jid, scene.password)
    proc.wait_record("run", hook=hook.id, item="B")
    scene.publish(["C"])
    wait_until(lambda: lines(out) == ["B", "C"])
    assert proc.stop() == 0
