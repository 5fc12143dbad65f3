"""One log line and one measurement per invocation, for every kind of function.

:func:`observed` wraps a deployed function (whatever made it: ``callable_function``,
``document_trigger``, or the SDK's own decorators) once, outermost, around the SDK's entry
point. For each call it opens an :class:`Invocation` (held in a context variable, so the
code it runs can name it: an audit entry its :func:`request_id`, a log line its trace),
times it, and at the end writes exactly one line in Cloud Logging's format::

    {"severity": "INFO", "message": "approve_listing ok", "function": "approve_listing",
     "kind": "callable", "outcome": "ok", "latency_ms": 41.2, "request_id": "...",
     "uid": "...", "logging.googleapis.com/trace": "projects/p/traces/..."}

and counts it in :mod:`firekit.metrics`. ``kind`` comes from the SDK's deploy manifest
(``__firebase_endpoint__``); ``uid`` is on the lines of callables, HTTPS and blocking
functions, ``event_id`` on the others'; the trace is ``X-Cloud-Trace-Context``'s, or null.
The line's schema is ``ops/log-line.schema.json``.

The layers inside do not write lines of their own: they :func:`annotate` the invocation
(the caller, the event, how it ended, any detail worth a field). What nobody annotated is
read from the answer, so a call the SDK refuses before our code runs (a bad ID token) or
a function declared with the bare SDK still gets its line: ``outcome`` from the HTTP
status (the callable protocol's error name where the body carries one), ``ok`` below 400.
An exception that escapes, or that an inner layer caught and :func:`record_failure`
recorded, makes the line an ERROR with its formatted ``stack_trace``, which Error
Reporting groups by. One recorded failure per line: a second one in the same invocation
gets a line of its own, as does any other line written meanwhile, each carrying the
invocation's ``function``, ``request_id`` and trace.

Severity: what an inner layer said; else ERROR with a stack trace or a 5xx answer;
WARNING for a 4xx answer (a caller's mistake: alerts on ERROR stay quiet); else INFO.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import re
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast, get_args

import flask
from cloudevents.http import CloudEvent

from firekit import logs, metrics
from firekit.bootstrap import project_id

Kind = Literal["callable", "trigger", "webhook", "https", "task", "schedule", "blocking"]
KINDS: tuple[Kind, ...] = get_args(Kind)
CALLER_KINDS = frozenset({"callable", "https", "blocking"})
"""Kinds whose line names the caller (``uid``); the others name the event (``event_id``)."""
_PROTOCOL_KINDS = frozenset({"callable", "task", "blocking"})
"""Kinds that answer errors in the callable protocol (``{"error": {"status": ...}}``)."""
_TRIGGERS: dict[str, Kind] = {
    "callableTrigger": "callable",
    "httpsTrigger": "https",
    "eventTrigger": "trigger",
    "scheduleTrigger": "schedule",
    "taskQueueTrigger": "task",
    "blockingTrigger": "blocking",
}
"""The SDK's manifest attribute for each kind of trigger (firebase-functions 0.6.0)."""
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
"""An answer's outcome when nothing better says it: the callable protocol's error name of
its status (as the SDK maps them), else ``HTTP_<status>``."""
PREFLIGHT = "preflight"
"""The outcome of a browser's CORS preflight (``OPTIONS``), which the SDK answers before
any function code runs: logged as an invocation, left out of the metrics."""
_PREFLIGHT_KINDS = frozenset({"callable", "https"})
_EMULATOR_PROBE_PATH = "/__/health"
_TRACE_HEADER = "X-Cloud-Trace-Context"
_TRACE_VALUE = re.compile(r"([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?")
"""``TRACE_ID/SPAN_ID;o=OPTIONS``: 32 hex digits, a decimal span id, sampled or not."""
OBSERVED = "__observed__"
"""Marks a function :func:`observed` already wraps (so wrapping it again changes nothing)."""

F = TypeVar("F", bound=Callable[..., Any])

_CURRENT: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar(
    "firekit_invocation", default=None
)


@dataclass
class Invocation:
    """One call of one deployed function, and what its layers said about it."""

    function: str
    kind: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    trace: str | None = None
    span_id: str | None = None
    sampled: bool | None = None
    uid: str | None = None
    event_id: str | None = None
    outcome: str | None = None
    severity: logs.Severity | None = None
    status: int | None = None
    stack_trace: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    _failure: BaseException | None = field(default=None, repr=False)

    def record_failure(self, exc: BaseException, context: Mapping[str, Any] | None = None) -> bool:
        """Put ``exc``'s traceback (and ``context``) on the line; False if the line already
        carries another one (the caller then logs this one on a line of its own)."""
        if self._failure is exc:
            return True
        if self._failure is not None:
            return False
        self._failure = exc
        self.stack_trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.fields.update({"errorType": type(exc).__name__, **dict(context or {})})
        return True


def current() -> Invocation | None:
    """The invocation this code runs in, if any."""
    return _CURRENT.get()


def request_id() -> str:
    """The id of the request this code serves (joins an audit entry to its log line)."""
    invocation = _CURRENT.get()
    return invocation.request_id if invocation is not None else uuid.uuid4().hex


def annotate(
    *,
    outcome: str | None = None,
    severity: logs.Severity | None = None,
    uid: str | None = None,
    event_id: str | None = None,
    kind: Kind | None = None,
    **fields: Any,
) -> None:
    """Say something about the invocation in progress, for its line: how it ended
    (``outcome``, and ``severity`` when the answer's status would mislead, e.g. a retry
    asked for on purpose), who called, which event, a finer ``kind`` (an HTTPS function
    that is a webhook), and extra fields. ``None`` says nothing (an earlier value stays).
    Outside an invocation, nothing happens."""
    invocation = _CURRENT.get()
    if invocation is None:
        return
    for name, value in (
        ("outcome", outcome),
        ("severity", severity),
        ("uid", uid),
        ("event_id", event_id),
        ("kind", kind),
    ):
        if value is not None:
            setattr(invocation, name, value)
    invocation.fields.update((name, value) for name, value in fields.items() if value is not None)


def record_failure(exc: BaseException, context: Mapping[str, Any] | None = None) -> bool:
    """Put ``exc``'s traceback on the line of the invocation in progress; False outside
    one, or when its line already carries another failure."""
    invocation = _CURRENT.get()
    return invocation is not None and invocation.record_failure(exc, context)


# --- the wrapper -----------------------------------------------------------------------


def observed(function: F) -> F:
    """``function`` (a deployed function: it carries the SDK's ``__firebase_endpoint__``)
    with one line and one measurement per call; ``function`` itself if already observed.

    ``functools.wraps`` keeps the manifest, ``__contract__`` and ``__wrapped__`` (the
    function without this layer), so the SDK deploys and serves the wrapper unchanged.
    """
    if getattr(function, OBSERVED, False):
        return function
    name = function.__firebase_endpoint__.entryPoint or function.__name__  # type: ignore[attr-defined]
    kind = invocation_kind(function)
    _watch_swallowed_errors()

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        request = _request_of(args)
        if _is_emulator_probe(request):
            return flask.Response("ready", mimetype="text/plain")
        invocation = _open(name, kind, request, args)
        token = _CURRENT.set(invocation)
        bound = logs.bind(_context_fields(invocation))
        started = time.perf_counter()
        escaped: BaseException | None = None
        result: Any = None
        try:
            result = function(*args, **kwargs)
            return result
        except BaseException as exc:
            escaped = exc
            raise
        finally:
            latency_ms = (time.perf_counter() - started) * 1000
            _close(invocation, result, escaped, latency_ms)
            logs.unbind(bound)
            _CURRENT.reset(token)

    setattr(run, OBSERVED, True)
    return cast(F, run)


def invocation_kind(function: Callable[..., Any]) -> Kind:
    """The kind of a deployed function, by its trigger in the SDK's deploy manifest."""
    endpoint = function.__firebase_endpoint__  # type: ignore[attr-defined]
    for attribute, kind in _TRIGGERS.items():
        if getattr(endpoint, attribute, None) is not None:  # an empty trigger ({}) counts
            return kind
    raise ValueError(f"{function.__name__}: no trigger in its manifest")


def observe_deployed(namespace: MutableMapping[str, Any]) -> tuple[str, ...]:
    """Observe, in place, every function of ``namespace`` (``main.py``'s) that the SDK
    deploys; their names, sorted."""
    names = sorted(n for n, f in namespace.items() if hasattr(f, "__firebase_endpoint__"))
    for name in names:
        namespace[name] = observed(namespace[name])
    return tuple(names)


def _request_of(args: tuple[Any, ...]) -> flask.Request | None:
    if args and isinstance(args[0], flask.Request):
        return args[0]
    if flask.has_request_context():
        return flask.request  # an event function's: functions-framework serves it in Flask
    return None


def _is_emulator_probe(request: flask.Request | None) -> bool:
    # The Functions emulator asks each new worker GET /__/health until it answers (any
    # answer), and functions-framework hands that to the function, whose refusal of a GET
    # would log and count as a call. It is none: answered here, no line, no count.
    return (
        request is not None
        and request.path == _EMULATOR_PROBE_PATH
        and os.environ.get("FUNCTIONS_EMULATOR") == "true"
    )


def _open(
    function: str, kind: str, request: flask.Request | None, args: tuple[Any, ...]
) -> Invocation:
    invocation = Invocation(function, kind)
    if request is not None:
        _read_trace(invocation, request.headers.get(_TRACE_HEADER, ""))
        if request.method == "OPTIONS" and kind in _PREFLIGHT_KINDS:
            invocation.outcome = PREFLIGHT
        if kind == "task":
            invocation.event_id = request.headers.get("X-CloudTasks-TaskName")
        elif kind == "schedule":
            job = request.headers.get("X-CloudScheduler-JobName")
            at = request.headers.get("X-CloudScheduler-ScheduleTime")
            invocation.event_id = f"{job}@{at}" if job and at else None
    if args and isinstance(args[0], CloudEvent):
        invocation.event_id = str(args[0].get("id"))
    return invocation


def _read_trace(invocation: Invocation, header: str) -> None:
    found = _TRACE_VALUE.fullmatch(header.strip())
    project = project_id()
    if found is None or project is None:
        return
    trace_id, span, sampled = found.groups()
    invocation.trace = f"projects/{project}/traces/{trace_id.lower()}"
    if span is not None and 0 < int(span) < 2**64:
        invocation.span_id = f"{int(span):016x}"  # Cloud Logging wants 16 hex digits
    if sampled is not None:
        invocation.sampled = sampled == "1"


def _context_fields(invocation: Invocation) -> dict[str, Any]:
    return {
        "function": invocation.function,
        "request_id": invocation.request_id,
        logs.TRACE_FIELD: invocation.trace,
    }


def _close(
    invocation: Invocation, result: Any, escaped: BaseException | None, latency_ms: float
) -> None:
    # Nothing here may fail the invocation: its answer is already made.
    try:
        invocation.status = _status_of(invocation.kind, result, escaped)
        if escaped is not None and invocation.severity not in (None, "ERROR", "CRITICAL"):
            escaped = None  # raised on purpose (a retry asked for), as the layer said
        if escaped is not None:
            invocation.record_failure(escaped)
        line = invocation_line(invocation, result, latency_ms)
        logs.emit(line)
        ok = line["severity"] not in ("ERROR", "CRITICAL")
        # A preflight precedes every browser call: counted, it would put a ~1 ms "ok"
        # beside each real call and skew a callable's latency and success rate.
        if line["outcome"] != PREFLIGHT:
            metrics.record(invocation.function, line["outcome"], ok, latency_ms)
        metrics.flush_if_due()
    except Exception as exc:
        logs.error("invocation line failed", error=exc)


def invocation_line(invocation: Invocation, result: Any, latency_ms: float) -> dict[str, Any]:
    """The invocation's one log line (see the module docstring)."""
    outcome = invocation.outcome or _outcome_of(invocation, result)
    line: dict[str, Any] = {
        "severity": _severity(invocation),
        "message": f"{invocation.function} {outcome}",
        "function": invocation.function,
        "kind": invocation.kind,
        "outcome": outcome,
        "latency_ms": round(latency_ms, 1),
        "request_id": invocation.request_id,
    }
    if invocation.kind in CALLER_KINDS:
        line["uid"] = invocation.uid
    else:
        line["event_id"] = invocation.event_id
    line[logs.TRACE_FIELD] = invocation.trace
    if invocation.span_id is not None:
        line[logs.SPAN_FIELD] = invocation.span_id
    if invocation.sampled is not None:
        line[logs.SAMPLED_FIELD] = invocation.sampled
    if invocation.status is not None:
        line["status"] = invocation.status
    for key, value in invocation.fields.items():
        line.setdefault(key, value)
    if invocation.stack_trace is not None:
        line["stack_trace"] = invocation.stack_trace
    return line


def _status_of(kind: str, result: Any, escaped: BaseException | None) -> int | None:
    if kind == "trigger":
        return None  # an event is acknowledged, or redelivered: no status of ours
    if escaped is not None:
        return 500  # what Flask answers for it
    if isinstance(result, flask.Response):
        return result.status_code
    if isinstance(result, tuple) and len(result) > 1 and isinstance(result[1], int):
        return result[1]
    return 200


def _outcome_of(invocation: Invocation, result: Any) -> str:
    status = invocation.status
    if invocation.stack_trace is not None and status is None:
        return "error"
    if status is None or status < 400:
        return "ok"
    if invocation.kind in _PROTOCOL_KINDS and isinstance(result, flask.Response):
        body = result.get_json(silent=True)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("status"), str):
            return str(error["status"])
    return _STATUS_NAMES.get(status, f"HTTP_{status}")


def _severity(invocation: Invocation) -> logs.Severity:
    if invocation.severity is not None:
        return invocation.severity
    if invocation.stack_trace is not None or (invocation.status or 0) >= 500:
        return "ERROR"
    if (invocation.status or 0) >= 400:
        return "WARNING"
    return "INFO"


# --- exceptions the SDK catches before they reach the wrapper --------------------------


class _SwallowedErrors(logging.Filter):
    """The SDK answers an exception of a scheduled function with a 500 after logging it
    with ``logging.exception`` (firebase-functions 0.6.0, ``scheduler_fn``), so it never
    reaches :func:`observed`: this filter on the root logger, which that call logs to,
    puts its traceback on the invocation's line. It lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            record_failure(exc)
        return True


_SWALLOWED = _SwallowedErrors()


def _watch_swallowed_errors() -> None:
    root = logging.getLogger()
    if _SWALLOWED not in root.filters:
        root.addFilter(_SWALLOWED)
