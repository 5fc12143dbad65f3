"""The issue's fault injection: 200 webhook deliveries, 20% of them duplicates, shuffled,
end in the state in-order delivery gives; an event whose processing fails once is
retried (Stripe's redelivery after our 500) and applied once."""

from __future__ import annotations

import random
from typing import Any

from google.cloud import firestore

from firekit import webhooks
from marketplace.payments import events

from .test_plans import (
    T0,
    UPDATED,
    a_customer_link,
    an_agent,
    an_event,
    claims_of,
    mirror,
    profile_plan,
    synthetic_invoice,
    synthetic_subscription,
)

AGENTS = 20
"""20 agents x 8 events = 160 distinct events; 40 duplicates make 200 deliveries."""


def lifecycle(sub: str, customer: str, ends_active: bool) -> list[webhooks.WebhookEvent]:
    """One subscription's events, in Stripe's order: paid, past due, paid again, and then
    either renewed (still on the plan) or cancelled."""

    def subscription(status: str, cancelling: bool = False) -> dict[str, Any]:
        return synthetic_subscription(sub, customer, status, T0, cancelling=cancelling)

    last = (
        (UPDATED, subscription("active"), T0 + 90)
        if ends_active
        else ("customer.subscription.deleted", subscription("canceled", True), T0 + 90)
    )
    raw = [
        ("customer.subscription.created", subscription("incomplete"), T0),
        ("invoice.payment_succeeded", synthetic_invoice(sub, customer, "paid"), T0),
        (UPDATED, subscription("active"), T0 + 1),
        (UPDATED, subscription("past_due"), T0 + 40),
        ("invoice.payment_failed", synthetic_invoice(sub, customer, "open"), T0 + 40),
        ("invoice.paid", synthetic_invoice(sub, customer, "paid"), T0 + 50),
        (UPDATED, subscription("active", cancelling=not ends_active), T0 + 60),
        last,
    ]
    return [an_event(k, obj, at, f"evt_{sub}_{n}") for n, (k, obj, at) in enumerate(raw)]


def world(db: Any, tag: str) -> tuple[list[str], list[webhooks.WebhookEvent]]:
    """20 agents, each with one subscription's lifecycle; half end on the plan."""
    uids, stream = [], []
    for n in range(AGENTS):
        uid = an_agent(db, {"team": "north"})  # an unrelated claim that must survive
        customer = a_customer_link(db, uid)
        uids.append(uid)
        stream += lifecycle(f"sub_{tag}_{n}", customer, ends_active=n % 2 == 0)
    return uids, stream


def end_state(db: Any, uid: str) -> tuple[Any, ...]:
    ((_, stored),) = mirror(db, uid).items()
    claims = claims_of(uid)
    return (
        stored["status"],
        stored["cancelAtPeriodEnd"],
        stored["stripeCreated"],
        profile_plan(db, uid),
        claims.get("plan"),
        claims.get("team"),
    )


def test_200_shuffled_deliveries_with_duplicates_end_as_in_order(
    firestore_db: firestore.Client, auth_emulator: Any
) -> None:
    intake = events.intake()
    ordered_uids, ordered = world(firestore_db, "o")
    shuffled_uids, distinct = world(firestore_db, "s")
    rng = random.Random(2026)
    deliveries = distinct + rng.sample(distinct, 40)
    rng.shuffle(deliveries)
    assert len(deliveries) == 200

    for event in ordered:
        intake.process(firestore_db, event)
    outcomes = [intake.process(firestore_db, event) for event in deliveries]

    assert outcomes.count("duplicate") == 40
    expected = [end_state(firestore_db, uid) for uid in ordered_uids]
    assert [end_state(firestore_db, uid) for uid in shuffled_uids] == expected
    # Half renewed (on the plan, claim kept with the other claims), half cancelled.
    assert sorted(state[3] for state in expected if state[3]) == ["agent_pro"] * 10
    assert {state[5] for state in expected} == {"north"}


def test_an_event_that_fails_once_is_retried_and_applied_once(
    firestore_db: firestore.Client, auth_emulator: Any
) -> None:
    real = events.intake()
    failing = {"customer.subscription.created"}

    def once(db: Any, transaction: Any, event: webhooks.WebhookEvent) -> str:
        outcome = real.handlers[event.type](db, transaction, event)  # its writes are staged
        if event.type in failing:
            failing.discard(event.type)
            raise RuntimeError("Firestore went away mid-event")
        return outcome

    flaky = webhooks.Intake(
        "stripe", {**real.handlers, "customer.subscription.created": once}, real.followups
    )
    uid = an_agent(firestore_db)
    created = lifecycle("sub_flaky", a_customer_link(firestore_db, uid), ends_active=True)[0]

    try:
        flaky.process(firestore_db, created)
        raised = False
    except RuntimeError:
        raised = True
    nothing = mirror(firestore_db, uid)
    retried = [flaky.process(firestore_db, created) for _ in range(2)]

    assert raised and nothing == {}  # the failed attempt left nothing: one transaction
    assert retried == ["applied", "duplicate"]
    assert mirror(firestore_db, uid)["sub_flaky"]["status"] == "incomplete"
