"""Daylight saving in Europe/London, booked for real: the missing hour of the last Sunday
of March is never booked, and the repeated hour of the last Sunday of October is booked
twice, once per real hour."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from google.cloud import firestore

from firekit.errors import AppError
from marketplace import viewings
from marketplace.viewings import SlotsRequest
from tests.viewings.world import Diary, new_uid

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC


def book_every_free_slot(diary: Diary, home: str, day: dt.date, now: dt.datetime) -> list[str]:
    """Book each free slot of ``day`` (London), one buyer each; the local start times."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=LONDON).astimezone(UTC)
    window = SlotsRequest(listingId=home, start=start, end=start + dt.timedelta(days=1))
    free = viewings.free_slots(diary.db, window, now=now).slots
    for slot in free:
        booked = diary.request(
            new_uid("buyer"), home, dt.datetime.fromisoformat(slot.start), now=now
        )
        assert booked.slotStart == slot.start
    return [s.localStart for s in free]


def test_the_missing_hour_in_march_is_never_booked(firestore_db: firestore.Client) -> None:
    diary = Diary(firestore_db)
    home = diary.listing()
    diary.hours(home, weekly={"sun": "00:00-04:00"}, slot=60, auto=True)
    now = dt.datetime(2027, 3, 20, tzinfo=UTC)

    booked = book_every_free_slot(diary, home, dt.date(2027, 3, 28), now)

    assert booked == [
        "2027-03-28T00:00:00+00:00",
        "2027-03-28T02:00:00+01:00",
        "2027-03-28T03:00:00+01:00",
    ]
    stored = [
        (s.get("slotStart").astimezone(LONDON).hour, s.get("slotEnd") - s.get("slotStart"))
        for s in firestore_db.collection(viewings.VIEWINGS).stream()
    ]
    assert sorted(stored) == [(h, dt.timedelta(hours=1)) for h in (0, 2, 3)]
    # 02:30 BST is a real instant, but inside the 02:00 slot, not a slot of its own.
    with pytest.raises(AppError) as refused:
        diary.request(new_uid("buyer"), home, dt.datetime(2027, 3, 28, 1, 30, tzinfo=UTC), now=now)
    assert refused.value.details["reason"] == "not_a_slot"


def test_the_repeated_hour_in_october_is_two_real_hours_booked_apart(
    firestore_db: firestore.Client,
) -> None:
    diary = Diary(firestore_db)
    home = diary.listing()
    diary.hours(home, weekly={"sun": "00:00-04:00"}, slot=60, auto=True)
    now = dt.datetime(2027, 10, 20, tzinfo=UTC)

    booked = book_every_free_slot(diary, home, dt.date(2027, 10, 31), now)

    assert booked == [
        "2027-10-31T00:00:00+01:00",
        "2027-10-31T01:00:00+01:00",
        "2027-10-31T01:00:00+00:00",  # the same wall clock, an hour later in fact
        "2027-10-31T02:00:00+00:00",
        "2027-10-31T03:00:00+00:00",
    ]
    starts = sorted(s.get("slotStart") for s in firestore_db.collection(viewings.VIEWINGS).stream())
    assert [b - a for a, b in itertools.pairwise(starts)] == [dt.timedelta(hours=1)] * 4
