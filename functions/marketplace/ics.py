"""Viewings as an iCalendar feed (RFC 5545), rendered by hand: no third-party dependency.

:func:`calendar` renders a whole ``VCALENDAR``. What the RFC asks, and why it matters here:

* **Lines.** Every content line ends with CRLF and is folded at 75 octets of UTF-8, never
  inside a character (a split emoji would reach a phone as two broken characters); each
  continuation starts with one space. TEXT values escape backslash, semicolon, comma and
  newline, so a note cannot forge a property.
* **Times in the agent's zone.** An event is written as wall-clock time with ``TZID``, so a
  calendar shows it in the zone where the viewing happens; each zone used gets one
  ``VTIMEZONE``, generated from zoneinfo: the offset in force one year before the earliest
  event, then every real change up to one year after the latest, each as its own
  ``STANDARD``/``DAYLIGHT`` component (no RRULEs to get wrong; the range covers any
  reminder or reschedule a client shows).
* **The repeated hour.** §3.3.5: a local time that occurs twice means its *first*
  occurrence. An event starting or ending in the second pass (London 01:15 GMT on the last
  Sunday of October) is therefore written in UTC form (``DTSTART:20271031T011500Z``), the
  only exact spelling of that instant. Zone ``UTC`` uses the UTC form throughout and
  needs no ``VTIMEZONE``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from marketplace.slots import zone

PRODID = "-//Homefront//Viewings//EN"
MAX_LINE_OCTETS = 75
_UTC_ZONES = frozenset({"UTC", "Etc/UTC"})
_SPAN = dt.timedelta(days=366)
"""How far before the earliest and after the latest event a VTIMEZONE lists changes."""
_SCAN_STEP = dt.timedelta(hours=6)
"""Offsets are sampled this often to find changes (no zone changes twice in 6 hours)."""
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Control characters a TEXT value may not hold (§3.3.11); tab and newline are handled."""

EventStatus = Literal["TENTATIVE", "CONFIRMED", "CANCELLED"]


@dataclass(frozen=True)
class CalendarEvent:
    """One viewing as a calendar shows it."""

    uid: str
    start: dt.datetime
    """Aware, UTC."""
    end: dt.datetime
    """Aware, UTC."""
    time_zone: str
    """The IANA zone the viewing happens in: the event is written in its wall-clock time."""
    summary: str
    stamp: dt.datetime
    """Aware, UTC: DTSTAMP and LAST-MODIFIED (the viewing's last change)."""
    description: str = ""
    location: str = ""
    status: EventStatus = "CONFIRMED"
    sequence: int = 0
    """The viewing's revision, so a client replaces its copy when the viewing moves."""


def calendar(events: Sequence[CalendarEvent], *, name: str) -> str:
    """The whole ``VCALENDAR`` text of ``events``, CRLF-terminated and folded.

    Raises :class:`~marketplace.slots.UnknownTimeZone` for an event in an unknown zone and
    ValueError for a naive datetime.
    """
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(name)}",
    ]
    for time_zone in sorted({e.time_zone for e in events} - _UTC_ZONES):
        of_zone = [e for e in events if e.time_zone == time_zone]
        first = min(e.start for e in of_zone) - _SPAN
        last = max(e.end for e in of_zone) + _SPAN
        lines += _vtimezone(time_zone, first, last)
    for event in events:
        lines += _vevent(event)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def escape_text(value: str) -> str:
    """A TEXT value (§3.3.11): backslash, semicolon, comma and newlines escaped."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return _CONTROL.sub("", value)


def fold(line: str) -> str:
    """``line`` folded (§3.1): at most 75 octets per line, continuations led by a space,
    never splitting a character's UTF-8 bytes."""
    pieces: list[str] = []
    current, size = "", 0
    for char in line:
        octets = len(char.encode())
        if size + octets > MAX_LINE_OCTETS:
            pieces.append(current)
            current, size = " ", 1
        current += char
        size += octets
    pieces.append(current)
    return "\r\n".join(pieces)


def _vevent(event: CalendarEvent) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{escape_text(event.uid)}",
        f"DTSTAMP:{_utc_form(event.stamp)}",
        _zoned("DTSTART", event.start, event.time_zone),
        _zoned("DTEND", event.end, event.time_zone),
        f"SUMMARY:{escape_text(event.summary)}",
    ]
    if event.description:
        lines.append(f"DESCRIPTION:{escape_text(event.description)}")
    if event.location:
        lines.append(f"LOCATION:{escape_text(event.location)}")
    lines += [
        f"STATUS:{event.status}",
        f"SEQUENCE:{event.sequence}",
        f"LAST-MODIFIED:{_utc_form(event.stamp)}",
        "END:VEVENT",
    ]
    return lines


def _zoned(prop: str, instant: dt.datetime, time_zone: str) -> str:
    """``prop`` as wall-clock time in the zone, or in UTC form where wall-clock time would
    name another instant (the second pass of a repeated hour)."""
    if time_zone in _UTC_ZONES:
        return f"{prop}:{_utc_form(instant)}"
    _require_aware(instant)
    # Via UTC: astimezone() to the zone a datetime already has would keep a gap time as is.
    local = instant.astimezone(dt.UTC).astimezone(zone(time_zone))
    if local.replace(fold=0).astimezone(dt.UTC) != instant.astimezone(dt.UTC):
        return f"{prop}:{_utc_form(instant)}"
    return f"{prop};TZID={time_zone}:{_local_form(local)}"


def _vtimezone(time_zone: str, first: dt.datetime, last: dt.datetime) -> list[str]:
    """The zone's VTIMEZONE: the observance in force at ``first``, then each change."""
    tz = zone(time_zone)
    lines = ["BEGIN:VTIMEZONE", f"TZID:{time_zone}"]
    start_local = first.astimezone(tz)
    lines += _observance(start_local, _offset(start_local), start_local)
    for change in _changes(tz, first, last):
        offset_before = _offset((change - dt.timedelta(seconds=1)).astimezone(tz))
        # DTSTART is the wall clock at the change, still read in the old offset (§3.6.5).
        wall_start = (change + offset_before).replace(tzinfo=None)
        lines += _observance(wall_start, offset_before, change.astimezone(tz))
    lines.append("END:VTIMEZONE")
    return lines


def _observance(wall_start: dt.datetime, offset_from: dt.timedelta, then: dt.datetime) -> list[str]:
    """One STANDARD or DAYLIGHT component from ``wall_start``, observing what the local
    time ``then`` does (its offset, name and DST)."""
    # Only the offsets matter to a client; Dublin's negative DST (GMT in winter) is STANDARD.
    kind = "DAYLIGHT" if (then.dst() or dt.timedelta()) > dt.timedelta() else "STANDARD"
    return [
        f"BEGIN:{kind}",
        f"DTSTART:{_local_form(wall_start)}",
        f"TZOFFSETFROM:{_offset_form(offset_from)}",
        f"TZOFFSETTO:{_offset_form(_offset(then))}",
        f"TZNAME:{escape_text(then.tzname() or '')}",
        f"END:{kind}",
    ]


def _changes(tz: ZoneInfo, first: dt.datetime, last: dt.datetime) -> Iterator[dt.datetime]:
    """The UTC instants in ``(first, last]`` where the zone's offset, name or DST changes."""
    low, stop = math.floor(first.timestamp()), math.ceil(last.timestamp())
    step = int(_SCAN_STEP.total_seconds())
    while low < stop:
        high = min(low + step, stop)
        if _observed(tz, low) != _observed(tz, high):
            yield _first_observing(tz, low, high)
        low = high


def _first_observing(tz: ZoneInfo, low: int, high: int) -> dt.datetime:
    """The first second in ``(low, high]`` (epoch seconds) observing what ``high`` does."""
    target = _observed(tz, high)
    while high - low > 1:
        middle = (low + high) // 2
        if _observed(tz, middle) == target:
            high = middle
        else:
            low = middle
    return dt.datetime.fromtimestamp(high, dt.UTC)


def _observed(tz: ZoneInfo, epoch_seconds: int) -> tuple[object, ...]:
    local = dt.datetime.fromtimestamp(epoch_seconds, tz)
    return local.utcoffset(), local.dst(), local.tzname()


def _offset(local: dt.datetime) -> dt.timedelta:
    offset = local.utcoffset()
    assert offset is not None  # local comes from astimezone(a zone)
    return offset


def _offset_form(offset: dt.timedelta) -> str:
    """``+0100``, ``-0500``, or ``+001415`` for a historical offset with seconds."""
    sign = "-" if offset < dt.timedelta() else "+"
    hours, rest = divmod(int(abs(offset).total_seconds()), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{seconds:02d}" if seconds else "")


def _utc_form(instant: dt.datetime) -> str:
    _require_aware(instant)
    return instant.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _local_form(local: dt.datetime) -> str:
    return local.strftime("%Y%m%dT%H%M%S")


def _require_aware(instant: dt.datetime) -> None:
    if instant.utcoffset() is None:
        raise ValueError(f"{instant} has no time zone")
