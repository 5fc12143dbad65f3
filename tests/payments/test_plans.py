"""The agent plan, in-process against localstripe and the emulators: starting it, one
subscription under concurrent calls, the webhook's handlers in any order, bad input."""

from __future__ import annotations

import copy
import datetime as dt
import os
import random
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import stripe
from firebase_admin import auth
from google.cloud import firestore

from api.plans import start_agent_plan
from firekit import leases, webhooks
from firekit.errors import Aborted
from marketplace.payments import customers, events, plans, stripe_api
from marketplace.profiles import new_profile
from marketplace.roles import Role
from pytest_firebase.callables import CallResult
from pytest_firebase.webhooks import stripe_event

CARD_OK = "4242424242424242"
CARD_3DS = "4000002500003155"
CARD_REFUSED_AT_ATTACH = "4000000000000002"
CARD_REFUSED_AT_CHARGE = "4000000000000341"
STRIPE_DECLINE_TEXT = "Your card was declined"


# --- helpers --------------------------------------------------------------------------


def an_agent(db: Any, claims: dict[str, Any] | None = None) -> str:
    """An Auth account with the agent role (and ``claims``) and its profile."""
    uid = f"agent-{uuid.uuid4().hex[:10]}"
    auth.create_user(uid=uid, email=f"{uid}@homefront.test")
    auth.set_custom_user_claims(uid, {"role": "agent", **(claims or {})})
    db.document(f"users/{uid}").set(new_profile("Agent", None, Role.AGENT))
    return uid


def a_card(api: stripe.StripeClient, number: str) -> str:
    """A PaymentMethod as the payment sheet creates it (not yet attached to anyone)."""
    card = {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    return str(api.v1.payment_methods.create(params={"type": "card", "card": card}).id)


def start(call_function: Callable[..., CallResult], uid: str, data: Any) -> CallResult:
    claims = {"role": "agent", "email": f"{uid}@homefront.test"}
    return call_function(start_agent_plan, data, uid=uid, claims=claims)


def authenticate(api: stripe.StripeClient, client_secret: str, success: bool = True) -> None:
    """What the payment sheet's 3-D Secure step does (localstripe's stand-in for it)."""
    intent_id = client_secret.partition("_secret_")[0]
    api.raw_request(
        "post",
        f"/v1/payment_intents/{intent_id}/_authenticate",
        client_secret=client_secret,
        success="true" if success else "false",
    )


def subscriptions_of(api: stripe.StripeClient, uid: str) -> list[Any]:
    mine = [c.id for c in api.v1.customers.list().data if c.metadata.to_dict().get("uid") == uid]
    return [
        s
        for customer in mine
        for s in api.v1.subscriptions.list(params={"customer": customer, "status": "all"}).data
    ]


def mirror(db: Any, uid: str) -> dict[str, dict[str, Any]]:
    return {s.id: s.to_dict() for s in db.collection(f"customers/{uid}/subscriptions").stream()}


def profile_plan(db: Any, uid: str) -> Any:
    return (db.document(f"users/{uid}").get().to_dict() or {}).get("plan")


def claims_of(uid: str) -> dict[str, Any]:
    return dict(auth.get_user(uid).custom_claims or {})


def stored_anything(db: Any, uid: str) -> list[str]:
    """Every document the start of a plan may write, for "nothing written" checks."""
    paths = [f"customers/{uid}", f"_paymentLocks/plan-{uid}", f"_paymentLocks/customer-{uid}"]
    found = [p for p in paths if db.document(p).get().exists]
    found += [f"mirror {k}" for k in mirror(db, uid)]
    found += [f"stripe link {s.id}" for s in db.collection(customers.BY_STRIPE_ID).stream()]
    return found


@pytest.fixture
def api(stripe_client: stripe.StripeClient, auth_emulator: Any) -> stripe.StripeClient:
    """localstripe, emptied, with an emptied Auth emulator."""
    return stripe_client


# --- starting the plan ----------------------------------------------------------------


def test_an_agent_whose_card_pays_at_once_is_on_the_plan_with_other_claims_kept(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
) -> None:
    uid = an_agent(firestore_db, {"team": "north", "beta": True})

    result = start(call_function, uid, {"paymentMethodId": a_card(api, CARD_OK)})

    data = result.data
    assert (data["status"], data["requiresAction"], data["plan"]) == ("active", False, "agent_pro")
    assert data["clientSecret"].startswith("pi_") and data["customerId"].startswith("cus_")
    [subscription] = subscriptions_of(api, uid)
    assert (subscription.id, subscription.status) == (data["subscriptionId"], "active")
    stored = mirror(firestore_db, uid)[subscription.id]
    assert (stored["status"], stored["plan"]) == ("active", plans.PLAN_ID)
    assert stored["currentPeriodEnd"] is not None
    assert profile_plan(firestore_db, uid) == "agent_pro"
    assert claims_of(uid) == {"role": "agent", "team": "north", "beta": True, "plan": "agent_pro"}
    assert not firestore_db.document(f"_paymentLocks/plan-{uid}").get().exists  # lease freed
    plan = api.v1.plans.retrieve(plans.PLAN_ID)
    assert (plan.amount, plan.currency, plan.interval) == (4900, "gbp", "month")


def test_ten_concurrent_starts_create_exactly_one_customer_and_one_subscription(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
) -> None:
    uid = an_agent(firestore_db)
    card = a_card(api, CARD_OK)

    with ThreadPoolExecutor(10) as pool:
        results = list(
            pool.map(lambda _: start(call_function, uid, {"paymentMethodId": card}), range(10))
        )

    assert [r.status for r in results] == [200] * 10, [r.body for r in results]
    assert len({r.data["subscriptionId"] for r in results}) == 1
    assert len({r.data["customerId"] for r in results}) == 1
    in_stripe = [c for c in api.v1.customers.list().data if c.metadata.to_dict().get("uid") == uid]
    assert len(in_stripe) == 1
    assert [s.id for s in subscriptions_of(api, uid)] == [results[0].data["subscriptionId"]]
    assert list(mirror(firestore_db, uid)) == [results[0].data["subscriptionId"]]
    assert claims_of(uid)["plan"] == "agent_pro"


def test_ten_concurrent_starts_by_a_customer_already_known_create_one_subscription(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
) -> None:
    # With the customer there, nothing but the plan's own lease serialises the calls.
    uid = an_agent(firestore_db)
    customers.ensure_customer(firestore_db, api, uid, None)
    card = a_card(api, CARD_3DS)  # stays incomplete: a repeat must not buy again either

    with ThreadPoolExecutor(10) as pool:
        results = list(
            pool.map(lambda _: start(call_function, uid, {"paymentMethodId": card}), range(10))
        )

    assert len({r.data["subscriptionId"] for r in results}) == 1
    assert len({r.data["clientSecret"] for r in results}) == 1
    assert len(subscriptions_of(api, uid)) == 1


def test_a_card_that_needs_3ds_waits_for_the_customer_then_the_events_grant_the_plan(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
) -> None:
    uid = an_agent(firestore_db)
    card = a_card(api, CARD_3DS)

    first = start(call_function, uid, {"paymentMethodId": card}).data
    again = start(call_function, uid, {"paymentMethodId": card}).data

    assert (first["status"], first["requiresAction"], first["plan"]) == ("incomplete", True, None)
    assert again == first  # the same subscription and payment, nothing new in Stripe
    assert len(subscriptions_of(api, uid)) == 1
    assert mirror(firestore_db, uid)[first["subscriptionId"]]["status"] == "incomplete"
    assert "plan" not in claims_of(uid) and profile_plan(firestore_db, uid) is None

    authenticate(api, first["clientSecret"])
    for event in stripe_events(api, first["customerId"]):  # as the webhook delivers them
        events.intake().process(firestore_db, fresh_copy(event, "in-process"))

    assert mirror(firestore_db, uid)[first["subscriptionId"]]["status"] == "active"
    assert profile_plan(firestore_db, uid) == "agent_pro"
    assert claims_of(uid)["plan"] == "agent_pro"


def test_a_card_refused_at_the_first_charge_leaves_no_live_subscription_and_another_works(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
) -> None:
    uid = an_agent(firestore_db)

    refused = start(call_function, uid, {"paymentMethodId": a_card(api, CARD_REFUSED_AT_CHARGE)})

    assert refused.error_status == "FAILED_PRECONDITION"
    assert refused.error_message == "The card was declined; try another card."
    assert refused.error_details == {"reason": "card_declined"}
    [cancelled] = subscriptions_of(api, uid)
    assert cancelled.status == "canceled"
    assert mirror(firestore_db, uid)[cancelled.id]["status"] == "canceled"
    assert "plan" not in claims_of(uid)

    retried = start(call_function, uid, {"paymentMethodId": a_card(api, CARD_OK)}).data

    assert (retried["status"], retried["plan"]) == ("active", "agent_pro")
    assert sorted(s.status for s in subscriptions_of(api, uid)) == ["active", "canceled"]


# --- the webhook's handlers: order, repeats, strangers ---------------------------------


def stripe_events(api: stripe.StripeClient, customer_id: str) -> list[webhooks.WebhookEvent]:
    """localstripe's events of the types the plan handles, about this customer, in order."""
    listed = api.v1.events.list(params={"limit": 100}).data
    parsed = [webhooks.parse_event("stripe", e.to_dict()) for e in listed]
    ours = [e for e in parsed if e.type in plans.HANDLERS and e.data.get("customer") == customer_id]
    return sorted(ours, key=lambda e: e.created)  # same-second events keep the list's order


def fresh_copy(event: webhooks.WebhookEvent, tag: str) -> webhooks.WebhookEvent:
    """The same event under another id (the webhook may have taken the original)."""
    payload = {**event.raw, "id": f"{event.id}-{tag}"}
    return webhooks.parse_event("stripe", payload)


def deliver(db: Any, delivered: Iterable[webhooks.WebhookEvent]) -> list[str]:
    intake = events.intake()
    return [intake.process(db, e) for e in delivered]


def shuffled_with_repeats(
    items: list[webhooks.WebhookEvent], rng: random.Random
) -> list[webhooks.WebhookEvent]:
    repeated = items + [e for e in items if rng.random() < 0.3]
    rng.shuffle(repeated)
    return repeated


def state(db: Any, uid: str) -> tuple[Any, ...]:
    docs = mirror(db, uid)
    statuses = {
        k: (v["status"], v["cancelAtPeriodEnd"], v["stripeCreated"]) for k, v in docs.items()
    }
    return statuses, profile_plan(db, uid), claims_of(uid).get("plan")


def replayed_for(
    db: Any, uid: str, given: list[webhooks.WebhookEvent], tag: str
) -> list[webhooks.WebhookEvent]:
    """Copies of ``given`` about a new customer of ``uid``, under new ids: replays the
    Functions emulator's webhook (which takes the originals too) cannot touch."""
    customer = a_customer_link(db, uid)
    copies = []
    for event in given:
        raw = copy.deepcopy(dict(event.raw))
        raw["id"], raw["data"]["object"]["customer"] = f"{event.id}-{tag}", customer
        copies.append(webhooks.parse_event("stripe", raw))
    return copies


def test_localstripes_own_events_in_any_order_and_repeated_end_as_in_order(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
) -> None:
    uid = an_agent(firestore_db)
    started = start(call_function, uid, {"paymentMethodId": a_card(api, CARD_3DS)}).data
    authenticate(api, started["clientSecret"])
    api.v1.subscriptions.cancel(started["subscriptionId"])
    lifecycle = stripe_events(api, started["customerId"])
    assert {e.type for e in lifecycle} >= {
        "customer.subscription.created",
        "invoice.payment_succeeded",
        "customer.subscription.deleted",
    }
    paid = [e for e in lifecycle if e.type != "customer.subscription.deleted"]
    rng = random.Random(5)

    for run in range(4):
        for given, plan in ((paid, "agent_pro"), (lifecycle, None)):
            in_order, shuffled = an_agent(firestore_db), an_agent(firestore_db)
            deliver(firestore_db, replayed_for(firestore_db, in_order, given, f"o{run}"))
            copies = replayed_for(firestore_db, shuffled, given, f"s{run}")
            outcomes = deliver(firestore_db, shuffled_with_repeats(copies, rng))

            assert state(firestore_db, shuffled) == state(firestore_db, in_order), f"run {run}"
            assert state(firestore_db, in_order)[1:] == (plan, plan)
            assert "applied" in outcomes


def synthetic_subscription(
    sub_id: str,
    customer: str,
    status: str,
    created: int,
    *,
    cancelling: bool = False,
    modern: bool = False,
) -> dict[str, Any]:
    """A subscription as an event carries it (``modern``: API 2025-03-31 and later)."""
    item: dict[str, Any] = {"id": f"si_{sub_id}", "plan": {"id": plans.PLAN_ID}}
    subscription: dict[str, Any] = {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "created": created,
        "cancel_at_period_end": cancelling,
        "items": {"object": "list", "data": [item]},
    }
    if modern:
        item["price"], item["current_period_end"] = item.pop("plan"), created + MONTH
    else:
        subscription["current_period_end"] = created + MONTH
    return subscription


def synthetic_invoice(
    sub_id: str, customer: str, status: str, *, modern: bool = False
) -> dict[str, Any]:
    line: dict[str, Any] = {"period": {"start": 1, "end": 1_800_000_000}}
    invoice: dict[str, Any] = {
        "id": f"in_{sub_id}",
        "object": "invoice",
        "customer": customer,
        "status": status,
        "lines": {"data": [line]},
    }
    if modern:
        line["pricing"] = {"price_details": {"price": plans.PLAN_ID}}
        invoice["parent"] = {"subscription_details": {"subscription": sub_id}}
    else:
        line["plan"], invoice["subscription"] = {"id": plans.PLAN_ID}, sub_id
    return invoice


def an_event(kind: str, obj: dict[str, Any], created: int, event_id: str) -> webhooks.WebhookEvent:
    return webhooks.parse_event(
        "stripe", stripe_event(kind, obj, event_id=event_id, created=created)
    )


def a_customer_link(db: Any, uid: str) -> str:
    customer = f"cus_{uuid.uuid4().hex[:12]}"
    db.document(f"{customers.BY_STRIPE_ID}/{customer}").set({"uid": uid})
    return customer


MONTH = 2_592_000
T0 = 1_790_000_000
UPDATED = "customer.subscription.updated"


@pytest.mark.parametrize("modern", [False, True], ids=["api-2024", "api-2025"])
def test_every_delivery_order_with_repeats_ends_as_stripe_ended(
    firestore_db: firestore.Client, auth_emulator: Any, modern: bool
) -> None:
    uid = an_agent(firestore_db)
    customer = a_customer_link(firestore_db, uid)

    def lifecycle(sub: str) -> list[webhooks.WebhookEvent]:
        def subscription(status: str, cancelling: bool = False) -> dict[str, Any]:
            return synthetic_subscription(
                sub, customer, status, T0, cancelling=cancelling, modern=modern
            )

        def invoice(status: str) -> dict[str, Any]:
            return synthetic_invoice(sub, customer, status, modern=modern)

        raw = [  # one second holds creation and payment, as it does with a saved card
            ("customer.subscription.created", subscription("incomplete"), T0),
            ("invoice.payment_succeeded", invoice("paid"), T0),
            (UPDATED, subscription("active"), T0 + 1),
            (UPDATED, subscription("past_due"), T0 + 40),
            ("invoice.payment_failed", invoice("open"), T0 + 40),
            ("invoice.paid", invoice("paid"), T0 + 50),
            (UPDATED, subscription("active", cancelling=True), T0 + 60),
            ("customer.subscription.deleted", subscription("canceled", cancelling=True), T0 + 60),
        ]
        return [an_event(k, obj, at, f"evt_{sub}_{n}") for n, (k, obj, at) in enumerate(raw)]

    rng = random.Random(11)
    for run in range(12):
        sub = f"sub_{run}_{uuid.uuid4().hex[:6]}"
        deliver(firestore_db, shuffled_with_repeats(lifecycle(sub), rng))

        stored = mirror(firestore_db, uid)[sub]
        final = (stored["status"], stored["cancelAtPeriodEnd"], stored["stripeCreated"])
        assert final == ("canceled", True, T0 + 60), f"run {run}"
        assert stored["currentPeriodEnd"].timestamp() == T0 + MONTH
    assert profile_plan(firestore_db, uid) is None
    assert "plan" not in claims_of(uid)


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
def test_within_one_second_the_later_state_of_the_lifecycle_wins(
    firestore_db: firestore.Client, auth_emulator: Any, reverse: bool
) -> None:
    uid = an_agent(firestore_db)
    customer = a_customer_link(firestore_db, uid)
    paid = [  # what a card needing 3-D Secure, authenticated at once, sends
        an_event(
            "customer.subscription.created",
            synthetic_subscription("sub_a", customer, "incomplete", T0),
            T0,
            "a1",
        ),
        an_event(
            "invoice.payment_succeeded", synthetic_invoice("sub_a", customer, "paid"), T0, "a2"
        ),
    ]
    ended = [
        an_event(UPDATED, synthetic_subscription("sub_b", customer, "active", T0), T0, "b1"),
        an_event(
            "customer.subscription.deleted",
            synthetic_subscription("sub_b", customer, "canceled", T0),
            T0,
            "b2",
        ),
    ]

    deliver(firestore_db, [*paid[:: -1 if reverse else 1], *ended[:: -1 if reverse else 1]])

    stored = mirror(firestore_db, uid)
    assert (stored["sub_a"]["status"], stored["sub_b"]["status"]) == ("active", "canceled")
    assert profile_plan(firestore_db, uid) == "agent_pro"


def test_an_older_event_never_overwrites_newer_state_and_cancellation_downgrades(
    firestore_db: firestore.Client, auth_emulator: Any
) -> None:
    uid = an_agent(firestore_db, {"team": "south"})
    customer, sub = a_customer_link(firestore_db, uid), "sub_order"

    def event(kind: str, status: str, at: int, event_id: str) -> webhooks.WebhookEvent:
        return an_event(kind, synthetic_subscription(sub, customer, status, T0), at, event_id)

    assert deliver(firestore_db, [event(UPDATED, "active", T0 + 5, "e1")]) == ["applied"]
    assert claims_of(uid) == {"role": "agent", "team": "south", "plan": "agent_pro"}

    outcomes = deliver(
        firestore_db,
        [
            event("customer.subscription.deleted", "canceled", T0 + 9, "e2"),
            event(UPDATED, "active", T0 + 7, "e3"),  # older: stale
            event("customer.subscription.created", "incomplete", T0 + 9, "e4"),  # same second
            event("customer.subscription.deleted", "canceled", T0 + 9, "e2"),  # delivered again
        ],
    )

    assert outcomes == ["applied", "stale", "stale", "duplicate"]
    assert mirror(firestore_db, uid)[sub]["status"] == "canceled"
    assert profile_plan(firestore_db, uid) is None
    assert claims_of(uid) == {"role": "agent", "team": "south"}


@pytest.mark.parametrize("status", ["past_due", "unpaid", "paused", "incomplete_expired"])
def test_unpaid_past_due_and_paused_states_downgrade(
    firestore_db: firestore.Client, auth_emulator: Any, status: str
) -> None:
    uid = an_agent(firestore_db)
    customer, sub = a_customer_link(firestore_db, uid), f"sub_{status}"
    active = synthetic_subscription(sub, customer, "active", T0)
    later = synthetic_subscription(sub, customer, status, T0)

    deliver(
        firestore_db,
        [
            an_event("customer.subscription.created", active, T0, f"e1{status}"),
            an_event(UPDATED, later, T0 + 1, f"e2{status}"),
        ],
    )

    assert mirror(firestore_db, uid)[sub]["status"] == status
    assert profile_plan(firestore_db, uid) is None and "plan" not in claims_of(uid)


def test_events_about_strangers_or_other_invoices_are_recorded_and_change_nothing(
    firestore_db: firestore.Client, auth_emulator: Any
) -> None:
    stranger = synthetic_subscription("sub_x", "cus_nobody", "active", T0)
    one_off = {"id": "in_x", "object": "invoice", "customer": "cus_nobody", "status": "paid"}

    outcomes = deliver(
        firestore_db,
        [
            an_event("customer.subscription.created", stranger, T0, "evt_s1"),
            an_event("invoice.paid", one_off, T0, "evt_s2"),
        ],
    )

    assert outcomes == ["unknown_subject", "unknown_subject"]
    assert list(firestore_db.collection("customers").stream()) == []


def test_a_plan_claim_that_would_pass_1000_bytes_is_refused_before_anything_is_bought(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
) -> None:
    uid = an_agent(firestore_db, {"notes": "n" * 960})
    card = a_card(api, CARD_OK)

    result = start(call_function, uid, {"paymentMethodId": card})

    assert result.error_status == "FAILED_PRECONDITION"
    assert result.error_details["reason"] == "claims_full"
    assert result.error_details["size"] > result.error_details["limit"] == 1000
    assert stored_anything(firestore_db, uid) == []
    assert api.v1.customers.list().data == []


def test_a_caller_whose_account_is_gone_is_refused_before_anything_is_bought(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
) -> None:
    uid = an_agent(firestore_db)
    card = a_card(api, CARD_OK)
    auth.delete_user(uid)  # its ID token lives on for up to an hour

    result = start(call_function, uid, {"paymentMethodId": card})

    assert (result.error_status, result.error_details) == ("NOT_FOUND", {"reason": "no_such_user"})
    assert stored_anything(firestore_db, uid) == []
    assert api.v1.customers.list().data == []


def test_a_start_that_waits_too_long_for_another_is_busy_and_buys_nothing(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uid = an_agent(firestore_db)
    card = a_card(api, CARD_OK)
    other = leases.try_acquire(firestore_db.document(f"_paymentLocks/plan-{uid}"), plans.LEASE)
    assert other is not None  # another start of this user's plan is under way
    monkeypatch.setattr(plans, "WAIT", dt.timedelta(seconds=0.5))

    with other:
        result = start(call_function, uid, {"paymentMethodId": card})

    assert (result.error_status, result.error_details) == ("ABORTED", {"reason": "busy"})
    assert result.error_message == plans.SETTING_UP
    assert api.v1.customers.list().data == []


# --- bad input: the right code, nothing written, never Stripe's words ------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "paymentMethodId"),
        ({"paymentMethodId": 42}, "paymentMethodId"),
        ({"paymentMethodId": "card_4242"}, "paymentMethodId"),
        ({"paymentMethodId": "pm_abcd", "priceId": "price_free"}, "priceId"),
        ("pm_abcd", "__root__"),
    ],
)
def test_malformed_requests_are_invalid_argument_and_write_nothing(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
    data: Any,
    field: str,
) -> None:
    uid = an_agent(firestore_db)

    result = start(call_function, uid, data)

    assert result.error_status == "INVALID_ARGUMENT"
    assert field in [d["field"] for d in result.error_details]
    assert stored_anything(firestore_db, uid) == []
    assert list(firestore_db.collection("_rateLimits").stream()) == []
    assert api.v1.customers.list().data == []


def test_callers_who_are_not_agents_are_refused_and_nothing_is_written(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
) -> None:
    data = {"paymentMethodId": a_card(api, CARD_OK)}

    anonymous = call_function(start_agent_plan, data)
    buyer = call_function(start_agent_plan, data, uid="buyer-1", claims={"role": "buyer"})

    assert (anonymous.error_status, anonymous.error_details) == (
        "UNAUTHENTICATED",
        {"reason": "signed_out"},
    )
    assert (buyer.error_status, buyer.error_details) == ("PERMISSION_DENIED", {"reason": "role"})
    assert stored_anything(firestore_db, "buyer-1") == []
    assert api.v1.customers.list().data == []


def test_an_unknown_payment_method_is_invalid_argument_and_nothing_is_created(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
) -> None:
    uid = an_agent(firestore_db)

    result = start(call_function, uid, {"paymentMethodId": "pm_doesnotexist42"})

    assert result.error_status == "INVALID_ARGUMENT"
    assert result.error_details[0]["field"] == "paymentMethodId"
    assert "Not Found" not in str(result.body)
    assert stored_anything(firestore_db, uid) == []
    assert api.v1.customers.list().data == []


def test_someone_elses_card_is_refused(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
) -> None:
    owner, other = an_agent(firestore_db), an_agent(firestore_db)
    card = a_card(api, CARD_OK)
    assert start(call_function, owner, {"paymentMethodId": card}).ok  # attached to the owner

    result = start(call_function, other, {"paymentMethodId": card})

    assert result.error_status == "INVALID_ARGUMENT"
    assert subscriptions_of(api, other) == [] and mirror(firestore_db, other) == {}


def test_a_card_refused_at_attach_is_our_failed_precondition_not_stripes_text(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
) -> None:
    uid = an_agent(firestore_db)

    result = start(call_function, uid, {"paymentMethodId": a_card(api, CARD_REFUSED_AT_ATTACH)})

    assert result.error_status == "FAILED_PRECONDITION"
    assert result.error_details == {"reason": "card_declined"}
    assert STRIPE_DECLINE_TEXT not in str(result.body)
    assert subscriptions_of(api, uid) == [] and mirror(firestore_db, uid) == {}
    assert "plan" not in claims_of(uid)


def test_stripe_unreachable_is_unavailable_with_our_message_and_nothing_written(
    firestore_db: firestore.Client,
    api: stripe.StripeClient,
    call_function: Callable[..., CallResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uid = an_agent(firestore_db)
    card = a_card(api, CARD_OK)
    base = stripe_api.api_base()
    for name in [n for n, value in os.environ.items() if value == base]:
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there

    result = start(call_function, uid, {"paymentMethodId": card})

    assert (result.error_status, result.error_details) == (
        "UNAVAILABLE",
        {"reason": "payments_unavailable"},
    )
    assert result.error_message == "Payments are unavailable right now; try again in a moment."
    assert "stripe" not in str(result.body).lower()
    assert stored_anything(firestore_db, uid) == []


def test_a_start_whose_lease_was_taken_over_stops_before_it_subscribes(
    firestore_db: firestore.Client,
) -> None:
    uid = f"slow-{uuid.uuid4().hex[:8]}"
    held = plans._lease(firestore_db, uid)
    # Its lease lapsed during a slow Stripe call and another start took it over.
    held.ref.delete()
    other = plans._lease(firestore_db, uid)

    with pytest.raises(Aborted) as refused:
        plans._still_ours(held)
    assert refused.value.details == {"reason": "busy"}
    assert firestore_db.document(held.ref.path).get().get("token") == other.token
    other.release()
