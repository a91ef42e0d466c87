"""Per-run capture of what hooks print (:mod:`hooknb.core.capture`): each run's own output, whatever
thread or task wrote it, bounded, and nothing else's; writes outside runs go where they went."""

from __future__ import annotations

import asyncio
import io
import sys
import threading

import pytest

from hooknb.core import capture
from hooknb.core.capture import OUTPUT_MAX, Capture, Proxy


def use_console(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Make the process's stdout a StringIO (the proxy is installed over it on first use); done
    in the test itself, since pytest sets its own capture again between a fixture and the test."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setattr(capture, "echo", True)
    return out


def test_concurrent_runs_on_threads_keep_their_own_output(monkeypatch):
    console = use_console(monkeypatch)
    captures = [Capture() for _ in range(8)]
    start = threading.Barrier(len(captures))

    def run(n: int) -> None:
        with captures[n].active():
            start.wait()
            for line in range(200):
                print(f"run {n} line {line}")
            print(f"run {n} warns", file=sys.stderr)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(captures))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, cap in enumerate(captures):
        expected = "".join(f"run {n} line {line}\n" for line in range(200)) + f"run {n} warns\n"
        assert cap.text() == expected
    assert isinstance(sys.stdout, Proxy) and isinstance(sys.stderr, Proxy)
    assert console.getvalue().count("\n") == 8 * 200, "outside a kernel, runs echo to the console"


def test_concurrent_runs_as_tasks_keep_their_own_output(monkeypatch):
    use_console(monkeypatch)

    async def run(cap: Capture, n: int) -> None:
        with cap.active():
            for line in range(50):
                print(f"task {n} line {line}")
                await asyncio.sleep(0)  # the other tasks write in between

    async def main() -> list[Capture]:
        caps = [Capture() for _ in range(5)]
        await asyncio.gather(*(run(c, n) for n, c in enumerate(caps)))
        return caps

    for n, cap in enumerate(asyncio.run(main())):
        assert cap.text() == "".join(f"task {n} line {line}\n" for line in range(50))


def test_writes_outside_runs_pass_through_untouched(monkeypatch):
    console = use_console(monkeypatch)
    cap = Capture()
    with cap.active():
        print("in the run")
    print("after the run")
    assert cap.text() == "in the run\n"
    assert console.getvalue() == "in the run\nafter the run\n"
    assert Capture().text() is None, "a run that printed nothing has no output"


def test_output_is_bounded_with_a_marker(monkeypatch):
    use_console(monkeypatch)
    cap = Capture()
    with cap.active():
        sys.stdout.write("é" * OUTPUT_MAX)  # two bytes each in UTF-8
        print("lost")
    text = cap.text()
    kept, _, marker = text.rpartition("\n[… ")
    assert kept == "é" * (OUTPUT_MAX // 2)
    assert marker == f"{OUTPUT_MAX + 5} more bytes of output not kept]\n"
    assert len(kept.encode()) == OUTPUT_MAX


def test_no_echo_keeps_output_off_the_console(monkeypatch):
    console = use_console(monkeypatch)
    monkeypatch.setattr(capture, "echo", False)
    cap = Capture()
    with cap.active():
        print("only in the journal")
    assert cap.text() == "only in the journal\n" and console.getvalue() == ""


def test_the_proxy_is_the_stream_for_everything_else(monkeypatch):
    use_console(monkeypatch)
    capture.install()
    assert isinstance(sys.stdout, Proxy)
    sys.stdout.writelines(["a", "b\n"])
    assert sys.stdout.getvalue() == "ab\n"  # the wrapped stream's own method
    capture.install()
    assert not isinstance(object.__getattribute__(sys.stdout, "_stream"), Proxy), "never wrapped twice"


def test_outside_a_kernel_there_is_no_cell():
    assert capture.cell() is None


def test_a_cell_s_patched_write_never_sees_a_run_s_output(monkeypatch):
    """IPython replaces ``sys.stdout.write`` while a cell runs, to keep the cell's own output in
    its history: what a run prints meanwhile must not be taken for the cell's."""
    console = use_console(monkeypatch)
    capture.install()
    teed: list[str] = []
    original = sys.stdout.write

    def tee(text: str) -> int:
        teed.append(text)
        return original(text)

    sys.stdout.write = tee
    cap = Capture()

    def run() -> None:
        with cap.active():
            print("from the hook")

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    print("from the cell")
    sys.stdout.write = original
    print("after the cell")
    assert teed == ["from the cell", "\n"]
    assert cap.text() == "from the hook\n"
    assert console.getvalue() == "from the hook\nfrom the cell\nafter the cell\n"
    assert object.__getattribute__(sys.stdout, "_patched") is None


def test_what_goes_on_is_bounded_per_run_with_one_notice(monkeypatch):
    console = use_console(monkeypatch)
    monkeypatch.setattr(capture, "shown_max", 1000)
    cap = Capture()
    with cap.active():
        for _ in range(100):
            print("x" * 99)  # 100 bytes a line: 10,000 in all
    kept = cap.close("h1", "ok", None)
    shown = console.getvalue()
    assert shown.startswith("x" * 99 + "\n") and shown.count("x") == 1000 - 10
    notice = sys.stderr.getvalue()
    assert notice == ("[hooknb: 9,000 more bytes of this run's output not shown (limit: %config "
                      "HookMagics.output_limit = 1000); its first 8,192 bytes are kept: %hook output h1]\n")
    assert kept == cap.text() and kept.startswith("x" * 99)
    second = Capture()  # the bound is per run
    with second.active():
        print("y" * 99)
    assert second.close("h1", "ok", None) == "y" * 99 + "\n"
    assert console.getvalue().endswith("y" * 99 + "\n") and sys.stderr.getvalue() == notice


def test_a_failed_run_shows_one_bounded_line(monkeypatch):
    use_console(monkeypatch)
    cap = Capture()
    with cap.active():
        print("before the error")
    error = "ValueError: " + "a long message\nover lines " * 100
    assert cap.close("h2", "error", error) == "before the error\n", "the line is not the run's output"
    [line] = sys.stderr.getvalue().splitlines()
    assert line.startswith("hook h2 failed: ValueError: a long message over lines a long")
    assert line.endswith("… (traceback: %hook runs; output: %hook output h2)")
    assert len(line) == capture.ERROR_LINE_MAX
    assert capture.failure_line("h3", "timeout", "timed out after 2 s") == (
        "hook h3 timeout: timed out after 2 s (traceback: %hook runs; output: %hook output h3)")


def test_nothing_is_shown_when_the_run_does_not_forward(monkeypatch):
    use_console(monkeypatch)
    monkeypatch.setattr(capture, "echo", False)  # hooknb run: the runner logs the run instead
    cap = Capture()
    cap.close("h4", "error", "KeyError: 'x'")
    assert sys.stderr.getvalue() == ""
