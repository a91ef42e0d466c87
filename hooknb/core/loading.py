"""Turning a hook's (type, arg) into something to call: module, file (cached by content), code.

* ``python``: ``arg`` is an importable module; its ``hook`` function is called.
* ``python_file``: ``arg`` is the absolute path of a script defining ``hook``.  The file is
  executed once, and again only when it changes (size, modification or change time, inode).
  Files that are group- or world-writable, or owned by someone else, are refused: when the
  hook is created, and at every run (one ``stat``), so a ``chmod`` alone is noticed; in a burst
  (a run straight after another, see :meth:`Loader.resolve`) at most every ``RESTAT`` seconds.
* ``python_code``: ``arg`` is source compiled once (top-level ``await`` allowed) and executed
  with ``host``, ``client`` and ``item`` bound, in a fresh namespace for every run.

Every loader answers :meth:`Loader.resolve` with the function to call, whether it is a
coroutine function, and the SHA-256 of the code it runs.  A loader knows the SHA-256 the hook
was created with (``expected``; its own first one when new): a *pinned* loader refuses code
that differs from it (:class:`~hooknb.errors.TrustError`, before any of it runs), the others
run it and the engine journals the change.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.util
import inspect
import os
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import compat as _compat
from ..storage import trust
from ..errors import HookCreateError, TrustError

TYPES = ("python", "python_file", "python_code")
HookFn = Callable[[Any, Any, Any], Any]
RESTAT = 0.05  # seconds a python_file hook's file, looked at, is not looked at again in a burst


#: What a ``python`` module or a ``python_file`` must define, said when it does not.
CONTRACT = ("it must define `def hook(host, client, item):`, called for each item (its top level runs "
            "once, when it is loaded)")


def _hook_function(namespace: dict[str, Any], where: str) -> HookFn:
    fn = namespace.get("hook")
    if fn is None:
        raise HookCreateError(f"{where} has no `hook` function: {CONTRACT}")
    if not callable(fn):
        raise HookCreateError(f"`hook` in {where} is not callable")
    return fn


def sha256(data: bytes | str) -> str:
    """Hex SHA-256 of bytes or text."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _changed(what: str, digest: str | None, expected: str) -> TrustError:
    return TrustError(f"{what} changed since the hook was created (SHA-256 {(digest or '?')[:12]}, "
                      f"created with {expected[:12]}) and the hook is pinned: refusing to run it; "
                      "re-create the hook to accept the change", digest)


class Loader:
    """Base of the three loaders: ``resolve()`` -> (function, is_async, digest).

    ``digest`` is the SHA-256 of the code last loaded (or refused), ``expected`` the one the
    hook was created with, ``pin`` whether code that differs from it is refused."""

    digest: str | None = None
    expected: str | None = None
    pin: bool = False

    def resolve(self, again: bool = False) -> tuple[HookFn, bool, str | None]:
        """The function to call, whether it is a coroutine function, the SHA-256 of its code.
        ``again``: this run comes straight after another of the same hook (a burst), so a file
        looked at less than ``RESTAT`` seconds ago need not be looked at once more."""
        raise NotImplementedError


class ModuleLoader(Loader):
    """A ``python`` hook: the ``hook`` function of an importable module."""

    def __init__(self, name: str, expected: str | None = None, pin: bool = False) -> None:
        if not name or not all(part.isidentifier() for part in name.split(".")):
            raise HookCreateError(f"{name!r} is not a Python module name")
        self.name, self.expected, self.pin, self.refused = name, expected, pin, False
        if pin and expected:  # compare before importing: changed code must not run at all
            self.digest = _module_digest(name)
            if self.digest is not None and self.digest != expected:
                self.refused = True
                return
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise HookCreateError(f"module {name!r} cannot be imported: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - the module's own code failed
            raise HookCreateError(f"module {name!r} failed while importing: "
                                  f"{type(exc).__name__}: {exc}") from None
        self.fn = _hook_function(vars(module), f"module {name!r}")
        self.is_async = inspect.iscoroutinefunction(self.fn)
        source = getattr(module, "__file__", None)
        self.digest = sha256(Path(source).read_bytes()) if source and os.path.exists(source) else None
        self.expected = self.expected or self.digest

    def resolve(self, again: bool = False) -> tuple[HookFn, bool, str | None]:
        if self.refused:
            raise _changed(f"module {self.name!r}", self.digest, self.expected or "")
        return self.fn, self.is_async, self.digest


def _module_digest(name: str) -> str | None:
    """The SHA-256 of a module's source file, found without running it (only the packages
    above it are imported); None if it has none."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec is not None and spec.has_location else None
    try:
        return sha256(Path(origin).read_bytes()) if origin else None
    except OSError:
        return None


def check_file(path: Path) -> None:
    """Refuse a hook file that is missing, unreadable, or writable by others."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise HookCreateError(f"hook file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise HookCreateError(f"hook file {str(path)!r} cannot be read: {exc.strerror}") from None
    if not path.is_file():
        raise HookCreateError(f"hook file {str(path)!r} is not a regular file")
    if not os.access(path, os.R_OK):
        raise HookCreateError(f"hook file {str(path)!r} is not readable")
    if trust.loose(st):
        raise HookCreateError(trust.reason(path, st, "hook file", "go-w"))


class FileLoader(Loader):
    """A ``python_file`` hook: a script loaded once and again only when it changes (its
    modification or change time, size or inode: an edit that restores the modification time
    still changes the change time); its mode and owner checked at every run."""

    def __init__(self, path: str, expected: str | None = None, pin: bool = False) -> None:
        self.path = Path(path)
        self._name = str(self.path)  # os.stat of a str is cheaper than of a Path
        self.expected, self.pin = expected, pin
        self._stamp: tuple[int, int, int, int] | None = None
        self._fresh_until = 0.0  # (monotonic) until when a run in a burst need not stat the file
        self._refusals = 0  # looks that refused the file (or failed): a look begun before one is stale
        try:
            self._load()
        except TrustError:  # pinned and changed: kept, every run refused until the file is back
            pass

    def _load(self) -> None:
        check_file(self.path)
        st = self.path.stat()
        source = self.path.read_bytes()
        digest = sha256(source)
        if self.pin and self.expected and digest != self.expected:
            self.digest = digest
            raise _changed(f"hook file {str(self.path)!r}", digest, self.expected)
        self.fn, self.is_async = file_function(source, str(self.path))
        self.source = source  # what a Dask worker is sent (see hooknb.executors.remote)
        self.digest = digest
        self.expected = self.expected or digest
        self._stamp = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
        self.loads = getattr(self, "loads", 0) + 1

    def resolve(self, again: bool = False) -> tuple[HookFn, bool, str | None]:
        # A stat lets go of the GIL, and taking it back from a busy event loop cost the worker
        # 12 us a run, half of its time: in a burst the file is looked at every RESTAT seconds.
        # Only code loaded (and checked) before ever runs, so the window can only delay an edit.
        looked, refusals = time.monotonic(), self._refusals
        if again and looked < self._fresh_until:
            return self.fn, self.is_async, self.digest
        self._fresh_until = 0.0  # until this look succeeds: a refusal is never skipped
        try:
            st = os.stat(self._name)
            if trust.loose(st):
                raise TrustError(trust.reason(self.path, st, "hook file", "go-w"))
            if (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino) != self._stamp:
                self._load()
        except FileNotFoundError:
            self._refusals += 1
            raise HookCreateError(f"hook file {self._name!r} does not exist any more") from None
        except BaseException:
            self._refusals += 1
            raise
        if self._refusals == refusals:  # nobody was refused meanwhile (another thread's look)
            self._fresh_until = looked + RESTAT  # from the look, not from the end of a slow reload
        return self.fn, self.is_async, self.digest


COMPILED_MAX = 1 << 20  # hook files up to this many bytes have their code kept (the latest 64)


@functools.lru_cache(maxsize=64)
def _compiled_small(source: bytes, path: str) -> types.CodeType:
    return compile(source, path, "exec")


def _compiled(source: bytes, path: str) -> types.CodeType:
    # Compiling is most of a load (10,000 hooks on one file: 2 s of a start's restore); the
    # code object is shared, the module each hook runs it in is its own.  Keyed by the source
    # itself (hashed once, compared when equal), so an edit is compiled anew.
    if len(source) > COMPILED_MAX:
        return compile(source, path, "exec")
    return _compiled_small(source, path)


def file_function(source: bytes, path: str) -> tuple[HookFn, bool]:
    """Execute a hook file's ``source`` as a fresh module named after ``path``: its ``hook``
    function and whether it is a coroutine function (:class:`HookCreateError` if it fails)."""
    try:
        code = _compiled(source, path)
    except SyntaxError as exc:
        raise HookCreateError(f"hook file {path!r} line {exc.lineno}: {exc.msg}") from None
    module = types.ModuleType(f"hooknb_file_{sha256(path)[:8]}")
    module.__file__ = path
    try:
        exec(code, vars(module))  # noqa: S102 - running the user's own hook file is the point
    except Exception as exc:  # noqa: BLE001
        hint = f" ({CONTRACT})" if isinstance(exc, NameError) and exc.name in ("host", "client", "item") else ""
        raise HookCreateError(f"hook file {path!r} failed while loading: {type(exc).__name__}: {exc}{hint}") from None
    fn = _hook_function(vars(module), f"hook file {path!r}")
    return fn, inspect.iscoroutinefunction(fn)


RESULT = "__hook_result__"


class CodeLoader(Loader):
    """A ``python_code`` hook: source run with ``host``, ``client`` and ``item`` bound.

    As in a notebook cell, the value of a final expression statement is the run's result.
    """

    def __init__(self, source: str, filename: str = "<hook code>", first_line: int = 1,
                 expected: str | None = None, pin: bool = False) -> None:
        if not source.strip():
            raise HookCreateError("the hook code is empty")
        try:
            tree = ast.parse(source, filename, "exec")
        except SyntaxError as exc:  # lines counted in the source
            raise _syntax_error(exc, first_line - 1) from None
        if first_line > 1:
            ast.increment_lineno(tree, first_line - 1)
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = tree.body[-1]
            tree.body[-1] = ast.copy_location(ast.Assign(
                targets=[ast.Name(RESULT, ast.Store())], value=last.value), last)
            ast.fix_missing_locations(tree)
        try:
            self.code = compile(tree, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        except SyntaxError as exc:  # lines counted in the tree, already moved to first_line
            raise _syntax_error(exc, 0) from None
        self.is_async = bool(self.code.co_flags & inspect.CO_COROUTINE)
        self.digest = sha256(source)
        self.expected, self.pin = expected or self.digest, pin
        self.fn = self._run

    def _run(self, host: Any, client: Any, item: Any) -> Any:
        namespace = {"__name__": "__hook__", "__builtins__": __builtins__,
                     "host": host, "client": client, "item": item}
        out = eval(self.code, namespace)  # noqa: S307 - running the user's own hook code
        if self.is_async:
            return _result_after(out, namespace)
        return namespace.get(RESULT)

    def resolve(self, again: bool = False) -> tuple[HookFn, bool, str | None]:
        if self.pin and self.digest != self.expected:
            raise _changed("the hook code", self.digest, self.expected or "")
        return self.fn, self.is_async, self.digest


async def _result_after(awaitable: Any, namespace: dict[str, Any]) -> Any:
    await awaitable
    return namespace.get(RESULT)


def normalize_arg(type_: str, arg: str) -> str:
    """The stored form of a hook argument: absolute paths for ``python_file``."""
    if type_ == "python_file":
        return str(Path(os.path.expanduser(arg)).resolve())
    return arg.strip() if type_ == "python" else arg


class Adapted(Loader):
    """A loader whose function is called with another system's convention (``--compat``, see
    :mod:`hooknb.compat`); everything else (digests, trust checks, reloads) is its inner loader's."""

    def __init__(self, inner: Loader, adapt: Callable[[HookFn], HookFn]) -> None:
        self.inner, self._adapt = inner, adapt
        self._fn: HookFn | None = None
        self._adapted: HookFn | None = None

    digest = property(lambda self: self.inner.digest)  # type: ignore[assignment]
    expected = property(lambda self: self.inner.expected)  # type: ignore[assignment]
    pin = property(lambda self: self.inner.pin)  # type: ignore[assignment]

    def __getattr__(self, attr: str) -> Any:  # source, loads, path...: the inner loader's
        if attr.startswith("__") or attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def resolve(self, again: bool = False) -> tuple[HookFn, bool, str | None]:
        fn, is_async, digest = self.inner.resolve(again)
        if fn is not self._fn:  # adapted once per load of the code, not per run
            self._fn, self._adapted = fn, self._adapt(fn)
        return self._adapted, is_async, digest  # type: ignore[return-value]


def make_loader(type_: str, arg: str, expected: str | None = None, pin: bool = False,
                compat: str | None = None) -> Loader:
    """Validate (type, arg) and build its loader; :class:`HookCreateError` if it cannot run.
    ``expected`` is the SHA-256 the hook was created with, ``pin`` whether to refuse other code,
    ``compat`` the calling convention (None: hooknb's; ``"libervia"``: :mod:`hooknb.compat.libervia`)."""
    adapt = _compat.adapter(compat)
    if type_ == "python":
        loader: Loader = ModuleLoader(arg, expected, pin)
    elif type_ == "python_file":
        loader = FileLoader(arg, expected, pin)
    elif type_ == "python_code":
        loader = CodeLoader(arg, expected=expected, pin=pin)
    else:
        raise HookCreateError(f"unknown hook type {type_!r}; choose one of {', '.join(TYPES)}")
    return Adapted(loader, adapt) if adapt else loader


def source_digest(type_: str, arg: str) -> str | None:
    """The SHA-256 of a hook's code as it is now, read without running it (for listings of
    hooks not loaded); None when unknown (a module not imported, a file that cannot be read)."""
    if type_ == "python_code":
        return sha256(arg)
    if type_ == "python_file":
        try:
            return sha256(Path(arg).read_bytes())
        except OSError:
            return None
    return None


def _syntax_error(exc: SyntaxError, offset: int) -> HookCreateError:
    return HookCreateError(f"syntax error in hook code, line {(exc.lineno or 1) + offset}: {exc.msg}")


def infer_type(arg: str) -> str:
    """Guess the hook type of ``arg``: a ``.py`` file (which must exist), else an importable
    module name."""
    path = Path(os.path.expanduser(arg))
    if arg.endswith(".py"):
        if path.is_file():
            return "python_file"
        raise HookCreateError(f"hook file {str(path.resolve())!r} does not exist")
    if all(part.isidentifier() for part in arg.split(".")):
        if importlib.util.find_spec(arg.split(".")[0]) is not None:
            return "python"
    raise HookCreateError(f"cannot tell the hook type of {arg!r}: not an existing .py file nor an "
                          "importable module; give -t python|python_file|python_code")


__all__ = ["TYPES", "Loader", "make_loader", "normalize_arg", "infer_type", "check_file", "sha256",
           "source_digest", "file_function"]
