"""Per-caller rate limits kept in Firestore, correct under concurrent calls.

One counter document per (scope, key, window) in ``_rateLimits``, id
``{scope}__{key}__{windowStart}``. Each call increments it with a server-side atomic
``Increment`` in a single-write commit and reads the new value from the commit response,
so concurrent calls are serialised by Firestore itself: exactly ``max_calls`` of them
see a count within the limit, whatever the interleaving.

Why not a read-then-write transaction: it costs a read plus a write, and concurrent
transactions on one document wait for each other's locks (about 2 s per conflict in the
emulator), whereas increments never conflict. Refused calls are counted too, which is
harmless (the window's document just shows the attempts).

``expiresAt`` (the window's end) is meant for a Firestore TTL policy on the collection.
Cost: one write per call. A single caller cannot exceed ~1 sustained write/s/document
anyway without being refused, so the hot-document limit is not a concern.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from urllib.parse import quote

from google.cloud import firestore

from firekit.errors import ResourceExhausted

COLLECTION = "_rateLimits"


@dataclass(frozen=True)
class RateLimit:
    """At most ``max_calls`` per ``per_seconds`` (fixed windows aligned to the epoch)."""

    max_calls: int
    per_seconds: int

    def __post_init__(self) -> None:
        if self.max_calls < 1 or self.per_seconds < 1:
            raise ValueError("RateLimit needs max_calls >= 1 and per_seconds >= 1.")

    def window_start(self, now: float) -> int:
        """Start (epoch seconds) of the window containing ``now``."""
        return int(now // self.per_seconds) * self.per_seconds


def counter_id(scope: str, key: str, window_start: int) -> str:
    """Document id of the counter for ``key`` (usually a uid) in ``scope`` (a function)."""
    # quote() keeps ids readable while making "/" and other unsafe characters harmless.
    return quote(f"{scope}__{key}__{window_start}", safe="")


def consume(
    client: firestore.Client,
    scope: str,
    key: str,
    limit: RateLimit,
    now: float | None = None,
) -> int:
    """Count one call for ``key`` in ``scope`` and return how many remain in the window.

    Raises ``ResourceExhausted`` (details: ``retryAfterSeconds``) over the limit.
    """
    moment = time.time() if now is None else now
    window = limit.window_start(moment)
    ref = client.collection(COLLECTION).document(counter_id(scope, key, window))
    window_end = window + limit.per_seconds
    result = ref.set(
        {
            "count": firestore.Increment(1),
            "scope": scope,
            "key": key,
            "windowStart": window,
            "expiresAt": dt.datetime.fromtimestamp(window_end, tz=dt.UTC),
        },
        merge=True,
    )
    # The commit response carries the incremented value: no read, no race.
    count = int(result.transform_results[0].integer_value)
    if count > limit.max_calls:
        retry_after = max(1, int(window_end - moment))
        raise ResourceExhausted("Rate limit exceeded.", {"retryAfterSeconds": retry_after})
    return limit.max_calls - count
