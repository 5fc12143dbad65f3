"""Featured listings in-process: the callable against localstripe, the webhook's handlers
through the intake (events in Stripe's documented shapes, duplicated and shuffled)."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import stripe
from flask import Flask, request
from google.cloud import firestore

from api.featured import feature_listing
from firekit import leases, webhooks
from marketplace.payments import customers, events, featured
from pytest_firebase.callables import CallResult
from pytest_firebase.webhooks import stripe_webhook

from .featured_world import (
    agent_with_listing,
    charge_refunded,
    dispute_closed,
    featured_until,
    intent_failed,
    intent_succeeded,
    new_id,
)

AGENT = {"role": "agent"}
DAY = dt.timedelta(days=1)
SLACK = dt.timedelta(seconds=60)
"""How far apart two server-set times taken during one test may be."""
Call = Callable[..., CallResult]
ARRANGED = {"users", "listings", "_webhookEvents", "_metrics"}
"""Collections a test arranges, or that localstripe's own webhooks reach meanwhile (and
the metrics the emulated webhook's instance may flush then)."""


def documents(db: Any, skip: set[str] = ARRANGED) -> list[str]:
    """Every document below the top-level collections not in ``skip``."""
    paths = []
    for collection in db.collections():
        if collection.id in skip:
            continue
        for ref in collection.list_documents():
            paths.append(ref.path)
            paths += [d.path for sub in ref.collections() for d in sub.list_documents()]
    return sorted(paths)


def stripe_objects(api: stripe.StripeClient) -> tuple[int, int]:
    """How many customers and PaymentIntents localstripe holds."""
    return len(api.v1.customers.list().data), len(api.v1.payment_intents.list().data)


def start(call_function: Call, uid: str, listing_id: str, days: int) -> dict[str, Any]:
    result = call_function(
        feature_listing, {"listingId": listing_id, "days": days}, uid=uid, claims=AGENT
    )
    offer: dict[str, Any] = result.data
    return offer


def intent_of(api: stripe.StripeClient, offer: dict[str, Any]) -> dict[str, Any]:
    intent: dict[str, Any] = api.v1.payment_intents.retrieve(offer["paymentIntentId"]).to_dict()
    return intent


def deliver(db: Any, *payloads: dict[str, Any]) -> list[str]:
    intake = events.intake()
    return [intake.process(db, webhooks.parse_event("stripe", p)) for p in payloads]


def payment(db: Any, uid: str, offer: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = (
        db.document(f"customers/{uid}/payments/{offer['paymentIntentId']}").get().to_dict()
    )
    return data


def about(actual: dt.datetime | None, expected: dt.datetime) -> bool:
    return actual is not None and abs(actual - expected) < SLACK


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- the callable -------------------------------------------------------------------------


def test_the_price_is_computed_on_the_server_and_the_payment_is_mirrored(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)

    offer = start(call_function, uid, listing_id, 7)

    assert offer["amount"] == {"amount": 7 * 500, "currency": "GBP"}
    assert offer["days"] == 7
    customer = firestore_db.document(f"customers/{uid}").get().get("stripeCustomerId")
    assert offer["customerId"] == customer
    intent = intent_of(stripe_client, offer)
    assert offer["clientSecret"] == intent["client_secret"]
    assert (intent["amount"], intent["currency"], intent["customer"]) == (3500, "gbp", customer)
    assert intent["metadata"] == {
        "uid": uid,
        "listingId": listing_id,
        "days": "7",
        "purpose": "featured_listing",
    }
    mirror = payment(firestore_db, uid, offer)
    assert mirror["status"] == "requires_payment_method"
    assert (mirror["amount"], mirror["days"], mirror["listingId"], mirror["purpose"]) == (
        {"amount": 3500, "currency": "GBP"},
        7,
        listing_id,
        "featured_listing",
    )
    link = firestore_db.document(f"_stripePayments/{offer['paymentIntentId']}").get().to_dict()
    assert link == {"uid": uid, "purpose": "featured_listing", "listingId": listing_id}
    assert featured_until(firestore_db, listing_id) is None  # nothing until it is paid


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"days": 0}, ["days"]),
        ({"days": 31}, ["days"]),
        ({"days": 2.5}, ["days"]),
        ({"days": "3"}, ["days"]),
        ({"days": True}, ["days"]),
        ({"days": 3, "amount": 1}, ["amount"]),
        (
            {"days": 3, "price": {"amount": 1, "currency": "GBP"}, "currency": "GBP"},
            ["currency", "price"],
        ),
        ({"days": 3, "listingId": "a/../b"}, ["listingId"]),
        ({"listingId": None}, ["days", "listingId"]),
    ],
)
def test_bad_input_is_refused_with_the_fields_and_writes_nothing(
    firestore_db: firestore.Client,
    stripe_client: stripe.StripeClient,
    call_function: Call,
    data: dict[str, Any],
    fields: list[str],
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)

    result = call_function(
        feature_listing, {"listingId": listing_id, **data}, uid=uid, claims=AGENT
    )

    assert result.error_status == "INVALID_ARGUMENT"
    assert sorted(d["field"] for d in result.error_details) == fields
    assert documents(firestore_db) == []  # not even a rate-limit counter
    assert stripe_objects(stripe_client) == (0, 0)
    assert featured_until(firestore_db, listing_id) is None


@pytest.mark.parametrize(
    ("who", "status", "code", "reason"),
    [
        ("stranger", "active", "PERMISSION_DENIED", "not_listing_owner"),
        ("owner", "under_offer", "FAILED_PRECONDITION", "listing_not_active"),
        ("owner", "draft", "FAILED_PRECONDITION", "listing_not_active"),
        ("owner", "sold", "FAILED_PRECONDITION", "listing_not_active"),
        ("owner", "missing", "NOT_FOUND", "no_such_listing"),
    ],
)
def test_only_the_owner_of_an_active_listing_may_feature_it(
    firestore_db: firestore.Client,
    stripe_client: stripe.StripeClient,
    call_function: Call,
    who: str,
    status: str,
    code: str,
    reason: str,
) -> None:
    owner, listing_id = agent_with_listing(firestore_db, status=status)
    if status == "missing":
        firestore_db.document(f"listings/{listing_id}").delete()
    caller = owner if who == "owner" else agent_with_listing(firestore_db)[0]

    result = call_function(
        feature_listing, {"listingId": listing_id, "days": 3}, uid=caller, claims=AGENT
    )

    assert (result.error_status, result.error_details) == (code, {"reason": reason})
    # Only the caller's rate-limit counter: no customer, no payment, no lock, no Stripe call.
    assert documents(firestore_db, ARRANGED | {"_rateLimits"}) == []
    assert stripe_objects(stripe_client) == (0, 0)


def test_only_agents_may_call_it(firestore_db: firestore.Client, call_function: Call) -> None:
    uid, listing_id = agent_with_listing(firestore_db)
    data = {"listingId": listing_id, "days": 3}

    as_buyer = call_function(feature_listing, data, uid=uid, claims={"role": "buyer"})
    anonymous = call_function(feature_listing, data)

    assert (as_buyer.error_status, as_buyer.error_details) == (
        "PERMISSION_DENIED",
        {"reason": "role"},
    )
    assert (anonymous.error_status, anonymous.error_details) == (
        "UNAUTHENTICATED",
        {"reason": "signed_out"},
    )
    assert documents(firestore_db) == []


def test_a_repeated_call_while_the_payment_is_pending_offers_the_same_payment(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)

    first = start(call_function, uid, listing_id, 3)
    again = start(call_function, uid, listing_id, 3)
    longer = start(call_function, uid, listing_id, 10)

    assert again == first
    assert longer["paymentIntentId"] != first["paymentIntentId"]
    assert longer["amount"] == {"amount": 5000, "currency": "GBP"}
    assert stripe_objects(stripe_client) == (1, 2)
    # Once that payment is over (here: cancelled), the same request buys anew.
    stripe_client.v1.payment_intents.cancel(first["paymentIntentId"])
    fresh = start(call_function, uid, listing_id, 3)
    assert fresh["paymentIntentId"] not in {first["paymentIntentId"], longer["paymentIntentId"]}
    assert stripe_objects(stripe_client) == (1, 3)


def test_concurrent_calls_create_one_payment(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)
    # The customer exists already, so the calls race for the PaymentIntent itself.
    customers.ensure_customer(firestore_db, stripe_client, uid, None)

    with ThreadPoolExecutor(8) as pool:
        offers = list(pool.map(lambda _: start(call_function, uid, listing_id, 5), range(8)))

    assert len({o["paymentIntentId"] for o in offers}) == 1
    assert stripe_objects(stripe_client) == (1, 1)


def test_a_call_that_waits_too_long_for_the_customer_is_busy_and_buys_nothing(
    firestore_db: firestore.Client,
    stripe_client: stripe.StripeClient,
    call_function: Call,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)
    creating = leases.try_acquire(customers.lock_ref(firestore_db, uid), customers.LEASE)
    assert creating is not None  # another call is creating this user's Stripe customer
    monkeypatch.setattr(customers, "WAIT", dt.timedelta(seconds=0.5))

    with creating:
        result = call_function(
            feature_listing, {"listingId": listing_id, "days": 3}, uid=uid, claims=AGENT
        )

    assert (result.error_status, result.error_details) == ("ABORTED", {"reason": "busy"})
    assert stripe_objects(stripe_client) == (0, 0)


def test_stripe_unreachable_answers_unavailable_in_our_words_and_holds_nothing(
    firestore_db: firestore.Client,
    stripe_client: stripe.StripeClient,
    call_function: Call,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)
    start(call_function, uid, listing_id, 3)  # the customer exists; the next call needs Stripe
    monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:9")  # nothing listens there

    down = call_function(
        feature_listing, {"listingId": listing_id, "days": 4}, uid=uid, claims=AGENT
    )

    assert (down.error_status, down.error_details) == (
        "UNAVAILABLE",
        {"reason": "payments_unavailable"},
    )
    assert down.error_message == "Payments are unavailable right now; try again in a moment."
    assert "127.0.0.1" not in json.dumps(down.body)
    assert len(list(firestore_db.collection(f"customers/{uid}/payments").stream())) == 1
    monkeypatch.undo()
    # The lease was let go: the retry creates the payment at once instead of waiting.
    back = start(call_function, uid, listing_id, 4)
    assert back["amount"] == {"amount": 2000, "currency": "GBP"}


def test_a_stripe_refusal_never_reaches_the_client_in_stripes_words(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)
    start(call_function, uid, listing_id, 3)
    # The customer disappears from Stripe (deleted in the dashboard): Stripe now refuses.
    base = stripe_client._requestor.base_addresses["api"]  # type: ignore[attr-defined]
    urllib.request.urlopen(urllib.request.Request(f"{base}/_config/data", method="DELETE"))

    refused = call_function(
        feature_listing, {"listingId": listing_id, "days": 4}, uid=uid, claims=AGENT
    )

    assert refused.error_status == "INTERNAL"
    assert refused.error_message == "The payment could not be started."
    # No details, no reason: INTERNAL is generic (nothing of Stripe's, nothing to branch on).
    assert set(refused.error) <= {"status", "message"}
    assert len(list(firestore_db.collection(f"customers/{uid}/payments").stream())) == 1


# --- the webhook's handlers ------------------------------------------------------------


def test_a_successful_payment_features_the_listing_once(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)
    offer = start(call_function, uid, listing_id, 3)
    paid = intent_succeeded(intent_of(stripe_client, offer))

    assert deliver(firestore_db, paid, paid) == ["applied", "duplicate"]

    assert about(featured_until(firestore_db, listing_id), now() + 3 * DAY)
    assert payment(firestore_db, uid, offer)["status"] == "succeeded"
    assert payment(firestore_db, uid, offer)["stripeCreated"] == paid["created"]


def test_featuring_again_extends_and_a_refund_removes_only_what_that_payment_bought(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)
    first = intent_of(stripe_client, start(call_function, uid, listing_id, 3))
    second = intent_of(stripe_client, start(call_function, uid, listing_id, 5))

    deliver(firestore_db, intent_succeeded(first), intent_succeeded(second))
    assert about(featured_until(firestore_db, listing_id), now() + 8 * DAY)

    assert deliver(firestore_db, charge_refunded(first)) == ["applied"]
    assert about(featured_until(firestore_db, listing_id), now() + 5 * DAY)  # second, whole

    assert deliver(firestore_db, charge_refunded(second, amount=100)) == ["applied"]  # partial
    assert featured_until(firestore_db, listing_id) is None
    assert not firestore_db.document(f"_featuredListings/{listing_id}").get().exists


def test_an_already_featured_listing_is_extended_from_its_current_end(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)
    until = now() + 10 * DAY  # featured already (the seed does this, with no payment)
    firestore_db.document(f"listings/{listing_id}").update({"featuredUntil": until})
    intent = intent_of(stripe_client, start(call_function, uid, listing_id, 2))

    deliver(firestore_db, intent_succeeded(intent))
    assert about(featured_until(firestore_db, listing_id), until + 2 * DAY)

    deliver(firestore_db, dispute_closed(intent, "lost"))
    assert about(featured_until(firestore_db, listing_id), until)
    assert payment(firestore_db, uid, {"paymentIntentId": intent["id"]})["status"] == "disputed"


def test_a_dispute_lost_removes_the_feature_and_one_won_changes_nothing(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)
    kept = intent_of(stripe_client, start(call_function, uid, listing_id, 4))
    lost = intent_of(stripe_client, start(call_function, uid, listing_id, 6))
    deliver(firestore_db, intent_succeeded(kept), intent_succeeded(lost))

    assert deliver(firestore_db, dispute_closed(kept, "won")) == ["no_effect"]
    assert about(featured_until(firestore_db, listing_id), now() + 10 * DAY)
    assert deliver(firestore_db, dispute_closed(lost, "lost")) == ["applied"]
    assert about(featured_until(firestore_db, listing_id), now() + 4 * DAY)


def test_a_late_success_after_the_refund_does_not_feature_again(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)
    offer = start(call_function, uid, listing_id, 3)
    intent = intent_of(stripe_client, offer)
    paid = intent_succeeded(intent, created=intent["created"] + 1)
    refunded = charge_refunded(intent, created=intent["created"] + 60)

    assert deliver(firestore_db, refunded, paid) == ["applied", "stale"]

    assert featured_until(firestore_db, listing_id) is None
    mirror = payment(firestore_db, uid, offer)
    assert (mirror["status"], mirror["stripeCreated"]) == ("refunded", refunded["created"])
    # A second refund event of the same charge (Stripe sends one per refund) changes nothing.
    assert deliver(firestore_db, charge_refunded(intent)) == ["stale"]


def test_a_failure_older_than_the_success_is_stale_and_a_newer_one_is_mirrored(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)
    declined_first = intent_of(stripe_client, start(call_function, uid, listing_id, 2))
    offer = start(call_function, uid, listing_id, 3)
    intent = intent_of(stripe_client, offer)

    assert deliver(
        firestore_db,
        intent_failed(declined_first, created=declined_first["created"] + 5),
        intent_succeeded(intent, created=intent["created"] + 10),
        intent_failed(intent, created=intent["created"] + 5),
    ) == ["applied", "applied", "stale"]

    assert payment(firestore_db, uid, offer)["status"] == "succeeded"
    failed = payment(firestore_db, uid, {"paymentIntentId": declined_first["id"]})
    assert failed["status"] == "requires_payment_method"
    assert about(featured_until(firestore_db, listing_id), now() + 3 * DAY)


def test_a_payment_for_a_listing_no_longer_active_features_nothing(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)
    offer = start(call_function, uid, listing_id, 3)
    firestore_db.document(f"listings/{listing_id}").update({"status": "sold"})

    assert deliver(firestore_db, intent_succeeded(intent_of(stripe_client, offer))) == ["applied"]

    assert featured_until(firestore_db, listing_id) is None
    assert payment(firestore_db, uid, offer)["status"] == "succeeded"


def test_an_amount_that_is_not_what_we_asked_for_features_nothing(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    uid, listing_id = agent_with_listing(firestore_db)
    intent = intent_of(stripe_client, start(call_function, uid, listing_id, 3))

    deliver(firestore_db, intent_succeeded({**intent, "amount": 1}))

    assert featured_until(firestore_db, listing_id) is None


def scenario(
    db: Any, api: stripe.StripeClient, call_function: Call
) -> tuple[str, list[dict[str, Any]], list[str]]:
    """Three payments on one listing and their events, in the order Stripe made them:
    A (3 days) paid then refunded; B (5 days) paid, then a dispute it won; C (2 days)
    declined once, then paid. The end: featured for B + C = 7 days from now."""
    uid, listing_id = agent_with_listing(db)
    a, b, c = (intent_of(api, start(call_function, uid, listing_id, d)) for d in (3, 5, 2))
    t = max(i["created"] for i in (a, b, c))
    stream = [
        intent_succeeded(a, t + 1),
        intent_succeeded(b, t + 2),
        intent_failed(c, t + 3),
        intent_succeeded(c, t + 4),
        charge_refunded(a, created=t + 5),
        dispute_closed(b, "won", t + 6),
    ]
    return listing_id, stream, [f"customers/{uid}/payments/{i['id']}" for i in (a, b, c)]


def end_state(db: Any, listing_id: str, payments: list[str]) -> tuple[Any, ...]:
    until = featured_until(db, listing_id)
    return (
        about(until, now() + 7 * DAY),
        tuple(db.document(p).get().get("status") for p in payments),
    )


def test_duplicated_and_shuffled_events_end_as_in_order_delivery(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    listing_id, stream, payments = scenario(firestore_db, stripe_client, call_function)
    deliver(firestore_db, *stream)
    in_order = end_state(firestore_db, listing_id, payments)
    assert in_order == (True, ("refunded", "succeeded", "succeeded"))

    for seed in range(4):
        rng = random.Random(seed)
        listing_id, stream, payments = scenario(firestore_db, stripe_client, call_function)
        messy = stream + rng.sample(stream, 3)  # 50% duplicates
        rng.shuffle(messy)
        outcomes = deliver(firestore_db, *messy)
        assert outcomes.count("duplicate") == 3, seed
        assert end_state(firestore_db, listing_id, payments) == in_order, (seed, outcomes)


def test_events_about_payments_that_are_not_ours_are_recorded_and_answered_200(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    stranger = {
        "id": new_id("pi_x"),
        "object": "payment_intent",
        "amount": 1500,
        "currency": "gbp",
        "customer": "cus_not_ours",
        "created": 1_700_000_000,
        "status": "succeeded",
        "metadata": {"purpose": "featured_listing", "listingId": "somewhere", "days": "3"},
    }
    plan = {**stranger, "id": new_id("pi_plan"), "metadata": {}}
    payloads = [
        intent_succeeded(stranger),
        intent_succeeded(plan),
        charge_refunded(stranger),
        dispute_closed(stranger),
    ]
    secret = os.environ["STRIPE_WEBHOOK_SECRET"]
    verify = webhooks.stripe_verifier(lambda: secret)
    answers = []
    for payload in payloads:
        signed = stripe_webhook(payload, secret)
        context = Flask(__name__).test_request_context(
            "/stripe_webhook", method="POST", data=signed.body, headers=signed.headers
        )
        with context:
            response = webhooks.handle_request(request, events.intake(), verify, firestore_db)
        answers.append((response.status_code, json.loads(response.get_data())["outcome"]))

    assert answers == [
        (200, "unknown_subject"),
        (200, "other_purpose"),
        (200, "unknown_subject"),
        (200, "unknown_subject"),
    ]
    recorded = {
        p["id"]: firestore_db.document(f"_webhookEvents/stripe:{p['id']}").get().get("outcome")
        for p in payloads
    }
    assert list(recorded.values()) == [a[1] for a in answers]
    assert documents(firestore_db) == []


def test_the_featured_handlers_are_part_of_the_one_stripe_intake() -> None:
    handlers = events.intake().handlers
    for kind, handler in featured.HANDLERS.items():
        routed = handlers[kind]
        assert isinstance(routed, events.ByPurpose)
        assert routed.routes[featured.PURPOSE] is handler
