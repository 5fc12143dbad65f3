"""The viewings calendar, read back by an independent parser (``icalendar``).

Each event's start and end must resolve to the exact instant of the viewing, through our
own VTIMEZONE (not the parser's copy of the zone database), including the repeated hour
of October and the hour after March's gap.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import icalendar
import pytest

from marketplace.ics import CalendarEvent, calendar
from marketplace.slots import UnknownTimeZone

UTC = dt.UTC
STAMP = dt.datetime(2027, 1, 15, 12, 30, tzinfo=UTC)


def utc(*fields: int) -> dt.datetime:
    return dt.datetime(*fields, tzinfo=UTC)


def event(start: dt.datetime, minutes: int = 60, **fields: Any) -> CalendarEvent:
    values: dict[str, Any] = {
        "uid": f"viewing-{start:%Y%m%d%H%M}@homefront",
        "time_zone": "Europe/London",
        "summary": "Viewing: 12 Acacia Avenue",
        "stamp": STAMP,
    }
    return CalendarEvent(start=start, end=start + dt.timedelta(minutes=minutes), **values | fields)


def parse(text: str) -> icalendar.Calendar:
    cal = icalendar.Calendar.from_ical(text)
    assert all(not component.errors for component in cal.walk()), "the parser found errors"
    return cal


def instant(cal: icalendar.Calendar, vevent: icalendar.Event, name: str) -> dt.datetime:
    """The UTC instant a DTSTART/DTEND names, read through the calendar's own VTIMEZONE
    (§3.3.5: a repeated wall time means its first occurrence, fold 0)."""
    prop = vevent[name]
    if "TZID" not in prop.params:
        assert prop.dt.utcoffset() == dt.timedelta(0)
        return prop.dt.astimezone(UTC)
    zones = {str(tz["TZID"]): tz for tz in cal.walk("VTIMEZONE")}
    own_zone = zones[prop.params["TZID"]].to_tz(lookup_tzid=False)
    wall = prop.dt.replace(tzinfo=None)
    return wall.replace(tzinfo=own_zone, fold=0).astimezone(UTC)


def spans(text: str) -> list[tuple[dt.datetime, dt.datetime]]:
    cal = parse(text)
    return [
        (instant(cal, vevent, "DTSTART"), instant(cal, vevent, "DTEND"))
        for vevent in cal.walk("VEVENT")
    ]


def raw_lines(text: str) -> list[str]:
    return text.split("\r\n")


# Instants


def test_events_resolve_to_their_exact_instants_through_the_calendars_own_zone() -> None:
    starts = [
        utc(2027, 6, 7, 8, 30),  # 09:30 BST
        utc(2027, 12, 6, 14),  # 14:00 GMT
        utc(2027, 3, 28, 1),  # 02:00 BST, the first hour after the gap
        utc(2027, 10, 31, 0, 15),  # 01:15 BST, the repeated hour's first pass
        utc(2027, 10, 31, 1, 15),  # 01:15 GMT, its second pass
        utc(2027, 10, 31, 0, 30),  # 01:30 BST to 01:00 GMT: ends in the second pass
    ]
    text = calendar([event(s, 30) for s in starts], name="Viewings")
    assert spans(text) == [(s, s + dt.timedelta(minutes=30)) for s in starts]
    assert "DTEND:20271031T010000Z" in raw_lines(text)


def test_the_repeated_hours_second_pass_is_written_in_utc_and_the_rest_in_the_zone() -> None:
    first_pass = event(utc(2027, 10, 31, 0, 15), 30)
    second_pass = event(utc(2027, 10, 31, 1, 15), 45)  # ends 02:00 GMT, no longer ambiguous
    after_gap = event(utc(2027, 3, 28, 1))
    lines = raw_lines(calendar([first_pass, second_pass, after_gap], name="Viewings"))
    assert "DTSTART;TZID=Europe/London:20271031T011500" in lines
    assert "DTEND;TZID=Europe/London:20271031T014500" in lines
    assert "DTSTART:20271031T011500Z" in lines
    assert "DTEND;TZID=Europe/London:20271031T020000" in lines
    assert "DTSTART;TZID=Europe/London:20270328T020000" in lines


def test_the_parsers_own_zone_database_agrees() -> None:
    starts = [utc(2027, 3, 28, 1), utc(2027, 10, 31, 0, 15), utc(2027, 10, 31, 1, 15)]
    vevents = parse(calendar([event(s) for s in starts], name="V")).walk("VEVENT")
    assert [v.decoded("DTSTART").astimezone(UTC) for v in vevents] == starts


def test_a_utc_event_uses_the_utc_form_and_no_vtimezone() -> None:
    text = calendar([event(utc(2027, 10, 31, 1, 15), time_zone="UTC")], name="V")
    assert "DTSTART:20271031T011500Z" in raw_lines(text)
    assert "DTEND:20271031T021500Z" in raw_lines(text)
    assert "TZID" not in text
    assert spans(text) == [(utc(2027, 10, 31, 1, 15), utc(2027, 10, 31, 2, 15))]


# VTIMEZONE


def test_london_gets_one_vtimezone_with_its_real_offsets_and_changes() -> None:
    events = [event(utc(2027, 6, 7, 8)), event(utc(2027, 10, 31, 1, 15))]
    (london,) = parse(calendar(events, name="V")).walk("VTIMEZONE")
    assert str(london["TZID"]) == "Europe/London"
    observances = london.walk("STANDARD") + london.walk("DAYLIGHT")
    offsets = {(c["TZOFFSETFROM"].td, c["TZOFFSETTO"].td) for c in observances}
    gmt, bst = dt.timedelta(0), dt.timedelta(hours=1)
    assert {(gmt, bst), (bst, gmt)} <= offsets <= {(gmt, bst), (bst, gmt), (gmt, gmt), (bst, bst)}
    assert {str(c["TZNAME"]) for c in london.walk("DAYLIGHT")} == {"BST"}
    assert {str(c["TZNAME"]) for c in london.walk("STANDARD")} == {"GMT"}
    changes, _ = london.get_transitions()  # UTC instants, from DTSTART - TZOFFSETFROM
    assert dt.datetime(2027, 3, 28, 1) in changes
    assert dt.datetime(2027, 10, 31, 1) in changes


def test_vtimezone_dtstart_is_the_wall_clock_before_the_change() -> None:
    lines = raw_lines(calendar([event(utc(2027, 6, 7, 8))], name="V"))
    # Spring: 01:00 GMT (then 02:00 BST); autumn: 02:00 BST (then 01:00 GMT).
    assert lines[lines.index("DTSTART:20270328T010000") + 1 :][:2] == [
        "TZOFFSETFROM:+0000",
        "TZOFFSETTO:+0100",
    ]
    assert lines[lines.index("DTSTART:20271031T020000") + 1 :][:2] == [
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0000",
    ]


def test_each_zone_used_gets_one_vtimezone() -> None:
    events = [
        event(utc(2027, 6, 7, 8)),
        event(utc(2027, 6, 8, 8)),
        event(utc(2027, 11, 7, 6, 30), time_zone="America/New_York"),  # 01:30 EST, 2nd pass
        event(utc(2027, 6, 9, 1), time_zone="Asia/Tokyo"),
    ]
    text = calendar(events, name="V")
    cal = parse(text)
    assert sorted(str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")) == [
        "America/New_York",
        "Asia/Tokyo",
        "Europe/London",
    ]
    assert spans(text) == [(e.start, e.end) for e in events]


def test_a_zone_without_changes_gets_one_standard_component() -> None:
    (tokyo,) = parse(calendar([event(utc(2027, 6, 9, 1), time_zone="Asia/Tokyo")], name="V")).walk(
        "VTIMEZONE"
    )
    assert tokyo.walk("DAYLIGHT") == []
    (standard,) = tokyo.walk("STANDARD")
    assert standard["TZOFFSETFROM"].td == standard["TZOFFSETTO"].td == dt.timedelta(hours=9)
    assert str(standard["TZNAME"]) == "JST"


# Lines and text


def test_lines_are_crlf_terminated_and_folded_at_75_octets_without_splitting_characters() -> None:
    description = "Près du métro, café ☕ et jardin 🏡🌳. " * 20
    text = calendar([event(utc(2027, 6, 7, 8), description=description)], name="Viewings")
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "") and "\r" not in text.replace("\r\n", "")
    physical = text.encode().split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in physical)
    assert all(line.decode("utf-8") for line in physical)  # no character cut in two
    assert any(line.startswith(b" ") for line in physical)
    folded = [line for line in physical if len(line) > 70]
    assert len(folded) > 10  # the long description did fold
    (vevent,) = parse(text).walk("VEVENT")
    assert str(vevent["DESCRIPTION"]) == description


def test_text_escaping_round_trips() -> None:
    summary = "Viewing, flat 2; ask for the key\\code"
    description = "Ring twice.\nThen wait, please; thanks\r\nEND:VEVENT\nBEGIN:VALARM"
    location = "12 Acacia Avenue, London; NW1"
    text = calendar(
        [event(utc(2027, 6, 7, 8), summary=summary, description=description, location=location)],
        name="Anna's viewings, all; listings",
    )
    assert "SUMMARY:Viewing\\, flat 2\\; ask for the key\\\\code" in raw_lines(text)
    cal = parse(text)
    (vevent,) = cal.walk("VEVENT")
    assert str(vevent["SUMMARY"]) == summary
    assert str(vevent["DESCRIPTION"]) == description.replace("\r\n", "\n")
    assert str(vevent["LOCATION"]) == location
    # The parser keeps an unknown X- property raw; the clients that show it read TEXT.
    assert "X-WR-CALNAME:Anna's viewings\\, all\\; listings" in raw_lines(text)
    assert cal.walk("VALARM") == []


def test_statuses_sequence_and_stamps_are_written() -> None:
    events = [
        event(utc(2027, 6, 7, 8), status="CANCELLED", sequence=3),
        event(utc(2027, 6, 7, 9), status="TENTATIVE"),
        event(utc(2027, 6, 7, 10)),
    ]
    vevents = parse(calendar(events, name="V")).walk("VEVENT")
    assert [str(v["STATUS"]) for v in vevents] == ["CANCELLED", "TENTATIVE", "CONFIRMED"]
    assert [v.decoded("SEQUENCE") for v in vevents] == [3, 0, 0]
    assert all(v.decoded("DTSTAMP") == STAMP == v.decoded("LAST-MODIFIED") for v in vevents)
    assert [str(v["UID"]) for v in vevents] == [e.uid for e in events]
    assert all("DESCRIPTION" not in v and "LOCATION" not in v for v in vevents)


def test_an_empty_calendar_is_still_valid() -> None:
    text = calendar([], name="Viewings")
    assert text == (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Homefront//Viewings//EN\r\n"
        "CALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\nX-WR-CALNAME:Viewings\r\nEND:VCALENDAR\r\n"
    )
    cal = parse(text)
    assert str(cal["VERSION"]) == "2.0"
    assert cal.walk("VEVENT") == [] and cal.walk("VTIMEZONE") == []


def test_unknown_zones_and_naive_times_are_refused() -> None:
    with pytest.raises(UnknownTimeZone):
        calendar([event(utc(2027, 6, 7, 8), time_zone="Mars/Olympus_Mons")], name="V")
    with pytest.raises(ValueError, match="no time zone"):
        calendar([event(dt.datetime(2027, 6, 7, 8))], name="V")
    with pytest.raises(ValueError, match="no time zone"):
        calendar([event(utc(2027, 6, 7, 8), stamp=dt.datetime(2027, 1, 1))], name="V")
