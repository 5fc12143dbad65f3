"""Structured log lines: one JSON object per line, as Cloud Logging parses from stdout.

Mirrors ``firebase_functions.logger`` (``severity`` + ``message`` + extra fields, ERROR
and worse to stderr) with three differences that matter here:

- :func:`serialize` never raises: whatever a caller passes (an exception, a cycle, bytes,
  an object whose ``repr`` raises, keys that are not strings, NaN, a lone surrogate) is
  written as plain JSON values, and a line is cut below Cloud Logging's 256 KB entry
  limit by truncating its largest fields (named in ``truncated``), never the few that
  identify it (:data:`KEPT`).
- Each line is written in a single call, so lines from concurrent requests never
  interleave.
- Every line written during an invocation carries that invocation's ``function``,
  ``request_id`` and trace (:func:`bind`, which :mod:`firekit.observe` calls), so Logs
  Explorer shows a request's lines together.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import enum
import json
import math
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

Severity = Literal["DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"]
_STDERR_SEVERITIES = frozenset({"ERROR", "CRITICAL"})

TRACE_FIELD = "logging.googleapis.com/trace"
SPAN_FIELD = "logging.googleapis.com/spanId"
SAMPLED_FIELD = "logging.googleapis.com/trace_sampled"
"""Cloud Logging lifts these out of the JSON payload into the entry's trace, span and
sampled flag, which join a request's lines in Logs Explorer and Cloud Trace."""

MAX_LINE_BYTES = 240 * 1024
"""A line's UTF-8 size at most. Cloud Logging refuses entries over 256 KiB, counting the
entry's metadata (resource, labels, timestamps) too: 16 KiB is left for those."""
KEPT = frozenset(
    {
        "severity",
        "function",
        "kind",
        "outcome",
        "latency_ms",
        "request_id",
        "uid",
        "event_id",
        "status",
        TRACE_FIELD,
        SPAN_FIELD,
        SAMPLED_FIELD,
    }
)
"""Fields that identify a line and are short by construction: never truncated (unless
one is absurdly long, when it is cut to :data:`_KEPT_MAX_CHARS` as a last resort)."""
TRUNCATED_FIELD = "truncated"
_KEPT_MAX_CHARS = 1024
_MAX_DEPTH = 24
_MAX_ITEMS = 1000
"""Items of one list or map written; the rest are summarised (no line could hold them)."""
_MAX_KEY = 200
"""Characters of a key kept (a field's name: longer ones are no name)."""
_MAX_STRING = MAX_LINE_BYTES
"""Characters of one string kept while converting (a line could hold no more anyway)."""
_MAX_INT_BITS = 10_000
"""Larger ints are summarised: Python refuses to print integers past 4,300 digits."""

_NOTHING_BOUND: Mapping[str, Any] = MappingProxyType({})
_BOUND: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "firekit_log_context", default=_NOTHING_BOUND
)


def bind(fields: Mapping[str, Any]) -> contextvars.Token[Mapping[str, Any]]:
    """Have every line written in this context carry ``fields``; undo with :func:`unbind`."""
    return _BOUND.set(fields)


def unbind(token: contextvars.Token[Mapping[str, Any]]) -> None:
    """Undo the :func:`bind` that returned ``token``."""
    _BOUND.reset(token)


def write(severity: Severity, message: str, **fields: Any) -> None:
    """Write one structured line with ``severity``, ``message``, the bound context and
    ``fields`` (which win over the bound context)."""
    emit({"severity": severity, "message": message, **_BOUND.get(), **fields})


def emit(entry: Mapping[str, Any]) -> None:
    """Write ``entry`` (which names its own ``severity``) as one line; never raises."""
    line = serialize(entry) + "\n"
    # Resolved per call, not at import, so test capture and stream swaps see the line.
    stream = sys.stderr if entry.get("severity") in _STDERR_SEVERITIES else sys.stdout
    try:
        stream.write(line)
        stream.flush()
    except (OSError, ValueError):  # a closed or broken stream: a log line is not worth a crash
        pass


def info(message: str, **fields: Any) -> None:
    """Log at INFO."""
    write("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    """Log at WARNING."""
    write("WARNING", message, **fields)


def error(message: str, **fields: Any) -> None:
    """Log at ERROR (goes to stderr, like the SDK's logger)."""
    write("ERROR", message, **fields)


# --- the serializer --------------------------------------------------------------------


def serialize(entry: Mapping[Any, Any]) -> str:
    """``entry`` as one line of JSON of at most :data:`MAX_LINE_BYTES`; never raises."""
    try:
        plain = _container(entry, 0, set())
        if not isinstance(plain, dict):
            raise TypeError(plain)
        text = _dumps(plain)
        if len(text.encode("utf-8")) <= MAX_LINE_BYTES:
            return text
        return _fit(plain)
    except Exception as exc:
        return _dumps({"severity": "ERROR", "message": "log line lost", "why": _describe(exc)})


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _plain(value: Any, depth: int, path: set[int]) -> Any:
    """A JSON-ready copy of ``value``: containers converted, everything else a string."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, int):
        bits = value.bit_length()
        return int(value) if bits <= _MAX_INT_BITS else f"<int of {bits} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict | list | tuple | set | frozenset | Mapping):
        return _container(value, depth, path)
    return _clean_text(_scalar_text(value))


def _container(value: Any, depth: int, path: set[int]) -> Any:
    if id(value) in path:
        return "<cycle>"
    if depth >= _MAX_DEPTH:
        return "<nested too deep>"
    path.add(id(value))
    try:
        if isinstance(value, Mapping):
            items = _items(value)
            result: Any = {
                _text(key)[:_MAX_KEY]: _plain(item, depth + 1, path)
                for key, item in items[:_MAX_ITEMS]
            }
            if len(items) > _MAX_ITEMS:
                result["<more>"] = f"{len(items) - _MAX_ITEMS} more entries"
        else:
            listed = list(value)
            result = [_plain(item, depth + 1, path) for item in listed[:_MAX_ITEMS]]
            if len(listed) > _MAX_ITEMS:
                result.append(f"<{len(listed) - _MAX_ITEMS} more items>")
        return result
    except Exception as exc:
        return f"<unreadable {_type_name(value)}: {_describe(exc)}>"
    finally:
        path.discard(id(value))


def _items(mapping: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    return list(mapping.items())


def _scalar_text(value: Any) -> str:
    if isinstance(value, BaseException):
        return _describe(value)
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value[:200])
        return f"<{len(value)} bytes: {data!r}{'...' if len(value) > 200 else ''}>"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _text(value.value)
    return _text(value)


def _text(value: Any) -> str:
    """``str(value)``, else ``repr(value)``, else its type's name: never raises."""
    if isinstance(value, str):
        return _clean_text(value)
    for render in (str, repr):
        try:
            return _clean_text(render(value))
        except Exception:
            continue
    return f"<unprintable {_type_name(value)}>"


def _describe(exc: BaseException) -> str:
    return f"{_type_name(exc)}: {_text_no_raise(exc)}"


def _text_no_raise(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return "<unprintable>"


def _type_name(value: object) -> str:
    try:
        return type(value).__qualname__
    except Exception:
        return "object"


def _clean_text(text: str) -> str:
    text = str.__str__(text)  # a str subclass may override its methods
    if len(text) > _MAX_STRING:  # no line could hold it: its head and tail, as _cut keeps
        third = _MAX_STRING // 3
        text = f"{text[: 2 * third]}...[{len(text) - 3 * third} chars cut]...{text[-third:]}"
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 stream can carry it
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


# --- truncation ------------------------------------------------------------------------


def _size(value: Any) -> int:
    return len(_dumps(value).encode("utf-8"))


def _fit(entry: dict[str, Any]) -> str:
    """Cut the largest fields (not :data:`KEPT`) until the line fits, naming them."""
    cut: list[str] = []
    sizes = {key: _size(value) for key, value in entry.items()}
    total = _size(entry)  # kept up to date as fields shrink: no re-encoding of the line
    for key in sorted(sizes.keys() - KEPT, key=sizes.__getitem__, reverse=True):
        excess = total + _size([*cut, key]) + _NOTE_OVERHEAD - MAX_LINE_BYTES
        if excess <= 0:
            break
        # A little more than needed: so no tiny field is cut for the sake of the note.
        total += _shrink(entry, sizes, key, sizes[key] - excess - _SLACK)
        cut.append(key)
    for key in sorted(KEPT & entry.keys()):  # only absurd identifiers are left to cut
        if total + _size(cut) + _NOTE_OVERHEAD <= MAX_LINE_BYTES:
            break
        if isinstance(entry[key], str) and len(entry[key]) > _KEPT_MAX_CHARS:
            total += _shrink(entry, sizes, key, _KEPT_MAX_CHARS)
            cut.append(key)
    entry[TRUNCATED_FIELD] = cut
    text = _dumps(entry)
    if len(text.encode("utf-8")) > MAX_LINE_BYTES:
        raise ValueError(f"a line of {len(entry)} fields does not fit")
    return text


_NOTE_OVERHEAD = len(f', "{TRUNCATED_FIELD}": ')
_SLACK = 1024


def _shrink(entry: dict[str, Any], sizes: dict[str, int], key: str, budget: int) -> int:
    """Cut ``entry[key]`` to ``budget`` JSON bytes; by how much the line changed."""
    entry[key] = _cut(entry[key], max(0, budget))
    before, sizes[key] = sizes[key], _size(entry[key])
    return sizes[key] - before


def _cut(value: Any, budget: int) -> str:
    """``value`` as text of at most ``budget`` JSON bytes (or the bare marker, if even that
    is more): its head and its tail (a traceback ends with its exception), with how much
    was cut in between."""
    text = value if isinstance(value, str) else _dumps(value)
    total = len(text)
    keep = min(total, budget)
    while True:
        head, tail = text[: keep - keep // 3], text[total - keep // 3 :]
        cut = f"{head}...[{total - len(head) - len(tail)} chars cut]...{tail}"
        size = _size(cut)
        if size <= budget or keep == 0:
            return cut
        keep = max(0, min(keep - 1, keep * budget // size - 8))  # JSON escapes widen chars
