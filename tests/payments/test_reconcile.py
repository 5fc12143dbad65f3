"""Reconciliation feeds Stripe's events through the webhook's path: replaying is safe."""

from __future__ import annotations

import datetime as dt
from typing import Any

import stripe
from google.cloud import firestore

from marketplace.payments import reconcile


def ledger(db: Any) -> dict[str, str]:
    return {s.id: s.to_dict()["outcome"] for s in db.collection("_webhookEvents").stream()}


def test_every_recent_event_is_recorded_once_however_often_reconciliation_runs(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient
) -> None:
    for n in range(3):
        stripe_client.v1.customers.create(params={"email": f"r{n}@x.test"})
    listed = {f"stripe:{e.id}" for e in stripe_client.v1.events.list().data}

    first = reconcile.reconcile(firestore_db, stripe_client)
    # The webhook may have taken some of them already (localstripe delivers them to the
    # Functions emulator too): each is then a duplicate here, never applied twice.
    assert listed <= set(ledger(firestore_db))
    assert sum(first.outcomes.values()) == len(listed)
    again = reconcile.reconcile(firestore_db, stripe_client)

    assert again.outcomes == {"duplicate": len(listed)}
    assert set(ledger(firestore_db)) == listed


def test_the_watermark_moves_with_each_complete_run(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient
) -> None:
    start = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
    reconcile.reconcile(firestore_db, stripe_client, now=start)
    later = reconcile.reconcile(firestore_db, stripe_client, now=start + dt.timedelta(hours=1))

    assert later.since == int((start - reconcile.OVERLAP).timestamp())
    state = firestore_db.document(reconcile.STATE).get().to_dict()
    assert state["lastStartedAt"] == start + dt.timedelta(hours=1)
