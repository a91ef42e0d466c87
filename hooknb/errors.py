"""The exceptions users see: one type for errors they can fix, one for vetoed operations."""

from __future__ import annotations


class HooknbError(Exception):
    """An error the user can fix (bad input, missing server, unknown hook...).

    Its message is one line; front ends show it without a traceback (``UsageError`` in the
    magics, exit code 2 on the command line).
    """


class HookCreateError(HooknbError):
    """A hook could not be created: it failed validation and nothing was stored."""


class Veto(Exception):
    """Raised by a ``before`` hook to stop the operation it is attached to."""

    def __init__(self, reason: str = "vetoed") -> None:
        super().__init__(reason)
        self.reason = reason
