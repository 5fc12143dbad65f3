"""Wait, with a deadline, for an asynchronous effect (a trigger's write, a webhook)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class EffectTimeoutError(AssertionError):
    """The effect did not appear before the deadline."""


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float = 20.0,
    interval: float = 0.2,
    what: str = "effect",
) -> T:
    """Call ``probe`` until it returns something truthy, and return that.

    Raises EffectTimeoutError naming ``what`` and the last value seen. Exceptions from the probe
    propagate: a probe that cannot run is a bug, not a slow effect.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise EffectTimeoutError(
                f"{what} did not happen within {timeout:.1f}s (last: {last!r})"
            )
        time.sleep(interval)


def stays_absent(
    probe: Callable[[], object],
    *,
    duration: float = 3.0,
    interval: float = 0.25,
    what: str = "effect",
) -> None:
    """Assert ``probe`` stays falsy for ``duration`` (for 'nothing happens' checks)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        seen = probe()
        if seen:
            raise AssertionError(f"unexpected {what}: {seen!r}")
        time.sleep(interval)
