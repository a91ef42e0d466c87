"""Where an account's password comes from, and the system keyring that can keep it.

The first of these that has one gives it:

1. the password given: ``hooknb.connect(jid, password)``, ``--password`` (every user of the machine
   can read a command line with ``ps``, and a magic's line stays in the notebook: the front ends
   warn) or ``--password-file PATH`` (its first line; refused if group or others may read the
   file, as ssh refuses such a key);
2. ``$HOOKNB_PASSWORD``;
3. the system keyring (``pip install 'hooknb[keyring]'``), where ``hooknb password set JID`` (or
   ``%hook password set JID``) keeps it: service ``hooknb``, user name the bare JID;
4. a prompt, when someone can answer: a terminal, or an IPython shell (a kernel run without input,
   as by nbconvert or papermill, refuses to ask: that is the next case);
5. else one line saying how to give one.

hooknb hands the password to the connection and to nothing else: no log, journal, store row,
exception or output holds it.  It is read into a :class:`~hooknb.xmpp.secret.Secret`, whose
``repr`` and ``str`` are a mask, and travels so to slixmpp's SASL (:mod:`hooknb.xmpp.secret`).
"""

from __future__ import annotations

import getpass
import logging
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from .connection import split_jid
from ..errors import GrammarError, HooknbError, KeyringError
from .secret import Secret, hide

log = logging.getLogger(__name__)

ENV = "HOOKNB_PASSWORD"
#: The keyring's service name for hooknb's passwords (the user name is the bare JID).
KEYRING_SERVICE = "hooknb"
INSTALL_KEYRING = "pip install 'hooknb[keyring]'"
NOBODY = "nobody can be asked here (no terminal, or a kernel run without input)"


def resolve(jid: str, given: str | Secret | None = None, file: str | None = None, *,
            prompt: Callable[[str], str] | None = None, interactive: bool | None = None) -> Secret:
    """The password of ``jid``, from the first source that has one (see the module's docstring).
    ``prompt`` asks (default: ``getpass.getpass`` as it is when called: a kernel replaces it while
    a cell runs); ``interactive`` says whether anyone can answer (default: :func:`can_ask`)."""
    given = hide(given)  # a traceback shows this frame's arguments
    if given and file:
        raise GrammarError("--password and --password-file exclude each other")
    if given:
        return given
    if file:
        return Secret(read_file(file))
    if os.environ.get(ENV):
        return Secret(os.environ[ENV])
    stored, problem = _from_keyring(jid)
    if stored:
        return Secret(stored)
    if interactive if interactive is not None else can_ask():
        answer = _ask(f"password for {jid}: ", prompt)
        if answer:
            return Secret(answer)
        why = "nothing was typed" if answer is not None else NOBODY
    else:
        why = NOBODY
    keep_it = f"hooknb password set {split_jid(jid).bare}"
    if problem == "not installed":
        keep_it, problem = f"{INSTALL_KEYRING}, then {keep_it}", None
    raise HooknbError(f"no password for {jid} and {why}: set ${ENV}, give --password-file or keep "
                      f"it in the system keyring ({keep_it})" + (f"; the keyring: {problem}" if problem else ""))


def can_ask() -> bool:
    """Whether a prompt can be answered: stdin is a terminal, or an IPython shell runs (a kernel
    whose front end takes no input says so when asked, see :func:`_ask`)."""
    if sys.stdin is not None and sys.stdin.isatty():
        return True
    ipython = sys.modules.get("IPython")
    return ipython is not None and ipython.get_ipython() is not None


def _ask(question: str, prompt: Callable[[str], str] | None) -> str | None:
    """The answer, or None if nobody can answer (``getpass.getpass`` is looked up now: a kernel
    replaces it while a cell runs, with one that refuses when its front end takes no input)."""
    try:
        return (prompt or getpass.getpass)(question)
    except (EOFError, OSError, NotImplementedError):  # IPython's StdinNotImplementedError is the last
        return None


def ask_new(jid: str, lines: TextIO | None = None, prompt: Callable[[str], str] | None = None) -> str:
    """A new password for ``jid``: asked for twice when someone can answer, else the first line of
    ``lines`` (e.g. ``echo "$secret" | hooknb password set JID``)."""
    if lines is None or can_ask():
        first = _ask(f"new password for {jid}: ", prompt)
        if first is None:
            raise HooknbError(f"cannot ask for the password of {jid}: {NOBODY}; run hooknb password set "
                              f"{split_jid(jid).bare} in a terminal")
        if first != _ask(f"the password for {jid} again: ", prompt):
            raise HooknbError("the two passwords differ: nothing was kept")
    else:
        first = lines.readline().rstrip("\r\n")
    if not first:
        raise HooknbError(f"the password for {jid} is empty: nothing was kept")
    return first


def read_file(path: str) -> str:
    """The first line of a password file (without its line ending); refused if group or others
    may read it, or if that line is empty."""
    file = Path(path).expanduser()
    try:
        mode = file.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            raise HooknbError(f"password file {path} may be read by group or others (mode "
                              f"{stat.S_IMODE(mode):o}): make it private with chmod 600 {path}")
        with file.open(encoding="utf-8") as stream:
            line = stream.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise HooknbError(f"cannot read the password file {path}: {reason}") from None
    if not line:
        raise HooknbError(f"password file {path} has an empty first line")
    return line


# ------------------------------------------------------------------------------------ keyring
def _keyring() -> Any:
    """The ``keyring`` module (imported on first use: it looks its backends up), or None."""
    try:
        import keyring
    except ImportError:
        return None
    return keyring


def _from_keyring(jid: str) -> tuple[str | None, str | None]:
    """(the password kept for ``jid``, None) or (None, why the keyring could not be read)."""
    keyring = _keyring()
    if keyring is None:
        return None, "not installed"
    try:
        return keyring.get_password(KEYRING_SERVICE, split_jid(jid).bare), None
    except Exception as exc:  # noqa: BLE001 - a backend's own errors (locked, no backend, D-Bus...)
        log.debug("the keyring could not be read: %s", type(exc).__name__)
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0]


def backend() -> str:
    """The keyring backend in use, by name (e.g. ``SecretService Keyring``)."""
    return str(_required().get_keyring().name)


def _required() -> Any:
    keyring = _keyring()
    if keyring is None:
        raise KeyringError(f"the keyring is not installed: {INSTALL_KEYRING}")
    return keyring


def keep(jid: str, password: str | Secret) -> None:
    """Keep ``jid``'s password in the system keyring, and check that it was kept (a backend such
    as ``keyring.backends.null`` accepts passwords and forgets them)."""
    password = hide(password)  # a traceback shows this frame's arguments
    keyring, bare = _required(), split_jid(jid).bare
    try:
        keyring.set_password(KEYRING_SERVICE, bare, password.reveal())
        kept = keyring.get_password(KEYRING_SERVICE, bare) == password.reveal()
    except Exception as exc:  # noqa: BLE001 - a backend's own errors
        raise KeyringError(f"the keyring refused the password of {bare}: {type(exc).__name__}") from None
    if not kept:
        raise KeyringError(f"the keyring ({backend()}) did not keep the password of {bare}")


def forget(jid: str) -> None:
    """Remove ``jid``'s password from the system keyring (:class:`KeyringError` if none is kept)."""
    keyring, bare = _required(), split_jid(jid).bare
    try:
        kept = keyring.get_password(KEYRING_SERVICE, bare) is not None
        if kept:
            keyring.delete_password(KEYRING_SERVICE, bare)
    except Exception as exc:  # noqa: BLE001 - a backend's own errors
        raise KeyringError(f"the keyring refused to remove the password of {bare}: "
                           f"{type(exc).__name__}") from None
    if not kept:
        raise KeyringError(f"no password of {bare} in the keyring ({backend()})")
