"""The review records the checks it ran on the listing (``reviewChecks``), whatever it
decided, so a moderator sees them: queued, published, rejected, and an admin's approval."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.cloud import firestore

from api.listings import approve_listing, on_listing_updated
from marketplace.models.listings import Listing
from pytest_firebase.callables import CallResult
from pytest_firebase.events import deliver

from .factories import listing, stored, submit

Call = Callable[..., CallResult]
Event = Callable[..., Any]
CONTENT = ["price", "photos", "address", "title"]


def checks_of(db: firestore.Client, listing_id: str) -> dict[str, tuple[bool, str]]:
    doc = stored(db, listing_id)
    Listing.model_validate(doc)  # the field fits the model the contract is generated from
    return {c["check"]: (c["passed"], c["detail"]) for c in doc["reviewChecks"]}


def test_a_queued_listing_shows_the_moderator_every_check_passed(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str]
) -> None:
    listing_id, event = submit(firestore_db, firestore_event, listing(agent()))

    deliver(on_listing_updated, event)

    assert stored(firestore_db, listing_id)["status"] == "pending_review"  # queued
    checks = checks_of(firestore_db, listing_id)
    assert list(checks) == [*CONTENT, "duplicate"]
    assert all(passed for passed, _ in checks.values())
    assert checks["photos"] == (True, "1 photo.")
    assert checks["price"] == (True, "The price is between 10,000 and 200,000,000 GBP.")
    assert checks["duplicate"][1] == "No other listing at this address is on the market."


def test_a_rejected_listing_shows_which_checks_failed_and_why(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str]
) -> None:
    bad = listing(agent(), photos=[], price={"amount": 5_00, "currency": "GBP"})
    listing_id, event = submit(firestore_db, firestore_event, bad)

    deliver(on_listing_updated, event)

    doc = stored(firestore_db, listing_id)
    checks = checks_of(firestore_db, listing_id)
    assert doc["status"] == "rejected"
    # The duplicate query is not run once another check failed.
    assert list(checks) == CONTENT
    assert checks["photos"] == (False, "Add at least one photo.")
    assert checks["price"] == (False, "The price must be between 10,000 and 200,000,000 GBP.")
    assert checks["address"][0] and checks["title"][0]
    failed = [detail for passed, detail in checks.values() if not passed]
    assert doc["rejectionReason"] == " ".join(failed)


def test_a_duplicate_is_a_failed_check_of_its_own(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str]
) -> None:
    owner = agent(verified=True)
    first, event = submit(firestore_db, firestore_event, listing(owner))
    deliver(on_listing_updated, event)
    second, event = submit(firestore_db, firestore_event, listing(owner))

    deliver(on_listing_updated, event)

    assert stored(firestore_db, first)["status"] == "active"
    checks = checks_of(firestore_db, second)
    assert checks["duplicate"] == (
        False,
        "This address is already on the market in another listing.",
    )
    assert all(checks[name][0] for name in CONTENT)


def test_a_listing_that_no_longer_fits_the_model_records_the_data_check(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str]
) -> None:
    listing_id, event = submit(firestore_db, firestore_event, listing(agent(), bedrooms="two"))

    deliver(on_listing_updated, event)

    doc = stored(firestore_db, listing_id)
    assert doc["status"] == "rejected"
    assert doc["reviewChecks"] == [
        {
            "check": "data",
            "passed": False,
            "detail": "The listing has invalid data in: bedrooms.",
        }
    ]


def test_an_admins_approval_records_the_checks_it_ran_again(
    firestore_db: firestore.Client, call_function: Call, agent: Callable[..., str]
) -> None:
    # Queued before the review recorded anything (say, by an older version).
    listing_id = "home-approved"
    firestore_db.document(f"listings/{listing_id}").set(listing(agent(), status="pending_review"))

    result = call_function(
        approve_listing, {"listingId": listing_id}, uid="mod", claims={"role": "admin"}
    )

    assert result.ok, result.body
    checks = checks_of(firestore_db, listing_id)
    assert list(checks) == [*CONTENT, "duplicate"]
    assert all(passed for passed, _ in checks.values())
