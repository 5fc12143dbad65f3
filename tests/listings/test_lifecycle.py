"""The listing lifecycle: the submission trigger, the admins' review and the agents' moves.

All in-process against the Firestore emulator: the trigger through real CloudEvents,
the callables through the SDK's real request path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pygeohash
import pytest
from google.cloud import firestore

from api.listings import approve_listing, on_listing_updated, reject_listing, set_listing_status
from marketplace import listings
from marketplace.models.listings import Listing
from pytest_firebase.callables import CallResult
from pytest_firebase.events import deliver, redelivery

from .factories import SUBMITTED, audit_entries, listing, stored, submit, uid

Call = Callable[..., CallResult]
Event = Callable[..., Any]
ADMIN = {"role": "admin"}
AGENT = {"role": "agent"}
STATUSES = ("draft", "pending_review", "active", "under_offer", "sold", "let", "archived")
ALL_STATUSES = (*STATUSES, "rejected")


def ledger(db: Any, listing_id: str) -> list[dict[str, Any]]:
    return [
        entry
        for entry in (d.to_dict() for d in db.collection("_eventLedger").stream())
        if entry["function"] == "on_listing_updated"
        and entry["document"] == f"listings/{listing_id}"
    ]


# --- the graph ------------------------------------------------------------------------


def test_every_move_anyone_makes_is_in_the_graph() -> None:
    transitions = Listing.transitions
    assert transitions is not None
    for before, afters in transitions.moves.items():
        assert all(listings.can_move(before, after) for after in afters)
    for moves in (listings.AGENT_MOVES, listings.ADMIN_MOVES, listings.DEPARTURE_MOVES):
        for status, targets in moves.items():
            assert targets <= listings.GRAPH[status]
    assert set(listings.GRAPH) == set(ALL_STATUSES)


# --- the submission trigger -----------------------------------------------------------


@pytest.mark.parametrize("standing", [{"verified": True}, {"plan": "agent_pro"}])
def test_a_trusted_agents_submission_is_published(
    firestore_db: firestore.Client,
    firestore_event: Event,
    agent: Callable[..., str],
    standing: dict[str, Any],
) -> None:
    listing_id, event = submit(firestore_db, firestore_event, listing(agent(**standing)))

    deliver(on_listing_updated, event)

    doc = stored(firestore_db, listing_id)
    assert doc["status"] == "active"
    assert doc["geohash"] == pygeohash.encode(51.5014, -0.1419, precision=9)
    assert len(doc["geohash"]) == 9
    assert set(doc["searchKeys"]) == {
        "city:london",
        "kind:sale",
        "type:flat",
        "beds:2",
        "city_kind:london|sale",
        "price:sale:GBP:300000-400000",
    }
    assert isinstance(doc["publishedAt"], dt.datetime)
    assert doc["reviewedAt"] == doc["publishedAt"]
    assert doc["rejectionReason"] is None
    assert doc["title"] == "Bright two bed flat near the park"
    assert doc["description"] == "Light, quiet, close to the Tube."
    assert doc["address"]["postcode"] == "SW1A 1AA"
    assert doc["updatedAt"] == SUBMITTED  # the client's own stamp, untouched
    Listing.model_validate(doc)  # what the trigger wrote still fits the model


def test_an_unverified_agents_submission_is_queued_for_moderation(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str]
) -> None:
    listing_id, event = submit(firestore_db, firestore_event, listing(agent()))

    deliver(on_listing_updated, event)

    doc = stored(firestore_db, listing_id)
    assert doc["status"] == "pending_review"
    assert doc["searchKeys"] and doc["geohash"]  # reviewed, waiting for an admin
    assert doc.get("publishedAt") is None
    assert doc.get("reviewedAt") is None
    assert doc["address"]["postcode"] == "SW1A 1AA"
    assert [e["state"] for e in ledger(firestore_db, listing_id)] == ["DONE"]


def test_a_submission_by_an_owner_without_a_profile_is_archived(
    firestore_db: firestore.Client, firestore_event: Event
) -> None:
    # Every account has a profile from sign-up on: a missing one is a deleted account.
    listing_id, event = submit(firestore_db, firestore_event, listing(uid("ghost")))

    deliver(on_listing_updated, event)

    doc = stored(firestore_db, listing_id)
    assert (doc["status"], doc["archivedReason"]) == ("archived", "agent_departed")


RENT = {"kind": "rent", "price": {"amount": 1_500_00, "currency": "GBP"}}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"price": {"amount": 0, "currency": "GBP"}}, "more than zero"),
        ({"price": {"amount": 500_000_000_00, "currency": "GBP"}}, "price must be between"),
        ({"price": {"amount": 2_000_00, "currency": "GBP"}}, "price must be between"),
        ({**RENT, "price": {"amount": 20_00, "currency": "GBP"}}, "monthly rent must be"),
        ({**RENT, "price": {"amount": 350_000_00, "currency": "GBP"}}, "monthly rent must be"),
        ({"photos": []}, "at least one photo"),
        ({"title": "  ab     "}, "title needs at least 5"),
    ],
    ids=["zero", "sale-high", "sale-low", "rent-low", "rent-high", "no-photos", "blank-title"],
)
def test_a_submission_that_fails_a_sanity_check_is_rejected_with_a_reason(
    firestore_db: firestore.Client,
    firestore_event: Event,
    agent: Callable[..., str],
    overrides: dict[str, Any],
    reason: str,
) -> None:
    listing_id, event = submit(
        firestore_db, firestore_event, listing(agent(verified=True), **overrides)
    )

    deliver(on_listing_updated, event)

    doc = stored(firestore_db, listing_id)
    assert doc["status"] == "rejected"
    assert reason in doc["rejectionReason"]
    assert isinstance(doc["reviewedAt"], dt.datetime)
    assert doc.get("publishedAt") is None
    assert doc.get("searchKeys") is None


@pytest.mark.parametrize(
    ("field", "reason"), [("line1", "first line"), ("city", "city"), ("postcode", "postcode")]
)
def test_a_blank_address_part_is_rejected(
    firestore_db: firestore.Client,
    firestore_event: Event,
    agent: Callable[..., str],
    field: str,
    reason: str,
) -> None:
    data = listing(agent(verified=True))
    data["address"] = {**data["address"], field: "   "}
    listing_id, event = submit(firestore_db, firestore_event, data)

    deliver(on_listing_updated, event)

    doc = stored(firestore_db, listing_id)
    assert doc["status"] == "rejected"
    assert f"address needs a {reason}" in doc["rejectionReason"]


def test_a_listing_whose_stored_data_no_longer_fits_is_rejected_not_looped(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str]
) -> None:
    # The one gap rules and model share: 2 -> 2.0 counts as unchanged to the rules.
    data = listing(agent(verified=True), bedrooms=2.0)
    listing_id, event = submit(firestore_db, firestore_event, data)

    deliver(on_listing_updated, event)
    deliver(on_listing_updated, redelivery(event))

    doc = stored(firestore_db, listing_id)
    assert doc["status"] == "rejected"
    assert "bedrooms" in doc["rejectionReason"]
    assert [e["state"] for e in ledger(firestore_db, listing_id)] == ["DONE"]


@pytest.mark.parametrize("status", ["pending_review", "active", "under_offer"])
def test_a_second_listing_at_an_address_on_the_market_is_rejected(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str], status: str
) -> None:
    other = listing(agent(verified=True), status=status)
    other["address"] = {**other["address"], "line1": "12  HIGH street", "postcode": "SW1A 1AA"}
    firestore_db.document(f"listings/{uid('home')}").set(other)
    listing_id, event = submit(firestore_db, firestore_event, listing(agent(verified=True)))

    deliver(on_listing_updated, event)

    doc = stored(firestore_db, listing_id)
    assert doc["status"] == "rejected"
    assert "already on the market" in doc["rejectionReason"]


@pytest.mark.parametrize("status", ["draft", "rejected", "sold", "let", "archived"])
def test_an_address_off_the_market_is_no_duplicate(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str], status: str
) -> None:
    other = listing(agent(verified=True), status=status)
    other["address"] = {**other["address"], "postcode": "SW1A 1AA"}
    firestore_db.document(f"listings/{uid('home')}").set(other)
    listing_id, event = submit(firestore_db, firestore_event, listing(agent(verified=True)))

    deliver(on_listing_updated, event)

    assert stored(firestore_db, listing_id)["status"] == "active"


def test_a_submission_delivered_three_times_is_reviewed_once(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str]
) -> None:
    listing_id, event = submit(firestore_db, firestore_event, listing(agent(verified=True)))

    deliver(on_listing_updated, event)
    first = stored(firestore_db, listing_id)
    deliver(on_listing_updated, redelivery(event))
    deliver(on_listing_updated, redelivery(event))

    assert first["status"] == "active"
    assert stored(firestore_db, listing_id) == first  # a second review would restamp
    assert [e["state"] for e in ledger(firestore_db, listing_id)] == ["DONE"]


@pytest.mark.parametrize("now", ["draft", "active", "rejected", "archived"])
def test_a_stale_submission_event_changes_nothing(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str], now: str
) -> None:
    listing_id, event = submit(firestore_db, firestore_event, listing(agent(verified=True)))
    firestore_db.document(f"listings/{listing_id}").update({"status": now})  # moved on
    before = stored(firestore_db, listing_id)

    deliver(on_listing_updated, event)

    assert stored(firestore_db, listing_id) == before


def test_the_triggers_own_write_is_skipped(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str]
) -> None:
    data = listing(agent(), status="pending_review")
    listing_id = uid("home")
    firestore_db.document(f"listings/{listing_id}").set(data)
    written = {**data, "geohash": "gcpuuz94k", "searchKeys": ["kind:sale"], "title": "Tidy"}
    event = firestore_event(f"listings/{listing_id}", before=data, after=written, kind="updated")

    deliver(on_listing_updated, event)

    assert stored(firestore_db, listing_id) == data
    assert ledger(firestore_db, listing_id) == []


@pytest.mark.parametrize("other", ["favoritesCount", "featuredUntil"])
def test_another_functions_write_to_a_listing_under_review_is_no_submission(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str], other: str
) -> None:
    data = listing(agent(verified=True), status="pending_review")
    listing_id = uid("home")
    firestore_db.document(f"listings/{listing_id}").set(data)
    value = 3 if other == "favoritesCount" else dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    event = firestore_event(
        f"listings/{listing_id}", before=data, after={**data, other: value}, kind="updated"
    )

    deliver(on_listing_updated, event)

    # Status did not change: skipped before the ledger, so nothing reviewed or recorded.
    assert stored(firestore_db, listing_id) == data
    assert ledger(firestore_db, listing_id) == []


# --- admins: approve and reject -------------------------------------------------------


def put(db: Any, data: dict[str, Any]) -> str:
    listing_id = uid("home")
    db.document(f"listings/{listing_id}").set(data)
    return listing_id


def test_an_admin_approves_a_queued_listing(
    firestore_db: firestore.Client, call_function: Call, agent: Callable[..., str]
) -> None:
    listing_id = put(firestore_db, listing(agent(), status="pending_review"))

    result = call_function(approve_listing, {"listingId": listing_id}, uid="mod", claims=ADMIN)

    assert result.data == {
        "listingId": listing_id,
        "status": "active",
        "previousStatus": "pending_review",
    }
    doc = stored(firestore_db, listing_id)
    assert doc["status"] == "active"
    assert isinstance(doc["publishedAt"], dt.datetime)
    assert doc["geohash"] and doc["searchKeys"]
    [entry] = audit_entries(firestore_db)
    assert entry["action"] == "listing.approved"
    assert entry["actorUid"] == "mod"
    assert entry["target"] == f"listings/{listing_id}"
    assert entry["change"] == {
        "before": {"status": "pending_review"},
        "after": {"status": "active"},
    }


def test_an_admin_rejects_a_queued_listing_with_a_reason(
    firestore_db: firestore.Client, call_function: Call, agent: Callable[..., str]
) -> None:
    listing_id = put(firestore_db, listing(agent(), status="pending_review"))

    result = call_function(
        reject_listing,
        {"listingId": listing_id, "reason": "  The photos show another home.  "},
        uid="mod",
        claims=ADMIN,
    )

    assert result.data["status"] == "rejected"
    doc = stored(firestore_db, listing_id)
    assert doc["status"] == "rejected"
    assert doc["rejectionReason"] == "The photos show another home."
    assert isinstance(doc["reviewedAt"], dt.datetime)
    [entry] = audit_entries(firestore_db)
    assert entry["action"] == "listing.rejected"
    assert entry["change"] == {
        "before": {"status": "pending_review"},
        "after": {"status": "rejected"},
    }
    assert entry["reason"] == "The photos show another home."


@pytest.mark.parametrize("status", [s for s in ALL_STATUSES if s != "pending_review"])
@pytest.mark.parametrize("function", [approve_listing, reject_listing], ids=["approve", "reject"])
def test_admins_review_only_listings_waiting_for_review(
    firestore_db: firestore.Client,
    call_function: Call,
    agent: Callable[..., str],
    status: str,
    function: Any,
) -> None:
    listing_id = put(firestore_db, listing(agent(), status=status))
    before = stored(firestore_db, listing_id)

    result = call_function(
        function,
        {"listingId": listing_id, "reason": "No."}
        if function is reject_listing
        else {"listingId": listing_id},
        uid="mod",
        claims=ADMIN,
    )

    assert (result.error_status, result.error_details) == (
        "FAILED_PRECONDITION",
        {"reason": "transition_not_allowed"},
    )
    assert stored(firestore_db, listing_id) == before
    assert audit_entries(firestore_db) == []


def test_an_admin_cannot_approve_a_listing_that_fails_the_checks(
    firestore_db: firestore.Client, call_function: Call, agent: Callable[..., str]
) -> None:
    listing_id = put(firestore_db, listing(agent(), status="pending_review", photos=[]))
    before = stored(firestore_db, listing_id)

    result = call_function(approve_listing, {"listingId": listing_id}, uid="mod", claims=ADMIN)

    assert (result.error_status, result.error_details) == (
        "FAILED_PRECONDITION",
        {"reason": "listing_not_publishable"},
    )
    assert "photo" in (result.error_message or "")
    assert stored(firestore_db, listing_id) == before


@pytest.mark.parametrize("claims", [AGENT, {"role": "buyer"}, {}])
@pytest.mark.parametrize("function", [approve_listing, reject_listing], ids=["approve", "reject"])
def test_only_admins_review(
    firestore_db: firestore.Client,
    call_function: Call,
    agent: Callable[..., str],
    claims: dict[str, Any],
    function: Any,
) -> None:
    owner = agent()
    listing_id = put(firestore_db, listing(owner, status="pending_review"))
    before = stored(firestore_db, listing_id)

    result = call_function(
        function, {"listingId": listing_id, "reason": "Fine."}, uid=owner, claims=claims
    )

    assert (result.error_status, result.error_details) == ("PERMISSION_DENIED", {"reason": "role"})
    assert stored(firestore_db, listing_id) == before


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"listingId": "x"}, {"reason"}),
        ({"listingId": "x", "reason": "   "}, {"reason"}),
        ({"listingId": "x", "reason": "r" * 501}, {"reason"}),
        ({"listingId": "a/b", "reason": 5}, {"listingId", "reason"}),
        ({"reason": "ok", "extra": 1}, {"listingId", "extra"}),
    ],
)
def test_a_malformed_rejection_is_refused_naming_the_fields(
    firestore_db: firestore.Client, call_function: Call, data: dict[str, Any], fields: set[str]
) -> None:
    result = call_function(reject_listing, data, uid="mod", claims=ADMIN)

    assert result.error_status == "INVALID_ARGUMENT"
    assert {issue["field"] for issue in result.error_details} == fields


@pytest.mark.parametrize("function", [approve_listing, reject_listing], ids=["approve", "reject"])
def test_reviewing_a_missing_listing_is_not_found(
    firestore_db: firestore.Client, call_function: Call, function: Any
) -> None:
    data = {"listingId": "nope", "reason": "No."}
    if function is approve_listing:
        del data["reason"]
    result = call_function(function, data, uid="mod", claims=ADMIN)

    assert (result.error_status, result.error_details) == (
        "NOT_FOUND",
        {"reason": "no_such_listing"},
    )


# --- agents: on the market ------------------------------------------------------------

ALLOWED = {
    ("sale", "active"): {"under_offer", "sold", "archived"},
    ("sale", "under_offer"): {"active", "sold", "archived"},
    ("sale", "sold"): {"archived"},
    ("rent", "active"): {"under_offer", "let", "archived"},
    ("rent", "under_offer"): {"active", "let", "archived"},
    ("rent", "let"): {"archived"},
}
"""Every move an agent may make, by kind; every other (reachable) pair is refused."""
TARGETS = ("active", "under_offer", "sold", "let", "archived")
REACHABLE = [
    (kind, status)
    for kind in ("sale", "rent")
    for status in ALL_STATUSES
    if listings.KIND_ONLY.get(status, kind) == kind
]
CASES = [(kind, status, to) for kind, status in REACHABLE for to in TARGETS]


@pytest.mark.parametrize(
    ("kind", "status", "to"), CASES, ids=[f"{k}:{s}->{t}" for k, s, t in CASES]
)
def test_an_agent_moves_their_listing_only_along_the_graph(
    firestore_db: firestore.Client,
    call_function: Call,
    agent: Callable[..., str],
    kind: str,
    status: str,
    to: str,
) -> None:
    owner = agent()
    listing_id = put(firestore_db, listing(owner, status=status, kind=kind))
    before = stored(firestore_db, listing_id)

    result = call_function(
        set_listing_status, {"listingId": listing_id, "status": to}, uid=owner, claims=AGENT
    )

    if to in ALLOWED.get((kind, status), set()):
        assert result.data == {"listingId": listing_id, "status": to, "previousStatus": status}
        doc = stored(firestore_db, listing_id)
        assert doc["status"] == to
        assert doc["updatedAt"] > before["updatedAt"]
        # Back on the market, it holds no accepted offer (a deal that fell through).
        moved = ("status", "updatedAt", "acceptedOfferId")
        assert {k: v for k, v in doc.items() if k not in moved} == {
            k: v for k, v in before.items() if k not in moved
        }
        if to == "active":
            assert doc.get("acceptedOfferId") is None
    else:
        # A move off the graph, or one the graph allows but not for this kind (let a sale).
        on_graph = to in listings.AGENT_MOVES.get(status, set())
        reason = "status_not_for_kind" if on_graph else "transition_not_allowed"
        assert result.error_status == "FAILED_PRECONDITION", result.body
        assert result.error_details == {"reason": reason}
        assert stored(firestore_db, listing_id) == before


def test_another_agent_cannot_move_a_listing(
    firestore_db: firestore.Client, call_function: Call, agent: Callable[..., str]
) -> None:
    listing_id = put(firestore_db, listing(agent(), status="active"))
    before = stored(firestore_db, listing_id)

    result = call_function(
        set_listing_status,
        {"listingId": listing_id, "status": "sold"},
        uid=agent(),
        claims=AGENT,
    )

    assert (result.error_status, result.error_details) == (
        "PERMISSION_DENIED",
        {"reason": "not_listing_owner"},
    )
    assert stored(firestore_db, listing_id) == before


@pytest.mark.parametrize("claims", [{"role": "buyer"}, ADMIN, {}])
def test_only_agents_move_listings(
    firestore_db: firestore.Client,
    call_function: Call,
    agent: Callable[..., str],
    claims: dict[str, Any],
) -> None:
    owner = agent()
    listing_id = put(firestore_db, listing(owner, status="active"))

    result = call_function(
        set_listing_status, {"listingId": listing_id, "status": "sold"}, uid=owner, claims=claims
    )

    assert (result.error_status, result.error_details) == ("PERMISSION_DENIED", {"reason": "role"})
    assert stored(firestore_db, listing_id)["status"] == "active"


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"listingId": "x", "status": "pending_review"}, {"status"}),
        ({"listingId": "x", "status": "rejected"}, {"status"}),
        ({"status": "sold"}, {"listingId"}),
        ({"listingId": "", "status": "sold", "note": "hi"}, {"listingId", "note"}),
        ({"listingId": 7, "status": None}, {"listingId", "status"}),
    ],
)
def test_a_malformed_status_change_is_refused_naming_the_fields(
    firestore_db: firestore.Client, call_function: Call, data: dict[str, Any], fields: set[str]
) -> None:
    result = call_function(set_listing_status, data, uid="someone", claims=AGENT)

    assert result.error_status == "INVALID_ARGUMENT"
    assert {issue["field"] for issue in result.error_details} == fields


def test_moving_a_missing_listing_is_not_found(
    firestore_db: firestore.Client, call_function: Call
) -> None:
    result = call_function(
        set_listing_status, {"listingId": "nope", "status": "sold"}, uid="a", claims=AGENT
    )

    assert (result.error_status, result.error_details) == (
        "NOT_FOUND",
        {"reason": "no_such_listing"},
    )
