"""What "healthy" means for the marketplace: the checks the ``health`` endpoint runs.

Each backlog is work that some retry or clock should be draining; past its threshold the
draining has stopped or fallen behind, which no single failed request would show:

* ``event_claims``: trigger events claimed for a side effect (email, push, Stripe) whose
  claim's lease has run out: the attempt died, and the event waits for a redelivery.
* ``fanout_chunks``: fan-out chunks (alerts, digests) with recipients still to reach.
* ``pending_deletions``: account erasures begun and not finished (``privacy_clock``
  re-queues a stalled one every hour).

Cost of one report: 1 write and 1 read (the probe) and 1 read per backlog (a count
limited to its threshold + 1). The endpoint is public, for uptime checks, so a report is
reused for :data:`REUSE_S` per instance: a flood of requests costs at most one report per
instance per interval.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from firekit import health, leases, ledger, ownership
from firekit.bootstrap import is_emulated
from firekit.fanout import engine
from marketplace import __version__, config
from marketplace.payments import stripe_api

PROBE = "_health/probe"
"""The one document the Firestore probe writes and reads back."""
REUSE_S = 10.0
THRESHOLDS = {"event_claims": 20, "fanout_chunks": 500, "pending_deletions": 50}
"""The most of each backlog that is still normal (see the module's docstring)."""


def checks(db: firestore.Client, stripe_base: str, now: dt.datetime) -> dict[str, health.Check]:
    """Every check, by the name the report gives it."""
    return {
        "firestore": health.firestore_round_trip(db, PROBE),
        "stripe": health.http_reachable(stripe_base.rstrip("/") + "/v1"),
        "event_claims": health.backlog(
            db.collection(ledger.COLLECTION).where(filter=FieldFilter("leaseExpiresAt", "<", now)),
            THRESHOLDS["event_claims"],
        ),
        "fanout_chunks": health.backlog(
            db.collection(engine.CHUNKS).where(filter=FieldFilter("state", "==", "written")),
            THRESHOLDS["fanout_chunks"],
        ),
        "pending_deletions": health.backlog(
            db.collection(ownership.ERASURES).where(filter=FieldFilter("state", "==", "running")),
            THRESHOLDS["pending_deletions"],
        ),
    }


def report(db: firestore.Client, stripe_base: str) -> tuple[int, dict[str, Any]]:
    """The health report's HTTP status (200, or 503 if any check failed) and body."""
    found = health.run(checks(db, stripe_base, leases.now()))
    body = {
        "status": "ok" if found.ok else "failing",
        "failed": found.failed,
        "service": config.MARKETPLACE_NAME.value,
        "version": __version__,
        "revision": os.environ.get("K_REVISION"),
        "emulated": is_emulated(),
        "checks": {name: result.as_json() for name, result in found.checks.items()},
    }
    return (200 if found.ok else 503), body


@dataclass
class Reused:
    """This instance's last report and when it was made."""

    made_at: float = -math.inf
    answer: tuple[int, dict[str, Any]] = (503, {})
    lock: threading.Lock = field(default_factory=threading.Lock)


_REUSED = Reused()


def current_report(db: firestore.Client) -> tuple[int, dict[str, Any]]:
    """:func:`report`, made at most once per :data:`REUSE_S` on this instance."""
    reused = _REUSED
    with reused.lock:  # concurrent requests wait for one report rather than each making one
        if time.monotonic() - reused.made_at > REUSE_S:
            reused.answer = report(db, stripe_api.api_base())
            reused.made_at = time.monotonic()
        return reused.answer
