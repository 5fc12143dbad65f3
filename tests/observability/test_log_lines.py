"""The serializer of every log line never raises and always fits Cloud Logging's limit,
whatever a function hands it (in process: no emulator)."""

from __future__ import annotations

import datetime as dt
import enum
import json
from typing import Any

import pytest

from firekit import logs


def parsed(entry: dict[Any, Any]) -> dict[str, Any]:
    text = logs.serialize(entry)
    assert "\n" not in text  # one line, whatever the values hold
    assert len(text.encode("utf-8")) <= logs.MAX_LINE_BYTES
    value: dict[str, Any] = json.loads(text)  # strict JSON: NaN or Infinity would not parse
    return value


class BadRepr:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class Color(enum.Enum):
    RED = "red"


class Exploding(dict[str, Any]):
    def items(self) -> Any:
        raise RuntimeError("cannot list")


def test_an_exception_is_written_as_its_type_and_message() -> None:
    line = parsed({"severity": "INFO", "message": "m", "error": ValueError("bad value")})
    assert line["error"] == "ValueError: bad value"


def test_a_cycle_is_cut_where_it_closes() -> None:
    looped: dict[str, Any] = {"name": "a"}
    looped["self"] = looped
    listed: list[Any] = [1]
    listed.append(listed)
    line = parsed({"message": "m", "looped": looped, "listed": listed})
    assert line["looped"] == {"name": "a", "self": "<cycle>"}
    assert line["listed"] == [1, "<cycle>"]


def test_the_same_value_twice_is_no_cycle() -> None:
    shared = {"k": 1}
    assert parsed({"a": [shared, shared]})["a"] == [{"k": 1}, {"k": 1}]


def test_bytes_are_described_not_decoded() -> None:
    line = parsed({"raw": b"\x00\xffabc", "big": bytes(10_000)})
    assert line["raw"] == "<5 bytes: b'\\x00\\xffabc'>"
    assert line["big"].startswith("<10000 bytes: b'\\x00") and line["big"].endswith("...>")


def test_an_object_whose_str_and_repr_raise_is_named_by_its_type() -> None:
    assert parsed({"thing": BadRepr()})["thing"] == "<unprintable BadRepr>"


def test_a_mapping_that_fails_to_list_itself_is_described() -> None:
    line = parsed({"m": Exploding(a=1)})
    assert line["m"] == "<unreadable Exploding: RuntimeError: cannot list>"


def test_keys_that_are_not_strings_become_strings() -> None:
    line = parsed({1: "one", None: "none", ("a", 2): "tuple", BadRepr(): "bad"})
    assert line == {"1": "one", "None": "none", "('a', 2)": "tuple", "<unprintable BadRepr>": "bad"}


def test_values_json_cannot_hold_become_text() -> None:
    when = dt.datetime(2026, 12, 3, 14, 15, tzinfo=dt.UTC)
    line = parsed(
        {
            "nan": float("nan"),
            "inf": float("-inf"),
            "when": when,
            "color": Color.RED,
            "huge": 10**5000,
            "set": {3},
            "lone": "a\ud800b",
        }
    )
    assert (line["nan"], line["inf"]) == ("nan", "-inf")
    assert line["when"] == "2026-12-03T14:15:00+00:00"
    assert line["color"] == "red"
    assert line["huge"] == f"<int of {(10**5000).bit_length()} bits>"
    assert line["set"] == [3]
    assert line["lone"] == "a?b"  # no UTF-8 stream could carry the lone surrogate


def test_nesting_and_length_are_bounded() -> None:
    deep: list[Any] = []
    for _ in range(10_000):  # deeper than the recursion limit
        deep = [deep]
    line = parsed({"deep": deep, "long": list(range(5000))})
    text = json.dumps(line["deep"])
    assert "<nested too deep>" in text
    assert line["long"][:3] == [0, 1, 2] and line["long"][-1] == "<4000 more items>"


def test_a_huge_line_is_cut_below_the_limit_keeping_what_identifies_it() -> None:
    trace = "Traceback (most recent call last):\n" + "  frame\n" * 60_000 + "KeyError: 'x'"
    entry = {
        "severity": "ERROR",
        "message": "f INTERNAL",
        "function": "f",
        "kind": "callable",
        "outcome": "INTERNAL",
        "latency_ms": 12.5,
        "request_id": "0" * 32,
        "uid": "u1",
        logs.TRACE_FIELD: None,
        "payload": {"rows": ["é" * 1000] * 300},
        "small": "kept",
        "stack_trace": trace,
    }
    line = parsed(entry)
    for key in ("severity", "function", "kind", "outcome", "latency_ms", "request_id", "uid"):
        assert line[key] == entry[key]
    assert line[logs.TRACE_FIELD] is None
    assert line["small"] == "kept" and line["message"] == "f INTERNAL"
    assert sorted(line[logs.TRUNCATED_FIELD]) == ["payload", "stack_trace"]
    # The head (for Error Reporting's grouping) and the tail (the exception) survive.
    assert line["stack_trace"].startswith("Traceback (most recent call last):")
    assert line["stack_trace"].endswith("KeyError: 'x'")
    assert "chars cut]" in line["stack_trace"]


def test_only_as_much_is_cut_as_needed() -> None:
    budget = logs.MAX_LINE_BYTES
    line = parsed({"message": "m", "big": "x" * budget, "medium": "y" * 1000})
    assert line[logs.TRUNCATED_FIELD] == ["big"]
    assert line["medium"] == "y" * 1000
    assert len(logs.serialize(line).encode()) > budget - 2000  # cut close to the limit


def test_escapes_count_towards_the_limit() -> None:
    # A control character takes six bytes once escaped: a cut by characters would overflow.
    parsed({"message": "m", "controls": "\x01" * logs.MAX_LINE_BYTES})


def test_absurd_identifiers_are_cut_too() -> None:
    line = parsed({"function": "f" * logs.MAX_LINE_BYTES, "uid": "u" * logs.MAX_LINE_BYTES})
    assert len(line["function"]) < 2000 and len(line["uid"]) < 2000
    assert sorted(line[logs.TRUNCATED_FIELD]) == ["function", "uid"]


def test_a_line_goes_to_stdout_or_stderr_by_severity(capsys: pytest.CaptureFixture[str]) -> None:
    logs.info("fine", n=1)
    logs.error("broken", error=KeyError("k"))
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"severity": "INFO", "message": "fine", "n": 1}
    assert json.loads(captured.err)["error"] == "KeyError: 'k'"


def test_bound_fields_go_on_every_line_and_explicit_ones_win(
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = logs.bind({"function": "f", "request_id": "r1"})
    try:
        logs.info("one")
        logs.info("two", function="g")
    finally:
        logs.unbind(token)
    logs.info("three")
    one, two, three = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (one["function"], one["request_id"]) == ("f", "r1")
    assert (two["function"], two["request_id"]) == ("g", "r1")
    assert "request_id" not in three
