"""Every exception hooknb raises, in one place.

::

    Exception
     ├── HooknbError            an error the user can fix; its message is one line
     │    ├── GrammarError      bad magic or command-line arguments          (CLI exit 2)
     │    ├── HookCreateError   a hook failed validation; nothing was stored (CLI exit 4)
     │    ├── ConnectError      connection or authentication failed         (CLI exit 1)
     │    ├── StoreError        the SQLite store is locked or unreadable
     │    ├── ManifestError     a manifest of hooks is invalid: one line per problem (CLI exit 2)
     │    ├── KeyringError      the system keyring is not installed or refused  (CLI exit 1)
     │    ├── TrustError        refused as a source of code: others could write it, or pinned
     │    │                     code changed (CLI exit 1; a refused run has status ``refused``)
     │    ├── ExecutorError     the Dask executor cannot take work now (scheduler unreachable)
     │    ├── RemoteError       a hook run by a Dask worker used ``host`` or ``client``
     │    └── PubSubError       the server refused a PubSub request (``condition``)
     │         ├── VetoError    a before hook stopped a publish or retract
     │         └── PayloadTooLargeError  a publish larger than the server takes: not sent
     ├── Veto                   raised *by* a before hook to stop its operation
     └── HelpRequested          ``--help`` was given (not a failure: ``text`` is the help)

Front ends show a :class:`HooknbError` as one line (``UsageError`` in the magics, the exit
codes above on the command line); anything else is a bug and keeps its traceback.
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
