"""Callable overhead: one handler through ``firekit.callables.callable_function``, against
the same handler on the SDK's ``https_fn.on_call`` alone, in process against the emulator.

The handler is a typical small callable: it writes one Firestore document (a note keyed
by the caller and the note's name) and returns a pydantic model. Every call goes through
the SDK's request path as a client sends it: a Flask test request (``POST``, JSON
``{"data": ...}``, ``Authorization: Bearer`` a valid emulator ID token, minted once),
handed to the function object the decorator returns; timed from there to the response
(the SDK's token verification and body parsing, our checks, the write, the answer).

- **Figures**: ``policy``: ``callable_function(Note)`` (body check, signed-in caller,
  validation, the one log line, the one error mapping, the result as JSON);
  ``withRateLimit``: the same with a rate limit (its counter is one more Firestore
  write per call, inside the decorator; a budget no call reaches).
- **Baseline** (``bare``): ``https_fn.on_call`` around the least a hand-written callable
  does to run the same handler: the context from ``request.auth`` and the data through
  the same model (``Note.model_validate``), the result dumped to JSON.
- The three alternate call by call (their order rotating), after a warm-up of each, so
  all see the same emulator load. Log lines go to ``/dev/null`` while timing. Ratios are
  of the percentiles (p50, p95) and the mean. Goal: ``policy`` p50 and p95 ≤ 1.15.

Run: ``python -m bench.callable_overhead [--calls N]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import flask
from firebase_functions import https_fn
from google.cloud import firestore
from pydantic import BaseModel, ConfigDict, Field

from bench import common
from firekit import bootstrap
from firekit.callables import CallableFunction, CallContext, callable_function
from firekit.ratelimit import RateLimit
from pytest_firebase.tokens import mint_id_token

NAME = "callable_overhead"
CALLS = 500
WARMUP = 20
NOTES = "benchNotes"
CALLER = "bench-caller"
CONFIGS = ("bare", "policy", "withRateLimit")
BASELINE = "bare"
_NEVER_REACHED = RateLimit(max_calls=1_000_000, per_seconds=3_600)
APP = flask.Flask(__name__)


class Note(BaseModel):
    """What the caller sends: a short note with a few bounded fields."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9-]+$")
    text: str = Field(max_length=500)
    stars: int = Field(ge=0, le=5)
    tags: list[str] = Field(default=[], max_length=10)


class Saved(BaseModel):
    """What the handler answers."""

    id: str
    owner: str


def save_note(call: CallContext, note: Note) -> Saved:
    """The measured handler: one Firestore write, as small callables do."""
    ref = bootstrap.db().collection(NOTES).document(f"{call.uid}-{note.name}")
    ref.set({**note.model_dump(), "owner": call.uid})
    return Saved(id=ref.id, owner=call.uid)


def _bare(request: https_fn.CallableRequest[Any]) -> Any:
    # What a hand-written callable needs to run save_note: a caller, valid data, JSON out.
    if request.auth is None or not request.auth.uid:
        raise https_fn.HttpsError(https_fn.FunctionsErrorCode.UNAUTHENTICATED, "Sign in.")
    call = CallContext(request.auth.uid, request.auth.token, request.raw_request, "bare")
    return save_note(call, Note.model_validate(request.data)).model_dump(mode="json")


@functools.cache
def functions() -> Mapping[str, CallableFunction]:
    """The three function objects, declared once the emulators' environment is set (the
    decorator initialises the default app, which must see the emulator hosts)."""
    bootstrap.ensure_initialized()
    policy = callable_function(Note, name="note_policy")(save_note)
    limited = callable_function(Note, name="note_limited", rate_limit=_NEVER_REACHED)(save_note)
    bare = cast(CallableFunction, https_fn.on_call()(_bare))
    return {"bare": bare, "policy": policy, "withRateLimit": limited}


@dataclass
class Calls:
    """One configuration's timed calls."""

    config: str
    ms: list[float] = field(default_factory=list)


def call_once(function: CallableFunction, body: str, token: str) -> float:
    """One call through the SDK's request path; its latency in ms (raises if it failed)."""
    headers = {"Authorization": f"Bearer {token}"}
    with APP.test_request_context(
        "/", method="POST", data=body, content_type="application/json", headers=headers
    ):
        started = time.perf_counter()
        response = APP.make_response(function(flask.request))
        elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {response.get_data(as_text=True)[:300]}")
    return elapsed


def body(n: int, config: str) -> str:
    """The n-th call's request body (a distinct note per call and configuration)."""
    note = {"name": f"{config.lower()}-{n}", "text": "Nice light.", "stars": 4, "tags": ["flat"]}
    return json.dumps({"data": note})


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The log lines (one per call, to stdout as on Cloud Run) go to /dev/null."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def measure(calls: int, configs: Sequence[str] = CONFIGS) -> dict[str, Calls]:
    """Warm up, then ``calls`` rounds of one call per configuration, order rotating."""
    token = mint_id_token(CALLER, lifetime_seconds=3600)
    targets = functions()
    measured = {config: Calls(config) for config in configs}
    with quiet():
        for n in range(WARMUP):
            for config in configs:
                call_once(targets[config], body(n, f"warm{config}"), token)
        for n in range(calls):
            shift = n % len(configs)
            for config in [*configs[shift:], *configs[:shift]]:
                measured[config].ms.append(call_once(targets[config], body(n, config), token))
    return measured


def _stats(values: Sequence[float]) -> dict[str, float]:
    figures = common.percentiles(values, 50, 95) | {"mean": statistics.fmean(values)}
    return {key: round(value, 3) for key, value in figures.items()}


def run(db: firestore.Client, *, calls: int = CALLS) -> dict[str, Any]:
    """Measure every configuration, check each wrote its notes; summarise."""
    measured = measure(calls)
    stats = {config: _stats(m.ms) for config, m in measured.items()}
    written = {
        config: sum(
            1
            for ref in db.collection(NOTES).list_documents()
            if ref.id.startswith(f"{CALLER}-{config.lower()}-")
        )
        for config in CONFIGS
    }
    ratios = {
        config: {k: common.ratio(stats[config][k], stats[BASELINE][k]) for k in stats[config]}
        for config in CONFIGS
        if config != BASELINE
    }
    rows = [
        {
            "config": config,
            "calls": len(measured[config].ms),
            "written": written[config],
            "p50 ms": stats[config]["p50"],
            "p95 ms": stats[config]["p95"],
            "mean ms": stats[config]["mean"],
            "x p50": ratios.get(config, {}).get("p50"),
            "x p95": ratios.get(config, {}).get("p95"),
        }
        for config in CONFIGS
    ]
    return {
        "figures": {
            config: {"latencyMs": stats[config], "calls": calls, "notesWritten": written[config]}
            for config in CONFIGS
            if config != BASELINE
        },
        "baseline": {
            "latencyMs": stats[BASELINE],
            "calls": calls,
            "notesWritten": written[BASELINE],
            "what": "https_fn.on_call around the same handler: context from request.auth, "
            "Note.model_validate, model_dump(mode='json')",
        },
        "ratios": ratios,
        "params": {
            "calls": calls,
            "warmup": WARMUP,
            "handler": "save_note: one Firestore set, a pydantic result",
            "rateLimit": {"maxCalls": _NEVER_REACHED.max_calls, "perSeconds": 3600},
            "goal": "ratio.policy.p50 and .p95 <= 1.15",
        },
        "rows": rows,
    }


def write(outcome: Mapping[str, Any], directory: Path = common.RESULTS) -> Path:
    """The outcome of :func:`run` as ``<directory>/callable_overhead.json``."""
    return common.write_outcome(NAME, outcome, directory)


COLUMNS = ("config", "calls", "written", "p50 ms", "p95 ms", "mean ms", "x p50", "x p95")


def main() -> None:
    """Start or reuse the emulators, run the benchmark, write and print its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=CALLS)
    args = parser.parse_args()
    with common.emulators() as stack, common.triggers_paused(stack):
        outcome = run(common.firestore_client(stack), calls=args.calls)
    path = common.report(NAME, outcome, COLUMNS)
    print(f"written to {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
