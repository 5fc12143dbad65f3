"""Viewing slots from weekly hours: the ordinary week, the edges, and daylight saving."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from marketplace.models.viewings import WEEKDAYS as WEEKDAY_NAMES
from marketplace.models.viewings import Availability
from marketplace.slots import (
    GRANULE,
    Slot,
    UnknownTimeZone,
    free_slots,
    granules,
    slot_at,
    zone,
)

UTC = dt.UTC
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
MONDAY = dt.date(2027, 6, 7)  # an ordinary week in summer time (BST, +01:00)
WEEKDAYS = (1, 2, 3, 4, 5)


def weekly(hours: list[tuple[int, str, str]]) -> dict[str, str]:
    """``(ISO weekday, start, end)`` entries as the model's one string of ranges a day."""
    days: dict[str, list[str]] = {}
    for day, start, end in hours:
        days.setdefault(WEEKDAY_NAMES[day - 1], []).append(f"{start}-{end}")
    return {day: ",".join(ranges) for day, ranges in days.items()}


def availability(
    hours: list[tuple[int, str, str]],
    *,
    slot_minutes: int = 60,
    time_zone: str = "Europe/London",
    dates_off: tuple[str, ...] = (),
) -> Availability:
    now = dt.datetime(2027, 1, 1, tzinfo=UTC)
    return Availability.model_validate(
        {
            "weekly": weekly(hours),
            "slotMinutes": slot_minutes,
            "timeZone": time_zone,
            "datesOff": list(dates_off),
            "createdAt": now,
            "updatedAt": now,
        }
    )


def utc(*fields: int) -> dt.datetime:
    return dt.datetime(*fields, tzinfo=UTC)


def local(tz: ZoneInfo, *fields: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*fields, tzinfo=tz, fold=fold)


def one_day(av: Availability, day: dt.date, tz: ZoneInfo) -> list[Slot]:
    """The slots of one local date, asked for with a window of exactly that date."""
    start = dt.datetime.combine(day, dt.time(), tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
    return free_slots(av, start, end)


def labels(slots: list[Slot]) -> list[str]:
    return [s.local_start.strftime("%H:%M %Z") for s in slots]


def office_hours(dates_off: tuple[str, ...] = ()) -> Availability:
    """Monday to Friday 09:00–17:00 in London, half-hour slots."""
    hours = [(day, "09:00", "17:00") for day in WEEKDAYS]
    return availability(hours, slot_minutes=30, dates_off=dates_off)


def week_of(monday: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(monday, dt.time(), LONDON)
    return start, start + dt.timedelta(days=7)


# The ordinary week


def test_an_ordinary_week_offers_half_hours_on_weekdays_and_nothing_at_the_weekend() -> None:
    slots = free_slots(office_hours(), *week_of(MONDAY))
    assert len(slots) == 5 * 16
    assert {s.local_start.date() for s in slots} == {
        MONDAY + dt.timedelta(days=i) for i in range(5)
    }
    first, last = slots[0], slots[-1]
    assert first.to_json() == {
        "start": "2027-06-07T08:00:00Z",
        "end": "2027-06-07T08:30:00Z",
        "localStart": "2027-06-07T09:00:00+01:00",
        "localEnd": "2027-06-07T09:30:00+01:00",
    }
    assert last.local_start == local(LONDON, 2027, 6, 11, 16, 30)
    assert last.local_end == local(LONDON, 2027, 6, 11, 17, 0)
    assert all(b.start - a.start >= dt.timedelta(minutes=30) for a, b in itertools.pairwise(slots))
    assert all(s.end - s.start == dt.timedelta(minutes=30) for s in slots)
    assert all(s.start.tzinfo is UTC and s.local_start.tzinfo is LONDON for s in slots)


def test_a_date_off_has_no_slots_and_the_others_keep_theirs() -> None:
    slots = free_slots(office_hours(dates_off=("2027-06-09",)), *week_of(MONDAY))
    assert len(slots) == 4 * 16
    assert dt.date(2027, 6, 9) not in {s.local_start.date() for s in slots}


def test_overlapping_and_touching_entries_merge_and_empty_entries_are_ignored() -> None:
    av = availability(
        [(1, "09:00", "11:00"), (1, "10:00", "12:00"), (1, "12:00", "13:00"), (1, "15:00", "15:00")]
    )
    assert labels(one_day(av, MONDAY, LONDON)) == [
        "09:00 BST",
        "10:00 BST",
        "11:00 BST",
        "12:00 BST",
    ]


def test_a_remainder_shorter_than_a_slot_is_dropped() -> None:
    half_hours = availability([(1, "09:00", "10:45")], slot_minutes=30)
    assert labels(one_day(half_hours, MONDAY, LONDON)) == ["09:00 BST", "09:30 BST", "10:00 BST"]
    three_quarters = availability([(1, "09:00", "10:45"), (1, "14:00", "14:30")], slot_minutes=45)
    assert labels(one_day(three_quarters, MONDAY, LONDON)) == ["09:00 BST", "09:45 BST"]


def test_24_00_is_the_end_of_the_day() -> None:
    av = availability([(1, "22:00", "24:00")], time_zone="UTC")
    slots = one_day(av, MONDAY, ZoneInfo("UTC"))
    assert [s.start for s in slots] == [utc(2027, 6, 7, 22), utc(2027, 6, 7, 23)]
    assert slots[-1].end == utc(2027, 6, 8)


def test_taken_granules_remove_exactly_the_slots_they_overlap() -> None:
    av = availability([(1, "09:00", "12:00")], slot_minutes=30)
    taken = {
        utc(2027, 6, 7, 8, 15),  # 09:15 BST: inside the 09:00 slot
        local(LONDON, 2027, 6, 7, 11, 0),  # 10:00Z given in local time: the 11:00 slot
        utc(2027, 6, 7, 13, 0),  # outside the hours: removes nothing
    }
    slots = free_slots(av, *week_of(MONDAY), taken=taken)
    assert labels(slots) == ["09:30 BST", "10:00 BST", "10:30 BST", "11:30 BST"]


def test_not_before_drops_earlier_slots_and_keeps_one_starting_then() -> None:
    av = availability([(1, "09:00", "12:00")])
    slots = free_slots(av, *week_of(MONDAY), not_before=local(LONDON, 2027, 6, 7, 10, 0))
    assert labels(slots) == ["10:00 BST", "11:00 BST"]
    late = free_slots(av, *week_of(MONDAY), not_before=local(LONDON, 2027, 6, 7, 10, 1))
    assert labels(late) == ["11:00 BST"]


def test_only_slots_wholly_inside_the_window_are_listed() -> None:
    av = availability([(1, "09:00", "12:00")], slot_minutes=30)
    window = (local(LONDON, 2027, 6, 7, 9, 15), local(LONDON, 2027, 6, 7, 10, 45))
    assert labels(free_slots(av, *window)) == ["09:30 BST", "10:00 BST"]
    exact = (local(LONDON, 2027, 6, 7, 9, 30), local(LONDON, 2027, 6, 7, 10, 30))
    assert labels(free_slots(av, *exact)) == ["09:30 BST", "10:00 BST"]


def test_the_slot_grid_does_not_depend_on_the_window() -> None:
    av = availability([(1, "09:00", "12:00")], slot_minutes=45)
    whole = free_slots(av, *week_of(MONDAY))
    late_start = free_slots(av, local(LONDON, 2027, 6, 7, 9, 15), local(LONDON, 2027, 6, 8))
    assert labels(whole) == ["09:00 BST", "09:45 BST", "10:30 BST", "11:15 BST"]
    assert late_start == whole[1:]


def test_slots_at_the_edges_of_the_window_come_from_the_neighbouring_local_dates() -> None:
    # Tokyo's Monday morning is Sunday in UTC: a UTC-dated window still finds it.
    av = availability([(1, "06:00", "08:00")], time_zone="Asia/Tokyo")
    slots = free_slots(av, utc(2027, 6, 6, 21), utc(2027, 6, 6, 23))
    assert [s.start for s in slots] == [utc(2027, 6, 6, 21), utc(2027, 6, 6, 22)]


def test_naive_datetimes_are_refused() -> None:
    av = office_hours()
    with pytest.raises(ValueError, match="no time zone"):
        free_slots(av, dt.datetime(2027, 6, 7), utc(2027, 6, 8))
    with pytest.raises(ValueError, match="no time zone"):
        free_slots(av, *week_of(MONDAY), taken={dt.datetime(2027, 6, 7, 9)})
    with pytest.raises(ValueError, match="no time zone"):
        slot_at(av, dt.datetime(2027, 6, 7, 9))


# Daylight saving


def test_london_spring_forward_skips_the_missing_hour() -> None:
    march = dt.date(2027, 3, 28)  # the last Sunday of March: 01:00 GMT becomes 02:00 BST
    slots = one_day(availability([(7, "00:00", "04:00")]), march, LONDON)
    assert [s.start for s in slots] == [
        utc(2027, 3, 28, 0),
        utc(2027, 3, 28, 1),
        utc(2027, 3, 28, 2),
    ]
    assert labels(slots) == ["00:00 GMT", "02:00 BST", "03:00 BST"]
    assert slots[1].to_json() == {
        "start": "2027-03-28T01:00:00Z",
        "end": "2027-03-28T02:00:00Z",
        "localStart": "2027-03-28T02:00:00+01:00",
        "localEnd": "2027-03-28T03:00:00+01:00",
    }
    quarter_hours = one_day(availability([(7, "00:00", "04:00")], slot_minutes=15), march, LONDON)
    assert len(quarter_hours) == 12
    assert all(s.local_start.hour != 1 for s in quarter_hours)


def test_london_fall_back_offers_the_repeated_hour_twice() -> None:
    october = dt.date(2027, 10, 31)  # the last Sunday of October: 02:00 BST becomes 01:00 GMT
    slots = one_day(availability([(7, "00:00", "04:00")]), october, LONDON)
    assert [s.start for s in slots] == [
        utc(2027, 10, 30, 23),
        utc(2027, 10, 31, 0),
        utc(2027, 10, 31, 1),
        utc(2027, 10, 31, 2),
        utc(2027, 10, 31, 3),
    ]
    assert labels(slots) == ["00:00 BST", "01:00 BST", "01:00 GMT", "02:00 GMT", "03:00 GMT"]
    first_one, second_one = slots[1], slots[2]
    assert second_one.start - first_one.start == dt.timedelta(hours=1)
    assert (first_one.local_start.fold, second_one.local_start.fold) == (0, 1)
    assert second_one.to_json()["localStart"] == "2027-10-31T01:00:00+00:00"
    assert first_one.to_json()["localStart"] == "2027-10-31T01:00:00+01:00"


def test_new_york_spring_forward_and_fall_back() -> None:
    av = availability([(7, "00:00", "04:00")], time_zone="America/New_York")
    march = one_day(av, dt.date(2027, 3, 14), NEW_YORK)  # second Sunday of March
    assert [s.start for s in march] == [
        utc(2027, 3, 14, 5),
        utc(2027, 3, 14, 6),
        utc(2027, 3, 14, 7),
    ]
    assert labels(march) == ["00:00 EST", "01:00 EST", "03:00 EDT"]
    november = one_day(av, dt.date(2027, 11, 7), NEW_YORK)  # first Sunday of November
    assert [s.start for s in november] == [utc(2027, 11, 7, hour) for hour in range(4, 9)]
    assert labels(november) == ["00:00 EDT", "01:00 EDT", "01:00 EST", "02:00 EST", "03:00 EST"]


def test_a_slot_across_the_gap_lasts_its_real_minutes() -> None:
    av = availability([(7, "00:30", "03:00")], slot_minutes=45)
    slots = one_day(av, dt.date(2027, 3, 28), LONDON)
    assert labels(slots) == ["00:30 GMT", "02:15 BST"]
    assert slots[0].local_end == local(LONDON, 2027, 3, 28, 2, 15)
    assert all(s.end - s.start == dt.timedelta(minutes=45) for s in slots)


def test_round_the_clock_hours_open_every_granule_across_a_dst_change() -> None:
    av = availability([(day, "00:00", "24:00") for day in range(1, 8)], slot_minutes=15)
    start = utc(2027, 3, 21)
    slots = free_slots(av, start, start + dt.timedelta(days=14))
    assert [s.start for s in slots] == [start + i * GRANULE for i in range(14 * 96)]


def test_the_utc_zone_has_no_surprises() -> None:
    av = availability([(7, "00:00", "04:00")], time_zone="UTC")
    slots = one_day(av, dt.date(2027, 3, 28), ZoneInfo("UTC"))
    assert [s.start for s in slots] == [utc(2027, 3, 28, hour) for hour in range(4)]
    assert slots[0].to_json()["localStart"] == "2027-03-28T00:00:00+00:00"


# Time zones


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus_Mons",
        "../etc/passwd",
        "/etc/localtime",
        "Europe/../Europe/London",
        "Europe",
        "zone.tab",
        "",
        "Europe/London\x00",
        "A" * 65,
    ],
)
def test_an_unknown_zone_raises_unknown_time_zone(name: str) -> None:
    with pytest.raises(UnknownTimeZone):
        zone(name)


def test_an_availability_in_an_unknown_zone_raises_unknown_time_zone() -> None:
    av = office_hours().model_copy(update={"timeZone": "Mars/Olympus_Mons"})
    with pytest.raises(UnknownTimeZone):
        free_slots(av, *week_of(MONDAY))
    with pytest.raises(UnknownTimeZone):
        slot_at(av, utc(2027, 6, 7, 8))


def test_known_zones_load() -> None:
    assert zone("Europe/London") is LONDON
    assert zone("UTC").key == "UTC"
    assert zone("America/Argentina/Buenos_Aires").key == "America/Argentina/Buenos_Aires"


# slot_at


def test_slot_at_finds_the_slot_starting_at_that_instant_whether_free_or_not() -> None:
    av = office_hours()
    slot = slot_at(av, local(LONDON, 2027, 6, 7, 9, 30))
    assert slot is not None
    assert (slot.start, slot.end) == (utc(2027, 6, 7, 8, 30), utc(2027, 6, 7, 9, 0))
    assert slot in free_slots(av, *week_of(MONDAY))


def test_slot_at_is_none_off_the_grid_outside_the_hours_and_on_a_date_off() -> None:
    av = office_hours(dates_off=("2027-06-08",))
    assert slot_at(av, local(LONDON, 2027, 6, 7, 9, 10)) is None  # off the 15-minute grid
    assert slot_at(av, local(LONDON, 2027, 6, 7, 9, 15)) is None  # a granule, not a slot start
    assert slot_at(av, local(LONDON, 2027, 6, 7, 8, 30)) is None  # before opening
    assert slot_at(av, local(LONDON, 2027, 6, 7, 17, 0)) is None  # closing time
    assert slot_at(av, local(LONDON, 2027, 6, 8, 9, 0)) is None  # the date off
    assert slot_at(av, local(LONDON, 2027, 6, 12, 9, 0)) is None  # Saturday


def test_slot_at_never_answers_with_a_wall_time_in_the_missing_hour() -> None:
    av = availability([(7, "00:00", "04:00")])
    # Nonexistent wall times name real instants (read in GMT); no slot shows a 01:xx label.
    for minute in (0, 15, 30, 45):
        slot = slot_at(av, local(LONDON, 2027, 3, 28, 1, minute))
        assert slot is None or slot.local_start.hour != 1
    assert slot_at(av, local(LONDON, 2027, 3, 28, 1, 30)) is None
    moved = slot_at(av, local(LONDON, 2027, 3, 28, 1, 0))  # = 01:00Z, which is 02:00 BST
    assert moved is not None
    assert labels([moved]) == ["02:00 BST"]


def test_slot_at_tells_the_two_01_00s_of_october_apart() -> None:
    av = availability([(7, "00:00", "04:00")])
    first = slot_at(av, local(LONDON, 2027, 10, 31, 1, 0, fold=0))
    second = slot_at(av, local(LONDON, 2027, 10, 31, 1, 0, fold=1))
    assert first is not None and second is not None
    assert (first.start, second.start) == (utc(2027, 10, 31, 0), utc(2027, 10, 31, 1))
    assert labels([first, second]) == ["01:00 BST", "01:00 GMT"]
    assert slot_at(av, utc(2027, 10, 31, 1)) == second


# granules


def test_granules_are_the_utc_quarter_hours_covering_a_span() -> None:
    assert granules(local(LONDON, 2027, 6, 7, 9, 0), local(LONDON, 2027, 6, 7, 10, 0)) == [
        utc(2027, 6, 7, 8, 0),
        utc(2027, 6, 7, 8, 15),
        utc(2027, 6, 7, 8, 30),
        utc(2027, 6, 7, 8, 45),
    ]
    assert granules(utc(2027, 6, 7, 8), utc(2027, 6, 7, 8)) == []
    kathmandu = ZoneInfo("Asia/Kathmandu")  # +05:45: on the UTC grid all the same
    assert granules(local(kathmandu, 2027, 6, 7, 9, 0), local(kathmandu, 2027, 6, 7, 9, 15)) == [
        utc(2027, 6, 7, 3, 15)
    ]


def test_granules_of_a_slot_across_the_repeated_hour_are_distinct_instants() -> None:
    october = one_day(availability([(7, "00:00", "04:00")]), dt.date(2027, 10, 31), LONDON)
    locks = [g for slot in october for g in granules(slot.start, slot.end)]
    assert len(locks) == len(set(locks)) == 5 * 4


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (utc(2027, 6, 7, 8, 10), utc(2027, 6, 7, 9)),
        (utc(2027, 6, 7, 8), utc(2027, 6, 7, 9, 0, 1)),
        (utc(2027, 6, 7, 8), utc(2027, 6, 7, 9, 0, 0, 1)),
        (dt.datetime(2027, 6, 7, 8), utc(2027, 6, 7, 9)),
        (utc(2027, 6, 7, 9), utc(2027, 6, 7, 8)),
        # Monrovia kept -00:44:30 until 1972: its whole hours are off the UTC grid.
        (local(ZoneInfo("Africa/Monrovia"), 1970, 1, 1, 9, 0), utc(1970, 1, 1, 11)),
    ],
)
def test_granules_refuse_naive_off_grid_or_reversed_spans(
    start: dt.datetime, end: dt.datetime
) -> None:
    with pytest.raises(ValueError):
        granules(start, end)
