"""Viewings end to end: the callables through the Functions emulator over HTTP, the real
``notify_viewing_change`` trigger, the ``viewing_clock`` schedule run as Cloud Scheduler
would, and the ``viewing_calendar`` feed fetched over HTTP and read back by ``icalendar``.
Nothing here calls our code in-process; callers carry unsigned emulator ID tokens."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import icalendar
import pytest
import requests
from google.cloud import firestore

from pytest_firebase.callables import CallResult
from pytest_firebase.tokens import mint_id_token
from tests.listings.factories import listing

pytestmark = pytest.mark.e2e

EVERY_DAY = dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "00:00-24:00")


def new_uid(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Booked:
    """A viewing a buyer requested and its agent confirmed, through the callables."""

    viewing_id: str
    start: dt.datetime
    agent: str
    buyer: str
    agent_token: str
    buyer_token: str


def book_and_confirm(db: firestore.Client, project: str, call: Callable[..., CallResult]) -> Booked:
    """An agent's public listing with hours every day (requests wait for the agent), a
    buyer's request for a slot two days ahead, and the agent's confirmation."""
    agent, buyer = new_uid("agent"), new_uid("buyer")
    agent_token = mint_id_token(agent, project=project, claims={"role": "agent"})
    buyer_token = mint_id_token(buyer, project=project, claims={"role": "buyer"})
    home = new_uid("home")
    db.document(f"listings/{home}").set(
        listing(agent, status="active", title="Two bed flat by the park")
    )
    db.document(f"users/{agent}/availability/{home}").set(
        {
            "weekly": EVERY_DAY,
            "slotMinutes": 30,
            "timeZone": "Europe/London",
            "datesOff": [],
            "autoConfirm": False,
            "createdAt": firestore.SERVER_TIMESTAMP,
            "updatedAt": firestore.SERVER_TIMESTAMP,
        }
    )
    # A slot about two days ahead: its first reminder is the one a day before.
    now = dt.datetime.now(dt.UTC)
    window = {
        "listingId": home,
        "start": (now + dt.timedelta(days=2)).isoformat(),
        "end": (now + dt.timedelta(days=3)).isoformat(),
    }
    slot = call("list_viewing_slots", window, buyer_token).data["slots"][0]
    request = {"listingId": home, "start": slot["start"], "requestKey": uuid.uuid4().hex}
    booked = call("request_viewing", request, buyer_token).data
    assert (booked["status"], booked["slotStart"]) == ("requested", slot["start"])
    confirmed = call("confirm_viewing", {"viewingId": booked["viewingId"]}, agent_token).data
    assert confirmed["status"] == "confirmed"
    start = dt.datetime.fromisoformat(slot["start"])
    return Booked(booked["viewingId"], start, agent, buyer, agent_token, buyer_token)


def inbox(db: firestore.Client, uid: str) -> dict[str, dict[str, Any]]:
    return {s.id: s.to_dict() or {} for s in db.collection(f"users/{uid}/notifications").stream()}


def test_both_parties_are_told_of_each_move_and_reminded_a_day_before(
    firestore_db: firestore.Client,
    firebase_project: str,
    call_emulated: Callable[..., CallResult],
    run_schedule: Callable[[str], Any],
    wait_for: Callable[..., Any],
) -> None:
    v = book_and_confirm(firestore_db, firebase_project, call_emulated)

    # Each move is told to the other party by the trigger, once per revision.
    asked = wait_for(
        lambda: inbox(firestore_db, v.agent).get(f"viewing-{v.viewing_id}-1"),
        timeout=30,
        what="the agent told of the request",
    )
    told = wait_for(
        lambda: inbox(firestore_db, v.buyer).get(f"viewing-{v.viewing_id}-2"),
        timeout=30,
        what="the buyer told of the confirmation",
    )
    assert (asked["kind"], asked["data"]["change"]) == ("viewing", "requested")
    assert (told["kind"], told["data"]["change"]) == ("viewing", "confirmed")
    ref = firestore_db.document(f"viewings/{v.viewing_id}")
    assert ref.get().get("nextReminderAt") == v.start - dt.timedelta(days=1)

    # The emulators run on the real clock and nothing can move it: to make the day-before
    # reminder due now, the admin client moves the stored nextReminderAt into the past.
    ref.update({"nextReminderAt": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)})
    run_schedule("viewing_clock")

    reminder = f"viewing-{v.viewing_id}-reminder-day-{int(v.start.timestamp())}"
    for party in (v.buyer, v.agent):
        reminded = wait_for(
            lambda party=party: inbox(firestore_db, party).get(reminder),
            timeout=10,
            what=f"{party} reminded",
        )
        assert (reminded["title"], reminded["data"]["change"]) == (
            "Viewing reminder",
            "reminder_day",
        )
    # The next reminder is the real day-before time again (it was not really due).
    assert ref.get().get("nextReminderAt") == v.start - dt.timedelta(days=1)
    run_schedule("viewing_clock")  # a rerun reminds nobody twice
    for party in (v.buyer, v.agent):
        assert [k for k in inbox(firestore_db, party) if "-reminder-" in k] == [reminder]


def test_the_calendar_link_serves_the_viewing_at_its_exact_instant(
    firestore_db: firestore.Client,
    firebase_project: str,
    call_emulated: Callable[..., CallResult],
) -> None:
    v = book_and_confirm(firestore_db, firebase_project, call_emulated)

    # The buyer's calendar, fetched as a calendar app would, read by another parser.
    url = call_emulated("calendar_link", {}, v.buyer_token).data["url"]
    feed = requests.get(url, timeout=30)
    assert feed.status_code == 200, f"{url}: {feed.status_code} {feed.text}"
    assert feed.headers["Content-Type"].startswith("text/calendar")
    cal: Any = icalendar.Calendar.from_ical(feed.text)
    events = cal.walk("VEVENT")
    assert len(events) == 1
    event = events[0]
    assert (str(event["UID"]), str(event["STATUS"])) == (f"{v.viewing_id}@homefront", "CONFIRMED")
    assert event["DTSTART"].params["TZID"] == "Europe/London"
    # Through the calendar's own VTIMEZONE, and through the parser's zone database.
    zones = {str(tz["TZID"]): tz for tz in cal.walk("VTIMEZONE")}
    london = zones["Europe/London"].to_tz(lookup_tzid=False)
    wall = event["DTSTART"].dt.replace(tzinfo=None)
    assert wall.replace(tzinfo=london).astimezone(dt.UTC) == v.start
    assert event["DTSTART"].dt.astimezone(dt.UTC) == v.start
    # The token is the only key: a wrong one finds nothing.
    assert requests.get(url.split("?")[0] + "?token=nope", timeout=30).status_code == 404
