"""firekit.metrics against the Firestore emulator: counts per function flushed at most once
per interval, exact under concurrency, kept when a flush fails; percentiles read back."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from firekit import metrics
from firekit.metrics import BOUNDS, Aggregator, percentile

AT = dt.datetime(2026, 12, 3, 14, 17, 30, tzinfo=dt.UTC).timestamp()


class Clock:
    """Time that moves only when a test moves it."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def counting(db: firestore.Client, calls: list[int]) -> Callable[[], firestore.Client]:
    """The emulator's client, counting how often a flush asks for it (once a flush)."""

    def client() -> firestore.Client:
        calls.append(1)
        return db

    return client


def stored(db: firestore.Client) -> dict[str, dict[str, Any]]:
    return {snap.id: snap.to_dict() or {} for snap in db.collection(metrics.COLLECTION).stream()}


def latency_buckets(doc: dict[str, Any], function: str) -> list[int]:
    latency = doc["functions"][function].get("latency", {})
    return [latency.get(f"b{i}", 0) for i in range(len(doc["bounds"]))]


def test_many_calls_flush_at_most_once_per_interval(firestore_db: firestore.Client) -> None:
    flushes: list[int] = []
    ticking = Clock()
    aggregator = Aggregator(
        interval=60,
        autoflush=True,
        db=counting(firestore_db, flushes),
        clock=lambda: AT,
        monotonic=ticking,
    )
    for call in range(1000):  # a call every 0.3 s for 300 s
        ticking.now = call * 0.3
        aggregator.record("approve_listing", "ok", True, 42.0)
        aggregator.flush_if_due()
    assert len(flushes) == 4  # at 60, 120, 180 and 240 s: never twice in an interval
    docs = stored(firestore_db)
    assert sorted(docs) == ["1h-20261203T14", "5m-20261203T1415"]  # 2 writes a flush
    flushed = docs["5m-20261203T1415"]["functions"]["approve_listing"]["count"]
    assert flushed == 801  # the calls made by the flush at 240 s
    aggregator.flush()
    for doc in stored(firestore_db).values():
        assert doc["functions"]["approve_listing"]["count"] == 1000


def test_the_documents_say_what_the_console_reads(firestore_db: firestore.Client) -> None:
    aggregator = Aggregator(autoflush=False, db=lambda: firestore_db, clock=lambda: AT)
    for latency, outcome, ok in [(3, "ok", True), (7, "ok", True), (420, "INTERNAL", False)]:
        aggregator.record("approve_listing", outcome, ok, latency)
    aggregator.record("on_profile_updated", "skipped_own_write", True, 5.0)
    assert aggregator.flush()
    docs = stored(firestore_db)
    five, hour = docs["5m-20261203T1415"], docs["1h-20261203T14"]
    start = dt.datetime(2026, 12, 3, 14, 15, tzinfo=dt.UTC)
    assert (five["window"], five["start"], five["expiresAt"]) == (
        "5m",
        start,
        start + dt.timedelta(days=2),
    )
    assert (hour["window"], hour["start"], hour["expiresAt"]) == (
        "1h",
        start.replace(minute=0),
        start.replace(minute=0) + dt.timedelta(days=8),
    )
    for doc in (five, hour):
        assert doc["bounds"] == list(BOUNDS) and doc["bounds"][-1] is None
        assert doc["functions"] == {
            "approve_listing": {
                "count": 3,
                "ok": 2,
                "outcomes": {"ok": 2, "INTERNAL": 1},
                "latency": {"b0": 1, "b1": 1, "b6": 1},  # <= 5, <= 10, <= 500 ms
            },
            "on_profile_updated": {
                "count": 1,
                "ok": 1,
                "outcomes": {"skipped_own_write": 1},
                "latency": {"b0": 1},  # a bound belongs to its own bucket
            },
        }


def test_counts_land_in_the_windows_their_calls_ended_in(firestore_db: firestore.Client) -> None:
    ends = iter(
        [dt.datetime(2026, 12, 3, 14, 59, 50, tzinfo=dt.UTC).timestamp()] * 2
        + [dt.datetime(2026, 12, 3, 15, 0, 10, tzinfo=dt.UTC).timestamp()]
    )
    aggregator = Aggregator(autoflush=False, db=lambda: firestore_db, clock=lambda: next(ends))
    for _ in range(3):
        aggregator.record("viewing_clock", "ok", True, 80.0)
    aggregator.flush()
    counts = {i: d["functions"]["viewing_clock"]["count"] for i, d in stored(firestore_db).items()}
    assert counts == {
        "5m-20261203T1455": 2,
        "1h-20261203T14": 2,
        "5m-20261203T1500": 1,
        "1h-20261203T15": 1,
    }


def test_counts_stay_exact_under_concurrent_calls_and_flushes(
    firestore_db: firestore.Client,
) -> None:
    flushes: list[int] = []
    ticks = itertools.count()  # each look at the clock moves it on: due every 100 calls
    aggregator = Aggregator(
        interval=100,
        autoflush=True,
        db=counting(firestore_db, flushes),
        clock=lambda: AT,
        monotonic=lambda: float(next(ticks)),
    )
    threads, calls = 8, 400
    start = threading.Barrier(threads)

    def serve(worker: int) -> None:
        start.wait()
        for call in range(calls):
            aggregator.record(f"fn{worker % 2}", "ok" if call % 4 else "ABORTED", True, call % 700)
            aggregator.flush_if_due()

    pool = [threading.Thread(target=serve, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    aggregator.flush()
    assert len(flushes) >= 10  # flushes ran while other threads counted
    for doc in stored(firestore_db).values():
        for name in ("fn0", "fn1"):
            tally = doc["functions"][name]
            expected = threads // 2 * calls
            assert (tally["count"], tally["ok"]) == (expected, expected)
            assert tally["outcomes"] == {"ok": expected * 3 // 4, "ABORTED": expected // 4}
            assert sum(latency_buckets(doc, name)) == expected


def test_a_failed_flush_keeps_its_counts_for_the_next(
    firestore_db: firestore.Client,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens there
    unreachable = firestore.Client(project="demo-marketplace", credentials=AnonymousCredentials())
    monkeypatch.undo()
    target = {"db": unreachable}
    aggregator = Aggregator(autoflush=False, db=lambda: target["db"], clock=lambda: AT)
    for _ in range(10):
        aggregator.record("search_near", "ok", True, 30.0)
    assert aggregator.flush() is False
    [complaint] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (complaint["severity"], complaint["message"]) == (
        "WARNING",
        "metrics flush failed; counts kept for the next",
    )
    aggregator.record("search_near", "ok", True, 30.0)
    [kept] = aggregator.pending().values()
    assert kept["search_near"].count == 11
    target["db"] = firestore_db
    assert aggregator.flush() is True
    assert aggregator.pending() == {}
    for doc in stored(firestore_db).values():
        assert doc["functions"]["search_near"]["count"] == 11


def test_pending_windows_are_bounded_while_flushes_fail() -> None:
    ends = iter(AT + 300 * n for n in range(metrics.MAX_PENDING_WINDOWS + 5))
    aggregator = Aggregator(autoflush=False, clock=lambda: next(ends))
    for _ in range(metrics.MAX_PENDING_WINDOWS + 5):
        aggregator.record("privacy_clock", "ok", True, 10.0)
    assert len(aggregator.pending()) == metrics.MAX_PENDING_WINDOWS
    assert aggregator.dropped == 5


def test_without_a_function_instance_nothing_flushes_on_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("K_SERVICE", raising=False)
    assert Aggregator(interval=0).autoflush is False
    monkeypatch.setenv("K_SERVICE", "approve_listing")  # Cloud Run and the emulator set it
    monkeypatch.setenv(metrics.FLUSH_SECONDS_VAR, "15")
    aggregator = Aggregator()
    assert (aggregator.autoflush, aggregator.interval) == (True, 15.0)


# --- percentiles ------------------------------------------------------------------------


def test_percentiles_interpolate_within_their_bucket() -> None:
    bounds, buckets = (10, 20, None), (10, 10, 0)
    assert percentile(bounds, buckets, 0.5) == 10.0
    assert percentile(bounds, buckets, 0.75) == 15.0
    assert percentile(bounds, buckets, 1.0) == 20.0
    assert percentile(bounds, buckets, 0.05) == 1.0


def test_a_percentile_in_the_unbounded_bucket_is_its_lower_bound() -> None:
    assert percentile((10, 20, None), (0, 1, 3), 0.95) == 20.0


def test_an_empty_histogram_has_no_percentile_and_bad_input_is_refused() -> None:
    assert percentile(BOUNDS, [0] * len(BOUNDS), 0.5) is None
    with pytest.raises(ValueError, match="q must lie"):
        percentile(BOUNDS, [1] * len(BOUNDS), 95)
    with pytest.raises(ValueError, match="bounds but"):
        percentile(BOUNDS, [1], 0.5)


def test_percentiles_of_a_sample_fall_in_the_bucket_of_the_exact_ones() -> None:
    rng = random.Random(19)
    sample = sorted(rng.lognormvariate(4, 1) for _ in range(5000))  # a latency-like tail
    aggregator = Aggregator(autoflush=False, clock=lambda: AT)
    for value in sample:
        aggregator.record("f", "ok", True, value)
    [by_function] = aggregator.pending().values()
    buckets = by_function["f"].latency
    for q in (0.5, 0.9, 0.95, 0.99):
        exact = sample[int(q * len(sample)) - 1]
        estimate = percentile(BOUNDS, buckets, q)
        assert estimate is not None
        finite = [b for b in BOUNDS if b is not None]
        upper = next(b for b in finite if exact <= b)
        lower = max([0.0, *(b for b in finite if b < exact)])
        assert lower <= estimate <= upper, (q, exact, estimate)
