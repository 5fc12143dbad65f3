"""Per-caller rate limits kept in Firestore, correct under concurrent calls.

One document per (scope, key) in ``_rateLimits`` holds a fixed-window counter:
``{windowStart, count, expiresAt}``. A transaction reads it and either increments it or
refuses, so concurrent calls can never let more than ``max_calls`` through in a window
(Firestore retries the losers of a race with fresh reads). ``expiresAt`` is meant for a
Firestore TTL policy that removes counters of idle callers.

Cost: one transactional read and one write per allowed call; a refused call only reads.
One document per caller stays far below Firestore's ~1 write/s/document guidance for any
sane per-user limit.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

from google.api_core import exceptions as api_exceptions
from google.cloud import firestore

from firekit.errors import Aborted, ResourceExhausted

COLLECTION = "_rateLimits"
# Many concurrent callers sharing one counter need more than the client's default of 5
# attempts before one of them gives up.
_MAX_ATTEMPTS = 25


@dataclass(frozen=True)
class RateLimit:
    """At most ``max_calls`` per ``per_seconds`` (fixed, aligned windows)."""

    max_calls: int
    per_seconds: int

    def __post_init__(self) -> None:
        if self.max_calls < 1 or self.per_seconds < 1:
            raise ValueError("RateLimit needs max_calls >= 1 and per_seconds >= 1.")

    def window_start(self, now: float) -> int:
        """Start (epoch seconds) of the window containing ``now``."""
        return int(now // self.per_seconds) * self.per_seconds


def counter_id(scope: str, key: str) -> str:
    """Document id of the counter for ``key`` (a uid, usually) in ``scope`` (a function)."""
    # quote() keeps ids readable while making "/" and other unsafe characters harmless.
    return quote(f"{scope}__{key}", safe="")


def consume(
    client: firestore.Client,
    scope: str,
    key: str,
    limit: RateLimit,
    now: float | None = None,
) -> int:
    """Count one call for ``key`` in ``scope`` and return how many remain in the window.

    Raises ``ResourceExhausted`` (with ``retryAfterSeconds`` in details) when the limit
    is reached, and ``Aborted`` if contention outlasts every transaction attempt.
    """
    ref = client.collection(COLLECTION).document(counter_id(scope, key))
    transaction = client.transaction(max_attempts=_MAX_ATTEMPTS)
    moment = time.time() if now is None else now
    try:
        return cast(int, _consume_in_transaction(transaction, ref, limit, moment))
    except ValueError as exc:
        # The client reports "failed to commit in N attempts" as a ValueError whose
        # cause is the last ABORTED commit; any other ValueError is a bug, not contention.
        if not isinstance(exc.__cause__, api_exceptions.Aborted):
            raise
        raise Aborted("Too many concurrent requests, please retry.") from exc


@firestore.transactional
def _consume_in_transaction(
    transaction: firestore.Transaction,
    ref: firestore.DocumentReference,
    limit: RateLimit,
    now: float,
) -> int:
    window = limit.window_start(now)
    snapshot = ref.get(transaction=transaction)
    stored: dict[str, Any] = (snapshot.to_dict() or {}) if snapshot.exists else {}
    count = int(stored.get("count", 0)) if stored.get("windowStart") == window else 0
    if count >= limit.max_calls:
        retry_after = max(1, int(window + limit.per_seconds - now))
        raise ResourceExhausted("Rate limit exceeded.", {"retryAfterSeconds": retry_after})
    window_end = dt.datetime.fromtimestamp(window + limit.per_seconds, tz=dt.UTC)
    transaction.set(ref, {"windowStart": window, "count": count + 1, "expiresAt": window_end})
    return limit.max_calls - count - 1
