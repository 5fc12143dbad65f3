"""Which fields a document write changed, for the trigger loop guard."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any


def changed_paths(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, prefix: str = ""
) -> frozenset[str]:
    """Dotted paths of the fields that differ between two document states.

    Maps are compared key by key (so ``stats.views`` changes alone, not all of
    ``stats``); every other value, lists included, is compared as a whole. Added and
    removed fields count as changed.
    """
    old, new = before or {}, after or {}
    paths: set[str] = set()
    for key in old.keys() | new.keys():
        path = f"{prefix}{key}"
        left, right = old.get(key, _MISSING), new.get(key, _MISSING)
        if isinstance(left, Mapping) and isinstance(right, Mapping):
            paths |= changed_paths(left, right, f"{path}.")
        elif left != right:
            paths.add(path)
    return frozenset(paths)


def only_owned(changed: Collection[str], owned: Collection[str]) -> bool:
    """True when every changed path is an owned field or lies inside one.

    An empty change (a write that rewrote the same values) counts as owned: there is
    nothing new for a handler to react to.
    """
    return all(_is_owned(path, owned) for path in changed)


def _is_owned(path: str, owned: Collection[str]) -> bool:
    return any(path == field or path.startswith(f"{field}.") for field in owned)


class _Missing:
    # A distinct marker, so a field set to None differs from a field that is absent.
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()
