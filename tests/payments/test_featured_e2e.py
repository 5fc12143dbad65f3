"""Featured listings end to end: an agent signed in through the Auth emulator calls
``feature_listing`` through the Functions emulator, pays as the payment sheet would,
localstripe's signed ``payment_intent.succeeded`` reaches the real webhook and features
the listing; a refund (made in localstripe, announced by a signed ``charge.refunded``,
which localstripe does not send itself) clears it."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

import pytest
import requests
import stripe
from google.cloud import firestore

from pytest_firebase.auth import AuthEmulator
from pytest_firebase.callables import CallResult
from pytest_firebase.webhooks import stripe_webhook
from seed.load import load_users
from tests.listings.factories import listing

from .featured_world import event, featured_until, new_id

pytestmark = pytest.mark.e2e

VISA = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


def pay(api: stripe.StripeClient, intent_id: str) -> None:
    """What the payment sheet does with the card the agent typed in. localstripe cannot
    confirm with a publishable key and client secret, nor take the card in the confirm
    call, so the card is set on the intent first and then confirmed."""
    card = api.v1.payment_methods.create(params={"type": "card", "card": VISA})  # type: ignore[typeddict-item]
    api.v1.payment_intents.update(intent_id, params={"payment_method": card.id})
    api.v1.payment_intents.confirm(intent_id)


def test_an_agent_features_a_listing_and_a_refund_clears_it(
    firebase_stack: Any,
    auth_emulator: AuthEmulator,
    firestore_db: firestore.Client,
    stripe_client: stripe.StripeClient,
    call_emulated: Callable[..., CallResult],
    wait_for: Callable[..., Any],
) -> None:
    load_users()
    agent = auth_emulator.sign_in("agent@homefront.test", "seed-agent-pass")
    listing_id = new_id("home")
    firestore_db.document(f"listings/{listing_id}").set(listing(agent.uid, status="active"))

    offer = call_emulated("feature_listing", {"listingId": listing_id, "days": 4}, agent.id_token)

    assert offer.data["amount"] == {"amount": 2000, "currency": "GBP"}
    intent_id = offer.data["paymentIntentId"]
    assert offer.data["clientSecret"].startswith(f"{intent_id}_secret_")
    paid_at = dt.datetime.now(dt.UTC)
    pay(stripe_client, intent_id)
    until = wait_for(
        lambda: featured_until(firestore_db, listing_id),
        timeout=30,
        what="the webhook featuring the listing",
    )
    assert abs(until - (paid_at + dt.timedelta(days=4))) < dt.timedelta(seconds=30)
    mirror = firestore_db.document(f"customers/{agent.uid}/payments/{intent_id}")
    assert mirror.get().get("status") == "succeeded"

    refund = stripe_client.v1.refunds.create(params={"payment_intent": intent_id})
    assert refund.status == "succeeded"
    intent = stripe_client.v1.payment_intents.retrieve(intent_id).to_dict()
    latest = intent["latest_charge"]
    charge = stripe_client.v1.charges.retrieve(
        latest["id"] if isinstance(latest, dict) else latest
    ).to_dict()
    assert (charge["refunded"], charge["payment_intent"]) == (True, intent_id)
    signed = stripe_webhook(event("charge.refunded", charge), os.environ["STRIPE_WEBHOOK_SECRET"])
    answer = requests.post(
        firebase_stack.functions_url("stripe_webhook"),
        data=signed.body,
        headers=signed.headers,
        timeout=30,
    )

    assert (answer.status_code, answer.json()) == (200, {"outcome": "applied"})
    assert featured_until(firestore_db, listing_id) is None
    assert mirror.get().get("status") == "refunded"
