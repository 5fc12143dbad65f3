"""Per-caller rate limits kept in Firestore, correct under concurrent calls.

One counter document per (scope, key, window) in ``_rateLimits``, id
``{scope}__{sha256(key)[:32]}__{windowStart}``: the key (a uid, or a client address for
anonymous callers) is hashed so the id stays far below Firestore's 1,500-byte limit
whatever the caller sends. Each call increments the counter with a server-side atomic
``Increment`` in a single-write commit and reads the new value from the commit response,
so concurrent calls are serialised by Firestore itself: exactly ``max_calls`` of them
see a count within the limit, whatever the interleaving.

Why not a read-then-write transaction: it costs a read plus a write, and concurrent
transactions on one document wait for each other's locks (about 2 s per conflict in the
emulator), whereas increments never conflict.

Refusals stop the writes: once a call is refused, the instance remembers "refused until
the window ends" for that counter (in memory, at most :data:`MEMO_SIZE` counters, oldest
forgotten first) and refuses further calls of that caller in that window without touching
Firestore. So a runaway caller costs about ``max_calls`` writes per window plus one per
instance it reaches (and whatever is in flight concurrently), not one write per attempt.
The sustained write rate on one counter document is therefore bounded by
``max_calls / per_seconds``; keep that around 1/s or below (Firestore's guideline for a
single document) or expect contention to slow the increments down. The memo is only a
shortcut: the Firestore counter stays authoritative, and a cold instance simply writes
once more to learn the same answer.

``expiresAt`` (the window's end) is meant for a Firestore TTL policy on the collection.
Cost: one write per allowed call, plus at most one per instance per refused window.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import quote

from google.cloud import firestore

from firekit.errors import Refusal, ResourceExhausted

COLLECTION = "_rateLimits"
KEY_HASH_CHARS = 32
"""Hex characters of the key's sha256 kept in a counter id (128 bits)."""
KEY_LABEL_CHARS = 128
"""The counter document keeps the key itself, cut to this many characters, for humans."""
MEMO_SIZE = 10_000
"""Counters an instance remembers as refused-until-window-end (about 1 MB at most)."""

RATE_LIMITED = Refusal(ResourceExhausted, "rate_limited", "Rate limit exceeded.")
"""Details: ``{"reason": "rate_limited", "retryAfterSeconds": n}``."""

_memo_lock = threading.Lock()
# (project, counter id) -> window end (epoch seconds). Insertion-ordered: oldest first.
_refused_until: OrderedDict[tuple[str, str], float] = OrderedDict()


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
    """Document id of the counter for ``key`` (usually a uid) in ``scope`` (a function).

    The key is hashed, so the id's length does not depend on it; quote() keeps the
    (developer-chosen) scope readable while making "/" and other unsafe characters harmless.
    """
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:KEY_HASH_CHARS]
    return quote(f"{scope}__{digest}__{window_start}", safe="")


def consume(
    client: firestore.Client,
    scope: str,
    key: str,
    limit: RateLimit,
    now: float | None = None,
) -> int:
    """Count one call for ``key`` in ``scope`` and return how many remain in the window.

    Raises ``ResourceExhausted`` (details: ``retryAfterSeconds``) over the limit; once
    refused, further calls in the same window are refused without a write (see above).
    """
    moment = time.time() if now is None else now
    window = limit.window_start(moment)
    window_end = window + limit.per_seconds
    doc_id = counter_id(scope, key, window)
    memo_key = (str(client.project), doc_id)
    if _is_refused(memo_key, moment):
        raise _exhausted(window_end, moment)
    ref = client.collection(COLLECTION).document(doc_id)
    result = ref.set(
        {
            "count": firestore.Increment(1),
            "scope": scope,
            "key": key[:KEY_LABEL_CHARS],
            "windowStart": window,
            "expiresAt": dt.datetime.fromtimestamp(window_end, tz=dt.UTC),
        },
        merge=True,
    )
    # The commit response carries the incremented value: no read, no race.
    count = int(result.transform_results[0].integer_value)
    if count > limit.max_calls:
        _remember_refused(memo_key, window_end)
        raise _exhausted(window_end, moment)
    return limit.max_calls - count


def forget_refusals() -> None:
    """Clear this process's memo of refused counters (for tests that reset Firestore)."""
    with _memo_lock:
        _refused_until.clear()


def _is_refused(memo_key: tuple[str, str], moment: float) -> bool:
    with _memo_lock:
        until = _refused_until.get(memo_key)
        if until is None:
            return False
        if moment < until:
            return True
        del _refused_until[memo_key]
        return False


def _remember_refused(memo_key: tuple[str, str], window_end: float) -> None:
    with _memo_lock:
        _refused_until[memo_key] = window_end
        _refused_until.move_to_end(memo_key)
        while len(_refused_until) > MEMO_SIZE:
            _refused_until.popitem(last=False)


def _exhausted(window_end: int, moment: float) -> ResourceExhausted:
    retry_after = max(1, int(window_end - moment))
    details = {"reason": RATE_LIMITED.reason, "retryAfterSeconds": retry_after}
    return ResourceExhausted(RATE_LIMITED.when, details)
