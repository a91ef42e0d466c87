"""The exceptions users see.

Hierarchy::

    HooknbError            an error the user can fix (one line; usage errors, exit code 2)
    ├── ConnectError       a connection or authentication failed (exit code 1)
    ├── HookCreateError    a hook failed validation and was not stored (exit code 4)
    ├── GrammarError       bad command-line or magic arguments (hooknb.grammar)
    ├── PubSubError        the server refused a PubSub request (hooknb.client)
    └── VetoError          a before hook vetoed an operation (hooknb.phases)
    Veto                   raised by a before hook to stop the operation it is attached to
"""

from __future__ import annotations


class HooknbError(Exception):
    """An error the user can fix (bad input, missing server, unknown hook...).

    Its message is one line; front ends show it without a traceback (``UsageError`` in the
    magics, exit code 2 on the command line).
    """


class ConnectError(HooknbError):
    """An account could not connect: the server is unreachable, TLS or its certificate failed,
    or authentication was refused (exit code 1 on the command line)."""


class HookCreateError(HooknbError):
    """A hook could not be created: it failed validation and nothing was stored."""


class Veto(Exception):
    """Raised by a ``before`` hook to stop the operation it is attached to."""

    def __init__(self, reason: str = "vetoed") -> None:
        super().__init__(reason)
        self.reason = reason
