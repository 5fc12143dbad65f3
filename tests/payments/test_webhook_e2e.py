"""The Stripe webhook wired end to end: localstripe signs and delivers to the Functions
emulator, which verifies with the SecretParam's local value and records the event."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest
import requests
import stripe
from google.cloud import firestore

from pytest_firebase.webhooks import stripe_event, stripe_webhook

pytestmark = pytest.mark.e2e
SECRET_NAME = "STRIPE_WEBHOOK_SECRET"
"""The endpoint secret's name: the tests' environment holds its local value."""


def test_localstripe_events_reach_the_webhook_and_are_recorded_once(
    firebase_stack: Any,
    firestore_db: firestore.Client,
    stripe_client: stripe.StripeClient,
    wait_for: Callable[..., Any],
) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "e2e@x.test"})
    created = next(
        e
        for e in stripe_client.v1.events.list().data
        if e.type == "customer.created" and e.data.object.id == customer.id
    )

    ledger = firestore_db.document(f"_webhookEvents/stripe:{created.id}")
    entry = wait_for(
        # While the event is being applied its entry is a bare lease: wait for the outcome.
        lambda: (ledger.get().to_dict() or {}).get("outcome") and ledger.get().to_dict(),
        timeout=30,
        what="the webhook's ledger entry for customer.created",
    )
    assert (entry["type"], entry["outcome"]) == ("customer.created", "ignored_type")


def test_a_forged_delivery_is_refused_with_400_and_writes_nothing(
    firebase_stack: Any, firestore_db: firestore.Client
) -> None:
    event = stripe_event("customer.subscription.updated", {"id": "sub_x"}, event_id="evt_forged")
    forged = stripe_webhook(event, "whsec_not_ours")

    response = requests.post(
        firebase_stack.functions_url("stripe_webhook"),
        data=forged.body,
        headers=forged.headers,
        timeout=30,
    )

    assert response.status_code == 400
    assert json.loads(response.content) == {"error": "invalid_signature"}
    assert not firestore_db.document("_webhookEvents/stripe:evt_forged").get().exists


def test_a_signed_body_that_is_not_an_event_is_refused_with_400_in_our_shape(
    firebase_stack: Any,
) -> None:
    signed = stripe_webhook(b'["evt_listed", "customer.created"]', os.environ[SECRET_NAME])

    response = requests.post(
        firebase_stack.functions_url("stripe_webhook"),
        data=signed.body,
        headers=signed.headers,
        timeout=30,
    )

    assert response.status_code == 400
    # What it wrote (nothing) is held in process (tests/core/test_webhooks.py), where no
    # localstripe delivery of an earlier test can land meanwhile.
    assert json.loads(response.content) == {"error": "malformed_event"}
