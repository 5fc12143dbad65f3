"""Every kind of function on the emulators writes one line per invocation that fits the
schema (ops/log-line.schema.json), read back from the Functions emulator's own log.

One test, one pass over the kinds on the session's stack, one call after another (side
by side, ten workers starting at once on two cores outlast any sane timeout): a callable
answered, refused by us, refused by the SDK for a bad token, and called with the wrong
method; a Firestore trigger; the Stripe webhook; an HTTPS function; a Cloud
Task; a schedule; the blocking sign-up function.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from google.cloud import firestore

import devlog
import devstack
from firekit.fanout.queue import Task, cloud_tasks_queue
from pytest_firebase.auth import AuthEmulator
from pytest_firebase.schedules import RunResult
from pytest_firebase.stack import EmulatorStack
from pytest_firebase.webhooks import SignedWebhook, stripe_event

from .lines import emulator_log, function_lines, invocation_lines, schema_errors

PROJECT = devstack.PROJECT_ID


def trace_header() -> tuple[dict[str, str], str]:
    """A fresh ``X-Cloud-Trace-Context`` and the trace field it must give."""
    trace_id = uuid.uuid4().hex
    return (
        {"X-Cloud-Trace-Context": f"{trace_id}/42;o=1"},
        f"projects/{PROJECT}/traces/{trace_id}",
    )


@pytest.mark.e2e
def test_every_kind_of_function_writes_one_line_per_invocation_that_fits_the_schema(
    firebase_stack: EmulatorStack,
    firestore_db: firestore.Client,
    auth_emulator: AuthEmulator,
    sign_stripe_webhook: Callable[..., SignedWebhook],
    run_schedule: Callable[[str], RunResult],
) -> None:
    _, offset = emulator_log(firebase_stack.emulator_log)
    url = firebase_stack.functions_url
    traces: dict[str, str] = {}

    def post(name: str, what: str, **kwargs: Any) -> requests.Response:
        headers, traces[what] = trace_header()
        return requests.post(
            url(name), headers={**headers, **kwargs.pop("headers", {})}, timeout=60, **kwargs
        )

    # The blocking function first: its account signs the callable in.
    user = auth_emulator.sign_up(f"lines-{uuid.uuid4().hex[:8]}@example.com", "correct-horse-1")
    secret = devstack.local_secret("STRIPE_WEBHOOK_SECRET")
    event_id = f"evt_{uuid.uuid4().hex[:14]}"
    delivery = sign_stripe_webhook(
        stripe_event("customer.created", {"id": "cus_x"}, event_id=event_id), secret
    )
    token = f"obs{uuid.uuid4().hex[:8]}"
    job = f"export-lines-{token}"
    calls: dict[str, Callable[[], Any]] = {
        "answered": lambda: post(
            "calendar_link",
            "answered",
            json={"data": {}},
            headers={"Authorization": f"Bearer {user.id_token}"},
        ),
        "signed out": lambda: post("calendar_link", "signed out", json={"data": {}}),
        "bad token": lambda: post(
            "calendar_link",
            "bad token",
            json={"data": {}},
            headers={"Authorization": "Bearer not-a-token"},
        ),
        "wrong method": lambda: requests.get(
            url("calendar_link"), headers=trace_header()[0], timeout=60
        ),
        "webhook": lambda: post(
            "stripe_webhook", "webhook", data=delivery.body, headers=delivery.headers
        ),
        "https": lambda: requests.get(url("viewing_calendar"), params={"token": token}, timeout=60),
        "schedule": lambda: run_schedule("viewing_clock"),
        "task": lambda: cloud_tasks_queue("accountTasks")(
            Task(job=job, kind="export", params={"uid": token, "exportId": token})
        ),
        "trigger": lambda: firestore_db.document(f"users/{token}/devices/{token}").set(
            {"platform": "web"}
        ),
    }
    answers = {what: call() for what, call in calls.items()}
    statuses = {what: answers[what].status_code for what in ("answered", "signed out", "https")}
    assert statuses == {"answered": 200, "signed out": 401, "https": 404}
    assert answers["webhook"].json() == {"outcome": "ignored_type"}

    expected = {
        "answered": ("calendar_link", "callable"),
        "signed out": ("calendar_link", "callable"),
        "bad token": ("calendar_link", "callable"),
        "wrong method": ("calendar_link", "callable"),
        "webhook": ("stripe_webhook", "webhook"),
        "https": ("viewing_calendar", "https"),
        "schedule": ("viewing_clock", "schedule"),
        "task": ("accountTasks", "task"),
        "trigger": ("on_device_written", "trigger"),
        "blocking": ("before_user_created", "blocking"),
    }
    deadline = time.monotonic() + 90
    raw: list[str] = []
    while True:
        read, offset = emulator_log(firebase_stack.emulator_log, offset)
        raw += read
        lines = function_lines(raw)
        seen = {(line["function"], line["kind"]) for line in invocation_lines(lines)}
        missing = sorted(set(expected.values()) - seen)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert missing == [], f"no line from {missing} in {firebase_stack.emulator_log}"

    invocations = invocation_lines(lines)
    # Every invocation line fits the schema; each names its own request.
    assert {
        line["request_id"]: schema_errors(line) for line in invocations if schema_errors(line)
    } == {}
    assert len({line["request_id"] for line in invocations}) == len(invocations)

    def only(function: str, **wanted: Any) -> dict[str, Any]:
        found = [
            line
            for line in invocations
            if line["function"] == function and all(line.get(k) == v for k, v in wanted.items())
        ]
        assert len(found) == 1, (function, wanted, found)
        return found[0]

    answered = only("calendar_link", **{"logging.googleapis.com/trace": traces["answered"]})
    assert (answered["outcome"], answered["uid"], answered["severity"]) == ("ok", user.uid, "INFO")
    assert answered["logging.googleapis.com/spanId"] == f"{42:016x}"
    signed_out = only("calendar_link", **{"logging.googleapis.com/trace": traces["signed out"]})
    assert (signed_out["outcome"], signed_out["reason"], signed_out["uid"]) == (
        "UNAUTHENTICATED",
        "signed_out",
        None,
    )
    bad = only("calendar_link", **{"logging.googleapis.com/trace": traces["bad token"]})
    assert (bad["outcome"], bad["uid"], bad["status"]) == ("UNAUTHENTICATED", None, 401)
    assert "reason" not in bad  # refused by the SDK, before our code ran
    # The emulator's own GET /__/health to each new worker is no invocation: one such line.
    [wrong] = [line for line in invocations if line.get("reason") == "method"]
    assert (wrong["outcome"], wrong["status"]) == ("INVALID_ARGUMENT", 400)

    webhook = only("stripe_webhook", event_id=event_id)
    assert (webhook["kind"], webhook["outcome"], webhook["status"]) == (
        "webhook",
        "ignored_type",
        200,
    )
    assert webhook["logging.googleapis.com/trace"] == traces["webhook"]
    https = only("viewing_calendar")
    assert (https["outcome"], https["severity"], https["uid"]) == ("NOT_FOUND", "WARNING", None)
    schedule = only("viewing_clock")
    assert schedule["outcome"] == "ok" and schedule["event_id"].startswith("firebase-schedule-")
    assert set(schedule["viewings"]) == {"lapsed", "completed", "reminded"}
    task = only("accountTasks", event_id=f"{job}-00000")
    assert (task["outcome"], task["job"]) == ("exported", job)
    trigger = only("on_device_written", document=f"users/{token}/devices/{token}")
    assert trigger["outcome"] == "applied" and trigger["event_id"]
    blocking = only("before_user_created", uid=user.uid)
    assert (blocking["outcome"], blocking["status"]) == ("ok", 200)

    # And `make dev` shows each as one line of its own (an error's traceback under it).
    now = dt.datetime.now()
    for text in raw:
        [*entry] = invocation_lines(function_lines([text]))
        if entry:
            shown = devlog.readable(text, now)
            assert shown is not None
            head = shown.splitlines()[0].split()
            assert head[2:4] == [entry[0]["function"], entry[0]["outcome"]], shown
