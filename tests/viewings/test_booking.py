"""Booking a viewing: what a request holds, retries, caps, and every refusal changing nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.cloud import firestore

from firekit.errors import AppError
from marketplace import viewings
from marketplace.viewings import SlotsRequest
from tests.viewings.world import NOW, Diary, at, count, holds_of, locks_of, new_uid, snapshot_of


@pytest.fixture
def diary(firestore_db: firestore.Client) -> Diary:
    return Diary(firestore_db)


def refusal(error: AppError) -> tuple[str, Any]:
    details = error.details
    reason = details.get("reason") if isinstance(details, dict) else details[0]["issue"]
    return error.code.value, reason


def test_a_request_on_an_auto_confirm_listing_is_confirmed_and_holds_both_diaries(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    home = diary.listing()
    diary.hours(home, slot=60, auto=True)
    buyer = new_uid("buyer")

    booked = diary.request(buyer, home, at(2, "10:00"))

    assert (booked.status, booked.slotStart, booked.slotEnd) == (
        "confirmed",
        "2027-03-02T10:00:00Z",
        "2027-03-02T11:00:00Z",
    )
    granules = ["20270302T1000Z", "20270302T1015Z", "20270302T1030Z", "20270302T1045Z"]
    expected = {f"agent__{diary.agent}__{g}" for g in granules} | {
        f"listing__{home}__{g}" for g in granules
    }
    assert locks_of(firestore_db, booked.viewingId) == expected
    stored = diary.viewing(booked.viewingId)
    assert set(stored["locks"]) == expected
    assert stored["holds"] == [] and holds_of(firestore_db, booked.viewingId) == set()
    assert stored["nextReminderAt"] == at(1, "10:00")  # a day before
    assert stored["revision"] == 1 and stored["lastChange"]["kind"] == "requested"


def test_a_request_that_waits_for_the_agent_expires_within_a_day_and_takes_two_places(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    home = diary.listing()
    diary.hours()  # the agent's hours for all listings; confirms by hand
    buyer = new_uid("buyer")

    waiting = diary.request(buyer, home, at(5, "14:30"), note="With my partner")
    soon = diary.request(buyer, home, at(1, "09:30"))

    assert waiting.status == "requested"
    assert waiting.expiresAt == "2027-03-02T08:00:00Z"  # a day
    assert soon.expiresAt == "2027-03-01T09:30:00Z"  # never past its own start
    places = holds_of(firestore_db, waiting.viewingId)
    assert len(places) == 2
    assert any("__all__" in p for p in places) and any(f"__{home}__" in p for p in places)
    assert diary.viewing(waiting.viewingId)["note"] == "With my partner"


def test_a_listings_own_hours_win_over_the_agents_hours_for_all_listings(diary: Diary) -> None:
    home, other = diary.listing(), diary.listing()
    diary.hours(slot=30)
    diary.hours(home, weekly={"tue": "18:00-20:00"}, slot=60, auto=True)

    evening = diary.request(new_uid("buyer"), home, at(2, "18:00"))
    assert evening.status == "confirmed"
    with pytest.raises(AppError) as refused:
        diary.request(new_uid("buyer"), home, at(2, "10:00"))
    assert refusal(refused.value) == ("failed-precondition", "not_a_slot")
    assert diary.request(new_uid("buyer"), other, at(2, "10:00")).status == "requested"


def test_a_retried_request_returns_the_same_viewing_and_writes_nothing(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    home = diary.listing()
    diary.hours()
    buyer = new_uid("buyer")
    first = diary.request(buyer, home, at(3, "11:00"), key="retry-key-1")
    before = snapshot_of(firestore_db)

    again = diary.request(buyer, home, at(3, "11:00"), key="retry-key-1")

    assert again == first
    assert snapshot_of(firestore_db) == before
    with pytest.raises(AppError) as reused:  # the same key for another request
        diary.request(buyer, diary.listing(), at(3, "11:00"), key="retry-key-1")
    assert refusal(reused.value) == ("failed-precondition", "request_key_reused")


def test_overlapping_time_in_the_agents_diary_is_taken_even_on_another_listing(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    home, other = diary.listing(), diary.listing()
    diary.hours(home, slot=60, auto=True)
    diary.hours(other, slot=30, auto=True)
    diary.request(new_uid("buyer"), home, at(2, "10:00"))
    before = snapshot_of(firestore_db)

    with pytest.raises(AppError) as taken:
        diary.request(new_uid("buyer"), other, at(2, "10:30"))

    assert refusal(taken.value) == ("failed-precondition", "slot_taken")
    assert snapshot_of(firestore_db) == before
    # Another agent's listing at the same time is their own diary.
    elsewhere = Diary(firestore_db)
    theirs = elsewhere.listing()
    elsewhere.hours(theirs, auto=True)
    assert elsewhere.request(new_uid("buyer"), theirs, at(2, "10:30")).status == "confirmed"


def test_a_buyer_waits_on_at_most_three_requests_per_listing_and_ten_in_all(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    homes = [diary.listing() for _ in range(4)]
    diary.hours(slot=15)
    buyer = new_uid("buyer")
    times = iter(
        at(day, f"{h:02d}:{m:02d}") for day in (2, 3) for h in range(9, 17) for m in (0, 15, 30, 45)
    )
    for _ in range(3):
        diary.request(buyer, homes[0], next(times))
    with pytest.raises(AppError) as here:
        diary.request(buyer, homes[0], next(times))
    assert refusal(here.value) == ("resource-exhausted", "pending_limit")
    assert here.value.details["scope"] == "listing"

    for home in homes[1:]:
        for _ in range(3 if home != homes[3] else 1):
            diary.request(buyer, home, next(times))
    assert count(firestore_db, viewings.HOLDS) == 20  # 10 requests, two places each
    before = snapshot_of(firestore_db)
    with pytest.raises(AppError) as everywhere:
        diary.request(buyer, homes[3], next(times))
    assert everywhere.value.details["scope"] == "all"
    assert snapshot_of(firestore_db) == before


@pytest.mark.parametrize(
    ("start", "code", "reason"),
    [
        (at(1, "07:30"), "invalid-argument", "in_the_past"),
        (NOW + dt.timedelta(days=91), "invalid-argument", "too_far_ahead"),
        (at(2, "08:30"), "failed-precondition", "not_a_slot"),  # before opening
        (at(2, "10:10"), "failed-precondition", "not_a_slot"),  # off the grid
        (at(2, "10:15"), "failed-precondition", "not_a_slot"),  # inside a 30-minute slot
        (at(4, "10:00"), "failed-precondition", "not_a_slot"),  # a date off
    ],
)
def test_a_time_that_is_not_a_bookable_slot_is_refused_and_writes_nothing(
    firestore_db: firestore.Client, diary: Diary, start: dt.datetime, code: str, reason: str
) -> None:
    home = diary.listing()
    diary.hours(off=["2027-03-04"])
    before = snapshot_of(firestore_db)

    with pytest.raises(AppError) as refused:
        diary.request(new_uid("buyer"), home, start)

    assert refusal(refused.value) == (code, reason)
    if code == "invalid-argument":
        assert refused.value.details[0]["field"] == "start"
    assert snapshot_of(firestore_db) == before


def test_unknown_private_and_own_listings_and_missing_hours_are_refused(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    home, draft = diary.listing(), diary.listing(status="draft")
    bare = Diary(firestore_db)
    unscheduled = bare.listing()
    diary.hours()
    cases = [
        (new_uid("buyer"), "no-such-home", "no_such_listing"),
        (new_uid("buyer"), draft, "no_such_listing"),
        (diary.agent, home, "own_listing"),
        (new_uid("buyer"), unscheduled, "no_viewing_hours"),
    ]
    for buyer, listing_id, reason in cases:
        with pytest.raises(AppError) as refused:
            diary.request(buyer, listing_id, at(2, "10:00"))
        assert refusal(refused.value)[1] == reason
    assert count(firestore_db, viewings.VIEWINGS) == 0


def test_free_slots_leave_out_taken_and_past_time_in_both_zones(diary: Diary) -> None:
    home = diary.listing()
    diary.hours(home, weekly={"mon": "09:00-11:00"}, slot=30, auto=True)
    diary.request(new_uid("buyer"), home, at(1, "09:30"))
    window = SlotsRequest(listingId=home, start=at(1, "00:00"), end=at(2, "00:00"))

    free = viewings.free_slots(diary.db, window, now=at(1, "09:10"))

    assert [s.start for s in free.slots] == ["2027-03-01T10:00:00Z", "2027-03-01T10:30:00Z"]
    assert free.timeZone == "Europe/London" and free.slotMinutes == 30
    assert free.slots[0].localStart == "2027-03-01T10:00:00+00:00"


def test_a_window_over_fourteen_days_or_backwards_is_invalid() -> None:
    with pytest.raises(ValueError, match="14 days"):
        SlotsRequest(listingId="l1", start=at(1, "00:00"), end=at(16, "00:00"))
    with pytest.raises(ValueError, match="after start"):
        SlotsRequest(listingId="l1", start=at(2, "00:00"), end=at(1, "00:00"))


def test_a_window_too_long_names_its_end_field(call_function: Any) -> None:
    from api.viewings import list_viewing_slots

    result = call_function(
        list_viewing_slots,
        {"listingId": "l1", "start": "2027-03-01T00:00:00Z", "end": "2027-03-16T00:00:00Z"},
        uid="buyer-1",
    )

    assert result.error_status == "INVALID_ARGUMENT"
    assert [d["field"] for d in result.error_details] == ["end"]
