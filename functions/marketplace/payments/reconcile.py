"""Reconciliation: feed Stripe's recent events through the webhook's own path.

A webhook delivery can be lost for good (an endpoint down longer than Stripe retries, a
misconfigured secret for a day). Every run lists the events Stripe created since the
previous run started (minus an overlap for clock skew and slow commits) and gives each
to :func:`events.intake`; the ledger makes every event apply once, so an event the
webhook already took is a duplicate and replaying everything is safe.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import stripe
from google.cloud import firestore

from firekit import webhooks
from marketplace.payments import events

STATE = "_stripeReconcile/state"
OVERLAP = dt.timedelta(minutes=10)
FIRST_LOOKBACK = dt.timedelta(days=3)
"""With no watermark yet, look as far back as Stripe retries a webhook."""
PAGE = 100


@dataclass
class Report:
    """What one run did, by outcome."""

    outcomes: dict[str, int] = field(default_factory=dict)
    since: int = 0

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def apply_since(db: firestore.Client, api: stripe.StripeClient, since: int) -> Report:
    """Give every event Stripe made since ``since`` (Unix seconds) to the intake the
    webhook uses: what was applied already is a duplicate there."""
    report = Report(since=since)
    intake = events.intake()
    params: dict[str, Any] = {"created": {"gte": since}, "limit": PAGE}
    # Oldest first is not what the list gives (newest first), and it does not matter:
    # handlers never let an older event overwrite newer state.
    for event in api.v1.events.list(params=params).auto_paging_iter():  # type: ignore[arg-type]
        payload = event.to_dict()
        try:
            parsed = webhooks.parse_event(events.PROVIDER, payload)
        except webhooks.SignatureError:
            report.count("malformed")
            continue
        # A webhook delivery of the same event may hold it right now: wait it out, so the
        # event ends recorded (applied or duplicate) rather than skipped.
        report.count(intake.process(db, parsed, wait=webhooks.LEASE_TTL))
    return report


def reconcile(
    db: firestore.Client, api: stripe.StripeClient, *, now: dt.datetime | None = None
) -> Report:
    """Apply every event since the last run's start (less the overlap); move the mark."""
    started = now or dt.datetime.now(dt.UTC)
    state_ref = db.document(STATE)
    last = (state_ref.get().to_dict() or {}).get("lastStartedAt")
    since = (last - OVERLAP) if isinstance(last, dt.datetime) else started - FIRST_LOOKBACK
    report = apply_since(db, api, int(since.timestamp()))
    # Only a run that got through everything moves the mark (a failure above raises).
    state_ref.set({"lastStartedAt": started, "lastReport": report.outcomes})
    return report
