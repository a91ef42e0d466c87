"""Progress bars on long work, by ``tqdm.auto``: a widget under the cell in a notebook, a text
bar on a terminal's stderr, nothing where nobody watches (a pipe, a log, ``hooknb run``).

Work of fewer than :data:`MIN_TOTAL` steps shows no bar.  :data:`enabled` decides otherwise:
None (default) lets tqdm decide (a notebook or a terminal), True always shows one (on stderr
outside a notebook), False never.  Used by replays (:mod:`hooknb.core.replay`: the magics and
``hooknb pubsub hook replay``) and imports (``hooknb import libervia``, ``%hook import``).

A catch-up over many nodes has none: it runs on hooknb's loop, also after a reconnection in the
background, when no cell of its own is running (ipykernel 7 would put the bar under whichever
cell runs then).
"""

from __future__ import annotations

from typing import Any

#: The fewest steps that get a bar.
MIN_TOTAL = 50
#: None: tqdm decides (a notebook or a terminal); True: always; False: never.
enabled: bool | None = None


class _Quiet:
    """What :func:`bar` gives when no bar is shown: the same calls, doing nothing."""

    def update(self, _n: int = 1) -> None:
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


def bar(total: int, description: str, unit: str = "item") -> Any:
    """A progress bar over ``total`` steps (a context manager with ``update(n)``), or one that
    shows nothing (fewer than :data:`MIN_TOTAL` steps, or :data:`enabled` is False)."""
    if enabled is False or total < MIN_TOTAL:
        return _Quiet()
    from tqdm.auto import tqdm  # a notebook's widget or a terminal's text bar

    return tqdm(total=total, desc=description, unit=unit, leave=False, disable=None if enabled is None else False)
