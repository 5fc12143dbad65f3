"""Helpers for the core's tests: unique ids and the structured log lines a test produced."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from firekit import ratelimit

LogReader = Callable[..., list[dict[str, Any]]]


@pytest.fixture(autouse=True)
def _fresh_rate_limit_memo() -> None:
    """Forget refused counters: the emulator's data is reset per test, the memo is not."""
    ratelimit.forget_refusals()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Make ids unique per test, so tests never see each other's documents."""
    suffix = uuid.uuid4().hex[:10]
    return lambda prefix: f"{prefix}-{suffix}"


@pytest.fixture
def read_logs(capsys: pytest.CaptureFixture[str]) -> LogReader:
    """Parse the JSON lines written to stdout and stderr since the last read.

    ``read_logs("callable")`` keeps only the invocation lines of callables,
    ``read_logs("trigger")`` those of triggers (``firekit.observe``: the lines with a
    ``latency_ms``); ``read_logs()`` returns every structured line.
    """

    def read(kind: str | None = None) -> list[dict[str, Any]]:
        captured = capsys.readouterr()
        lines = (captured.out + captured.err).splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return [e for e in entries if kind is None or _invocation_of_kind(e, kind)]

    return read


def _invocation_of_kind(entry: dict[str, Any], kind: str) -> bool:
    return "latency_ms" in entry and entry.get("kind") == kind
