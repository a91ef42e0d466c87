"""What hooknb takes code from: files and directories that only you can write.

As ssh refuses a loose ``~/.ssh``, hooknb refuses to take code from a store, a restrict policy
or a hook file that another user owns, or that its group or others may write: a
:class:`~hooknb.errors.TrustError` saying why and how to fix it.  It never changes the mode of
what it did not create; what it creates is private whatever the umask (directories 0700,
files 0600).  On systems without POSIX owners (Windows) nothing is checked.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import TrustError

_POSIX = hasattr(os, "geteuid")


def _user(uid: int) -> str:
    import pwd  # POSIX only, as the checks

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def loose(st: os.stat_result) -> bool:
    """Whether a file or directory (its ``stat``) is owned by another user or writable by its
    group or others (cheap: made at every run of a hook file)."""
    return _POSIX and (st.st_mode & 0o022 != 0 or st.st_uid != os.geteuid())


def reason(path: Path | str, st: os.stat_result, what: str, fix: str) -> str:
    """Why ``path``, :func:`loose` (its ``stat`` is ``st``), may not be a source of code, and the
    command that fixes it (``chmod FIX PATH``): one line."""
    me = os.geteuid()
    if st.st_uid != me:
        return (f"{what} {path} is owned by another user ({_user(st.st_uid)}): refusing it as a "
                f"source of code; check it, then chown {_user(me)} {path} (or move it away)")
    return (f"{what} {path} is group- or world-writable (mode {st.st_mode & 0o777:03o}): refusing "
            f"it as a source of code; fix: chmod {fix} {path}")


def check(path: Path, what: str, fix: str) -> None:
    """Raise :class:`TrustError` if ``path`` exists and someone else could have written it."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # nothing there (opening it says why)
        return
    if loose(st):
        raise TrustError(reason(path, st, what, fix))


def private_dir(path: Path) -> None:
    """Make directory ``path`` 0700 if it does not exist (its missing parents as usual)."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:  # made meanwhile by another process: its own business
        return
    os.chmod(path, 0o700)  # exactly, whatever the umask


def private_file(path: Path) -> None:
    """Make an empty file ``path`` 0600 if it does not exist."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable and writable by you only (0600) from its first byte,
    whatever the umask and whatever the mode of an older file there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", closefd=True) as out:
        os.fchmod(fd, 0o600)
        out.write(text)
