"""firekit.observe in process: one line per invocation, for functions declared with the
bare SDK as main.py's are, through the SDK's own request path (a Flask request)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import flask
import jsonschema
import main
import pytest
from firebase_functions import https_fn, scheduler_fn, tasks_fn

from firekit import logs, metrics, observe
from firekit.callables import callable_function
from firekit.events import AnyDocument, DocumentChange, Effects, document_trigger

from .lines import SCHEMA, invocation_lines, parse_json_lines

APP = flask.Flask(__name__)
TRACE_ID = "105445aa7843bc8bf206b12000100000"
SEEN: dict[str, str] = {}


@https_fn.on_request()
def feed(request: flask.Request) -> flask.Response:
    SEEN["request_id"] = observe.request_id()
    logs.info("looking the token up", token_length=len(request.args.get("token", "")))
    if request.args.get("boom"):
        raise LookupError("feed store down")
    return flask.Response("no such feed", status=404)


@scheduler_fn.on_schedule(schedule="every 5 minutes")
def clock(event: scheduler_fn.ScheduledEvent) -> None:
    raise TimeoutError("the clock's query timed out")


@tasks_fn.on_task_dispatched()
def chores(request: https_fn.CallableRequest[Any]) -> dict[str, str]:
    return {"done": str(request.data)}


OBSERVED_FEED = observe.observed(feed)


def request(
    function: Callable[[flask.Request], Any],
    *,
    path: str = "/",
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: str | None = None,
) -> flask.Response:
    with APP.test_request_context(
        path, method=method, headers=headers or {}, data=body, content_type="application/json"
    ):
        return APP.make_response(function(flask.request))


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[dict[str, Any]]]:
    def read() -> list[dict[str, Any]]:
        captured = capsys.readouterr()
        return parse_json_lines(captured.out + captured.err)

    return read


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[metrics.Aggregator]:
    """This process's counts, fresh (and never flushed: no function instance here)."""
    aggregator = metrics.Aggregator(autoflush=False)
    monkeypatch.setattr(metrics, "AGGREGATOR", aggregator)
    yield aggregator


def test_every_deployed_function_is_observed_once_with_its_kind() -> None:
    kinds = {}
    for name in main.DEPLOYED:
        function = getattr(main, name)
        assert getattr(function, observe.OBSERVED) is True
        assert not getattr(function.__wrapped__, observe.OBSERVED, False), name  # once
        assert observe.observed(function) is function
        kinds[name] = observe.invocation_kind(function)
    assert set(kinds.values()) == {"callable", "trigger", "https", "task", "schedule", "blocking"}
    assert (kinds["approve_listing"], kinds["stripe_webhook"], kinds["viewing_clock"]) == (
        "callable",
        "https",  # a webhook says so itself when it runs (firekit.webhooks)
        "schedule",
    )
    assert (kinds["deliverAlerts"], kinds["before_user_created"]) == ("task", "blocking")


def test_firekit_declarations_come_observed() -> None:
    @callable_function(AnyDocument, name="probe")
    def probe(call: Any, data: AnyDocument) -> None: ...

    @document_trigger("probes/{id}", model=AnyDocument)
    def on_probe(change: DocumentChange[AnyDocument], effects: Effects) -> None: ...

    for function in (probe, on_probe):
        assert getattr(function, observe.OBSERVED) is True
    assert probe.__contract__.function == "probe"  # type: ignore[attr-defined]


def test_an_https_answer_gives_its_outcome_and_the_header_its_trace(
    lines: Callable[[], list[dict[str, Any]]], counted: metrics.Aggregator
) -> None:
    header = {"X-Cloud-Trace-Context": f"{TRACE_ID}/1234567890;o=1"}
    response = request(OBSERVED_FEED, path="/?token=abc", headers=header)
    assert response.status_code == 404
    detail, line = lines()
    assert line == {
        "severity": "WARNING",
        "message": "feed NOT_FOUND",
        "function": "feed",
        "kind": "https",
        "outcome": "NOT_FOUND",
        "latency_ms": line["latency_ms"],
        "request_id": SEEN["request_id"],
        "uid": None,
        logs.TRACE_FIELD: f"projects/demo-marketplace/traces/{TRACE_ID}",
        logs.SPAN_FIELD: f"{1234567890:016x}",
        logs.SAMPLED_FIELD: True,
        "status": 404,
    }
    jsonschema.validate(line, SCHEMA)
    # Another line of the same invocation names the same request, trace and function.
    assert (detail["message"], detail["token_length"]) == ("looking the token up", 3)
    for field in ("function", "request_id", logs.TRACE_FIELD):
        assert detail[field] == line[field]
    [by_function] = counted.pending().values()
    assert by_function["feed"].outcomes == {"NOT_FOUND": 1}
    assert (by_function["feed"].count, by_function["feed"].ok) == (1, 1)  # a refusal is ok


@pytest.mark.parametrize("header", ["", "not-a-trace", "abc/1;o=1", f"{TRACE_ID[:-1]}/1"])
def test_without_a_valid_trace_header_the_trace_is_null(
    lines: Callable[[], list[dict[str, Any]]], header: str
) -> None:
    request(OBSERVED_FEED, headers={"X-Cloud-Trace-Context": header} if header else {})
    [_, line] = lines()
    assert line[logs.TRACE_FIELD] is None and logs.SPAN_FIELD not in line


def test_an_exception_that_escapes_is_an_error_with_its_traceback(
    lines: Callable[[], list[dict[str, Any]]], counted: metrics.Aggregator
) -> None:
    with pytest.raises(LookupError):
        request(OBSERVED_FEED, path="/?boom=1")
    [_, line] = lines()
    assert (line["severity"], line["outcome"], line["status"]) == ("ERROR", "INTERNAL", 500)
    assert line["errorType"] == "LookupError"
    assert line["stack_trace"].startswith("Traceback (most recent call last):")
    assert line["stack_trace"].rstrip().endswith("LookupError: feed store down")
    jsonschema.validate(line, SCHEMA)
    [by_function] = counted.pending().values()
    assert (by_function["feed"].count, by_function["feed"].ok) == (1, 0)


def test_a_schedules_exception_the_sdk_catches_still_puts_its_traceback_on_the_line(
    lines: Callable[[], list[dict[str, Any]]],
) -> None:
    headers = {
        "X-CloudScheduler-JobName": "firebase-schedule-clock-us-central1",
        "X-CloudScheduler-ScheduleTime": "2026-12-03T14:15:00Z",
    }
    response = request(observe.observed(clock), method="POST", headers=headers)
    assert response.status_code == 500  # the SDK's answer
    [line] = [entry for entry in lines() if "latency_ms" in entry]
    assert (line["kind"], line["outcome"], line["severity"]) == ("schedule", "INTERNAL", "ERROR")
    assert line["event_id"] == "firebase-schedule-clock-us-central1@2026-12-03T14:15:00Z"
    assert "TimeoutError: the clock's query timed out" in line["stack_trace"]
    jsonschema.validate(line, SCHEMA)


def test_a_task_is_named_by_its_task(lines: Callable[[], list[dict[str, Any]]]) -> None:
    headers = {"X-CloudTasks-TaskName": "job-00003", "X-CloudTasks-QueueName": "chores"}
    body = json.dumps({"data": {"job": 3}})
    response = request(observe.observed(chores), method="POST", headers=headers, body=body)
    assert response.status_code == 200
    [line] = invocation_lines(lines())
    assert (line["kind"], line["event_id"], line["outcome"]) == ("task", "job-00003", "ok")
    jsonschema.validate(line, SCHEMA)


def test_a_refusal_of_the_sdk_is_read_from_its_answer(
    lines: Callable[[], list[dict[str, Any]]],
) -> None:
    body = json.dumps({"data": 1})
    response = request(observe.observed(chores), method="GET", body=body)  # a task is a POST
    assert response.status_code == 400
    [line] = invocation_lines(lines())
    assert (line["outcome"], line["severity"]) == ("INVALID_ARGUMENT", "WARNING")


def test_the_functions_emulators_readiness_probe_is_no_invocation(
    lines: Callable[[], list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FUNCTIONS_EMULATOR", "true")
    probed = request(OBSERVED_FEED, path="/__/health")  # what the emulator asks a new worker
    assert probed.status_code == 200
    assert lines() == []  # the function never ran
    request(OBSERVED_FEED, path="/feed")
    assert len(invocation_lines(lines())) == 1


def test_outside_an_invocation_annotations_change_nothing_and_ids_are_fresh() -> None:
    observe.annotate(outcome="ok", uid="u1", shown=False)
    assert observe.current() is None
    assert not observe.record_failure(RuntimeError("not in a call"))
    assert observe.request_id() != observe.request_id()


def test_a_failure_in_the_bookkeeping_never_fails_the_invocation(
    lines: Callable[[], list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken(metrics.Aggregator):
        def record(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("counting broke")

    monkeypatch.setattr(metrics, "AGGREGATOR", Broken(autoflush=False))
    assert request(OBSERVED_FEED).status_code == 404
    [_, line, complaint] = lines()
    assert line["outcome"] == "NOT_FOUND"
    assert (complaint["severity"], complaint["message"]) == ("ERROR", "invocation line failed")
    assert complaint["error"] == "RuntimeError: counting broke"


def test_a_browsers_preflight_gets_its_line_and_stays_out_of_the_metrics(
    lines: Callable[[], list[dict[str, Any]]], counted: metrics.Aggregator
) -> None:
    asked = {"Origin": "http://127.0.0.1:5000", "Access-Control-Request-Method": "POST"}
    answered = request(main.dismiss_report, method="OPTIONS", headers=asked)
    assert answered.status_code in (200, 204)  # the SDK's CORS answer; no code of ours ran
    [line] = invocation_lines(lines())
    assert (line["function"], line["kind"], line["outcome"]) == (
        "dismiss_report",
        "callable",
        "preflight",
    )
    jsonschema.validate(line, SCHEMA)
    # Counted, it would put a ~1 ms "ok" beside every call a browser makes.
    assert counted.pending() == {}
