"""The agent plan end to end: a signed-up agent starts it through the Functions emulator,
pays (with 3-D Secure) as the payment sheet would, and localstripe's signed webhooks set
and then remove the claim, the mirror and the profile's plan."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe
from firebase_admin import auth
from google.cloud import firestore

from pytest_firebase.auth import AuthEmulator
from pytest_firebase.callables import CallResult

pytestmark = pytest.mark.e2e

CARD_3DS = "4000002500003155"


def test_an_agent_starts_the_plan_pays_and_cancelling_removes_it(
    firestore_db: firestore.Client,
    auth_emulator: AuthEmulator,
    stripe_client: stripe.StripeClient,
    call_emulated: Callable[..., CallResult],
    wait_for: Callable[..., Any],
) -> None:
    signed_up = auth_emulator.sign_up("plan-agent@homefront.test", "agent-pass-123")
    uid = signed_up.uid
    # An admin made them an agent (the claim and its profile record), with a claim of
    # another feature that the plan must leave alone.
    auth.set_custom_user_claims(uid, {"role": "agent", "team": "north"})
    firestore_db.document(f"users/{uid}").update({"role": "agent"})
    agent = auth_emulator.refresh(signed_up)
    # The payment sheet collects the card and gives the app a PaymentMethod.
    card = {"number": CARD_3DS, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    method = stripe_client.v1.payment_methods.create(params={"type": "card", "card": card})

    started = call_emulated("start_agent_plan", {"paymentMethodId": method.id}, agent.id_token)

    offer = started.data
    assert (offer["status"], offer["requiresAction"], offer["plan"]) == ("incomplete", True, None)
    assert offer["customerId"].startswith("cus_") and "_secret_" in offer["clientSecret"]
    subscription = f"customers/{uid}/subscriptions/{offer['subscriptionId']}"
    assert firestore_db.document(subscription).get().to_dict()["status"] == "incomplete"

    # The sheet runs the 3-D Secure step with the client secret (localstripe's stand-in).
    intent = offer["clientSecret"].partition("_secret_")[0]
    stripe_client.raw_request(
        "post",
        f"/v1/payment_intents/{intent}/_authenticate",
        client_secret=offer["clientSecret"],
        success="true",
    )

    def plan_state() -> tuple[Any, Any, Any]:
        mirrored = (firestore_db.document(subscription).get().to_dict() or {}).get("status")
        profile = (firestore_db.document(f"users/{uid}").get().to_dict() or {}).get("plan")
        return mirrored, profile, (auth.get_user(uid).custom_claims or {}).get("plan")

    wait_for(
        lambda: plan_state() == ("active", "agent_pro", "agent_pro"),
        timeout=40,
        what="the webhook granting the plan",
    )
    claims = auth_emulator.refresh(agent).claims
    assert (claims["plan"], claims["role"], claims["team"]) == ("agent_pro", "agent", "north")

    stripe_client.v1.subscriptions.cancel(offer["subscriptionId"])

    wait_for(
        lambda: plan_state() == ("canceled", None, None),
        timeout=40,
        what="the webhook removing the plan",
    )
    claims = auth_emulator.refresh(agent).claims
    assert "plan" not in claims and (claims["role"], claims["team"]) == ("agent", "north")
    ledger = {
        s.to_dict()["type"]: s.to_dict()["outcome"]
        for s in firestore_db.collection("_webhookEvents").stream()
    }
    assert ledger["invoice.payment_succeeded"] == "applied"
    assert ledger["customer.subscription.deleted"] == "applied"
