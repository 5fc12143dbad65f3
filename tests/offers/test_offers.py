"""Offers in-process against the Firestore emulator: making one (and every refusal, with
nothing written), the graph of answers, races on one offer and on one listing, what
follows a move (notices, the other offers rejected) and the clock."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, get_args

import pytest
from google.cloud import firestore

from api.offers import accept_offer, counter_offer, make_offer, reject_offer, withdraw_offer
from firekit.errors import AppError
from marketplace import offer_upkeep, offers
from marketplace.models.deals import Offer, OfferMove, OfferStatus
from marketplace.payments import stripe_api
from tests.listings.factories import listing, uid

Call = Callable[..., Any]
VERIFIED = {"role": "buyer", "email_verified": True}
AGENT = {"role": "agent"}
NOW = dt.datetime.now(dt.UTC)


def home(db: firestore.Client, *, kind: str = "sale", status: str = "active") -> tuple[str, str]:
    """An agent's listing: (agent uid, listing id)."""
    agent, listing_id = uid("agent"), uid("home")
    price = {"amount": 350_000_00 if kind == "sale" else 2_000_00, "currency": "GBP"}
    db.document(f"listings/{listing_id}").set(listing(agent, status=status, kind=kind, price=price))
    return agent, listing_id


def offer_request(listing_id: str, **change: Any) -> dict[str, Any]:
    return {
        "listingId": listing_id,
        "amount": 340_000_00,
        "currency": "GBP",
        "conditions": {"mortgageAgreedInPrinciple": True},
        "expiresAt": (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat(),
        **change,
    }


def stored(db: firestore.Client, offer_id: str) -> dict[str, Any]:
    return db.document(f"offers/{offer_id}").get().to_dict() or {}


def follow(db: firestore.Client, offer_id: str) -> dict[str, Any]:
    """What the offer trigger does for the offer's latest revision."""
    return offer_upkeep.follow_up(db, offer_id, stored(db, offer_id), stripe_api.client)


def everything(db: firestore.Client) -> list[str]:
    return sorted(
        d.reference.path
        for name in ("offers", offers.SLOTS, "listings")
        for d in db.collection(name).stream()
    )


# --- making ---------------------------------------------------------------------------


def test_a_verified_buyer_offers_and_the_offer_is_recorded_open(
    firestore_db: firestore.Client, call_function: Call
) -> None:
    agent, listing_id = home(firestore_db)
    buyer = uid("buyer")

    result = call_function(make_offer, offer_request(listing_id), uid=buyer, claims=VERIFIED).data

    data = stored(firestore_db, result["offerId"])
    Offer.model_validate(data)
    assert (result["status"], result["amount"], result["currency"]) == ("open", 340_000_00, "GBP")
    assert (data["buyerId"], data["agentId"], data["kind"]) == (buyer, agent, "sale")
    assert data["conditions"] == {
        "mortgageAgreedInPrinciple": True,
        "cashBuyer": False,
        "chainFree": False,
    }
    assert data["revision"] == 1 and data["lastChange"]["move"] == "make"


def test_a_new_offer_replaces_the_buyers_open_one(
    firestore_db: firestore.Client, call_function: Call
) -> None:
    _, listing_id = home(firestore_db)
    buyer = uid("buyer")

    first = call_function(make_offer, offer_request(listing_id), uid=buyer, claims=VERIFIED).data
    better = offer_request(listing_id, amount=345_000_00)
    second = call_function(make_offer, better, uid=buyer, claims=VERIFIED).data

    assert stored(firestore_db, first["offerId"])["status"] == "replaced"
    assert stored(firestore_db, second["offerId"])["status"] == "open"
    mine = [o for o in firestore_db.collection("offers").stream() if o.get("buyerId") == buyer]
    assert Counter(s.get("status") for s in mine) == {"open": 1, "replaced": 1}


def test_racing_offers_of_one_buyer_leave_one_open(firestore_db: firestore.Client) -> None:
    _, listing_id = home(firestore_db)
    buyer = uid("buyer")
    request = offers.MakeOfferRequest.model_validate(offer_request(listing_id))

    def make(_: int) -> str:
        return offers.make(
            firestore_db, buyer_uid=buyer, email_verified=True, request=request
        ).offerId

    with ThreadPoolExecutor(6) as pool:
        made = list(pool.map(make, range(6)))

    statuses = Counter(stored(firestore_db, o)["status"] for o in made)
    assert statuses == {"open": 1, "replaced": 5}


def test_a_renter_offers_with_a_move_in_date_and_a_term(
    firestore_db: firestore.Client, call_function: Call
) -> None:
    _, listing_id = home(firestore_db, kind="rent")
    request = offer_request(
        listing_id, amount=1_950_00, conditions={"moveInDate": "2027-01-15", "termMonths": 12}
    )

    result = call_function(make_offer, request, uid=uid("renter"), claims=VERIFIED).data

    data = stored(firestore_db, result["offerId"])
    assert data["kind"] == "rent"
    assert data["conditions"] == {"moveInDate": "2027-01-15", "termMonths": 12}


@pytest.mark.parametrize(
    ("change", "claims", "status", "reason"),
    [
        ({}, {"role": "buyer", "email_verified": False}, "PERMISSION_DENIED", "email_not_verified"),
        ({"currency": "EUR"}, VERIFIED, "FAILED_PRECONDITION", "wrong_currency"),
        (
            {"conditions": {"moveInDate": "2027-01-15", "termMonths": 12}},
            VERIFIED,
            "FAILED_PRECONDITION",
            "wrong_conditions",
        ),
        ({"expiresAt": "{in 15 days}"}, VERIFIED, "FAILED_PRECONDITION", "bad_expiry"),
        ({"expiresAt": "{a minute ago}"}, VERIFIED, "FAILED_PRECONDITION", "bad_expiry"),
        ({"depositAmount": 100}, VERIFIED, "INVALID_ARGUMENT", None),
        ({"amount": 0}, VERIFIED, "INVALID_ARGUMENT", None),
        ({"amount": "340000"}, VERIFIED, "INVALID_ARGUMENT", None),
        ({"listingId": "no-such-home"}, VERIFIED, "NOT_FOUND", "no_such_listing"),
    ],
    ids=[
        "unverified",
        "currency",
        "rent-terms-on-a-sale",
        "expiry-over-14-days",
        "expiry-past",
        "deposit-from-client",
        "zero",
        "string-amount",
        "missing-listing",
    ],
)
def test_a_bad_offer_is_refused_and_writes_nothing(
    firestore_db: firestore.Client,
    call_function: Call,
    change: dict[str, Any],
    claims: dict[str, Any],
    status: str,
    reason: str | None,
) -> None:
    _, listing_id = home(firestore_db)
    moments = {
        "{in 15 days}": (NOW + dt.timedelta(days=15)).isoformat(),
        "{a minute ago}": (NOW - dt.timedelta(minutes=1)).isoformat(),
    }
    change = {k: moments.get(v, v) if isinstance(v, str) else v for k, v in change.items()}
    before = everything(firestore_db)

    result = call_function(make_offer, offer_request(listing_id, **change), uid="b", claims=claims)

    assert result.error_status == status, result.body
    if reason:
        assert result.error["details"]["reason"] == reason
    else:
        assert result.error_details
    assert everything(firestore_db) == before


@pytest.mark.parametrize(
    ("status", "reason"),
    [("draft", "no_such_listing"), ("sold", "not_offerable"), ("archived", "not_offerable")],
)
def test_only_a_listing_on_the_market_takes_offers(
    firestore_db: firestore.Client, call_function: Call, status: str, reason: str
) -> None:
    _, listing_id = home(firestore_db, status=status)

    result = call_function(make_offer, offer_request(listing_id), uid="b", claims=VERIFIED)

    assert result.error["details"]["reason"] == reason
    assert firestore_db.collection("offers").get() == []


def test_an_agent_cannot_offer_on_their_own_listing(
    firestore_db: firestore.Client, call_function: Call
) -> None:
    agent, listing_id = home(firestore_db)
    own = {"role": "agent", "email_verified": True}

    result = call_function(make_offer, offer_request(listing_id), uid=agent, claims=own)

    assert result.error["details"]["reason"] == "own_listing"


# --- answering ------------------------------------------------------------------------


def an_offer(db: firestore.Client, **listing_change: Any) -> tuple[str, str, str, str]:
    """(agent, buyer, listing id, offer id) of an open offer."""
    agent, listing_id = home(db, **listing_change)
    buyer = uid("buyer")
    request = offers.MakeOfferRequest.model_validate(offer_request(listing_id))
    made = offers.make(db, buyer_uid=buyer, email_verified=True, request=request)
    return agent, buyer, listing_id, made.offerId


def test_the_agent_accepts_and_the_listing_goes_under_offer(
    firestore_db: firestore.Client, call_function: Call
) -> None:
    agent, _, listing_id, offer_id = an_offer(firestore_db)

    result = call_function(accept_offer, {"offerId": offer_id}, uid=agent, claims=AGENT).data

    assert result["status"] == "accepted"
    data = firestore_db.document(f"listings/{listing_id}").get().to_dict() or {}
    assert (data["status"], data["acceptedOfferId"]) == ("under_offer", offer_id)
    assert stored(firestore_db, offer_id)["decidedAt"] is not None


def test_a_counter_accepted_by_the_buyer_is_accepted_at_the_counter_amount(
    firestore_db: firestore.Client, call_function: Call
) -> None:
    agent, buyer, _, offer_id = an_offer(firestore_db)

    countered = call_function(
        counter_offer, {"offerId": offer_id, "amount": 347_500_00}, uid=agent, claims=AGENT
    ).data
    accepted = call_function(accept_offer, {"offerId": offer_id}, uid=buyer, claims=VERIFIED).data

    assert (countered["status"], countered["counterAmount"]) == ("countered", 347_500_00)
    assert (accepted["status"], accepted["amount"]) == ("accepted", 347_500_00)


def test_the_buyer_declines_a_counter_and_the_agent_must_say_why_they_reject(
    firestore_db: firestore.Client, call_function: Call
) -> None:
    agent, buyer, _, offer_id = an_offer(firestore_db)

    silent = call_function(reject_offer, {"offerId": offer_id}, uid=agent, claims=AGENT)
    call_function(
        counter_offer, {"offerId": offer_id, "amount": 360_000_00}, uid=agent, claims=AGENT
    )
    declined = call_function(reject_offer, {"offerId": offer_id}, uid=buyer, claims=VERIFIED).data

    assert silent.error["details"]["reason"] == "reason_required"
    assert declined["status"] == "declined"


@pytest.mark.parametrize(
    ("call_as", "function", "extra", "reason"),
    [
        ("buyer", accept_offer, {}, "move_not_allowed"),  # only a counter is the buyer's to accept
        ("agent", withdraw_offer, {}, "move_not_allowed"),
        ("buyer", counter_offer, {"amount": 1}, "move_not_allowed"),
        ("stranger", accept_offer, {}, "no_such_offer"),
        ("stranger", withdraw_offer, {}, "no_such_offer"),
    ],
)
def test_nobody_makes_a_move_that_is_not_theirs(
    firestore_db: firestore.Client,
    call_function: Call,
    call_as: str,
    function: Any,
    extra: dict[str, Any],
    reason: str,
) -> None:
    agent, buyer, _, offer_id = an_offer(firestore_db)
    who = {"agent": agent, "buyer": buyer, "stranger": uid("someone")}[call_as]
    before = stored(firestore_db, offer_id)

    result = call_function(function, {"offerId": offer_id, **extra}, uid=who, claims=VERIFIED)

    assert result.error["details"]["reason"] == reason
    assert stored(firestore_db, offer_id) == before


EXPECTED_GRAPH = {
    ("open", "accept", "agent"): "accepted",
    ("open", "reject", "agent"): "rejected",
    ("open", "counter", "agent"): "countered",
    ("open", "withdraw", "buyer"): "withdrawn",
    ("open", "replace", "buyer"): "replaced",
    ("open", "lapse", "system"): "lapsed",
    ("open", "lose", "system"): "rejected",
    ("countered", "accept_counter", "buyer"): "accepted",
    ("countered", "decline", "buyer"): "declined",
    ("countered", "withdraw", "buyer"): "withdrawn",
    ("countered", "replace", "buyer"): "replaced",
    ("countered", "reject", "agent"): "rejected",
    ("countered", "lapse", "system"): "lapsed",
    ("countered", "lose", "system"): "rejected",
}
"""The graph as the issue and the README state it, written out: every other (status, move,
actor) is refused."""


def test_every_status_and_move_follows_the_one_graph() -> None:
    statuses = get_args(OfferStatus)
    moves = [m for m in get_args(OfferMove) if m != "make"]
    for status, move, actor in itertools.product(statuses, moves, ("buyer", "agent", "system")):
        expected = EXPECTED_GRAPH.get((status, move, actor))
        if expected is not None:
            assert offers.edge(status, move, actor).to == expected  # type: ignore[arg-type]
        else:
            with pytest.raises(AppError) as refused:
                offers.edge(status, move, actor)  # type: ignore[arg-type]
            assert refused.value.details["reason"] == "move_not_allowed", (status, move, actor)


def test_a_hundred_racing_answers_end_in_exactly_one(firestore_db: firestore.Client) -> None:
    agent, buyer, _, offer_id = an_offer(firestore_db)
    moves = [("accept", agent), ("reject", agent), ("withdraw", buyer)] * 34

    def move(job: tuple[str, str]) -> str:
        what, who = job
        try:
            offers.answer(firestore_db, offer_id, what, who, reason="No.")  # type: ignore[arg-type]
            return f"won:{what}"
        except AppError as refused:
            return str(refused.details["reason"])

    with ThreadPoolExecutor(16) as pool:
        outcomes = Counter(pool.map(move, moves[:100]))

    won = [k for k in outcomes if k.startswith("won:")]
    assert len(won) == 1 and outcomes[won[0]] == 1, outcomes
    assert set(outcomes) - set(won) <= {"move_not_allowed", "busy"}, outcomes
    data = stored(firestore_db, offer_id)
    assert data["status"] == offers.MOVES[("open", won[0][4:])].to
    assert data["revision"] == 2


def test_two_offers_accepted_at_once_one_wins_and_the_other_is_rejected(
    firestore_db: firestore.Client,
) -> None:
    agent, _, listing_id, first = an_offer(firestore_db)
    request = offers.MakeOfferRequest.model_validate(offer_request(listing_id))
    second = offers.make(firestore_db, buyer_uid=uid("buyer"), email_verified=True, request=request)

    def accept(offer_id: str) -> str:
        try:
            return offers.answer(firestore_db, offer_id, "accept", agent).status
        except AppError as refused:
            return str(refused.details["reason"])

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(accept, [first, second.offerId]))
    winner = [first, second.offerId][outcomes.index("accepted")]
    loser = second.offerId if winner == first else first
    follow(firestore_db, winner)
    follow(firestore_db, winner)  # a rerun

    assert sorted(outcomes) == ["accepted", "another_offer_accepted"]
    lost = stored(firestore_db, loser)
    assert (lost["status"], lost["rejectionReason"]) == ("rejected", offers.ANOTHER_ACCEPTED)
    assert lost["lastChange"]["move"] == "lose" and lost["revision"] == 2
    listing_data = firestore_db.document(f"listings/{listing_id}").get().to_dict() or {}
    assert listing_data["acceptedOfferId"] == winner


# --- what follows ---------------------------------------------------------------------


def test_the_other_party_hears_of_each_move_once(
    firestore_db: firestore.Client, call_function: Call
) -> None:
    agent, buyer, _, offer_id = an_offer(firestore_db)
    for _ in range(3):  # delivered three times
        follow(firestore_db, offer_id)
    call_function(
        counter_offer, {"offerId": offer_id, "amount": 349_000_00}, uid=agent, claims=AGENT
    )
    follow(firestore_db, offer_id)

    agents = firestore_db.collection(f"users/{agent}/notifications").get()
    buyers = firestore_db.collection(f"users/{buyer}/notifications").get()
    assert [n.id for n in agents] == [f"offer-{offer_id}-1"]
    assert [n.id for n in buyers] == [f"offer-{offer_id}-2"]
    assert buyers[0].get("title") == "Counter-offer" and "£349,000" in buyers[0].get("body")


def test_the_clock_lapses_offers_whose_time_is_up(firestore_db: firestore.Client) -> None:
    _, _, _, due = an_offer(firestore_db)
    _, _, _, later = an_offer(firestore_db)
    firestore_db.document(f"offers/{due}").update({"expiresAt": NOW - dt.timedelta(minutes=1)})

    lapsed = offer_upkeep.lapse_due(firestore_db, dt.datetime.now(dt.UTC))
    again = offer_upkeep.lapse_due(firestore_db, dt.datetime.now(dt.UTC))

    assert (lapsed, again) == (1, 0)
    assert stored(firestore_db, due)["status"] == "lapsed"
    assert stored(firestore_db, later)["status"] == "open"
