"""Offers end to end, through the Functions emulator and localstripe: the seeded renter
offers on a rental with its holding deposit, the payment sheet authorises it, Stripe's
signed ``payment_intent.amount_capturable_updated`` (which localstripe does not send)
reaches the real webhook, the agent accepts, the offer trigger captures the deposit, and
localstripe's own ``payment_intent.succeeded`` reaches the webhook; both are told."""

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
from tests.offers.test_deposits import deposit_event
from tests.payments.test_featured_e2e import pay

pytestmark = pytest.mark.e2e


def test_a_renter_offers_with_a_deposit_the_agent_accepts_and_the_deposit_is_taken(
    firebase_stack: Any,
    auth_emulator: AuthEmulator,
    firestore_db: firestore.Client,
    stripe_client: stripe.StripeClient,
    call_emulated: Callable[..., CallResult],
    wait_for: Callable[..., Any],
) -> None:
    load_users()
    agent = auth_emulator.sign_in("agent@homefront.test", "seed-agent-pass")
    renter = auth_emulator.sign_in("renter@homefront.test", "seed-buyer-pass")
    listing_id = "e2e-rental"
    price = {"amount": 2_600_00, "currency": "GBP"}
    firestore_db.document(f"listings/{listing_id}").set(
        listing(agent.uid, status="active", kind="rent", price=price)
    )
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=5)
    request = {
        "listingId": listing_id,
        "amount": 2_500_00,
        "currency": "GBP",
        "conditions": {"moveInDate": "2027-03-01", "termMonths": 12},
        "expiresAt": expires.isoformat(),
    }

    made = call_emulated("make_offer", request, renter.id_token).data
    offer = firestore_db.document(f"offers/{made['offerId']}")
    sheet = made["deposit"]
    assert (sheet["amount"], made["depositState"]) == (2_500_00 * 12 // 52, "awaiting_card")
    pay(stripe_client, sheet["paymentIntentId"])
    authorised = stripe_client.v1.payment_intents.retrieve(sheet["paymentIntentId"]).to_dict()
    assert authorised["status"] == "requires_capture"
    signed = stripe_webhook(
        deposit_event("payment_intent.amount_capturable_updated", authorised),
        os.environ["STRIPE_WEBHOOK_SECRET"],
    )
    answer = requests.post(
        firebase_stack.functions_url("stripe_webhook"),
        data=signed.body,
        headers=signed.headers,
        timeout=30,
    )
    assert (answer.status_code, answer.json()) == (200, {"outcome": "applied"})
    assert offer.get().get("deposit")["state"] == "held"

    accepted = call_emulated("accept_offer", {"offerId": made["offerId"]}, agent.id_token).data

    assert accepted["status"] == "accepted"
    taken = wait_for(
        lambda: offer.get().get("deposit")["state"] == "captured" or None,
        timeout=60,
        what="the offer trigger capturing the deposit",
    )
    assert taken
    intent = stripe_client.v1.payment_intents.retrieve(sheet["paymentIntentId"])
    assert intent.status == "succeeded"
    listing_now = firestore_db.document(f"listings/{listing_id}").get().to_dict() or {}
    assert (listing_now["status"], listing_now["acceptedOfferId"]) == (
        "under_offer",
        made["offerId"],
    )
    agent_told = f"users/{agent.uid}/notifications/offer-{made['offerId']}-1"
    renter_told = f"users/{renter.uid}/notifications/offer-{made['offerId']}-2"
    for path in (agent_told, renter_told):
        wait_for(
            lambda p=path: firestore_db.document(p).get().exists or None,
            timeout=60,
            what=f"the notice {path}",
        )
    # localstripe announces the capture itself; the webhook records it (or finds it done).
    wait_for(
        lambda: (
            any(  # an entry still being applied is a bare lease, with no type yet
                (s.to_dict() or {}).get("type") == "payment_intent.succeeded"
                for s in firestore_db.collection("_webhookEvents").get()
            )
            or None
        ),
        timeout=30,
        what="localstripe's payment_intent.succeeded through the webhook",
    )
    assert offer.get().get("deposit")["state"] == "captured"
