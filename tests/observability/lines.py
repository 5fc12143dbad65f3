"""The functions' log lines as the tests read them: the schema they must fit, and where the
Functions emulator writes them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA: dict[str, Any] = json.loads((ROOT / "ops" / "log-line.schema.json").read_text())
jsonschema.Draft202012Validator.check_schema(SCHEMA)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
FUNCTION_OUTPUT = ">  "
"""How the Functions emulator's log marks a line a function wrote (stdout or stderr)."""


def invocation_lines(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The one-per-invocation lines among ``entries`` (firekit.observe's: a latency)."""
    return [entry for entry in entries if "latency_ms" in entry]


def parse_json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects among ``text``'s lines (other output left out)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def emulator_log(log: Path, offset: int = 0) -> tuple[list[str], int]:
    """The emulator's ``log`` from byte ``offset`` on (whole lines only), and the offset
    after them."""
    with log.open("rb") as file:
        file.seek(offset)
        data = file.read()
    whole = data[: data.rfind(b"\n") + 1]
    return whole.decode("utf-8", "replace").splitlines(), offset + len(whole)


def function_lines(raw_lines: Iterable[str]) -> list[dict[str, Any]]:
    """The structured lines the functions wrote, among the emulator's log lines."""
    texts = (
        raw.removeprefix(FUNCTION_OUTPUT) for raw in raw_lines if raw.startswith(FUNCTION_OUTPUT)
    )
    return parse_json_lines("\n".join(texts))


def schema_errors(line: dict[str, Any]) -> list[str]:
    """What is wrong with ``line`` by the schema (nothing: an empty list)."""
    return [
        f"{'/'.join(map(str, e.path)) or '.'}: {e.message}" for e in VALIDATOR.iter_errors(line)
    ]
