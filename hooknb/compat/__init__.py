"""Other systems' hooks run unchanged: their calling conventions, and importing what they stored.

* :mod:`hooknb.compat.libervia`: Libervia's ``hook(host, client, item)`` with a domish element
  (:mod:`hooknb.compat.domish`), chosen per hook with ``--compat libervia``.
* :mod:`hooknb.compat.libervia_db`: reading the hooks a Libervia database keeps (without running
  anything from it), for ``hooknb import libervia``.

:func:`adapter` is what the loaders (:mod:`hooknb.core.loading`) and the remote contract
(:mod:`hooknb.executors.remote`) apply to a hook's function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import HookCreateError
from . import libervia

HookFn = Callable[[Any, Any, Any], Any]
#: The calling conventions a hook may ask for (besides hooknb's own, ``None``).
COMPATS = (libervia.NAME,)
_ADAPTERS: dict[str, Callable[[HookFn], HookFn]] = {libervia.NAME: libervia.adapt}


def check(compat: str | None) -> str | None:
    """``compat`` if it is known (or None); :class:`HookCreateError` naming the choices if not."""
    if compat is not None and compat not in _ADAPTERS:
        raise HookCreateError(f"unknown calling convention {compat!r}; choose {', '.join(COMPATS)}")
    return compat


def adapter(compat: str | None) -> Callable[[HookFn], HookFn] | None:
    """What turns a hook function into one called with ``compat``'s convention (None: hooknb's)."""
    return _ADAPTERS[check(compat)] if compat else None


__all__ = ["COMPATS", "check", "adapter"]
