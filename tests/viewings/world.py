"""A viewings world for in-process tests: an agent with public listings and viewing hours,
fresh buyers, a fixed clock, and readers of what the booking wrote."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from google.cloud import firestore

from marketplace import viewings
from marketplace.models.viewings import WEEKDAYS
from marketplace.viewings import HOLDS, LOCKS, VIEWINGS, ViewingRequest

NOW = dt.datetime(2027, 3, 1, 8, 0, tzinfo=dt.UTC)
"""Monday 1 March 2027, 08:00 in London (GMT): the clock of every in-process booking."""
EVERY_DAY_9_TO_5 = dict.fromkeys(WEEKDAYS, "09:00-17:00")


def new_uid(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:10]}"


def at(day: int, hhmm: str, month: int = 3, year: int = 2027) -> dt.datetime:
    """A London wall-clock time in GMT months (March before the 28th): UTC itself."""
    hour, minute = map(int, hhmm.split(":"))
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


@dataclass
class Diary:
    """An agent, their listings, and their hours; books on behalf of any buyer."""

    db: firestore.Client
    agent: str = field(default_factory=lambda: new_uid("agent"))
    listings: list[str] = field(default_factory=list)

    def listing(self, **overrides: Any) -> str:
        """A public listing of this agent's."""
        listing_id = new_uid("home")
        data = {"ownerId": self.agent, "status": "active", "title": "Two bed flat", **overrides}
        self.db.document(f"listings/{listing_id}").set(data)
        self.listings.append(listing_id)
        return listing_id

    def hours(
        self,
        scope: str = viewings.ALL_LISTINGS,
        *,
        weekly: dict[str, str] | None = None,
        slot: int = 30,
        zone: str = "Europe/London",
        auto: bool = False,
        off: list[str] | None = None,
    ) -> None:
        """Publish viewing hours (for ``scope``: ``all`` or a listing id)."""
        self.db.document(f"users/{self.agent}/availability/{scope}").set(
            {
                "weekly": weekly if weekly is not None else EVERY_DAY_9_TO_5,
                "slotMinutes": slot,
                "timeZone": zone,
                "datesOff": off or [],
                "autoConfirm": auto,
                "createdAt": NOW,
                "updatedAt": NOW,
            }
        )

    def request(
        self,
        buyer: str,
        listing_id: str,
        start: dt.datetime,
        *,
        key: str | None = None,
        now: dt.datetime = NOW,
        note: str | None = None,
    ) -> viewings.ViewingResult:
        request = ViewingRequest(
            listingId=listing_id, start=start, requestKey=key or uuid.uuid4().hex, note=note
        )
        return viewings.request_viewing(self.db, buyer, request, now=now)

    def viewing(self, viewing_id: str) -> dict[str, Any]:
        return self.db.collection(VIEWINGS).document(viewing_id).get().to_dict() or {}


def locks_of(db: firestore.Client, viewing_id: str) -> set[str]:
    """The lock documents that name ``viewing_id``."""
    query = db.collection(LOCKS).where(filter=firestore.FieldFilter("viewingId", "==", viewing_id))
    return {s.id for s in query.stream()}


def holds_of(db: firestore.Client, viewing_id: str) -> set[str]:
    query = db.collection(HOLDS).where(filter=firestore.FieldFilter("viewingId", "==", viewing_id))
    return {s.id for s in query.stream()}


def count(db: firestore.Client, collection: str) -> int:
    return int(db.collection(collection).count().get()[0][0].value)


def snapshot_of(db: firestore.Client) -> dict[str, dict[str, Any]]:
    """Every viewing, lock and hold, by path: to show that a refused call changed nothing."""
    return {
        s.reference.path: s.to_dict() or {}
        for name in (VIEWINGS, LOCKS, HOLDS)
        for s in db.collection(name).stream()
    }
