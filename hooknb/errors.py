"""Every exception hooknb raises, in one place.

::

    Exception
     ├── HooknbError            an error the user can fix; its message is one line
     │    ├── GrammarError      bad magic or command-line arguments          (CLI exit 2)
     │    ├── HookCreateError   a hook failed validation; nothing was stored (CLI exit 4)
     │    ├── ConnectError      connection or authentication failed         (CLI exit 1)
     │    ├── StoreError        the SQLite store is locked, read-only or full (CLI exit 3)
     │    │    └── StoreUnusableError  it cannot be used as it is: newer or foreign
     │    │                     schema, corrupt, an empty file, HOOKNB_HOME not a
     │    │                     directory (CLI exit 3; ``hooknb run`` exits)
     │    ├── ManifestError     a manifest of hooks is invalid: one line per problem (CLI exit 2)
     │    ├── KeyringError      the system keyring is not installed or refused  (CLI exit 1)
     │    ├── TrustError        refused as a source of code: others could write it, or pinned
     │    │                     code changed (CLI exit 1; a refused run has status ``refused``)
     │    ├── ExecutorError     the Dask executor cannot take work now (scheduler unreachable)
     │    ├── RemoteError       a hook run by a Dask worker used ``host`` or ``client``
     │    └── PubSubError       the server refused a PubSub request (``condition``)
     │         ├── VetoError    a before hook stopped a publish or retract
     │         ├── PayloadTooLargeError  a publish larger than the server takes: not sent
     │         └── ConnectionLostError   the connection was lost or the server did not
     │                                   answer in time                     (CLI exit 1)
     ├── Veto                   raised *by* a before hook to stop its operation
     └── HelpRequested          ``--help`` was given (not a failure: ``text`` is the help)

Front ends show a :class:`HooknbError` as one line (``UsageError`` in the magics, the exit
code :func:`exit_code` gives on the command line); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class HooknbError(Exception):
    """An error the user can fix (bad input, missing server, unknown hook...)."""


class GrammarError(HooknbError):
    """Bad command-line or magic arguments."""


class ConnectError(HooknbError):
    """An account could not connect: the server is unreachable, TLS or its certificate failed,
    or authentication was refused (exit code 1 on the command line)."""


class HookCreateError(HooknbError):
    """A hook could not be created: it failed validation and nothing was stored."""


class StoreError(HooknbError):
    """The persistent store is locked by another process or cannot be read."""


class StoreUnusableError(StoreError):
    """The store cannot be used as it is, and waiting will not help: its schema is newer than
    this hooknb's or not hooknb's (:mod:`hooknb.storage.schema`), it is corrupt or an empty
    file, or ``HOOKNB_HOME`` is not a directory.  The file is left untouched."""


class ManifestError(HooknbError):
    """A manifest of hooks is invalid and nothing of it was applied; ``problems``: one line
    each, naming the file, the line and the key (the only error whose message has several lines)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class KeyringError(HooknbError):
    """The system keyring is not installed, or refused to keep, give or remove a password."""


class TrustError(HooknbError):
    """Refused as a source of code: a store, policy or hook file that another user owns or that
    group or others may write, or a pinned hook's code that changed since it was created.
    ``digest`` is the SHA-256 of the refused code, when known."""

    def __init__(self, message: str, digest: str | None = None) -> None:
        super().__init__(message)
        self.digest = digest


class ExecutorError(HooknbError):
    """Hook work cannot go to its executor right now (the Dask scheduler cannot be reached):
    the items wait (see :mod:`hooknb.executors.dask_lane`)."""


class RemoteError(HooknbError):
    """A hook run by a Dask worker used ``host`` or ``client``: there is no live connection
    there (see :mod:`hooknb.executors.remote`)."""


class CompatError(HooknbError, AttributeError):
    """A hook run with another system's calling convention (``--compat libervia``) used what
    hooknb does not give it (one of Libervia's client internals); also an ``AttributeError``, so
    ``hasattr`` and ``getattr(..., default)`` answer as they would for a missing attribute."""


class PubSubError(HooknbError):
    """A PubSub request was refused by the server (``condition`` is the XMPP error condition,
    or ``connection-lost`` / ``timeout``)."""

    def __init__(self, message: str, condition: str = "") -> None:
        super().__init__(message)
        self.condition = condition


class VetoError(PubSubError):
    """An operation was stopped by a before hook (nothing was sent)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "vetoed")


class PayloadTooLargeError(PubSubError):
    """A publish was not sent: its stanza is larger than the server's advertised limit (XEP-0478)
    or, when it advertises none, the client's ``max_bytes``.  Sent, it would have made the server
    close the connection."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "payload-too-big")


class ConnectionLostError(PubSubError):
    """A PubSub request got no answer: the connection was lost before the server answered
    (``condition`` ``connection-lost``), or no answer came in time (``timeout``)."""


class Veto(Exception):
    """Raised by a ``before`` hook to stop the operation it is attached to."""

    def __init__(self, reason: str = "vetoed") -> None:
        super().__init__(reason)
        self.reason = reason


class HelpRequested(Exception):
    """``--help`` was given; ``text`` is the help to show."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


#: The command line's exit codes, the one table of them (docs/cli.rst shows it): success, a
#: failure to connect or authenticate (and other failures: an untrusted store, the keyring, an
#: operation on a connection that was lost), a usage error, a store that cannot be used, a hook
#: that cannot be created.  130: interrupted (SIGINT).
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_STORE, EXIT_CREATE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

#: The exit code of each error class; an error takes the code of the nearest class of its MRO here.
EXIT_CODES: dict[type[BaseException], int] = {
    HooknbError: EXIT_USAGE,
    GrammarError: EXIT_USAGE,
    HookCreateError: EXIT_CREATE,
    StoreError: EXIT_STORE,
    ConnectError: EXIT_FAILURE,
    ConnectionLostError: EXIT_FAILURE,
    KeyringError: EXIT_FAILURE,
    TrustError: EXIT_FAILURE,
    ExecutorError: EXIT_FAILURE,
    OSError: EXIT_FAILURE,
    KeyboardInterrupt: EXIT_INTERRUPTED,
}


def exit_code(exc: BaseException) -> int | None:
    """The command line's exit code for ``exc`` (:data:`EXIT_CODES`); None for an error that has
    none (a bug: it keeps its traceback)."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return None
