"""Scheduled functions (``scheduler_fn.on_schedule``) under the emulators.

The emulators never run a schedule: the Functions emulator only serves each scheduled
function as an HTTP endpoint, ``/<project>/<region>/<name>-<generation>``, where the
generation grows each time the emulator reloads its triggers (pausing and resuming
background triggers does). A POST there runs the function once, with the headers Cloud
Scheduler sends, and answers when it has finished (200, or 500 if it raised); while
background triggers are paused it answers 204 and runs nothing.

This module reads the schedules from the emulator's own list of loaded functions (its
``/backends`` endpoint: the manifest firebase-tools loaded from the SDK's discovery, the
one it deploys from), parses the schedule strings Cloud Scheduler accepts (App Engine cron
style and unix cron), and runs each function on its schedule (:class:`Scheduler`,
:func:`run_in_background`) or once on demand (:func:`run_once`).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

import requests

DEFAULT_TIME_ZONE = "UTC"
"""Cloud Scheduler's zone for a 2nd-gen function that names none."""
PAUSED_STATUS = 204
"""What the Functions emulator answers, running nothing, while background triggers are off."""


class ScheduleError(ValueError):
    """A schedule this module cannot parse, or a function the emulator has not loaded."""


class ScheduleRunError(RuntimeError):
    """A scheduled function did not run to completion (it raised, or triggers are paused)."""


@dataclass(frozen=True)
class ScheduledFunction:
    """One deployed scheduled function, as the Functions emulator loaded it."""

    name: str
    region: str
    schedule: str
    time_zone: str = DEFAULT_TIME_ZONE
    timeout_s: float = 60.0

    @property
    def job_name(self) -> str:
        """The Cloud Scheduler job Firebase deploys for it (sent as a header)."""
        return f"firebase-schedule-{self.name}-{self.region}"


@dataclass(frozen=True)
class RunResult:
    """How one run went: the emulator's HTTP status, its body and the wall time."""

    name: str
    status: int
    seconds: float
    body: str

    @property
    def ok(self) -> bool:
        """True when the function ran and returned without raising."""
        return self.status == 200


# ---- what is deployed ----------------------------------------------------------------


def declared(functions_host: str, *, timeout: float = 10.0) -> list[ScheduledFunction]:
    """Every scheduled function the Functions emulator at ``functions_host`` has loaded."""
    try:
        response = requests.get(f"http://{functions_host}/backends", timeout=timeout)
        response.raise_for_status()
        backends = response.json()["backends"]
    except (requests.RequestException, ValueError, KeyError) as err:
        raise ScheduleError(
            f"The Functions emulator at {functions_host} listed no functions: {err}"
        ) from err
    # A trigger reload after a pause keeps the old, disabled records: one entry per id.
    found: dict[str, ScheduledFunction] = {}
    for backend in backends:
        for trigger in backend["functionTriggers"]:
            schedule = trigger.get("schedule")
            if schedule:
                found[trigger["id"]] = ScheduledFunction(
                    name=trigger["name"],
                    region=trigger["region"],
                    schedule=schedule["schedule"],
                    time_zone=schedule.get("timeZone") or DEFAULT_TIME_ZONE,
                    timeout_s=float(trigger.get("timeoutSeconds") or 60),
                )
    return sorted(found.values(), key=lambda f: f.name)


def find(functions_host: str, name: str) -> ScheduledFunction:
    """The scheduled function called ``name``; ScheduleError names the ones there are."""
    functions = declared(functions_host)
    for function in functions:
        if function.name == name:
            return function
    known = ", ".join(f.name for f in functions) or "none"
    raise ScheduleError(f"No scheduled function {name!r} is loaded (loaded: {known}).")


# ---- running one -----------------------------------------------------------------------


def _endpoint(functions_host: str, project: str, function: ScheduledFunction) -> str:
    """The URL of the function's live trigger generation.

    Asking for the bare name is refused with the list of every trigger key the emulator
    holds. Resuming paused triggers reloads them under keys of a new generation, the old
    keys staying disabled, so the highest generation of this function is the live one.
    """
    base = f"http://{functions_host}/{project}/{function.region}"
    listing = requests.get(f"{base}/{function.name}", timeout=10).text
    key = re.compile(rf"\b{re.escape(function.region)}-{re.escape(function.name)}-(\d+)\b")
    generations = [int(match) for match in key.findall(listing)]
    if not generations:
        raise ScheduleError(f"The Functions emulator has no trigger for {function.name}.")
    return f"{base}/{function.name}-{max(generations)}"


def run_once(
    functions_host: str,
    project: str,
    function: ScheduledFunction,
    *,
    scheduled_at: dt.datetime | None = None,
) -> RunResult:
    """Run ``function`` once through the Functions emulator and wait until it has finished.

    Sends what Cloud Scheduler sends (job name, schedule time), so the handler's
    ``ScheduledEvent`` is the one it gets when deployed.
    """
    when = (scheduled_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    headers = {
        "X-CloudScheduler-JobName": function.job_name,
        "X-CloudScheduler-ScheduleTime": when.isoformat().replace("+00:00", "Z"),
    }
    started = time.monotonic()
    response = requests.post(
        _endpoint(functions_host, project, function),
        headers=headers,
        timeout=function.timeout_s + 30,  # the emulator answers when the function ends
    )
    return RunResult(function.name, response.status_code, time.monotonic() - started, response.text)


def expect_ran(result: RunResult) -> RunResult:
    """``result``, or ScheduleRunError saying why the function did not run to completion."""
    if result.status == PAUSED_STATUS:
        raise ScheduleRunError(
            f"{result.name} did not run: the Functions emulator's background triggers are "
            "paused (in pytest_firebase, mark the test with the triggers marker, e2e)."
        )
    if not result.ok:
        raise ScheduleRunError(f"{result.name} failed ({result.status}): {result.body[:500]}")
    return result


# ---- schedules -------------------------------------------------------------------------


class Schedule(Protocol):
    """When a job runs next: the first run time strictly after ``moment`` (aware)."""

    def next_after(self, moment: dt.datetime) -> dt.datetime: ...


@dataclass(frozen=True)
class Every:
    """``every N minutes|hours``: N after the previous run (the first N after start)."""

    interval: dt.timedelta

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` plus the interval."""
        return moment + self.interval


@dataclass(frozen=True)
class Cron:
    """A unix cron schedule (minute hour day-of-month month day-of-week) in a time zone.

    ``every day 09:00`` and ``every monday 09:00`` parse to this too.
    """

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 is Sunday, as in cron."""
    zone: ZoneInfo
    any_day: bool = True
    any_weekday: bool = True

    def _day_matches(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        by_date = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return by_date and by_weekday
        return by_date or by_weekday  # cron: both restricted means either

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first matching wall-clock minute in the zone strictly after ``moment``."""
        local = moment.astimezone(self.zone)
        day = local.date()
        for _ in range(366 * 8):  # leap-day schedules recur within 8 years
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        wall = dt.datetime.combine(day, dt.time(hour, minute), self.zone)
                        if wall > moment:
                            return wall
            day += dt.timedelta(days=1)
        raise ScheduleError("this cron schedule never runs")


_EVERY = re.compile(r"every (\d+) (minutes?|mins?|hours?|hrs?)")
_AT = re.compile(r"every ([a-z,]+) (\d{1,2}):(\d{2})")
_WEEKDAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_WEEKDAYS = {name: n for n, full in enumerate(_WEEKDAY_NAMES) for name in (full, full[:3])}
_DAY_NAMES = tuple(full[:3] for full in _WEEKDAY_NAMES)
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CRON_FIELDS = ((0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, _MONTH_NAMES), (0, 7, _DAY_NAMES))


def parse(text: str, time_zone: str = DEFAULT_TIME_ZONE) -> Schedule:
    """Parse a schedule as Cloud Scheduler takes it.

    Supported: ``every N minutes|mins|hours|hrs``, ``every day HH:MM``, ``every
    monday[,friday...] HH:MM``, and five-field unix cron (``*``, lists, ranges, steps,
    month and weekday names). Anything else raises ScheduleError naming the schedule.
    """
    spec = " ".join(text.lower().split())
    zone = ZoneInfo(time_zone)
    if match := _EVERY.fullmatch(spec):
        count, unit = int(match[1]), match[2]
        if count < 1:
            raise ScheduleError(f"{text!r}: the interval must be at least 1")
        minutes = count * (60 if unit.startswith("h") else 1)
        return Every(dt.timedelta(minutes=minutes))
    if match := _AT.fullmatch(spec):
        return _at_time(text, match[1], int(match[2]), int(match[3]), zone)
    fields = spec.split(" ")
    if len(fields) == 5 and not spec.startswith("every"):
        return _cron(text, fields, zone)
    raise ScheduleError(
        f"Unsupported schedule {text!r}: use 'every N minutes|hours', 'every day HH:MM', "
        "'every monday HH:MM' or five-field unix cron."
    )


def _at_time(text: str, days: str, hour: int, minute: int, zone: ZoneInfo) -> Cron:
    if hour > 23 or minute > 59:
        raise ScheduleError(f"{text!r}: no such time of day")
    weekdays: set[int] = set()
    if days != "day":
        for name in days.split(","):
            if name not in _WEEKDAYS:
                raise ScheduleError(f"{text!r}: {name!r} is not a day of the week")
            weekdays.add(_WEEKDAYS[name])
    return Cron(
        minutes=frozenset({minute}),
        hours=frozenset({hour}),
        days=frozenset(range(1, 32)),
        months=frozenset(range(1, 13)),
        weekdays=frozenset(weekdays or range(7)),
        zone=zone,
        any_weekday=not weekdays,
    )


def _cron(text: str, fields: list[str], zone: ZoneInfo) -> Cron:
    values = [
        _cron_field(text, field, *spec) for field, spec in zip(fields, _CRON_FIELDS, strict=True)
    ]
    weekdays = frozenset(day % 7 for day in values[4])  # 7 is Sunday too
    return Cron(
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=weekdays,
        zone=zone,
        # As cron does: a field starting with '*' (even '*/2') leaves the other day field
        # in charge; only two restricted day fields match either one.
        any_day=fields[2].startswith("*"),
        any_weekday=fields[4].startswith("*"),
    )


def _cron_value(text: str, token: str, names: tuple[str, ...], low: int) -> int:
    if token in names:
        return names.index(token) + low
    if not token.isdigit():
        raise ScheduleError(f"{text!r}: {token!r} is not a cron value")
    return int(token)


def _cron_field(
    text: str, field: str, low: int, high: int, names: tuple[str, ...]
) -> frozenset[int]:
    chosen: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = _cron_value(text, step_text, (), 1) if step_text else 1
        if span == "*":
            first, last = low, high
        else:
            start, _, end = span.partition("-")
            first = _cron_value(text, start, names, low)
            last = _cron_value(text, end, names, low) if end else (high if step_text else first)
        if not low <= first <= last <= high or step < 1:
            raise ScheduleError(f"{text!r}: {part!r} is outside {low}-{high}")
        chosen.update(range(first, last + 1, step))
    return frozenset(chosen)


# ---- the scheduler ---------------------------------------------------------------------


def utc_now() -> dt.datetime:
    """The real clock (the scheduler takes another in tests)."""
    return dt.datetime.now(dt.UTC)


@dataclass
class _Job:
    function: ScheduledFunction
    schedule: Schedule
    next_run: dt.datetime


class Scheduler:
    """Decides which scheduled functions are due; ``fire`` runs one (at its due time).

    Pure timing: it reads the time only from ``clock`` and runs nothing itself, so a test
    drives it with a fake clock. Runs that were missed (the machine slept) collapse into
    one, as Cloud Scheduler does not catch up either.
    """

    def __init__(
        self,
        functions: Iterable[ScheduledFunction],
        fire: Callable[[ScheduledFunction, dt.datetime], None],
        *,
        clock: Callable[[], dt.datetime] = utc_now,
        log: Callable[[str], None] = print,
    ) -> None:
        self._fire = fire
        self._clock = clock
        self._jobs: list[_Job] = []
        start = clock()
        for function in functions:
            try:
                schedule = parse(function.schedule, function.time_zone)
                first = schedule.next_after(start)  # a cron that never fires raises here
            except (ScheduleError, KeyError) as err:  # KeyError: unknown time zone
                log(f"schedule: {function.name} cannot run here ({err}); fire it by hand")
                continue
            self._jobs.append(_Job(function, schedule, first))

    @property
    def jobs(self) -> list[tuple[ScheduledFunction, dt.datetime]]:
        """Each scheduled function this scheduler runs, with its next run time."""
        return [(job.function, job.next_run) for job in self._jobs]

    def tick(self) -> list[ScheduledFunction]:
        """Fire every function that is due now; returns them."""
        now = self._clock()
        fired: list[ScheduledFunction] = []
        for job in self._jobs:
            if job.next_run > now:
                continue
            due = job.next_run
            while job.next_run <= now:
                job.next_run = job.schedule.next_after(job.next_run)
            self._fire(job.function, due)
            fired.append(job.function)
        return fired

    def seconds_to_next(self) -> float:
        """How long until the earliest next run (0 when one is due)."""
        if not self._jobs:
            return float("inf")
        soonest = min(job.next_run for job in self._jobs)
        return max(0.0, (soonest - self._clock()).total_seconds())


def run_in_background(
    functions_host: str,
    project: str,
    stop: threading.Event,
    *,
    log: Callable[[str], None] = print,
) -> Scheduler:
    """Run every scheduled function the emulator has loaded on its schedule, until ``stop``.

    Each run goes in a thread of its own (a long one never delays another function) and
    logs one line; a function still running when it is due again is skipped that time.
    """
    running: set[str] = set()
    lock = threading.Lock()

    def run(function: ScheduledFunction, due: dt.datetime) -> None:
        try:
            result = run_once(functions_host, project, function, scheduled_at=due)
            outcome = "ok" if result.ok else f"failed ({result.status}) {result.body[:200]!r}"
            if not stop.is_set():
                log(f"schedule: {function.name} {outcome} in {result.seconds:.1f} s")
        except (requests.RequestException, ScheduleError) as err:
            if not stop.is_set():  # the stack going down takes in-flight runs with it
                log(f"schedule: {function.name} could not run: {err}")
        finally:
            with lock:
                running.discard(function.name)

    def fire(function: ScheduledFunction, due: dt.datetime) -> None:
        with lock:
            if function.name in running:
                log(f"schedule: {function.name} skipped, its previous run is still going")
                return
            running.add(function.name)
        threading.Thread(target=run, args=(function, due), daemon=True).start()

    scheduler = Scheduler(declared(functions_host), fire, log=log)

    def loop() -> None:
        while not stop.is_set():
            try:
                scheduler.tick()
            except Exception as err:  # one bad tick must not stop every schedule for good
                log(f"schedule: tick failed ({err!r}); going on")
            stop.wait(min(scheduler.seconds_to_next(), 1.0))

    threading.Thread(target=loop, name="schedules", daemon=True).start()
    return scheduler


def main(argv: list[str] | None = None) -> int:
    """``python -m pytest_firebase.schedules <functions host> <project> <name>...``: run
    those scheduled functions once now, as Cloud Scheduler would, one line each."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3:
        print(main.__doc__, file=sys.stderr)
        return 2
    host, project, names = args[0], args[1], args[2:]
    failed = 0
    for name in names:
        result = run_once(host, project, find(host, name))
        print(
            f"schedule: {name} {'ok' if result.ok else f'failed ({result.status})'} "
            f"in {result.seconds:.1f} s"
        )
        failed += not result.ok
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
