"""What time does to viewings (the clock: lapse, complete, remind) and telling the other
party of each move: once each, whatever the number and order of deliveries."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from google.cloud import firestore

from api.viewings import notify_viewing_change
from marketplace import viewing_upkeep, viewings
from pytest_firebase.events import deliver, firestore_event, redelivery
from tests.viewings.world import NOW, Diary, at, locks_of, new_uid


def inbox(db: firestore.Client, uid: str) -> dict[str, dict[str, Any]]:
    return {s.id: s.to_dict() or {} for s in db.collection(f"users/{uid}/notifications").stream()}


def test_the_clock_reminds_lapses_and_completes_once_however_often_it_runs(
    firestore_db: firestore.Client,
) -> None:
    diary = Diary(firestore_db)
    home, waiting = diary.listing(), diary.listing()
    diary.hours(home, auto=True, slot=60)
    diary.hours(waiting, slot=60)
    buyer = new_uid("buyer")
    booked = diary.request(buyer, home, at(3, "10:00"))
    asked = diary.request(new_uid("buyer"), waiting, at(4, "10:00"))
    start = int(at(3, "10:00").timestamp())

    def run_three_times(now: dt.datetime) -> list[dict[str, int]]:
        return [viewing_upkeep.tick(firestore_db, now) for _ in range(3)]

    day_before = run_three_times(at(2, "10:05"))
    assert [r["reminded"] for r in day_before] == [1, 0, 0]
    assert [r["lapsed"] for r in day_before] == [1, 0, 0]  # waited past 08:00 on the 2nd
    assert diary.viewing(asked.viewingId)["status"] == "expired"
    for uid in (buyer, diary.agent):
        assert set(inbox(firestore_db, uid)) == {f"viewing-{booked.viewingId}-reminder-day-{start}"}
    assert diary.viewing(booked.viewingId)["nextReminderAt"] == at(3, "09:00")

    hour_before = run_three_times(at(3, "09:01"))
    assert [r["reminded"] for r in hour_before] == [1, 0, 0]
    assert f"viewing-{booked.viewingId}-reminder-hour-{start}" in inbox(firestore_db, buyer)
    assert diary.viewing(booked.viewingId)["nextReminderAt"] is None

    after = run_three_times(at(3, "11:00"))
    assert [r["completed"] for r in after] == [1, 0, 0]
    assert diary.viewing(booked.viewingId)["status"] == "completed"
    assert locks_of(firestore_db, booked.viewingId) == set()
    assert len(inbox(firestore_db, buyer)) == 2  # completing tells nobody


def test_each_move_is_told_once_to_the_other_party_whatever_the_delivery_order(
    firestore_db: firestore.Client,
) -> None:
    diary = Diary(firestore_db)
    home = diary.listing(title="Garden flat")
    diary.hours(slot=60)
    buyer = new_uid("buyer")
    asked = diary.request(buyer, home, at(3, "10:00"))
    states = [diary.viewing(asked.viewingId)]
    viewings.move(firestore_db, asked.viewingId, "confirm", diary.agent, now=NOW)
    states.append(diary.viewing(asked.viewingId))
    viewings.reschedule(firestore_db, asked.viewingId, buyer, at(3, "14:00"), NOW)
    states.append(diary.viewing(asked.viewingId))
    viewings.move(firestore_db, asked.viewingId, "cancel", diary.agent, reason="Sold", now=NOW)
    states.append(diary.viewing(asked.viewingId))

    path = f"viewings/{asked.viewingId}"
    events = [
        firestore_event(path, before=before, after=after)
        for before, after in zip([None, *states[:-1]], states, strict=True)
    ]
    deliveries = [copy for e in events for copy in (e, redelivery(e), redelivery(e))]
    random.Random(3).shuffle(deliveries)
    for event in deliveries:
        deliver(notify_viewing_change, event)

    told = {uid: set(inbox(firestore_db, uid)) for uid in (buyer, diary.agent)}
    v = asked.viewingId
    assert told == {
        diary.agent: {f"viewing-{v}-1", f"viewing-{v}-3"},  # the request, the buyer's move
        buyer: {f"viewing-{v}-2", f"viewing-{v}-4"},  # the confirmation, the cancellation
    }
    cancelled = inbox(firestore_db, buyer)[f"viewing-{v}-4"]
    assert cancelled["title"] == "Viewing cancelled"
    assert "Garden flat" in cancelled["body"] and "Reason: Sold" in cancelled["body"]
    moved = inbox(firestore_db, diary.agent)[f"viewing-{v}-3"]
    assert moved["title"] == "Viewing moved" and "14:00" in moved["body"]


def test_a_lapse_tells_only_the_requester_and_the_calendar_lists_each_partys_viewings(
    firestore_db: firestore.Client,
) -> None:
    diary = Diary(firestore_db)
    home = diary.listing()
    diary.hours(slot=30)
    buyer = new_uid("buyer")
    asked = diary.request(buyer, home, at(3, "10:00"))
    viewing_upkeep.lapse_due(firestore_db, NOW + dt.timedelta(days=2))
    lapsed = diary.viewing(asked.viewingId)
    assert viewing_upkeep.told_of_change(lapsed) == [buyer]
    kept = diary.request(buyer, home, at(5, "11:30"))

    token = viewing_upkeep.feed_token(firestore_db, buyer)
    assert viewing_upkeep.feed_token(firestore_db, buyer) == token  # one per user
    text = viewing_upkeep.calendar_for(firestore_db, token, now=NOW)
    assert text is not None
    assert f"UID:{kept.viewingId}@homefront" in text
    assert "STATUS:TENTATIVE" in text and "STATUS:CANCELLED" in text  # waiting; lapsed
    assert "DTSTART;TZID=Europe/London:20270305T113000" in text
    renewed = viewing_upkeep.feed_token(firestore_db, buyer, renew=True)
    assert renewed != token
    assert viewing_upkeep.calendar_for(firestore_db, token) is None
    assert viewing_upkeep.calendar_for(firestore_db, "../" + renewed) is None


def test_a_booking_on_an_instant_listing_tells_the_agent_it_is_booked_by_name(
    firestore_db: firestore.Client,
) -> None:
    diary = Diary(firestore_db)
    home = diary.listing(title="Mews house")
    diary.hours(home, auto=True)
    buyer = new_uid("buyer")
    firestore_db.document(f"users/{buyer}").set({"displayName": "Ann  Lee"})
    booked = diary.request(buyer, home, at(3, "10:00"))

    (notice,) = viewing_upkeep.change_notices(
        firestore_db, booked.viewingId, diary.viewing(booked.viewingId)
    )

    assert (notice.uid, notice.title) == (diary.agent, "Viewing booked")
    assert notice.body == "Ann Lee booked a viewing of Mews house on Wed 03 Mar at 10:00."


def test_clock_runs_replayed_out_of_order_end_as_in_order(firestore_db: firestore.Client) -> None:
    diary = Diary(firestore_db)
    home, waiting = diary.listing(), diary.listing()
    diary.hours(home, auto=True, slot=60)
    diary.hours(waiting, slot=60)
    buyer = new_uid("buyer")
    booked = diary.request(buyer, home, at(3, "10:00"))
    asked = diary.request(new_uid("buyer"), waiting, at(4, "10:00"))
    ticks = [at(2, "10:05"), at(3, "09:01"), at(3, "11:00")] * 3
    random.Random(7).shuffle(ticks)

    for now in ticks:
        viewing_upkeep.tick(firestore_db, now)

    assert diary.viewing(booked.viewingId)["status"] == "completed"
    assert diary.viewing(asked.viewingId)["status"] == "expired"
    assert (
        locks_of(firestore_db, booked.viewingId) == set() == locks_of(firestore_db, asked.viewingId)
    )
    start = int(at(3, "10:00").timestamp())
    reminders = {k for k in inbox(firestore_db, buyer) if "-reminder-" in k}
    # A late tick may find a reminder already moot (the viewing under way or over): at
    # most the day's and the hour's, never twice, never after the start.
    assert reminders <= {
        f"viewing-{booked.viewingId}-reminder-day-{start}",
        f"viewing-{booked.viewingId}-reminder-hour-{start}",
    }
