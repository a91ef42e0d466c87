"""The remote contract without Dask: what a hook run elsewhere gets (an item, offline stand-ins),
what it may return (Publish/Retract requests, performed by a thread hook too), its code loaded
once per digest, and the options that choose an executor.  The Dask executor itself is tested
against a real LocalCluster in tests/test_dask.py."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
import textwrap

import pytest

import hooknb
from hooknb.core import hooks
from hooknb.core import publishing
from hooknb.executors import remote
from hooknb.errors import HookCreateError, PubSubError
from hooknb.core.hooks import HookSpec
from hooknb.core.loading import sha256
from unit.fakes import ACCOUNT, SERVICE, FakeClient, event, make_host, on_loop


def shipped(type_: str, arg: str, source: bytes | None = None, **options) -> str:
    """Load code as a worker does; its key."""
    code = remote.Code(sha256(source if source is not None else arg), type_, arg, source, **options)
    remote.load(code)
    return code.key


def test_requests_are_a_publish_a_retract_or_a_list_of_only_them():
    p, r = hooknb.Publish("out", "<x/>", id="1"), hooknb.Retract("out", "1")
    assert publishing.requests(p) == [p] and publishing.requests((p, r)) == [p, r]
    assert publishing.requests([p, "text"]) == [] and publishing.requests([]) == [] and publishing.requests(None) == []
    assert publishing.requests(["a"]) == []


def test_a_remote_hook_gets_the_item_and_offline_host_and_client():
    digest = shipped("python_code", textwrap.dedent("""
        import hooknb
        hooknb.Publish("out", f"<seen xmlns='urn:t'>{item.id} {item.xml.text}</seen>", id=item.id)
    """))
    reply = remote.call(digest, event("n", "i1"), "tcp://w:1")
    assert reply.worker == "tcp://w:1" and reply.outcome.status == "ok" and reply.duration >= 0
    assert reply.outcome.result == hooknb.Publish("out", "<seen xmlns='urn:t'>i1 i1</seen>", id="i1")
    assert pickle.loads(pickle.dumps(reply)).outcome.result == reply.outcome.result
    used = remote.call(shipped("python_code", "client.publish('n', '<x/>')"), event("n", "i2"), "w")
    assert used.outcome.status == "error" and used.outcome.exc is None
    assert used.outcome.error.startswith("RemoteError: client.publish: a hook run by a worker process (Dask or "
                                         "process executor) has no live connection; return hooknb.Publish(...)")
    assert "host" in repr(remote.HOST)


def test_what_a_remote_hook_prints_comes_back_with_its_run():
    reply = remote.call(shipped("python_code", "print('on the worker', item.id)\nitem.id"), event("n", "p1"), "w")
    assert (reply.outcome.status, reply.outcome.result, reply.outcome.output) == ("ok", "p1", "on the worker p1\n")


def test_a_hook_file_runs_from_its_shipped_bytes_where_the_file_does_not_exist(tmp_path):
    source = b"import asyncio\nasync def hook(host, client, item):\n    await asyncio.sleep(0)\n    return item.id * 2\n"
    digest = shipped("python_file", str(tmp_path / "nowhere.py"), source)
    assert remote.call(digest, event("n", "ab"), "w").outcome.result == "abab"


def test_a_module_hook_is_imported_on_the_worker_and_a_pinned_change_is_refused(tmp_path, monkeypatch):
    (tmp_path / "remote_mod.py").write_text("def hook(host, client, item):\n    return 'module'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    real = sha256((tmp_path / "remote_mod.py").read_bytes())
    ran = remote.call(shipped("python", "remote_mod"), event("n", "i"), "w").outcome
    assert (ran.status, ran.result, ran.digest) == ("ok", "module", real)
    refused = remote.call(shipped("python", "remote_mod", expected="0" * 64, pin=True), event("n", "i"), "w")
    assert refused.outcome.status == "refused" and "pinned" in refused.outcome.error


def test_failures_unpicklable_results_and_missing_code_are_outcomes():
    raised = remote.call(shipped("python_code", "1 / 0"), event("n", "i"), "w").outcome
    assert raised.status == "error" and raised.error == "ZeroDivisionError: division by zero"
    assert "1 / 0" in raised.tb or "ZeroDivisionError" in raised.tb
    kept = remote.call(shipped("python_code", "(x for x in [1])"), event("n", "i"), "w").outcome
    assert kept.status == "error" and kept.error.startswith("the return value cannot be sent back from the worker")
    assert remote.call("no-such-digest", event("n", "i"), "w").outcome is None
    broken = remote.call(shipped("python_file", "/x/broken.py", b"def hook(:\n"), event("n", "i"), "w").outcome
    assert broken.status == "error" and "line 1" in broken.error


class PublishingClient(FakeClient):
    """A fake client that notes what it is asked to publish or retract (refusing node ``bad``)."""

    def __init__(self) -> None:
        super().__init__()
        self.done: list[tuple] = []

    async def apublish(self, node, payload, item_id=None, service=None):
        if node == "bad":
            raise PubSubError("publish to node 'bad' refused (forbidden)", "forbidden")
        self.done.append(("publish", node, payload, item_id, service))
        return item_id

    async def aretract(self, node, item_id, service=None):
        self.done.append(("retract", node, item_id, service))


def test_a_thread_hook_may_return_requests_too_and_a_refused_one_fails_the_run(tmp_path):
    host = make_host(tmp_path)
    try:
        code = ("import hooknb\n[hooknb.Publish('out', '<x/>', id=item.id), hooknb.Retract('out', 'old', "
                "service='svc')] if item.id != 'b' else hooknb.Publish('bad', '<x/>')")
        host.engine.install(HookSpec.make(ACCOUNT, SERVICE, "n", "python_code", code))
        client = PublishingClient()
        on_loop(host.engine.accept, client, [event("n", "a"), event("n", "b")])
        assert host.wait_runs(2, 5)
        ok, failed = host.runs.snapshot()
        assert ok.status == "ok" and ok.executor == "thread" and ok.worker is None and ok.queued >= 0
        assert client.done == [("publish", "out", "<x/>", "a", None), ("retract", "out", "old", "svc")]
        assert failed.status == "error" and "refused (forbidden)" in failed.error
    finally:
        host.close()


def test_executor_options_are_checked_and_stored():
    with pytest.raises(HookCreateError, match="unknown executor 'ray'; choose one of thread, dask"):
        hooks.check_executor("ray", 1)
    with pytest.raises(HookCreateError, match="at least 1, not 0"):
        hooks.check_executor("dask", 0)
    with pytest.raises(HookCreateError, match="a before hook runs inline, in this process"):
        hooks.check_executor("dask", 4, "before")
    spec = HookSpec.make(ACCOUNT, SERVICE, "n", "python_code", "1", executor="dask", concurrency=3, ordered=False)
    again = HookSpec.from_record(spec.to_record())
    assert (again.executor, again.concurrency, again.ordered) == ("dask", 3, False)
    old = spec.to_record()
    for key in ("executor", "concurrency", "ordered"):  # a hook stored before executors existed
        del old["options"][key]
    assert (HookSpec.from_record(old).executor, HookSpec.from_record(old).ordered) == ("thread", True)


def test_without_distributed_a_dask_hook_is_refused_with_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "distributed" else real(name, *a))
    with pytest.raises(HookCreateError, match=r"pip install 'hooknb\[dask\]'"):
        hooks.check_executor("dask", 8)


def test_the_front_ends_and_the_engine_do_not_import_dask():
    code = ("import sys, hooknb.frontends.cli, hooknb.frontends.magics, hooknb.frontends.widgets, hooknb.core.engine, hooknb.executors.dask_lane\n"
            "print(sorted(m for m in ('distributed', 'dask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
