"""The agent hears of every review decision (inbox entry, push), once per decision.

In-process against the Firestore emulator: the decision through the real callables or the
submission trigger, then the notice trigger with the event of the write the decision made
(``reviewedAt`` changed), delivered as the platform would, redeliveries included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from api.listings import approve_listing, on_listing_reviewed, on_listing_updated, reject_listing
from firekit import push
from marketplace import listings
from pytest_firebase.callables import CallResult
from pytest_firebase.events import deliver, redelivery

from .factories import listing, stored, submit, uid

Call = Callable[..., CallResult]
Event = Callable[..., Any]
ADMIN = {"role": "admin"}


def with_device(db: firestore.Client, agent: str) -> str:
    """The agent's private account with one device's token kept on it; the token."""
    token = f"tok-{agent}-0"
    db.document(f"users/{agent}/private/account").set(
        {"email": f"{agent}@example.test", "pushTokens": [token]}
    )
    return token


def queued(db: firestore.Client, owner: str) -> tuple[str, str, str, dict[str, Any]]:
    """A listing of ``owner``'s (with a device) waiting for an admin: owner, token, id, data."""
    token = with_device(db, owner)
    data = listing(owner, status="pending_review")
    listing_id = uid("home")
    db.document(f"listings/{listing_id}").set(data)
    return owner, token, listing_id, data


def decided(db: firestore.Client, firestore_event: Event, listing_id: str, before: Any) -> Any:
    """The event of the write that made the decision (the listing as it is now)."""
    after = stored(db, listing_id)
    return firestore_event(f"listings/{listing_id}", before=before, after=after, kind="updated")


def inbox(db: firestore.Client, who: str) -> dict[str, dict[str, Any]]:
    return {s.id: s.to_dict() or {} for s in db.collection(f"users/{who}/notifications").stream()}


def pushed(db: firestore.Client, token: str) -> list[dict[str, Any]]:
    query = db.collection(push.OUTBOX).where(filter=FieldFilter("token", "==", token))
    return [s.to_dict() or {} for s in query.stream()]


def test_an_approval_tells_the_agent_once_however_often_its_event_comes(
    firestore_db: firestore.Client,
    firestore_event: Event,
    call_function: Call,
    agent: Callable[..., str],
) -> None:
    owner, token, listing_id, data = queued(firestore_db, agent())
    result = call_function(approve_listing, {"listingId": listing_id}, uid="mod", claims=ADMIN)
    assert result.data["status"] == "active"

    event = decided(firestore_db, firestore_event, listing_id, data)
    for each in (event, redelivery(event), redelivery(event)):
        deliver(on_listing_reviewed, each)

    reviewed_at = stored(firestore_db, listing_id)["reviewedAt"]
    note_id = listings.review_notice_id(listing_id, reviewed_at)
    micros = int(reviewed_at.timestamp()) * 10**6 + reviewed_at.microsecond
    assert note_id == f"review-{listing_id}-{micros}"
    [(found_id, note)] = inbox(firestore_db, owner).items()
    assert found_id == note_id
    assert (note["kind"], note["title"], note["link"], note["listingId"]) == (
        "listing_review",
        "Your listing is live",
        f"/listings/{listing_id}",
        listing_id,
    )
    assert note["body"] == "Bright two bed flat near the park is on the market now."
    [sent] = pushed(firestore_db, token)
    assert (sent["title"], sent["data"]["notificationId"]) == ("Your listing is live", note_id)


def test_a_rejection_tells_the_agent_the_moderators_reason(
    firestore_db: firestore.Client,
    firestore_event: Event,
    call_function: Call,
    agent: Callable[..., str],
) -> None:
    owner, token, listing_id, data = queued(firestore_db, agent())
    reason = "The photos show another home."
    call_function(
        reject_listing, {"listingId": listing_id, "reason": reason}, uid="mod", claims=ADMIN
    )

    event = decided(firestore_db, firestore_event, listing_id, data)
    deliver(on_listing_reviewed, event)
    deliver(on_listing_reviewed, redelivery(event))

    [note] = inbox(firestore_db, owner).values()
    assert note["title"] == "Your listing needs changes"
    assert reason in note["body"] and "Bright two bed flat near the park" in note["body"]
    assert note["data"]["reason"] == reason
    assert note["emailTo"] == f"{owner}@example.test"  # and in the day's digest
    [sent] = pushed(firestore_db, token)
    assert reason in sent["body"]


@pytest.mark.parametrize(
    ("standing", "overrides", "title"),
    [
        ({"verified": True}, {}, "Your listing is live"),
        ({}, {"photos": []}, "Your listing needs changes"),
    ],
    ids=["published", "rejected-by-checks"],
)
def test_the_submission_triggers_own_decisions_are_told_too(
    firestore_db: firestore.Client,
    firestore_event: Event,
    agent: Callable[..., str],
    standing: dict[str, Any],
    overrides: dict[str, Any],
    title: str,
) -> None:
    owner = agent(**standing)
    with_device(firestore_db, owner)
    listing_id, submission = submit(firestore_db, firestore_event, listing(owner, **overrides))
    before = stored(firestore_db, listing_id)
    deliver(on_listing_updated, submission)

    deliver(on_listing_reviewed, decided(firestore_db, firestore_event, listing_id, before))

    [note] = inbox(firestore_db, owner).values()
    assert note["title"] == title
    if overrides:
        assert "Add at least one photo." in note["body"]


def test_each_decision_on_a_listing_is_told_and_a_queued_one_is_not(
    firestore_db: firestore.Client,
    firestore_event: Event,
    call_function: Call,
    agent: Callable[..., str],
) -> None:
    owner = agent()  # unverified: queued for an admin
    with_device(firestore_db, owner)
    listing_id, submission = submit(firestore_db, firestore_event, listing(owner))
    submitted = stored(firestore_db, listing_id)
    deliver(on_listing_updated, submission)
    # Queued: reviewedAt unset, so the write is not a decision (the trigger skips it).
    deliver(on_listing_reviewed, decided(firestore_db, firestore_event, listing_id, submitted))
    assert inbox(firestore_db, owner) == {}

    queued = stored(firestore_db, listing_id)
    call_function(
        reject_listing, {"listingId": listing_id, "reason": "Blurry."}, uid="mod", claims=ADMIN
    )
    deliver(on_listing_reviewed, decided(firestore_db, firestore_event, listing_id, queued))
    rejected = stored(firestore_db, listing_id)
    firestore_db.document(f"listings/{listing_id}").update({"status": "pending_review"})
    resubmitted = stored(firestore_db, listing_id)
    call_function(approve_listing, {"listingId": listing_id}, uid="mod", claims=ADMIN)
    deliver(on_listing_reviewed, decided(firestore_db, firestore_event, listing_id, resubmitted))

    titles = sorted(n["title"] for n in inbox(firestore_db, owner).values())
    assert titles == ["Your listing is live", "Your listing needs changes"]
    assert rejected["reviewedAt"] != stored(firestore_db, listing_id)["reviewedAt"]


def test_a_write_that_holds_no_decision_tells_nobody() -> None:
    assert listings.review_notice("h1", {"status": "pending_review", "ownerId": "a"}) is None
    assert listings.review_notice("h1", {"status": "sold", "ownerId": "a"}) is None
