"""Viewings: an agent's weekly viewing hours, the booked visits, and the locks that make a
double booking impossible.

An agent writes their availability under the rules; everything else is written by
functions (the booking callables and the viewing clock). See :mod:`marketplace.viewings`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from firekit.docmodel import Client, Document, RequestTime
from marketplace.models.common import DocRef, Uid, Value

_TIME = r"(([01][0-9]|2[0-3]):(00|15|30|45)|24:00)"
DayHours = Annotated[str, Field(pattern=rf"^{_TIME}-{_TIME}(,{_TIME}-{_TIME}){{0,3}}$")]
"""One day's hours: up to four ranges of wall-clock times in the availability's zone,
on the 15-minute grid, ``09:00-12:30,14:00-17:00``; ``24:00`` is the end of the day. A
range whose end is not after its start offers nothing. One string a day, so the rules
check a whole week with seven regular expressions (a list of entries checked one by one
ran past the rules' budget of 1,000 expressions at 9 entries)."""
TimeZoneName = Annotated[
    str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z]+(/[A-Za-z0-9_+-]+){0,2}$")
]
"""An IANA time zone name (``Europe/London``); functions check it names a real zone."""
IsoDate = Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
SlotMinutes = Annotated[int, Field(ge=15, le=60, multiple_of=15)]
"""15, 30, 45 or 60: a slot is whole granules."""
ViewingStatus = Literal["requested", "confirmed", "declined", "cancelled", "expired", "completed"]
ChangeKind = Literal[
    "requested", "confirmed", "declined", "cancelled", "rescheduled", "expired", "completed"
]
MAX_NOTE = 500
MAX_REASON = 300


class WeeklyHours(Value):
    """Open for viewings on each day named, at its hours (a day left out: closed)."""

    mon: DayHours | None = None
    tue: DayHours | None = None
    wed: DayHours | None = None
    thu: DayHours | None = None
    fri: DayHours | None = None
    sat: DayHours | None = None
    sun: DayHours | None = None

    def ranges(self, weekday: int) -> list[tuple[str, str]]:
        """The ``(start, end)`` ranges of an ISO weekday (Monday 1 … Sunday 7)."""
        hours: str | None = getattr(self, WEEKDAYS[weekday - 1])
        spans = (r.partition("-") for r in hours.split(",")) if hours else ()
        return [(start, end) for start, _, end in spans]


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Availability(Document):
    """``users/{uid}/availability/{scope}``: an agent's viewing hours, for one listing (the
    scope is its id) or for all their listings (scope ``all``); a listing's own wins.

    Hours are wall-clock times in ``timeZone``, so "Saturdays 10:00–13:00" stays that
    across daylight-saving changes; ``datesOff`` are local dates with no viewings.
    """

    path = "users/{uid}/availability/{scope}"

    weekly: Annotated[WeeklyHours, Client()]
    slotMinutes: Annotated[SlotMinutes, Client()]
    timeZone: Annotated[TimeZoneName, Client()]
    datesOff: Annotated[list[IsoDate], Field(max_length=20), Client()] = Field(default_factory=list)
    autoConfirm: Annotated[bool, Client()] = False
    """Requests are confirmed at once; otherwise they wait for the agent (at most a day)."""
    createdAt: Annotated[dt.datetime, RequestTime()]
    updatedAt: Annotated[dt.datetime, RequestTime(on_update=True)]


class ViewingChange(Value):
    """The latest move of a viewing, which the other party is told of."""

    kind: ChangeKind
    by: Uid | None = None
    """Who made it; None: the viewing clock (a request that lapsed, a viewing done)."""
    at: dt.datetime
    reason: Annotated[str, Field(max_length=MAX_REASON)] | None = None
    previousStart: dt.datetime | None = None
    """For a reschedule: the time it moved from."""


class Viewing(Document):
    """``viewings/{viewingId}``: a buyer's visit to a listing, at a slot of its agent's hours.

    Written only by functions. ``revision`` counts the moves; each is told once.
    """

    path = "viewings/{viewingId}"

    listingId: DocRef
    agentId: Uid
    requesterId: Uid
    slotStart: dt.datetime
    slotEnd: dt.datetime
    timeZone: TimeZoneName
    status: ViewingStatus
    note: Annotated[str, Field(max_length=MAX_NOTE)] | None = None
    expiresAt: dt.datetime | None = None
    """A request waiting for its agent lapses then, and frees its time."""
    locks: list[DocRef] = Field(default_factory=list)
    """The ids of the ``viewingLocks`` this viewing holds (none once it is over)."""
    holds: list[DocRef] = Field(default_factory=list)
    """The ids of the ``viewingHolds`` a waiting request counts against its requester's caps."""
    requestKey: Annotated[str, Field(max_length=64)]
    """The idempotency key the request came with."""
    revision: Annotated[int, Field(ge=1)]
    lastChange: ViewingChange
    nextReminderAt: dt.datetime | None = None
    """When the viewing clock next reminds both parties (a day, then an hour, before)."""
    createdAt: dt.datetime
    updatedAt: dt.datetime


class ViewingLock(Document):
    """``viewingLocks/{scope}__{id}__{granule}``: one 15-minute granule of an agent's diary
    (scope ``agent``) or of a listing (scope ``listing``), taken by one viewing.

    Created only with ``create()`` (fails if it exists), in one batch with the viewing and
    its other granules: so two viewings can never hold the same granule.
    """

    path = "viewingLocks/{lockId}"

    viewingId: DocRef
    start: dt.datetime
    createdAt: dt.datetime


class ViewingHold(Document):
    """``viewingHolds/{requesterId}__{scope}__{n}``: one of a buyer's places for waiting
    requests (scope ``all``: 10 places; scope a listing id: 3 places)."""

    path = "viewingHolds/{holdId}"

    requesterId: Uid
    viewingId: DocRef
    createdAt: dt.datetime


class CalendarFeed(Document):
    """``calendarFeeds/{token}``: the unguessable token of a user's viewings calendar."""

    path = "calendarFeeds/{token}"

    uid: Uid
    createdAt: dt.datetime
