"""Structured log lines: one JSON object per line, as Cloud Logging parses from stdout.

Mirrors ``firebase_functions.logger`` (``severity`` + ``message`` + extra fields, ERROR
and worse to stderr) with two differences that matter here: values that JSON cannot
encode (datetimes, enums) are written with ``str`` instead of raising, and each line is
written in a single call so lines from concurrent requests never interleave.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal

Severity = Literal["DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"]
_STDERR_SEVERITIES = frozenset({"ERROR", "CRITICAL"})

LOG_KIND_FIELD = "logKind"
"""Field that tells the one-per-call and one-per-event lines apart from everything else."""


def write(severity: Severity, message: str, **fields: Any) -> None:
    """Write one structured line with ``severity``, ``message`` and ``fields``."""
    entry = {"severity": severity, "message": message, **fields}
    line = json.dumps(entry, default=str, ensure_ascii=False) + "\n"
    # Resolved per call, not at import, so test capture and stream swaps see the line.
    stream = sys.stderr if severity in _STDERR_SEVERITIES else sys.stdout
    stream.write(line)
    stream.flush()


def info(message: str, **fields: Any) -> None:
    """Log at INFO."""
    write("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    """Log at WARNING."""
    write("WARNING", message, **fields)


def error(message: str, **fields: Any) -> None:
    """Log at ERROR (goes to stderr, like the SDK's logger)."""
    write("ERROR", message, **fields)


def call_line(
    function: str, uid: str | None, outcome: str, latency_ms: float, **fields: Any
) -> None:
    """The one line per callable invocation: who called what, how it ended, how long."""
    severity: Severity = "INFO" if outcome == "ok" else _outcome_severity(outcome)
    write(
        severity,
        f"{function} {outcome}",
        **{LOG_KIND_FIELD: "call"},
        function=function,
        uid=uid,
        outcome=outcome,
        latencyMs=round(latency_ms, 1),
        **fields,
    )


def event_line(
    function: str,
    event_id: str,
    document: str,
    outcome: str,
    latency_ms: float,
    **fields: Any,
) -> None:
    """The one line per trigger event: which event, which document, how it ended."""
    severity: Severity = "ERROR" if outcome == "error" else "INFO"
    write(
        severity,
        f"{function} {outcome}",
        **{LOG_KIND_FIELD: "event"},
        function=function,
        eventId=event_id,
        document=document,
        outcome=outcome,
        latencyMs=round(latency_ms, 1),
        **fields,
    )


def _outcome_severity(outcome: str) -> Severity:
    # A server fault is an ERROR; a caller's mistake (bad input, no auth) only a WARNING,
    # so alerts on ERROR do not fire when clients misbehave.
    return "ERROR" if outcome in {"INTERNAL", "UNKNOWN", "DATA_LOSS"} else "WARNING"
