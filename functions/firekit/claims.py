"""Custom claims: merge, never clobber, and stay under Firebase's 1,000-byte limit.

``set_custom_user_claims`` replaces *all* claims, so a function that sets ``role`` would
silently drop a ``plan`` claim set by another. :func:`update_claims` reads, merges and
writes instead. The Auth API offers no compare-and-set, so two concurrent updates of the
same user can still race; serialise them (one callable per user action) where it matters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from firebase_admin import auth  # type: ignore[import-untyped, unused-ignore]

from firekit.bootstrap import firebase_app
from firekit.errors import FailedPrecondition, FieldIssue, InvalidArgument, NotFound

MAX_CLAIMS_SIZE = 1000
# Names Firebase refuses as custom claims (they are standard ID-token claims).
RESERVED_CLAIMS = frozenset(
    {"acr", "amr", "at_hash", "aud", "auth_time", "azp", "cnf", "c_hash", "exp", "iat",
     "iss", "jti", "nbf", "nonce", "sub", "firebase"}
)  # fmt: skip


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

    Raises ``InvalidArgument`` for reserved names and ``FailedPrecondition`` when the
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
        raise FailedPrecondition(
            "Custom claims would exceed 1000 bytes.", {"size": size, "limit": MAX_CLAIMS_SIZE}
        )
    return merged


def update_claims(
    uid: str, updates: Mapping[str, Any] | None = None, remove: Iterable[str] = ()
) -> dict[str, Any]:
    """Merge ``updates`` into the user's custom claims, drop ``remove``, save, return them.

    The new claims reach clients when their ID token next refreshes.
    """
    app = firebase_app()
    try:
        user = auth.get_user(uid, app=app)
    except auth.UserNotFoundError:
        raise NotFound("User not found.") from None
    merged = merge_claims(user.custom_claims, updates, remove)
    auth.set_custom_user_claims(uid, merged, app=app)
    return merged
