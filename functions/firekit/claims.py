"""Custom claims: merge, never clobber, and stay under Firebase's 1,000-byte limit.

``set_custom_user_claims`` replaces *all* claims, so a function that sets ``role`` would
silently drop a ``plan`` claim set by another. :func:`update_claims` reads, merges and
writes instead (:func:`replace_claims_merged` does the same and also returns the claims
as they were before, e.g. for an audit record). The Auth API offers no compare-and-set,
so two concurrent updates of the same user can still race; serialise them (one callable
per user action) where it matters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from firebase_admin import _auth_utils, auth  # type: ignore[import-untyped, unused-ignore]

from firekit.bootstrap import firebase_app
from firekit.errors import FailedPrecondition, FieldIssue, InvalidArgument, NotFound, Refusal

MAX_CLAIMS_SIZE = 1000
# Names Firebase refuses as custom claims (standard ID-token claims): the Admin SDK's own
# list, the one set_custom_user_claims() checks, so the two can never disagree. It lives
# in a private module; firebase_admin is pinned and tests/core checks the list's content.
RESERVED_CLAIMS: frozenset[str] = frozenset(_auth_utils.RESERVED_CLAIMS)

NO_SUCH_USER = Refusal(NotFound, "no_such_user", "No such user.")
CLAIMS_FULL = Refusal(
    FailedPrecondition, "claims_full", f"Custom claims would exceed {MAX_CLAIMS_SIZE} bytes."
)
"""Details also carry ``size`` and ``limit`` (bytes)."""


@dataclass(frozen=True)
class ClaimsChange:
    """A user's custom claims before and after :func:`replace_claims_merged`."""

    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def changed(self) -> bool:
        """True when the saved claims differ from the previous ones."""
        return self.before != self.after


def claims_size(claims: Mapping[str, Any]) -> int:
    """Size of ``claims`` exactly as the Admin SDK measures it against the limit."""
    # The Admin SDK counts characters of json.dumps() with default separators and ASCII
    # escapes, which is never smaller than the compact UTF-8 size the backend counts.
    return len(json.dumps(dict(claims)))


def merge_claims(
    current: Mapping[str, Any] | None,
    updates: Mapping[str, Any] | None = None,
    remove: Iterable[str] = (),
) -> dict[str, Any]:
    """Current claims plus ``updates``, minus ``remove``; other claims are kept.

    Raises ``InvalidArgument`` for reserved names and :data:`CLAIMS_FULL` when the
    result would exceed 1,000 bytes.
    """
    reserved = RESERVED_CLAIMS.intersection(updates or {})
    if reserved:
        issues: list[FieldIssue] = [
            {"field": name, "issue": "reserved_claim", "message": "Reserved claim name."}
            for name in sorted(reserved)
        ]
        raise InvalidArgument("Reserved claim names.", issues)
    merged = {**(current or {}), **(updates or {})}
    for name in remove:
        merged.pop(name, None)
    size = claims_size(merged)
    if size > MAX_CLAIMS_SIZE:
        raise CLAIMS_FULL(size=size, limit=MAX_CLAIMS_SIZE)
    return merged


def update_claims(
    uid: str, updates: Mapping[str, Any] | None = None, remove: Iterable[str] = ()
) -> dict[str, Any]:
    """Merge ``updates`` into the user's custom claims, drop ``remove``, save, return them.

    The new claims reach clients when their ID token next refreshes.
    """
    return replace_claims_merged(uid, updates, remove).after


def replace_claims_merged(
    uid: str, updates: Mapping[str, Any] | None = None, remove: Iterable[str] = ()
) -> ClaimsChange:
    """As :func:`update_claims`, but return the claims before and after the change.

    Raises :data:`NO_SUCH_USER` for an unknown user, and what :func:`merge_claims` raises.
    """
    app = firebase_app()
    try:
        user = auth.get_user(uid, app=app)
    except auth.UserNotFoundError:
        raise NO_SUCH_USER() from None
    before = dict(user.custom_claims or {})
    merged = merge_claims(before, updates, remove)
    auth.set_custom_user_claims(uid, merged, app=app)
    return ClaimsChange(before=before, after=merged)
