"""Per-function request counts, outcomes and latency histograms: counted in memory by each
instance, flushed to Firestore at most once per instance per interval.

:mod:`firekit.observe` records every invocation here (:func:`record`) and then calls
:func:`flush_if_due`. The flush runs at the end of an invocation, never on a timer: Cloud
Run gives an instance CPU only while it serves a request, so a background thread would be
frozen halfway. It adds its counts with ``Increment`` to two documents of
``_metrics`` in one batch::

    _metrics/5m-20261203T1415   window "5m", start, expiresAt (+2 days), bounds,
    _metrics/1h-20261203T14     window "1h", start, expiresAt (+8 days), bounds,
        functions.<name>.count, .ok, .outcomes.<outcome>, .latency.b<i>

each invocation counted in the windows its end fell in (a flush whose counts straddle a
window boundary writes one document more per window). ``bounds`` are the latency
buckets' upper bounds in ms, the last ``None`` (no bound); ``latency.b<i>`` counts the
invocations of bucket ``i``; :func:`percentile` reads a percentile back. ``ok`` counts the
invocations whose line is not an ERROR (answered as designed, refusals included).

Cost: an instance that served in a minute writes at most 2 documents that minute (with
the default :data:`DEFAULT_FLUSH_SECONDS`), so at most 120 writes an hour (about 130 with
boundary crossings), and nothing while idle. A flush that fails (Firestore unreachable)
keeps its counts for the next one and never fails the invocation; the counts of the last
interval of an instance that is shut down are lost.

Only function instances flush on their own (``K_SERVICE`` set: Cloud Run and the Functions
emulator set it): a script or a test process that imports and calls functions counts in
memory and writes nothing unless it calls :meth:`Aggregator.flush`.
"""

from __future__ import annotations

import bisect
import datetime as dt
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.cloud import firestore

from firekit import logs
from firekit.bootstrap import db as default_db

COLLECTION = "_metrics"
BOUNDS: tuple[float | None, ...] = (
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1000,
    2000,
    5000,
    10_000,
    30_000,
    60_000,
    None,
)
"""Latency buckets' upper bounds in ms (a bucket holds what is above the bound before it
and at most its own); the last has none."""
FLUSH_SECONDS_VAR = "METRICS_FLUSH_SECONDS"
DEFAULT_FLUSH_SECONDS = 60.0
FLUSH_TIMEOUT_SECONDS = 5.0
"""How long a flush may hold up the invocation that makes it."""
MAX_PENDING_WINDOWS = 48
"""5-minute windows kept while flushes fail (4 hours): older ones are dropped, counted in
:attr:`Aggregator.dropped`, so memory stays bounded however long Firestore is away."""


@dataclass(frozen=True)
class Window:
    """A kind of window: its length, document id format and how long its documents live."""

    name: str
    seconds: int
    id_format: str
    keep: dt.timedelta

    def start(self, at: float) -> int:
        """The start (epoch seconds) of the window holding ``at``."""
        return int(at // self.seconds) * self.seconds

    def doc_id(self, start: int) -> str:
        """The id of the window's document, e.g. ``5m-20261203T1415``."""
        return dt.datetime.fromtimestamp(start, dt.UTC).strftime(f"{self.name}-{self.id_format}")


FIVE_MINUTES = Window("5m", 300, "%Y%m%dT%H%M", dt.timedelta(days=2))
HOUR = Window("1h", 3600, "%Y%m%dT%H", dt.timedelta(days=8))
WINDOWS = (FIVE_MINUTES, HOUR)


@dataclass
class Tally:
    """One function's invocations in one window."""

    buckets: int
    count: int = 0
    ok: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    latency: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.latency = self.latency or [0] * self.buckets

    def add(self, other: Tally) -> None:
        """Add ``other``'s counts to these."""
        self.count += other.count
        self.ok += other.ok
        self.outcomes.update(other.outcomes)
        self.latency = [a + b for a, b in zip(self.latency, other.latency, strict=True)]

    def as_increments(self) -> dict[str, Any]:
        """The fields of ``functions.<name>`` that add these counts (zeros left out)."""
        return {
            "count": firestore.Increment(self.count),
            "ok": firestore.Increment(self.ok),
            "outcomes": {o: firestore.Increment(n) for o, n in self.outcomes.items() if n},
            "latency": {f"b{i}": firestore.Increment(n) for i, n in enumerate(self.latency) if n},
        }


Pending = dict[int, dict[str, Tally]]
"""Counts not yet flushed: by 5-minute window start, by function."""


class Aggregator:
    """One instance's counts since its last flush (thread-safe: an instance may serve
    concurrent requests)."""

    def __init__(
        self,
        *,
        interval: float | None = None,
        bounds: Sequence[float | None] = BOUNDS,
        autoflush: bool | None = None,
        db: Callable[[], firestore.Client] = default_db,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval if interval is not None else _flush_seconds()
        self.bounds = tuple(bounds)
        self._finite = [float(b) for b in self.bounds if b is not None]
        if self.bounds[-1] is not None or len(self._finite) != len(self.bounds) - 1:
            raise ValueError("bounds: ascending numbers, then None (no upper bound)")
        self.autoflush = bool(os.environ.get("K_SERVICE")) if autoflush is None else autoflush
        self._db, self._clock, self._monotonic = db, clock, monotonic
        self._lock = threading.Lock()
        self._pending: Pending = {}
        self._next_flush = monotonic() + self.interval
        self.flushes = 0
        """Flushes written."""
        self.dropped = 0
        """Invocations dropped uncounted (their window was older than the pending kept)."""

    def record(
        self, function: str, outcome: str, ok: bool, latency_ms: float, at: float | None = None
    ) -> None:
        """Count one invocation of ``function`` that ended at ``at`` (default: now)."""
        window = FIVE_MINUTES.start(self._clock() if at is None else at)
        bucket = bisect.bisect_left(self._finite, latency_ms)
        with self._lock:
            tally = self._pending.setdefault(window, {}).get(function)
            if tally is None:
                tally = self._pending[window][function] = Tally(len(self.bounds))
            tally.count += 1
            tally.ok += ok
            tally.outcomes[outcome] += 1
            tally.latency[bucket] += 1
            while len(self._pending) > MAX_PENDING_WINDOWS:
                oldest = self._pending.pop(min(self._pending))
                self.dropped += sum(t.count for t in oldest.values())

    def pending(self) -> Pending:
        """A copy of the counts not yet flushed."""
        with self._lock:
            return {w: {f: _copy(t) for f, t in by.items()} for w, by in self._pending.items()}

    def flush_if_due(self) -> bool:
        """Flush if this instance flushes on its own and :attr:`interval` has passed since
        its last flush (or its start); whether it wrote. Never raises."""
        if not self.autoflush:
            return False
        with self._lock:
            now = self._monotonic()
            if now < self._next_flush or not self._pending:
                return False
            self._next_flush = now + self.interval  # one try per interval, even a failed one
        return self.flush()

    def flush(self) -> bool:
        """Flush now, due or not; whether it wrote. Never raises."""
        with self._lock:
            taken, self._pending = self._pending, {}
        if not taken:
            return False
        try:
            client = self._db()
            batch = client.batch()
            for doc_id, data in documents(taken, self.bounds).items():
                batch.set(client.collection(COLLECTION).document(doc_id), data, merge=True)
            batch.commit(retry=None, timeout=FLUSH_TIMEOUT_SECONDS)
        except Exception as exc:
            self._restore(taken)
            logs.warning("metrics flush failed; counts kept for the next", error=exc)
            return False
        with self._lock:
            self.flushes += 1
        return True

    def _restore(self, taken: Pending) -> None:
        with self._lock:
            for window, by_function in taken.items():
                for function, tally in by_function.items():
                    kept = self._pending.setdefault(window, {}).get(function)
                    if kept is None:
                        self._pending[window][function] = tally
                    else:
                        kept.add(tally)


def documents(
    taken: Mapping[int, Mapping[str, Tally]], bounds: Sequence[float | None]
) -> dict[str, dict[str, Any]]:
    """The ``_metrics`` documents (by id) that add ``taken``'s counts to their windows."""
    tallies: dict[str, tuple[Window, int, dict[str, Tally]]] = {}
    for five_minutes, by_function in taken.items():
        for window in WINDOWS:
            start = window.start(five_minutes)
            _, _, summed = tallies.setdefault(window.doc_id(start), (window, start, {}))
            for function, tally in by_function.items():
                summed.setdefault(function, Tally(len(bounds))).add(tally)
    docs = {}
    for doc_id, (window, start, summed) in tallies.items():
        began = dt.datetime.fromtimestamp(start, dt.UTC)
        docs[doc_id] = {
            "window": window.name,
            "start": began,
            "expiresAt": began + window.keep,
            "bounds": list(bounds),
            "functions": {name: tally.as_increments() for name, tally in summed.items()},
        }
    return docs


def percentile(bounds: Sequence[float | None], buckets: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (``0.95`` for p95) of a latency histogram; None if it is empty.

    Linear within the bucket where the quantile falls (as Prometheus' histogram_quantile
    does); in the last, unbounded bucket, that bucket's lower bound.
    """
    if not 0 <= q <= 1:
        raise ValueError(f"q must lie in [0, 1], not {q}")
    if len(bounds) != len(buckets):
        raise ValueError(f"{len(bounds)} bounds but {len(buckets)} buckets")
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    below = 0
    for i, count in enumerate(buckets):
        if count and below + count >= rank:
            lower = float(bounds[i - 1] or 0) if i else 0.0
            upper = bounds[i]
            if upper is None:
                return lower
            return lower + (float(upper) - lower) * max(0.0, rank - below) / count
        below += count
    raise AssertionError("unreachable: the last bucket holding counts reaches the rank")


def _copy(tally: Tally) -> Tally:
    return Tally(tally.buckets, tally.count, tally.ok, Counter(tally.outcomes), list(tally.latency))


def _flush_seconds() -> float:
    value = os.environ.get(FLUSH_SECONDS_VAR, "")
    try:
        seconds = float(value) if value else DEFAULT_FLUSH_SECONDS
    except ValueError:
        seconds = DEFAULT_FLUSH_SECONDS
    return max(0.0, seconds)


AGGREGATOR = Aggregator()
"""This instance's counts."""


def record(function: str, outcome: str, ok: bool, latency_ms: float) -> None:
    """Count one invocation in this instance's :data:`AGGREGATOR`."""
    AGGREGATOR.record(function, outcome, ok, latency_ms)


def flush_if_due() -> bool:
    """Flush this instance's counts if due (see :meth:`Aggregator.flush_if_due`)."""
    return AGGREGATOR.flush_if_due()
