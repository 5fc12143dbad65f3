"""Scheduled functions under the emulators: the declared schedules, their parsing, the
scheduler's timing (on a fake clock), and a run through the Functions emulator."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from zoneinfo import ZoneInfo

import main
import pytest
from google.cloud import firestore

from marketplace import favorites
from pytest_firebase import schedules
from pytest_firebase.plugin import set_background_triggers
from pytest_firebase.schedules import Cron, Every, ScheduledFunction, Scheduler
from pytest_firebase.stack import EmulatorStack
from tests.listings.factories import listing

START = dt.datetime(2026, 3, 14, 9, 30, 20, tzinfo=dt.UTC)


def at(text: str, zone: str = "UTC") -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


class FakeClock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def declared_in_code() -> dict[str, dict[str, object]]:
    """Each scheduled function's scheduleTrigger, as the SDK declares it in main.py."""
    triggers = {}
    for name in main.__all__:
        endpoint = getattr(getattr(main, name), "__firebase_endpoint__", None)
        if endpoint is not None and endpoint.scheduleTrigger:
            triggers[name] = endpoint.scheduleTrigger
    return triggers


# ---- what is deployed --------------------------------------------------------------------


def test_the_emulator_lists_every_scheduled_function_main_declares_and_each_parses(
    firebase_stack: EmulatorStack,
) -> None:
    loaded = schedules.declared(firebase_stack.host("functions"))

    in_code = declared_in_code()
    assert {"roll_up_favorites", "send_email_digests", "reconcile_stripe_events"} <= set(in_code)
    assert {f.name: f.schedule for f in loaded} == {
        name: trigger["schedule"] for name, trigger in in_code.items()
    }
    for function in loaded:
        assert function.region == "us-central1"
        assert function.job_name == f"firebase-schedule-{function.name}-us-central1"
    # On a fake clock, each is due after its own interval and fired once then.
    clock = FakeClock(START)
    fired: list[str] = []
    scheduler = Scheduler(loaded, lambda f, _: fired.append(f.name), clock=clock, log=pytest.fail)
    assert len(scheduler.jobs) == len(loaded)
    # Functions due at the same moment (two hourly ones) fire in the same tick.
    by_due: dict[dt.datetime, set[str]] = {}
    for function, due in scheduler.jobs:
        by_due.setdefault(due, set()).add(function.name)
    for due, names in sorted(by_due.items()):
        clock.now = due
        assert names <= {f.name for f in scheduler.tick()}  # with any every-minute one
    assert sorted(set(fired)) == sorted(in_code) and fired.count("send_email_digests") == 1


def test_asking_for_a_function_that_is_not_scheduled_names_the_ones_that_are(
    firebase_stack: EmulatorStack,
) -> None:
    with pytest.raises(schedules.ScheduleError, match="roll_up_favorites"):
        schedules.find(firebase_stack.host("functions"), "health")


# ---- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "interval"),
    [
        ("every 1 minutes", dt.timedelta(minutes=1)),
        ("every 5 mins", dt.timedelta(minutes=5)),
        ("every 60 minutes", dt.timedelta(hours=1)),
        ("Every 2 hours", dt.timedelta(hours=2)),
        ("every 1 hrs", dt.timedelta(hours=1)),
    ],
)
def test_intervals_run_that_long_after_the_previous_run(text: str, interval: dt.timedelta) -> None:
    schedule = schedules.parse(text)

    assert schedule == Every(interval)
    assert schedule.next_after(START) == START + interval


def test_every_day_runs_at_that_wall_clock_time_in_the_functions_zone() -> None:
    daily = schedules.parse("every day 00:00", "Europe/London")

    assert daily.next_after(at("2026-03-14T09:30")) == at("2026-03-15T00:00", "Europe/London")
    # Across the spring change (29 March 2026) it stays at local midnight.
    assert daily.next_after(at("2026-03-29T12:00")) == at("2026-03-29T23:00")
    assert schedules.parse("every day 09:15").next_after(at("2026-03-14T09:15")) == at(
        "2026-03-15T09:15"
    )


def test_weekday_schedules_run_only_on_those_days() -> None:
    # 14 March 2026 is a Saturday.
    monday = schedules.parse("every monday 09:00")
    assert monday.next_after(at("2026-03-14T10:00")) == at("2026-03-16T09:00")
    both = schedules.parse("every mon,thu 18:30")
    assert both.next_after(at("2026-03-16T19:00")) == at("2026-03-19T18:30")


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("*/15 * * * *", "2026-03-14T09:30:20", "2026-03-14T09:45"),
        ("* * * * *", "2026-03-14T09:30:20", "2026-03-14T09:31"),
        ("0 9 * * 1-5", "2026-03-14T09:30", "2026-03-16T09:00"),
        ("30 2 1 * *", "2026-03-14T09:30", "2026-04-01T02:30"),
        ("0 0 * jan,jul sun", "2026-03-14T09:30", "2026-07-05T00:00"),
        ("0 12 * * 7", "2026-03-14T09:30", "2026-03-15T12:00"),
        ("5,35 8-10/2 * * *", "2026-03-14T09:30", "2026-03-14T10:05"),
        ("0 0 29 2 *", "2026-03-14T09:30", "2028-02-29T00:00"),
        # Day of month and day of week both restricted: either one matches, as in cron.
        ("0 0 20 * mon", "2026-03-14T09:30", "2026-03-16T00:00"),
        # A day field starting with '*' counts as unrestricted for that rule: both match.
        ("0 0 */2 * mon", "2026-03-14T09:30", "2026-03-23T00:00"),
    ],
)
def test_unix_cron(text: str, after: str, expected: str) -> None:
    schedule = schedules.parse(text)

    assert isinstance(schedule, Cron)
    assert schedule.next_after(at(after)) == at(expected)


@pytest.mark.parametrize(
    "text",
    [
        "every 0 minutes",
        "every 5 seconds",
        "every day 24:00",
        "every funday 09:00",
        "1st monday of month 09:00",
        "*/15 * * *",
        "61 * * * *",
        "* * * * 8",
        "*/0 * * * *",
        "",
    ],
)
def test_schedules_it_cannot_run_are_refused_by_name(text: str) -> None:
    with pytest.raises(schedules.ScheduleError, match=re.escape(repr(text))):
        schedules.parse(text)


# ---- the scheduler's timing, on a fake clock ---------------------------------------------


def test_the_scheduler_fires_each_function_when_due_and_once_for_missed_runs() -> None:
    clock = FakeClock(START)
    fired: list[tuple[str, dt.datetime]] = []
    lines: list[str] = []
    functions = [
        ScheduledFunction("roll_up_favorites", "us-central1", "every 1 minutes"),
        ScheduledFunction("send_email_digests", "us-central1", "every 60 minutes"),
        ScheduledFunction("nightly", "us-central1", "every day 00:00", "Europe/London"),
        ScheduledFunction("monthly", "us-central1", "1st monday of month 09:00"),
    ]
    scheduler = Scheduler(
        functions, lambda f, due: fired.append((f.name, due)), clock=clock, log=lines.append
    )

    assert [f.name for f, _ in scheduler.jobs] == [
        "roll_up_favorites",
        "send_email_digests",
        "nightly",
    ]
    assert lines == [lines[0]] and "monthly cannot run here" in lines[0]
    clock.advance(seconds=59)
    assert scheduler.tick() == [] and scheduler.seconds_to_next() == 1
    clock.advance(seconds=1)
    assert [f.name for f in scheduler.tick()] == ["roll_up_favorites"]
    assert fired == [("roll_up_favorites", START + dt.timedelta(minutes=1))]
    assert scheduler.tick() == []

    clock.advance(minutes=59)  # 58 roll-ups missed: one run, then back on the minute
    assert [f.name for f in scheduler.tick()] == ["roll_up_favorites", "send_email_digests"]
    assert fired[-1] == ("send_email_digests", START + dt.timedelta(hours=1))
    assert dict((f.name, t) for f, t in scheduler.jobs)[
        "roll_up_favorites"
    ] == START + dt.timedelta(hours=1, minutes=1)

    clock.now = at("2026-03-15T00:00", "Europe/London")
    assert "nightly" in [f.name for f in scheduler.tick()]


# ---- through the Functions emulator ------------------------------------------------------


def test_a_schedule_cannot_be_fired_while_triggers_are_paused(
    run_schedule: Callable[[str], schedules.RunResult],
) -> None:
    with pytest.raises(schedules.ScheduleRunError, match="e2e"):
        run_schedule("roll_up_favorites")


@pytest.mark.e2e
def test_run_schedule_rolls_favourites_up_into_the_count_through_the_emulator(
    firebase_stack: EmulatorStack,
    firestore_db: firestore.Client,
    run_schedule: Callable[[str], schedules.RunResult],
) -> None:
    home = firestore_db.document("listings/scheduled-home")
    home.set(listing("agent-1", status="active", favoritesCount=0))
    batch = firestore_db.batch()
    for path, data in favorites.counter_documents(
        home.id, ["u1", "u2"], dt.datetime.now(dt.UTC)
    ).items():
        batch.set(firestore_db.document(path), data)
    batch.commit()
    # A reload of the triggers (pausing and resuming them does one) moves the function to
    # a new endpoint generation: the run must find it there.
    set_background_triggers(firebase_stack, False)
    set_background_triggers(firebase_stack, True)
    names = [f.name for f in schedules.declared(firebase_stack.host("functions"))]
    assert names.count("roll_up_favorites") == 1

    result = run_schedule("roll_up_favorites")

    assert result.ok and result.seconds < 60
    assert home.get().get("favoritesCount") == 2
