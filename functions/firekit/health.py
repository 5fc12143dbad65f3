"""Health checks: each one bounded in time, run side by side, reported by name.

A health endpoint is what an uptime check polls when something is already wrong, so no
check may hang it: each runs in its own thread under one deadline, and a check that has
not answered by then is reported as ``timed out`` (its thread is left to finish on its
own; the answer does not wait for it). A check passes or fails with figures a human can
read (``ms``, ``count``, ``threshold``), and the report names every check that failed.

Checks make their own calls with short timeouts and no retries: the platform's retry
policies (minutes, for Firestore) are right for work, wrong for a probe.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.cloud import firestore

PROBE_TIMEOUT_S = 3.0
"""One probe call's limit."""
DEADLINE_S = 5.0
"""The whole report's limit: every check runs at once, so this bounds the answer."""


class UnhealthyError(Exception):
    """A check ran and found a fault; its message is what the report says, its figures
    (a count and its threshold, say) go in the report beside it."""

    def __init__(self, message: str, **figures: Any) -> None:
        super().__init__(message)
        self.figures = figures


@dataclass(frozen=True)
class Result:
    """What one check found."""

    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The check's line in the report."""
        return {"ok": self.ok, **self.detail}


Check = Callable[[], dict[str, Any]]
"""A check: returns its figures if healthy, raises (any exception) if not."""


@dataclass(frozen=True)
class Report:
    """Every check's result, by name."""

    checks: Mapping[str, Result]

    @property
    def failed(self) -> list[str]:
        """The names of the checks that failed, in the order they were declared."""
        return [name for name, result in self.checks.items() if not result.ok]

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.failed


def run(checks: Mapping[str, Check], deadline_s: float = DEADLINE_S) -> Report:
    """Run every check at once; whatever has not answered within ``deadline_s`` failed."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(checks)))
    started = time.monotonic()
    futures = {name: pool.submit(_timed, check) for name, check in checks.items()}
    results: dict[str, Result] = {}
    for name, future in futures.items():
        left = max(0.0, deadline_s - (time.monotonic() - started))
        try:
            results[name] = future.result(timeout=left)
        except concurrent.futures.TimeoutError:
            results[name] = Result(False, {"error": f"timed out after {deadline_s:g} s"})
    pool.shutdown(wait=False, cancel_futures=True)  # a hung check must not hold the answer
    return Report(results)


def _timed(check: Check) -> Result:
    started = time.perf_counter()
    try:
        figures = check()
    except Exception as exc:  # a check's failure is its result, whatever it raised
        figures = exc.figures if isinstance(exc, UnhealthyError) else {}
        return Result(False, {"error": _describe(exc), "ms": _since(started), **figures})
    return Result(True, {"ms": _since(started), **figures})


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text}"[:300] if text else name


# --- checks any backend can use ----------------------------------------------------------


def firestore_round_trip(db: firestore.Client, probe: str) -> Check:
    """Write the document ``probe`` and read it back (the write's time must come back)."""

    def check() -> dict[str, Any]:
        ref = db.document(probe)
        written = dt.datetime.now(dt.UTC)
        ref.set({"at": written}, retry=None, timeout=PROBE_TIMEOUT_S)
        stored = ref.get(retry=None, timeout=PROBE_TIMEOUT_S).to_dict() or {}
        if stored.get("at") != written:
            raise UnhealthyError("the probe read back something other than it wrote")
        return {}

    return check


def http_reachable(url: str) -> Check:
    """Any HTTP answer from ``url`` (even 401 or 404: the service is there to refuse)."""

    def check() -> dict[str, Any]:
        request = urllib.request.Request(url, method="GET")
        try:
            with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S) as response:
                status = int(response.status)
        except urllib.error.HTTPError as answered:
            status = answered.code
        if status >= 500:
            raise UnhealthyError(f"answered {status}")
        return {"status": status}

    return check


def backlog(query: firestore.Query, threshold: int) -> Check:
    """At most ``threshold`` documents match ``query``.

    Counted with an aggregation limited to ``threshold + 1``: a backlog of a million costs
    what one of ``threshold + 1`` does (one read per 1,000 index entries counted).
    """

    def check() -> dict[str, Any]:
        aggregation: Any = query.limit(threshold + 1).count()  # the stubs mistype get()
        [[counted]] = aggregation.get(retry=None, timeout=PROBE_TIMEOUT_S)
        count = int(counted.value)
        figures = {"count": count, "threshold": threshold}
        if count > threshold:
            raise UnhealthyError(f"more than {threshold} waiting", **figures)
        return figures

    return check
