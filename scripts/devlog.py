"""The functions' log lines, readable in a terminal: what `make dev` prints while it runs.

The Functions emulator writes what each function prints to its log
(``.cache/logs/emulators-<offset>.log``), each line marked ``>  ``. :func:`follow` reads
that file as it grows and :func:`readable` turns each line into what a developer wants to
see: one short line per invocation (time, severity, function, outcome, latency, who or
which event), an error's traceback under it, the functions' own WARNING and ERROR lines,
and anything a function printed that is not a structured line (a crash at import). The
raw file stays as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

FUNCTION_OUTPUT = ">  "
"""How the emulator's log marks what a function wrote (stdout or stderr)."""
EMULATOR_TROUBLE = ("!!  functions:", "⚠  functions:")
"""The emulator's own warnings and errors about functions (a timeout, a failed load)."""
_SHOWN_SEVERITIES = {"WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"}
_LABELS = {"WARNING": "WARN", "CRITICAL": "CRIT", "EMERGENCY": "EMERG"}
_COLORS = {"ERROR": "31", "CRITICAL": "31", "WARNING": "33"}
_ID_WIDTH = 28


def readable(raw: str, at: dt.datetime, *, color: bool = False) -> str | None:
    """What the terminal shows for one line of the emulator's log (None: nothing)."""
    if raw.startswith(EMULATOR_TROUBLE):
        return f"{at:%H:%M:%S} {_label('WARNING', color)} {raw.strip()}"
    if not raw.startswith(FUNCTION_OUTPUT):
        return None
    text = raw[len(FUNCTION_OUTPUT) :].rstrip()
    try:
        entry = json.loads(text) if text.startswith("{") else None
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        return f"{at:%H:%M:%S}       | {text}" if text else None
    severity = str(entry.get("severity", "DEFAULT"))
    if "latency_ms" in entry:
        head = _invocation(entry, severity, at, color)
    elif severity in _SHOWN_SEVERITIES:
        function = entry.get("function")
        where = f"{function}: " if function else ""
        head = f"{at:%H:%M:%S} {_label(severity, color)} {where}{_first_line(entry)}"
    else:
        return None
    return head + _details(entry)


def _invocation(entry: dict[str, Any], severity: str, at: dt.datetime, color: bool) -> str:
    latency = float(entry.get("latency_ms") or 0)
    took = f"{latency:.1f} ms" if latency < 10 else f"{latency:.0f} ms"
    who = (
        f"uid={_short(entry['uid'])}"
        if "uid" in entry
        else f"event={_short(entry.get('event_id'))}"
    )
    reason = f"  reason={entry['reason']}" if entry.get("reason") else ""
    return (
        f"{at:%H:%M:%S} {_label(severity, color)} {entry.get('function', '?'):<26} "
        f"{entry.get('outcome', '?'):<19} {took:>9}  {who}{reason}"
    )


def _details(entry: dict[str, Any]) -> str:
    trace = entry.get("stack_trace")
    if not isinstance(trace, str):
        message = str(entry.get("message", ""))
        trace = message if message.startswith("Traceback") else ""
    return "".join(f"\n      {line}" for line in trace.rstrip().splitlines())


def _first_line(entry: dict[str, Any]) -> str:
    message = str(entry.get("message", ""))
    if not message or message.startswith("Traceback"):  # shown whole, below
        return ""
    return message.splitlines()[0]


def _short(value: object) -> str:
    if value is None:
        return "-"
    text = str(value)
    return text if len(text) <= _ID_WIDTH else text[: _ID_WIDTH - 1] + "…"


def _label(severity: str, color: bool) -> str:
    label = f"{_LABELS.get(severity, severity):<5}"
    code = _COLORS.get(severity)
    return f"\033[{code}m{label}\033[0m" if color and code else label


def follow(
    log: Path,
    show: Callable[[str], None],
    stop: threading.Event,
    *,
    offset: int = 0,
    color: bool = False,
    poll_seconds: float = 0.25,
    clock: Callable[[], dt.datetime] = dt.datetime.now,
) -> None:
    """Show each line ``log`` gains after byte ``offset``, readably (:func:`readable`),
    until ``stop`` is set; whole lines only (a line being written waits for its end)."""
    pending = b""
    while not stop.is_set():
        with log.open("rb") as file:
            file.seek(offset)
            data = file.read()
        offset += len(data)
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            shown = readable(line.decode("utf-8", "replace"), clock(), color=color)
            if shown is not None:
                show(shown)
        if not data:
            stop.wait(poll_seconds)


def start_following(log: Path, stop: threading.Event, *, color: bool = False) -> threading.Thread:
    """:func:`follow` what ``log`` gains from now on in a daemon thread, printing; it ends
    when ``stop`` is set."""

    def show(text: str) -> None:
        print(text, flush=True)

    start = log.stat().st_size
    thread = threading.Thread(
        target=follow,
        args=(log, show, stop),
        kwargs={"offset": start, "color": color},
        daemon=True,
    )
    thread.start()
    return thread
