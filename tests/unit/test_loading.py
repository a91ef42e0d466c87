"""The three loaders: a module's ``hook``, a file (loaded once, again when it changes, refused when
others can write it or own it), and code (a final expression is the result, top-level ``await``);
``make_loader``, ``normalize_arg`` and ``infer_type``."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import threading
import traceback
import types
import uuid
from pathlib import Path

import pytest

from hooknb.core import loading
from hooknb.errors import HookCreateError, TrustError
from hooknb.core.loading import (
    CodeLoader,
    FileLoader,
    ModuleLoader,
    infer_type,
    make_loader,
    normalize_arg,
    sha256,
)


def write(path: Path, source: str, mode: int = 0o644) -> Path:
    path.write_text(textwrap.dedent(source))
    path.chmod(mode)
    return path


def refusal(make, *args) -> str:
    """The one-line message of the error (HookCreateError, or TrustError for a file that went
    loose after creation) that ``make(*args)`` raises."""
    with pytest.raises((HookCreateError, TrustError)) as info:
        make(*args)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``module(source)`` writes a uniquely named importable module and returns (name, path)."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(source: str) -> tuple[str, Path]:
        name = f"hooknb_unit_{uuid.uuid4().hex[:8]}"
        return name, write(tmp_path / f"{name}.py", source)

    return make


# ------------------------------------------------------------------------------ python
def test_module_hook_is_called_with_host_client_and_item(module):
    name, path = module("def hook(host, client, item):\n    return (host, client, item)\n")
    fn, is_async, digest = make_loader("python", name).resolve()
    assert fn(1, 2, 3) == (1, 2, 3) and is_async is False and digest == sha256(path.read_bytes())


def test_an_async_module_hook_is_known_as_such(module):
    name, _ = module("async def hook(host, client, item):\n    return item\n")
    fn, is_async, _ = ModuleLoader(name).resolve()
    assert is_async and asyncio.run(fn(None, None, "x")) == "x"


@pytest.mark.parametrize("name", ["", "1abc", "a..b", "my-hooks", "a b"])
def test_a_module_name_must_be_dotted_identifiers(name):
    assert refusal(ModuleLoader, name) == f"{name!r} is not a Python module name"


@pytest.mark.parametrize("source, message", [
    ("x = 1 / 0\n", "failed while importing: ZeroDivisionError: division by zero"),
    ("x = 1\n", "has no `hook` function"),
    ("hook = 42\n", "`hook` in module '{name}' is not callable"),
])
def test_a_module_that_cannot_hook_is_refused(module, source, message):
    name, _ = module(source)
    assert message.format(name=name) in refusal(ModuleLoader, name)


def test_a_missing_module_is_refused():
    assert "cannot be imported: No module named 'no_such_module_here'" in refusal(
        ModuleLoader, "no_such_module_here")


# ------------------------------------------------------------------------------ python_file
def test_a_file_is_loaded_once_while_it_does_not_change(tmp_path):
    path = write(tmp_path / "hook.py", "def hook(host, client, item):\n    return 'v1'\n")
    loader = make_loader("python_file", str(path))
    first = loader.resolve()
    assert loader.resolve() == first and loader.loads == 1
    assert first[0](None, None, None) == "v1" and first[2] == sha256(path.read_bytes())


def test_hooks_on_one_file_share_its_compiled_code_but_each_runs_in_its_own_module(tmp_path):
    path = write(tmp_path / "hook.py", "SEEN = []\ndef hook(host, client, item):\n    SEEN.append(item)\n"
                 "    return len(SEEN)\n")
    first, second = FileLoader(str(path)), FileLoader(str(path))
    assert first.fn.__code__ is second.fn.__code__           # compiled once
    assert first.fn(None, None, "a") == 1 and first.fn(None, None, "b") == 2
    assert second.fn(None, None, "c") == 1                   # its own SEEN
    write(path, "def hook(host, client, item):\n    return 'edited'\n")
    assert FileLoader(str(path)).fn(None, None, None) == "edited"


def test_a_changed_file_is_loaded_again(tmp_path):
    path = write(tmp_path / "hook.py", "def hook(host, client, item):\n    return 'v1'\n")
    loader = FileLoader(str(path))
    write(path, "async def hook(host, client, item):\n    return 'version 2'\n")
    fn, is_async, digest = loader.resolve()
    assert loader.loads == 2 and is_async and asyncio.run(fn(None, None, None)) == "version 2"
    assert digest == sha256(path.read_bytes())


def test_a_touched_file_is_loaded_again(tmp_path):
    path = write(tmp_path / "hook.py", "def hook(host, client, item):\n    return 1\n")
    loader = FileLoader(str(path))
    stamp = path.stat().st_mtime_ns
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    loader.resolve()
    assert loader.loads == 2


def test_a_file_broken_by_an_edit_is_refused_until_repaired(tmp_path):
    path = write(tmp_path / "hook.py", "def hook(host, client, item):\n    return 1\n")
    loader = FileLoader(str(path))
    write(path, "def hook(host, client, item):\n    return (1,\n")  # another size: mtimes can be equal
    assert refusal(loader.resolve) == f"hook file {str(path)!r} line 2: '(' was never closed"
    write(path, "def hook(host, client, item):\n    return 'fixed'\n")
    assert loader.resolve()[0](None, None, None) == "fixed"


def test_a_deleted_file_is_reported(tmp_path):
    path = write(tmp_path / "hook.py", "def hook(host, client, item):\n    pass\n")
    loader = FileLoader(str(path))
    path.unlink()
    assert refusal(loader.resolve) == f"hook file {str(path)!r} does not exist any more"


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666, 0o620])
def test_a_file_others_can_write_is_refused(tmp_path, mode):
    path = write(tmp_path / "hook.py", "def hook(host, client, item):\n    pass\n", mode)
    assert refusal(FileLoader, str(path)) == (
        f"hook file {path} is group- or world-writable (mode {mode:o}): refusing it as a source of code; "
        f"fix: chmod go-w {path}")


def test_a_file_that_becomes_writable_by_others_is_refused_when_it_changes(tmp_path):
    path = write(tmp_path / "hook.py", "def hook(host, client, item):\n    pass\n")
    loader = FileLoader(str(path))
    write(path, "def hook(host, client, item):\n    return 'changed by someone else'\n", 0o666)
    assert "group- or world-writable" in refusal(loader.resolve)


def test_in_a_burst_the_file_is_looked_at_every_restat_seconds(tmp_path, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(loading, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    path = write(tmp_path / "hook.py", "def hook(host, client, item):\n    return 'v1'\n")
    loader = FileLoader(str(path))
    assert loader.resolve()[0](None, None, None) == "v1"  # looked at: fresh for RESTAT
    write(path, "def hook(host, client, item):\n    return 'edited, and others may write it'\n", 0o666)
    now[0] += loading.RESTAT / 2
    fn, _is_async, digest = loader.resolve(again=True)  # a run straight after: the code checked before
    assert fn(None, None, None) == "v1" and loader.loads == 1
    assert "group- or world-writable" in refusal(loader.resolve)  # after a wait: looked at
    write(path, "def hook(host, client, item):\n    return 'v3'\n")
    assert loader.resolve(again=True)[0](None, None, None) == "v3"  # a refusal is never cached
    write(path, "def hook(host, client, item):\n    return 'v4, a burst later'\n")
    now[0] += loading.RESTAT
    assert loader.resolve(again=True)[0](None, None, None) == "v4, a burst later"


def test_a_look_begun_before_another_refused_the_file_makes_no_burst_skip_the_next(tmp_path, monkeypatch):
    # two runs of one hook look at once (its lane's worker; "run once" on the loop): the first
    # reloads the edited file (a slow top level), the second is refused meanwhile
    entered, gate = threading.Event(), threading.Event()
    monkeypatch.setitem(sys.modules, "hooknb_test_gate", types.SimpleNamespace(entered=entered, gate=gate))
    path = write(tmp_path / "hook.py", "def hook(host, client, item):\n    return 'v1'\n")
    loader = FileLoader(str(path))
    write(path, "import hooknb_test_gate as g\ng.entered.set()\ng.gate.wait(10)\n"
                "def hook(host, client, item):\n    return 'v2'\n")
    slow = threading.Thread(target=loader.resolve)
    slow.start()
    assert entered.wait(10)
    path.chmod(0o666)
    assert "group- or world-writable" in refusal(loader.resolve)
    gate.set()
    slow.join(10)
    assert "group- or world-writable" in refusal(loader.resolve, True)  # still refused in a burst


def test_the_burst_window_counts_from_the_look_not_from_the_end_of_a_slow_reload(tmp_path, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(loading, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setitem(sys.modules, "hooknb_test_clock", types.SimpleNamespace(now=now))
    path = write(tmp_path / "hook.py", "def hook(host, client, item):\n    return 'v1'\n")
    loader = FileLoader(str(path))
    # the edited file's top level takes a second and makes the file world-writable meanwhile
    write(path, "import os, hooknb_test_clock as c\nc.now[0] += 1.0\nos.chmod(__file__, 0o666)\n"
                "def hook(host, client, item):\n    return 'v2'\n")
    assert loader.resolve()[0](None, None, None) == "v2"  # looked at while private, then loaded
    assert "group- or world-writable" in refusal(loader.resolve, True)  # that look is 1 s old


def test_a_file_owned_by_another_user_is_refused(tmp_path, monkeypatch):
    path = write(tmp_path / "hook.py", "def hook(host, client, item):\n    pass\n")
    monkeypatch.setattr(os, "geteuid", lambda: path.stat().st_uid + 1)
    assert refusal(FileLoader, str(path)).startswith(
        f"hook file {path} is owned by another user (") and "refusing it as a source of code" in refusal(
        FileLoader, str(path))


@pytest.mark.parametrize("source, message", [
    ("def hook(:\n", "line 1: invalid syntax"),
    ("import no_such_module_here\n", "failed while loading: ModuleNotFoundError: No module named"),
    ("x = 1\n", "has no `hook` function: it must define `def hook(host, client, item):`, called for each item"),
    ("print(item.id)\n", "NameError: name 'item' is not defined (it must define `def hook(host, client, item):`"),
    ("hook = 'text'\n", "is not callable"),
])
def test_a_file_that_cannot_hook_is_refused(tmp_path, source, message):
    path = write(tmp_path / "hook.py", source)
    assert message in refusal(FileLoader, str(path))


def test_a_missing_file_or_a_directory_is_refused(tmp_path):
    missing = str(tmp_path / "nope.py")
    assert refusal(FileLoader, missing) == f"hook file {missing!r} does not exist"
    assert refusal(FileLoader, str(tmp_path)) == f"hook file {str(tmp_path)!r} is not a regular file"


# ------------------------------------------------------------------------------ python_code
def test_a_final_expression_is_the_result():
    fn, is_async, digest = make_loader("python_code", "doubled = item * 2\ndoubled + 1").resolve()
    assert fn(None, None, 3) == 7 and not is_async and digest == sha256("doubled = item * 2\ndoubled + 1")


def test_code_without_a_final_expression_returns_none():
    assert CodeLoader("x = item").fn(None, None, 1) is None
    assert CodeLoader("if item:\n    item").fn(None, None, 1) is None


def test_code_sees_host_client_and_item_in_a_fresh_namespace_each_run():
    loader = CodeLoader("runs = globals().get('runs', 0) + 1\n(host, client, item, runs)")
    assert loader.fn("h", "c", "i") == ("h", "c", "i", 1)
    assert loader.fn("h", "c", "j") == ("h", "c", "j", 1)


def test_top_level_await_makes_an_async_hook_with_a_result():
    loader = CodeLoader("import asyncio\nawait asyncio.sleep(0)\nawait asyncio.sleep(0, result=item)")
    fn, is_async, _ = loader.resolve()
    assert is_async and asyncio.run(fn(None, None, "waited")) == "waited"


@pytest.mark.parametrize("source", ["", "   \n\t\n"])
def test_empty_code_is_refused(source):
    assert refusal(CodeLoader, source) == "the hook code is empty"


def test_a_syntax_error_names_the_line_counted_from_first_line():
    assert refusal(CodeLoader, "x = 1\ny = (\n", "<cell>", 10) == (
        "syntax error in hook code, line 11: '(' was never closed")


def test_a_compile_time_error_names_the_line_counted_from_first_line():
    assert refusal(CodeLoader, "x = 1\nreturn x", "<cell>", 10) == (
        "syntax error in hook code, line 11: 'return' outside function")


def test_a_runtime_error_points_at_the_line_counted_from_first_line():
    loader = CodeLoader("x = 1\nx / 0", "<cell 7>", 5)
    with pytest.raises(ZeroDivisionError) as info:
        loader.fn(None, None, None)
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (frame.filename, frame.lineno) == ("<cell 7>", 6)


# ------------------------------------------------------------------------------ helpers
def test_an_unknown_type_is_refused():
    assert refusal(make_loader, "perl", "x") == (
        "unknown hook type 'perl'; choose one of python, python_file, python_code")


def test_normalize_arg(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert normalize_arg("python_file", "~/hooks/../on_post.py") == str(tmp_path / "on_post.py")
    assert normalize_arg("python_file", "on_post.py") == str(tmp_path / "on_post.py")
    assert normalize_arg("python", "  pkg.mod \n") == "pkg.mod"
    assert normalize_arg("python_code", "  item.id\n") == "  item.id\n"


def test_infer_type(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "on_post.py", "def hook(host, client, item):\n    pass\n")
    assert infer_type("on_post.py") == "python_file"
    assert infer_type(str(tmp_path / "on_post.py")) == "python_file"
    assert infer_type("json") == "python" and infer_type("os.path") == "python"
    assert refusal(infer_type, "missing.py") == f"hook file {str(tmp_path / 'missing.py')!r} does not exist"
    assert "cannot tell the hook type of 'print(item)'" in refusal(infer_type, "print(item)")
    assert "cannot tell the hook type" in refusal(infer_type, "no_such_module_here")


def test_a_missing_py_file_named_like_a_module_is_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "does not exist" in refusal(infer_type, "json.py")


def test_sha256_of_text_and_bytes():
    assert sha256("abc") == sha256(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
