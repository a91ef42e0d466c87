"""How one call of a hook ended (:class:`Outcome`), and the outcome of a call that raised.

A leaf: lanes, the invoker, replays and what runs on other processes (:mod:`hooknb.executors.remote`)
all speak it, and it imports nothing of hooknb but the exceptions.
"""

from __future__ import annotations

import traceback
from typing import Any

from ..errors import TrustError


class Outcome:
    """How one call of a hook ended."""

    __slots__ = ("status", "result", "error", "tb", "digest", "exc", "output")

    def __init__(self, status: str = "ok", result: Any = None, error: str | None = None,
                 tb: str | None = None, digest: str | None = None, exc: BaseException | None = None,
                 output: str | None = None):
        self.status, self.result, self.error, self.tb, self.digest, self.exc = (
            status, result, error, tb, digest, exc)
        #: What the run printed (see :mod:`hooknb.core.capture`).
        self.output = output


def failure(exc: BaseException, digest: str | None) -> Outcome:
    """The outcome of a call that raised ``exc`` (the traceback starts in the hook's code);
    ``refused`` when the hook's code was not trusted to run (:class:`TrustError`)."""
    if isinstance(exc, TrustError):
        return Outcome("refused", error=str(exc), digest=exc.digest or digest, exc=exc)
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next
                                            if exc.__traceback__ else None))
    return Outcome("error", None, f"{type(exc).__name__}: {exc}", tb, digest, exc)
