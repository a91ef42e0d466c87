"""A password that never shows: :class:`Secret`.

A password is read (:mod:`hooknb.xmpp.passwords`), handed to :class:`~hooknb.Host` and to the
:class:`~hooknb.xmpp.client.Client`, and finally to slixmpp, which gives it to the SASL
mechanism.  On the way it sits in function arguments and local variables, which a traceback
under ``%xmode Verbose`` (or ``Context``, for some frames) prints with their ``repr``, and in
objects that a log line or a notebook may ``repr``.  So it travels as a :class:`Secret` whose
``repr`` and ``str`` are a mask, and every function that takes a password rebinds its argument to
a :class:`Secret` first thing (:func:`hide`): the frame then shows the mask, whatever the caller
passed.  Only slixmpp's credentials (:class:`Credentials`) reveal it, when the SASL mechanism
reads them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NoReturn

MASK = "********"


class Secret:
    """A string that ``repr``, ``str``, formatting and pickling do not reveal: :meth:`reveal` does."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The secret itself: call it only where it is used, not to keep it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, _spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __setattr__(self, _name: str, _value: Any) -> NoReturn:
        raise AttributeError("a Secret cannot be changed")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


def hide(password: str | Secret | None) -> Secret | None:
    """``password`` as a :class:`Secret` (None stays None)."""
    if password is None or isinstance(password, Secret):
        return password
    return Secret(password)


Args = tuple[tuple[Any, ...], dict[str, Any]]


def hider(fn: Callable[..., Any]) -> Callable[[tuple[Any, ...], dict[str, Any]], Args] | None:
    """For a function with a ``password`` parameter, what makes :class:`Secret` of it in the
    ``(args, kwargs)`` of a call (for generic wrappers, whose frames show ``args`` and
    ``kwargs``); None for any other function."""
    names = list(inspect.signature(fn).parameters)
    if "password" not in names:
        return None
    at = names.index("password")

    def hidden(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Args:
        if len(args) > at:
            args = (*args[:at], hide(args[at]), *args[at + 1:])
        if "password" in kwargs:
            kwargs = {**kwargs, "password": hide(kwargs["password"])}
        return args, kwargs

    return hidden


class Credentials(dict):
    """slixmpp's ``credentials`` (a dict it reads when it chooses a SASL mechanism): it holds
    the password as a :class:`Secret` and reveals it to the reader, at the last moment; its
    ``repr`` masks it."""

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        return value.reveal() if isinstance(value, Secret) else value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, Secret(value) if key == "password" and isinstance(value, str) else value)

    def __repr__(self) -> str:
        return repr({k: (MASK if k == "password" else v) for k, v in self.items()})
