"""What `make dev` prints of the functions' log lines (scripts/devlog.py), from lines as
the Functions emulator writes them to its log."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import devlog

AT = dt.datetime(2026, 12, 3, 14, 3, 7)


def written(entry: dict[str, Any]) -> str:
    """A function's line as the emulator's log holds it."""
    return devlog.FUNCTION_OUTPUT + json.dumps(entry)


def invocation(**fields: Any) -> dict[str, Any]:
    return {
        "severity": "INFO",
        "message": "calendar_link ok",
        "function": "calendar_link",
        "kind": "callable",
        "outcome": "ok",
        "latency_ms": 41.26,
        "request_id": "0" * 32,
        "uid": "y8V1653Qttchpq8OlGUu9r2Tp22f",
        "logging.googleapis.com/trace": None,
        **fields,
    }


def test_an_invocation_is_one_short_line() -> None:
    assert devlog.readable(written(invocation()), AT) == (
        "14:03:07 INFO  calendar_link              ok                      41 ms  "
        "uid=y8V1653Qttchpq8OlGUu9r2Tp22f"
    )


def test_a_refusal_says_why_and_an_event_names_its_event() -> None:
    refused = invocation(severity="WARNING", outcome="UNAUTHENTICATED", uid=None, latency_ms=3.2)
    assert devlog.readable(written({**refused, "reason": "signed_out"}), AT) == (
        "14:03:07 WARN  calendar_link              UNAUTHENTICATED        3.2 ms  uid=-"
        "  reason=signed_out"
    )
    event = invocation(function="on_device_written", kind="trigger", outcome="applied")
    del event["uid"]
    event["event_id"] = "c5214ee4-301a-400d-9b16-a780aff8349e"
    shown = devlog.readable(written(event), AT)
    assert shown is not None and shown.endswith("event=c5214ee4-301a-400d-9b16-a78…")


def test_an_error_shows_its_traceback_under_it() -> None:
    trace = "Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'k'\n"
    failed = invocation(severity="ERROR", outcome="INTERNAL", stack_trace=trace)
    shown = devlog.readable(written(failed), AT)
    assert shown is not None
    assert shown.splitlines() == [
        "14:03:07 ERROR calendar_link              INTERNAL                41 ms  "
        "uid=y8V1653Qttchpq8OlGUu9r2Tp22f",
        "      Traceback (most recent call last):",
        '        File "x.py", line 1',
        "      KeyError: 'k'",
    ]


def test_other_lines_show_from_warning_up_and_anything_unstructured() -> None:
    detail = {"severity": "INFO", "message": "offer made", "function": "make_offer"}
    assert devlog.readable(written(detail), AT) is None
    warned = {"severity": "WARNING", "message": "push to retry\nmore", "function": "notify"}
    assert devlog.readable(written(warned), AT) == "14:03:07 WARN  notify: push to retry"
    crash = devlog.FUNCTION_OUTPUT + "ModuleNotFoundError: No module named 'pillow'"
    assert devlog.readable(crash, AT) == (
        "14:03:07       | ModuleNotFoundError: No module named 'pillow'"
    )
    assert devlog.readable('i  functions: Beginning execution of "x"', AT) is None
    timed_out = "⚠  functions: Your function timed out after ~60s."
    assert devlog.readable(timed_out, AT) == f"14:03:07 WARN  {timed_out}"


def test_severity_is_coloured_on_a_terminal() -> None:
    shown = devlog.readable(
        written(invocation(severity="ERROR", outcome="INTERNAL")), AT, color=True
    )
    assert shown is not None and "\033[31mERROR\033[0m" in shown


def test_following_shows_whole_new_lines_in_order(tmp_path: Path) -> None:
    log = tmp_path / "emulators.log"
    log.write_text("i  functions: before we started\n")
    stop = threading.Event()
    shown: list[str] = []
    arrived = threading.Condition()

    def show(text: str) -> None:
        with arrived:
            shown.append(text)
            arrived.notify_all()

    start = log.stat().st_size
    follower = threading.Thread(
        target=devlog.follow,
        args=(log, show, stop),
        kwargs={"offset": start, "poll_seconds": 0.01, "clock": lambda: AT},
    )
    follower.start()
    first = written(invocation())
    with log.open("a") as out:
        out.write(first[:30])  # half a line: nothing yet
        out.flush()
        out.write(first[30:] + "\n" + written(invocation(outcome="INTERNAL")) + "\n")
    with arrived:
        assert arrived.wait_for(lambda: len(shown) == 2, timeout=10)
    stop.set()
    follower.join(timeout=10)
    assert [line.split()[3] for line in shown] == ["ok", "INTERNAL"]
