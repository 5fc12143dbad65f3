"""Viewing slots: which instants an agent's weekly hours offer, right across daylight saving.

Pure functions over an :class:`~marketplace.models.viewings.Availability`; no Firestore.
The booking code lists free slots with :func:`free_slots`, checks a requested start with
:func:`slot_at`, and locks a slot's :func:`granules`.

**Time is counted in UTC granules.** Every slot is whole 15-minute granules of the UTC grid
(:data:`GRANULE`); locks are per granule, so two viewings that overlap in any real minute
share a granule and cannot both be booked, whatever the wall clocks said.

**Which granules are open.** For each local date D (in the availability's zone) that is not
in ``datesOff``, the open granules are the UTC granules g whose local time (g converted to
the zone) falls on date D at a time of day inside the union of the ranges ``weekly``
gives D's weekday (each ``[start, end)``; ``24:00`` is the end of the day; a range with
``start >= end`` is ignored). Wall-clock hours are what an agent means ("Sundays 00:00 to
04:00"), and converting each real granule to the wall clock is what makes DST right with
no special cases:

* spring forward: the missing local hour has no granule, so no slot is in it. London's
  last Sunday of March, 00:00–04:00, 60-minute slots: 00:00 GMT, 02:00 BST, 03:00 BST;
* fall back: the repeated local hour has two granules per quarter, both open, so it is
  offered twice, as distinct instants. London's last Sunday of October, same hours:
  00:00 BST, 01:00 BST, 01:00 GMT, 02:00 GMT, 03:00 GMT.

**How granules become slots.** D's open granules, in UTC order, split into runs of
consecutive granules (g, g + 15 min, ...); each run is cut from its first granule into
slots of ``slotMinutes``, and a remainder shorter than a slot is dropped. A run across the
spring-forward gap stays one run (its granules are consecutive in UTC), so a slot may span
the gap: it still lasts ``slotMinutes`` of real time. Runs are computed per date, so they
never cross local midnight and the slot grid is the same whatever window is asked for: a
slot listed in one query is the slot :func:`slot_at` finds in another.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from marketplace.models.viewings import Availability

GRANULE = dt.timedelta(minutes=15)
"""The unit of a diary: slots are whole granules, and a lock holds one granule."""
MAX_WINDOW = dt.timedelta(days=14)
"""The longest window a caller may list at once (enforced by the caller)."""

_DAY = dt.timedelta(days=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SECONDS_PER_DAY = 24 * 60 * 60
_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")
"""Zone names are path-like keys: no dots, so no '..' and no absolute paths reach the disk."""

OpenHours = tuple[tuple[int, int], ...]
"""One weekday's merged opening, as ``[start, end)`` seconds from local midnight."""


class UnknownTimeZone(ValueError):  # noqa: N818 - a domain state, like NotFound
    """The name is not an IANA time zone this runtime can load."""


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone ``name``, or :class:`UnknownTimeZone`.

    Names come from clients, so they are checked against the shape of a zone key before
    zoneinfo (which reads files named after them) sees them.
    """
    if len(name) > 64 or not _ZONE_NAME.fullmatch(name):
        raise UnknownTimeZone(f"not a time zone name: {name!r}")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as error:
        # ValueError: a file that is not a zone (e.g. 'leapseconds'); OSError: a directory.
        raise UnknownTimeZone(f"unknown time zone: {name!r}") from error


@dataclass(frozen=True)
class Slot:
    """One bookable viewing time: the real instants, and the wall clock they show."""

    start: dt.datetime
    """Aware, UTC."""
    end: dt.datetime
    """Aware, UTC."""
    local_start: dt.datetime
    """Aware, in the availability's zone (``fold`` 1 in a repeated hour's second pass)."""
    local_end: dt.datetime

    def to_json(self) -> dict[str, str]:
        """The wire form: UTC instants with ``Z``, local times with their offsets."""
        return {
            "start": _utc_text(self.start),
            "end": _utc_text(self.end),
            "localStart": self.local_start.isoformat(),
            "localEnd": self.local_end.isoformat(),
        }


def granules(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The UTC starts of the granules covering ``[start, end)``: the locks a slot takes.

    Both ends must be aware and on the UTC 15-minute grid; anything else is a caller's bug
    (a lock off the grid would not collide with the lock of an overlapping viewing).
    """
    first, last = _on_grid(start), _on_grid(end)
    if last < first:
        raise ValueError(f"the end {end} is before the start {start}")
    count = (last - first) // GRANULE
    return [first + i * GRANULE for i in range(count)]


def free_slots(
    availability: Availability,
    start: dt.datetime,
    end: dt.datetime,
    taken: Collection[dt.datetime] = frozenset(),
    not_before: dt.datetime | None = None,
) -> list[Slot]:
    """The availability's slots lying wholly in ``[start, end)``, sorted by start, minus
    those starting before ``not_before`` and those overlapping a ``taken`` granule.

    Whole local dates are computed, from the day before ``start`` to the day after ``end``
    (local), so the slot grid never depends on the window (module docstring).
    """
    start, end = _utc(start), _utc(end)
    taken_utc = frozenset(_utc(t) for t in taken)
    earliest = start if not_before is None else max(start, _utc(not_before))
    tz = zone(availability.timeZone)
    first_day = start.astimezone(tz).date() - _DAY
    last_day = end.astimezone(tz).date() + _DAY
    listed = [
        slot
        for day in _dates(first_day, last_day)
        for slot in _day_slots(availability, tz, day)
        if earliest <= slot.start
        and slot.end <= end
        and not any(g in taken_utc for g in _slot_granules(slot))
    ]
    # Dates are in order, but a zone falling back across midnight revisits the day before.
    return sorted(listed, key=lambda slot: slot.start)


def slot_at(availability: Availability, start: dt.datetime) -> Slot | None:
    """The availability's slot starting exactly at the instant ``start`` (free or not), else
    None: an instant off the grid, in hours the agent does not keep, on a date off, or in a
    missing local hour. ``start`` must be aware.
    """
    instant = _utc(start)
    tz = zone(availability.timeZone)
    day = instant.astimezone(tz).date()
    # A slot belongs to the local date of its first granule.
    return next((s for s in _day_slots(availability, tz, day) if s.start == instant), None)


def _day_slots(availability: Availability, tz: zoneinfo.ZoneInfo, day: dt.date) -> list[Slot]:
    """The slots of one local date, cut from its runs of open granules."""
    if day.isoformat() in availability.datesOff:
        return []
    hours = _open_hours(availability, day.isoweekday())
    if not hours:
        return []
    size = availability.slotMinutes * 60 // int(GRANULE.total_seconds())
    slots: list[Slot] = []
    for run in _runs(_open_granules(tz, day, hours)):
        for i in range(0, len(run) - size + 1, size):
            first, local_first = run[i]
            slot_end = first + size * GRANULE
            slots.append(Slot(first, slot_end, local_first, slot_end.astimezone(tz)))
    return slots


def _open_hours(availability: Availability, weekday: int) -> OpenHours:
    """The union of the weekday's entries, merged, as seconds of the local day."""
    spans = sorted(
        (_seconds(start), _seconds(end)) for start, end in availability.weekly.ranges(weekday)
    )
    merged: list[tuple[int, int]] = []
    for begin, finish in spans:
        if begin >= finish:
            continue
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((begin, finish))
    return tuple(merged)


def _open_granules(
    tz: zoneinfo.ZoneInfo, day: dt.date, hours: OpenHours
) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """(UTC start, local start) of each granule whose local time is on ``day`` and open.

    The scan covers every instant that can show ``day`` on the wall clock: from the earlier
    reading of its midnight (a gap or a repeat can make two) to the later of the next.
    """
    granule = _floor(_earliest_utc(tz, day))
    stop = _latest_utc(tz, day + _DAY)
    while granule < stop:
        local = granule.astimezone(tz)
        if local.date() == day:
            second = local.hour * 3600 + local.minute * 60 + local.second
            if any(begin <= second < finish for begin, finish in hours):
                yield granule, local
        granule += GRANULE


def _runs(
    open_granules: Iterator[tuple[dt.datetime, dt.datetime]],
) -> list[list[tuple[dt.datetime, dt.datetime]]]:
    """Split granules (in UTC order) into runs of consecutive ones."""
    runs: list[list[tuple[dt.datetime, dt.datetime]]] = []
    for item in open_granules:
        if runs and runs[-1][-1][0] + GRANULE == item[0]:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def _earliest_utc(tz: zoneinfo.ZoneInfo, day: dt.date) -> dt.datetime:
    midnight = dt.datetime.combine(day, dt.time(), tz)
    return min(midnight.astimezone(dt.UTC), midnight.replace(fold=1).astimezone(dt.UTC))


def _latest_utc(tz: zoneinfo.ZoneInfo, day: dt.date) -> dt.datetime:
    midnight = dt.datetime.combine(day, dt.time(), tz)
    return max(midnight.astimezone(dt.UTC), midnight.replace(fold=1).astimezone(dt.UTC))


def _slot_granules(slot: Slot) -> Iterator[dt.datetime]:
    granule = slot.start
    while granule < slot.end:
        yield granule
        granule += GRANULE


def _dates(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += _DAY


def _seconds(time_of_day: str) -> int:
    """'HH:MM' as seconds from midnight; '24:00' is the end of the day."""
    hours, minutes = time_of_day.split(":")
    return min(int(hours) * 3600 + int(minutes) * 60, _SECONDS_PER_DAY)


def _floor(instant: dt.datetime) -> dt.datetime:
    """The start of the UTC granule holding ``instant``."""
    return _EPOCH + (instant - _EPOCH) // GRANULE * GRANULE


def _on_grid(instant: dt.datetime) -> dt.datetime:
    """``instant`` in UTC, or ValueError unless it is aware and starts a granule."""
    utc = _utc(instant)
    if _floor(utc) != utc:
        raise ValueError(f"{instant} is not on the 15-minute UTC grid")
    return utc


def _utc(instant: dt.datetime) -> dt.datetime:
    """``instant`` in UTC, or ValueError if it is naive.

    A naive datetime names no instant, and guessing its zone would book the wrong hour.
    Everything is compared in UTC: Python never finds an aware datetime in a gap or a
    repeated hour equal to one in another zone (PEP 495), even at the same instant.
    """
    if instant.utcoffset() is None:
        raise ValueError(f"{instant} has no time zone")
    return instant.astimezone(dt.UTC)


def _utc_text(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
