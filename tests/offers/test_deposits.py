"""Rental holding deposits in-process, against the Firestore emulator and localstripe: the
hold created with the offer (and nothing created for a refused one), held only once
Stripe says so, taken on acceptance and let go on every other end, exactly once under
races, repeats, shuffles and crashes; the clock's watch over holds near their end.

localstripe sends no ``amount_capturable_updated``, ``canceled`` or ``charge.*`` events:
those are built as Stripe sends them (``deposit_event``) from the PaymentIntent as
localstripe returns it, and fed through the webhook's own intake.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import stripe
from google.cloud import firestore

from api.offers import accept_offer, make_offer, withdraw_offer
from firekit import webhooks
from firekit.errors import AppError
from marketplace import offer_upkeep, offers
from marketplace.payments import deposits, events
from marketplace.payments.stripe_api import stripe_id
from tests.listings.factories import uid
from tests.offers.test_offers import AGENT, VERIFIED, home, offer_request, stored
from tests.payments.featured_world import event

Call = Callable[..., Any]
RENT = 1_950_00
WEEK = RENT * 12 // 52  # 45,000: £450.00


def rental_request(listing_id: str, **change: Any) -> dict[str, Any]:
    conditions = {"moveInDate": "2027-02-01", "termMonths": 12}
    return offer_request(listing_id, amount=RENT, conditions=conditions, **change)


def rental_offer(db: firestore.Client, listing_id: str | None = None) -> tuple[str, str, str, str]:
    """(agent, renter, listing id, offer id) of an open rental offer, hold not yet made."""
    agent, listing_id = (None, listing_id) if listing_id else home(db, kind="rent")
    if agent is None:
        agent = str((db.document(f"listings/{listing_id}").get().to_dict() or {})["ownerId"])
    renter = uid("renter")
    request = offers.MakeOfferRequest.model_validate(rental_request(listing_id))
    made = offers.make(
        db,
        buyer_uid=renter,
        email_verified=True,
        request=request,
        stripe_api=deposits_api,
        email=f"{renter}@example.test",
    )
    return agent, renter, listing_id, made.offerId


def deposits_api() -> stripe.StripeClient:
    from marketplace.payments import stripe_api

    return stripe_api.client()


def intent_id(db: firestore.Client, offer_id: str) -> str:
    return str(stored(db, offer_id)["deposit"]["paymentIntentId"])


def intent(api: stripe.StripeClient, pi: str) -> dict[str, Any]:
    found: dict[str, Any] = api.v1.payment_intents.retrieve(pi).to_dict()
    return found


def confirm_card(api: stripe.StripeClient, pi: str, card: str = "pm_card_visa") -> dict[str, Any]:
    """What the payment sheet does on the renter's phone: attach a card and confirm."""
    api.v1.payment_intents.update(pi, params={"payment_method": card})
    confirmed: dict[str, Any] = api.v1.payment_intents.confirm(pi).to_dict()
    return confirmed


def deposit_event(kind: str, shown: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    """An event as Stripe sends it about a deposit's PaymentIntent (``shown`` as Stripe
    returned it) or its charge."""
    if kind.startswith("charge."):
        charge = {
            "id": "ch_" + shown["id"].removeprefix("pi_"),
            "object": "charge",
            "amount": shown["amount"],
            "amount_refunded": shown["amount"] if kind == "charge.refunded" else 0,
            "captured": kind == "charge.refunded",
            "currency": shown["currency"],
            "payment_intent": shown["id"],
            "status": "succeeded",
            "metadata": {},
        }
        return event(kind, charge, created)
    state = {
        "payment_intent.amount_capturable_updated": {
            "status": "requires_capture",
            "amount_capturable": shown["amount"],
        },
        "payment_intent.succeeded": {"status": "succeeded", "amount_received": shown["amount"]},
        "payment_intent.canceled": {"status": "canceled", "cancellation_reason": "abandoned"},
        "payment_intent.payment_failed": {
            "status": "requires_payment_method",
            "last_payment_error": {"type": "card_error", "code": "card_declined"},
        },
    }[kind]
    return event(kind, {**shown, "object": "payment_intent", **state}, created)


def deliver(db: firestore.Client, *payloads: dict[str, Any]) -> list[str]:
    intake = events.intake()
    return [intake.process(db, webhooks.parse_event("stripe", p)) for p in payloads]


def held(db: firestore.Client, api: stripe.StripeClient, offer_id: str) -> dict[str, Any]:
    """Confirm the renter's card and tell us as Stripe would; the PaymentIntent after."""
    confirmed = confirm_card(api, intent_id(db, offer_id))
    assert confirmed["status"] == "requires_capture"
    deliver(db, deposit_event("payment_intent.amount_capturable_updated", confirmed))
    assert stored(db, offer_id)["deposit"]["state"] == "held"
    return confirmed


def all_intents(api: stripe.StripeClient) -> list[dict[str, Any]]:
    listed = api.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
    return [i.to_dict() for i in listed]


def follow(db: firestore.Client, offer_id: str) -> dict[str, Any]:
    return offer_upkeep.follow_up(db, offer_id, stored(db, offer_id), deposits_api)


@pytest.fixture
def stripe_calls(
    stripe_client: stripe.StripeClient, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Counter[str]]:
    """Counts the capture and cancel calls our code makes on the real client."""
    counted: Counter[str] = Counter()
    service = stripe_client.v1.payment_intents
    for name in ("capture", "cancel", "create", "retrieve"):
        real = getattr(service, name)

        def counting(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            found = _real(*args, **kw)
            counted[_name] += 1
            return found

        monkeypatch.setattr(service, name, counting)
    yield counted


# --- the hold ---------------------------------------------------------------------------


def test_a_renters_offer_holds_one_weeks_rent_on_their_card(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    _, listing_id = home(firestore_db, kind="rent")
    renter = uid("renter")

    result = call_function(make_offer, rental_request(listing_id), uid=renter, claims=VERIFIED).data

    sheet = result["deposit"]
    pi = intent(stripe_client, sheet["paymentIntentId"])
    assert (sheet["amount"], sheet["currency"], WEEK) == (45_000, "GBP", 45_000)
    assert sheet["clientSecret"] == pi["client_secret"] and sheet["customerId"] == pi["customer"]
    assert (pi["amount"], pi["capture_method"], pi["status"]) == (
        WEEK,
        "manual",
        "requires_payment_method",
    )
    assert pi["metadata"] == {
        "purpose": "deposit",
        "offerId": result["offerId"],
        "uid": renter,
        "listingId": listing_id,
    }
    deposit = stored(firestore_db, result["offerId"])["deposit"]
    assert (deposit["state"], deposit["asked"], deposit["amount"]["amount"]) == (
        "awaiting_card",
        "authorise",
        WEEK,
    )
    link = firestore_db.document(f"_stripePayments/{pi['id']}").get().to_dict() or {}
    assert (link["purpose"], link["offerId"]) == ("deposit", result["offerId"])
    assert result["depositState"] == "awaiting_card"


@pytest.mark.parametrize(
    ("change", "listing_status", "reason"),
    [
        ({"depositAmount": 100}, "active", None),
        ({"deposit": {"amount": 100}}, "active", None),
        ({"currency": "EUR"}, "active", "wrong_currency"),
        ({"expiresAt": "{in 15 days}"}, "active", "bad_expiry"),
        ({}, "withdrawn", "not_offerable"),
        ({}, "let", "not_offerable"),
    ],
    ids=["deposit-amount", "deposit-object", "currency", "expiry", "withdrawn", "let"],
)
def test_a_refused_rental_offer_creates_no_payment_intent(
    firestore_db: firestore.Client,
    stripe_client: stripe.StripeClient,
    call_function: Call,
    change: dict[str, Any],
    listing_status: str,
    reason: str | None,
) -> None:
    _, listing_id = home(firestore_db, kind="rent", status=listing_status)
    if "expiresAt" in change:
        change = {"expiresAt": (dt.datetime.now(dt.UTC) + dt.timedelta(days=15)).isoformat()}

    result = call_function(
        make_offer, rental_request(listing_id, **change), uid=uid("renter"), claims=VERIFIED
    )

    if reason is None:
        assert result.error_status == "INVALID_ARGUMENT" and result.error_details
    else:
        assert result.error["details"]["reason"] == reason
    assert all_intents(stripe_client) == []
    assert firestore_db.collection("offers").get() == []
    assert firestore_db.collection("_stripePayments").get() == []


def test_a_hold_reads_held_only_once_stripe_says_it_holds_it(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient
) -> None:
    _, _, _, offer_id = rental_offer(firestore_db)
    confirmed = confirm_card(stripe_client, intent_id(firestore_db, offer_id))

    before = stored(firestore_db, offer_id)["deposit"]["state"]
    created = int(dt.datetime.now(dt.UTC).timestamp())
    deliver(
        firestore_db,
        deposit_event("payment_intent.amount_capturable_updated", confirmed, created),
    )

    deposit = stored(firestore_db, offer_id)["deposit"]
    assert (before, deposit["state"]) == ("awaiting_card", "held")
    assert deposit["captureBeforeAssumed"] is True
    assumed = dt.datetime.fromtimestamp(created, dt.UTC) + dt.timedelta(days=7)
    assert deposit["captureBefore"] == assumed
    assert deposit["stripeCreated"] == created


def test_a_declined_card_is_recorded_and_another_card_can_still_hold_it(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient
) -> None:
    _, _, _, offer_id = rental_offer(firestore_db)
    pi = intent_id(firestore_db, offer_id)
    with pytest.raises(stripe.CardError):
        confirm_card(stripe_client, pi, card="pm_card_chargeCustomerFail")
    declined = intent(stripe_client, pi)
    deliver(firestore_db, deposit_event("payment_intent.payment_failed", declined))
    failed = stored(firestore_db, offer_id)["deposit"]["state"]

    # Another card in the sheet: Stripe confirms the same PaymentIntent again (localstripe
    # cannot after a decline, so the event is Stripe's, about the same PaymentIntent).
    deliver(firestore_db, deposit_event("payment_intent.amount_capturable_updated", declined))

    assert (failed, stored(firestore_db, offer_id)["deposit"]["state"]) == ("failed", "held")


# --- taking it, letting it go -----------------------------------------------------------


def test_accepting_takes_the_deposit_and_every_other_hold_is_let_go(
    firestore_db: firestore.Client,
    stripe_client: stripe.StripeClient,
    call_function: Call,
    stripe_calls: Counter[str],
) -> None:
    agent, _, listing_id, winner = rental_offer(firestore_db)
    losers = [rental_offer(firestore_db, listing_id)[3] for _ in range(2)]
    for offer_id in (winner, *losers):
        held(firestore_db, stripe_client, offer_id)

    accepted = call_function(accept_offer, {"offerId": winner}, uid=agent, claims=AGENT).data
    done = follow(firestore_db, winner)
    for loser in losers:
        follow(firestore_db, loser)

    assert accepted["status"] == "accepted" and done["deposit"] == "captured"
    taken = intent(stripe_client, intent_id(firestore_db, winner))
    assert (taken["status"], stored(firestore_db, winner)["deposit"]["state"]) == (
        "succeeded",
        "captured",
    )
    for loser in losers:
        assert intent(stripe_client, intent_id(firestore_db, loser))["status"] == "canceled"
        data = stored(firestore_db, loser)
        assert (data["status"], data["deposit"]["state"]) == ("rejected", "released")
    assert (stripe_calls["capture"], stripe_calls["cancel"]) == (1, 2)


def test_a_hold_stripe_has_not_reported_is_asked_about_before_acceptance(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    agent, _, _, offer_id = rental_offer(firestore_db)
    confirm_card(stripe_client, intent_id(firestore_db, offer_id))  # no webhook follows

    accepted = call_function(accept_offer, {"offerId": offer_id}, uid=agent, claims=AGENT).data

    assert (accepted["status"], accepted["depositState"]) == ("accepted", "held")


def test_an_offer_without_a_held_deposit_cannot_be_accepted(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    agent, _, listing_id, offer_id = rental_offer(firestore_db)
    before = stored(firestore_db, offer_id)

    refused = call_function(accept_offer, {"offerId": offer_id}, uid=agent, claims=AGENT)

    assert refused.error_status == "FAILED_PRECONDITION"
    assert refused.error["details"]["reason"] == "deposit_not_held"
    assert stored(firestore_db, offer_id) == before
    listing = firestore_db.document(f"listings/{listing_id}").get().to_dict() or {}
    assert listing["status"] == "active"


def test_a_withdrawn_offers_hold_is_let_go(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    _, renter, _, offer_id = rental_offer(firestore_db)
    held(firestore_db, stripe_client, offer_id)

    call_function(withdraw_offer, {"offerId": offer_id}, uid=renter, claims=VERIFIED)
    follow(firestore_db, offer_id)

    assert intent(stripe_client, intent_id(firestore_db, offer_id))["status"] == "canceled"
    assert stored(firestore_db, offer_id)["deposit"]["state"] == "released"


def test_a_hundred_racing_moves_take_or_let_go_the_deposit_exactly_once(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, stripe_calls: Counter[str]
) -> None:
    agent, renter, _, offer_id = rental_offer(firestore_db)
    held(firestore_db, stripe_client, offer_id)
    moves = [("accept", agent), ("reject", agent), ("withdraw", renter)] * 34

    def move(job: tuple[str, str]) -> str:
        what, who = job
        try:
            offers.answer(firestore_db, offer_id, what, who, reason="No.")  # type: ignore[arg-type]
            return f"won:{what}"
        except AppError as refused:
            return str(refused.details["reason"])

    with ThreadPoolExecutor(16) as pool:
        outcomes = Counter(pool.map(move, moves[:100]))
    with ThreadPoolExecutor(4) as pool:  # the trigger, delivered more than once at once
        list(pool.map(lambda _: follow(firestore_db, offer_id), range(4)))
    follow(firestore_db, offer_id)  # and once more after

    won = [k for k in outcomes if k.startswith("won:")]
    assert len(won) == 1, outcomes
    pi = intent(stripe_client, intent_id(firestore_db, offer_id))
    asked = (stripe_calls["capture"], stripe_calls["cancel"])
    if won[0] == "won:accept":
        assert (pi["status"], asked) == ("succeeded", (1, 0))
    else:
        assert (pi["status"], asked) == ("canceled", (0, 1))
    assert stored(firestore_db, offer_id)["deposit"]["state"] == deposits.intent_state(pi)


def test_two_rentals_accepted_at_once_one_wins_and_the_others_hold_is_let_go(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient
) -> None:
    agent, _, listing_id, first = rental_offer(firestore_db)
    second = rental_offer(firestore_db, listing_id)[3]
    for offer_id in (first, second):
        held(firestore_db, stripe_client, offer_id)

    def accept(offer_id: str) -> str:
        try:
            return offers.answer(firestore_db, offer_id, "accept", agent).status
        except AppError as refused:
            return str(refused.details["reason"])

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(accept, [first, second]))
    winner, loser = (first, second) if outcomes[0] == "accepted" else (second, first)
    follow(firestore_db, winner)
    follow(firestore_db, loser)

    assert sorted(outcomes) == ["accepted", "another_offer_accepted"]
    assert intent(stripe_client, intent_id(firestore_db, winner))["status"] == "succeeded"
    assert intent(stripe_client, intent_id(firestore_db, loser))["status"] == "canceled"
    assert stored(firestore_db, loser)["deposit"]["state"] == "released"


# --- Stripe's word, repeated and shuffled ------------------------------------------------


@pytest.mark.parametrize(
    ("lifecycle", "end"),
    [
        (
            [
                "payment_intent.payment_failed",
                "payment_intent.amount_capturable_updated",
                "payment_intent.succeeded",
                "charge.refunded",
            ],
            "refunded",
        ),
        (["payment_intent.amount_capturable_updated", "payment_intent.canceled"], "released"),
        (["payment_intent.amount_capturable_updated", "charge.expired"], "expired"),
    ],
    ids=["taken-then-refunded", "let-go", "lapsed"],
)
def test_every_deposit_event_three_times_shuffled_ends_as_in_order(
    firestore_db: firestore.Client,
    stripe_client: stripe.StripeClient,
    lifecycle: list[str],
    end: str,
) -> None:
    start = int(dt.datetime.now(dt.UTC).timestamp())
    ends = []
    for seed in range(4):
        _, _, _, offer_id = rental_offer(firestore_db)
        shown = intent(stripe_client, intent_id(firestore_db, offer_id))
        story = [deposit_event(k, shown, start + i) for i, k in enumerate(lifecycle)]
        if seed == 0:
            outcomes = deliver(firestore_db, *story)
            assert set(outcomes) == {"applied"}
        else:
            messy = story * 3
            random.Random(seed).shuffle(messy)
            outcomes = deliver(firestore_db, *messy)
            assert outcomes.count("duplicate") == 2 * len(story), (seed, outcomes)
        deposit = stored(firestore_db, offer_id)["deposit"]
        ends.append({k: v for k, v in deposit.items() if k not in ("paymentIntentId", "askedAt")})
    assert ends[0]["state"] == end and ends[0]["stripeCreated"] == start + len(lifecycle) - 1
    assert ends == [ends[0]] * 4  # every fact recorded, whatever the order


def test_events_about_another_payments_deposit_change_nothing(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient
) -> None:
    _, _, _, offer_id = rental_offer(firestore_db)
    shown = intent(stripe_client, intent_id(firestore_db, offer_id))
    stranger = {**shown, "id": "pi_not_ours_123", "metadata": {"purpose": "deposit"}}
    before = stored(firestore_db, offer_id)

    outcomes = deliver(
        firestore_db,
        deposit_event("payment_intent.amount_capturable_updated", stranger),
        deposit_event("charge.refunded", stranger),
    )

    assert outcomes == ["unknown_subject", "unknown_subject"]
    assert stored(firestore_db, offer_id) == before


# --- crashes ------------------------------------------------------------------------------


class Crash(BaseException):
    """The process dying: nothing of ours runs after it (not even an ``except``)."""


def test_a_crash_between_the_hold_and_its_record_leaves_no_orphan(
    firestore_db: firestore.Client,
    stripe_client: stripe.StripeClient,
    monkeypatch: pytest.MonkeyPatch,
    stripe_calls: Counter[str],
) -> None:
    agent, listing_id = home(firestore_db, kind="rent")
    renter = uid("renter")
    request = offers.MakeOfferRequest.model_validate(rental_request(listing_id))

    def make() -> offers.OfferResult:
        return offers.make(
            firestore_db,
            buyer_uid=renter,
            email_verified=True,
            request=request,
            stripe_api=deposits_api,
        )

    def crash(*_: Any, **__: Any) -> None:
        raise Crash

    with monkeypatch.context() as patched:
        patched.setattr(deposits, "record_in", crash)
        with pytest.raises(Crash):
            make()
    orphan = [i for i in all_intents(stripe_client) if i["status"] == "requires_payment_method"]
    made = make()  # the app retries
    soon = deposits.sweep_orphans(firestore_db, stripe_client)
    later = deposits.sweep_orphans(
        firestore_db, stripe_client, now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20)
    )
    held(firestore_db, stripe_client, made.offerId)
    offers.answer(firestore_db, made.offerId, "accept", agent)
    follow(firestore_db, made.offerId)

    assert len(orphan) == 1 and (soon, later) == (0, 1)
    statuses = Counter(i["status"] for i in all_intents(stripe_client))
    assert statuses == {"succeeded": 1, "canceled": 1}
    assert intent(stripe_client, orphan[0]["id"])["status"] == "canceled"
    assert (stripe_calls["create"], stripe_calls["capture"]) == (2, 1)


def test_a_record_that_fails_cancels_the_hold_at_once(
    firestore_db: firestore.Client,
    stripe_client: stripe.StripeClient,
    call_function: Call,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, listing_id = home(firestore_db, kind="rent")

    def refuse(*_: Any, **__: Any) -> None:
        raise RuntimeError("the write failed")

    monkeypatch.setattr(deposits, "record_in", refuse)
    with pytest.raises(RuntimeError):
        offers.make(
            firestore_db,
            buyer_uid=uid("renter"),
            email_verified=True,
            request=offers.MakeOfferRequest.model_validate(rental_request(listing_id)),
            stripe_api=deposits_api,
        )

    assert [i["status"] for i in all_intents(stripe_client)] == ["canceled"]
    assert firestore_db.collection("offers").get() == []


def test_a_crash_after_the_capture_and_before_its_record_is_completed_by_the_retry(
    firestore_db: firestore.Client,
    stripe_client: stripe.StripeClient,
    monkeypatch: pytest.MonkeyPatch,
    stripe_calls: Counter[str],
) -> None:
    agent, _, _, offer_id = rental_offer(firestore_db)
    held(firestore_db, stripe_client, offer_id)
    offers.answer(firestore_db, offer_id, "accept", agent)

    def crash(*_: Any, **__: Any) -> None:
        raise Crash

    with monkeypatch.context() as patched:
        patched.setattr(deposits, "record", crash)
        with pytest.raises(Crash):
            follow(firestore_db, offer_id)
    crashed = stored(firestore_db, offer_id)["deposit"]
    # The crashed run's lock lapses; the trigger's retry (here: later) completes it.
    firestore_db.document(f"_paymentLocks/deposit-{offer_id}").delete()
    follow(firestore_db, offer_id)

    assert (crashed["asked"], crashed["state"]) == ("capture", "held")
    assert stored(firestore_db, offer_id)["deposit"]["state"] == "captured"
    assert intent(stripe_client, intent_id(firestore_db, offer_id))["status"] == "succeeded"
    assert stripe_calls["capture"] == 1


# --- the clock ----------------------------------------------------------------------------


def test_a_hold_ending_within_a_day_is_flagged_and_within_the_hour_let_go(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient
) -> None:
    agent, renter, _, offer_id = rental_offer(firestore_db)
    held(firestore_db, stripe_client, offer_id)
    now = dt.datetime.now(dt.UTC)
    ref = firestore_db.document(f"offers/{offer_id}")
    # Its charge said so (the clock asked it once): 23 hours from now.
    ref.update(
        {
            "deposit.captureBefore": now + dt.timedelta(hours=23),
            "deposit.captureBeforeChecked": True,
        }
    )

    first = offer_upkeep.tick(firestore_db, deposits_api, now)
    second = offer_upkeep.tick(firestore_db, deposits_api, now)
    ref.update({"deposit.captureBefore": now + dt.timedelta(minutes=50)})
    ending = offer_upkeep.tick(firestore_db, deposits_api, now)
    follow(firestore_db, offer_id)

    assert (first["warned"], second["warned"], ending["released"]) == (1, 0, 1)
    for who in (agent, renter):
        told = firestore_db.document(f"users/{who}/notifications/offer-{offer_id}-hold-ending")
        assert told.get().exists
    data = stored(firestore_db, offer_id)
    assert (data["status"], data["deposit"]["state"]) == ("lapsed", "released")
    assert data["lastChange"]["reason"] == offer_upkeep.HOLD_ENDING
    assert intent(stripe_client, intent_id(firestore_db, offer_id))["status"] == "canceled"


def test_a_hold_past_its_end_is_never_taken(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, call_function: Call
) -> None:
    agent, _, _, offer_id = rental_offer(firestore_db)
    held(firestore_db, stripe_client, offer_id)
    firestore_db.document(f"offers/{offer_id}").update(
        {"deposit.captureBefore": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)}
    )

    refused = call_function(accept_offer, {"offerId": offer_id}, uid=agent, claims=AGENT)
    taken_before = intent(stripe_client, intent_id(firestore_db, offer_id))["status"]
    offer_upkeep.tick(firestore_db, deposits_api, dt.datetime.now(dt.UTC))
    follow(firestore_db, offer_id)

    assert refused.error["details"]["reason"] == "deposit_not_held"
    assert taken_before == "requires_capture"  # nothing was asked of Stripe
    data = stored(firestore_db, offer_id)
    assert (data["status"], data["deposit"]["state"]) == ("lapsed", "released")
    assert intent(stripe_client, intent_id(firestore_db, offer_id))["status"] == "canceled"


def test_the_clock_finishes_what_a_trigger_left_undone(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient
) -> None:
    agent, _, _, accepted = rental_offer(firestore_db)
    _, _, _, unreported = rental_offer(firestore_db)
    held(firestore_db, stripe_client, accepted)
    offers.answer(firestore_db, accepted, "accept", agent)  # its trigger never ran
    confirm_card(stripe_client, intent_id(firestore_db, unreported))  # its webhook never came
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=3)

    done = offer_upkeep.tick(firestore_db, deposits_api, later)

    assert done["settled"] == 2
    assert stored(firestore_db, accepted)["deposit"]["state"] == "captured"
    assert stored(firestore_db, unreported)["deposit"]["state"] == "held"


def test_the_clock_asks_each_new_holds_charge_when_it_really_ends_once(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient, stripe_calls: Counter[str]
) -> None:
    _, _, _, offer_id = rental_offer(firestore_db)
    held(firestore_db, stripe_client, offer_id)
    assumed = stored(firestore_db, offer_id)["deposit"]["captureBefore"]

    first = offer_upkeep.tick(firestore_db, deposits_api, dt.datetime.now(dt.UTC))
    asked = stripe_calls["retrieve"]
    second = offer_upkeep.tick(firestore_db, deposits_api, dt.datetime.now(dt.UTC))

    assert (first["checked"], second["checked"]) == (1, 0)
    assert stripe_calls["retrieve"] == asked  # once per hold, not once per run
    deposit = stored(firestore_db, offer_id)["deposit"]
    # localstripe's charge has no capture_before: its authorisation + 7 days, still assumed.
    latest = intent(stripe_client, intent_id(firestore_db, offer_id))["latest_charge"]
    charge = stripe_client.v1.charges.retrieve(str(stripe_id(latest))).to_dict()
    authorised = dt.datetime.fromtimestamp(charge["created"], dt.UTC)
    assert deposit["captureBefore"] == authorised + deposits.HOLD
    assert (deposit["captureBeforeChecked"], deposit["captureBeforeAssumed"]) == (True, True)
    assert abs(deposit["captureBefore"] - assumed) < dt.timedelta(minutes=1)


def test_a_listing_that_leaves_the_market_ends_its_offers_and_lets_their_holds_go(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient
) -> None:
    _, _, listing_id, offer_id = rental_offer(firestore_db)
    _, _, _, elsewhere = rental_offer(firestore_db)
    held(firestore_db, stripe_client, offer_id)

    on_market = offer_upkeep.end_offers_off_market(firestore_db, listing_id, "under_offer")
    ended = offer_upkeep.end_offers_off_market(firestore_db, listing_id, "withdrawn")
    again = offer_upkeep.end_offers_off_market(firestore_db, listing_id, "withdrawn")
    follow(firestore_db, offer_id)

    assert (on_market, ended, again) == (0, 1, 0)
    data = stored(firestore_db, offer_id)
    assert (data["status"], data["deposit"]["state"]) == ("lapsed", "released")
    assert data["lastChange"]["reason"] == "The listing is no longer on the market (withdrawn)."
    assert intent(stripe_client, intent_id(firestore_db, offer_id))["status"] == "canceled"
    assert stored(firestore_db, elsewhere)["status"] == "open"
    told = firestore_db.document(f"users/{data['buyerId']}/notifications/offer-{offer_id}-2")
    assert told.get().exists


def test_a_move_that_is_not_yours_is_refused_before_stripe_is_asked(
    firestore_db: firestore.Client,
    stripe_client: stripe.StripeClient,
    call_function: Call,
    stripe_calls: Counter[str],
) -> None:
    _, renter, _, offer_id = rental_offer(firestore_db)
    confirm_card(stripe_client, intent_id(firestore_db, offer_id))
    before = stored(firestore_db, offer_id)
    asked = dict(stripe_calls)

    refused = call_function(accept_offer, {"offerId": offer_id}, uid=renter, claims=VERIFIED)

    assert refused.error["details"]["reason"] == "move_not_allowed"
    assert dict(stripe_calls) == asked
    assert stored(firestore_db, offer_id) == before
