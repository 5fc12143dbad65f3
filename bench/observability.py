"""Observability overhead: a callable with and without ``firekit.observe``'s wrapper (the
one log line and the in-memory metrics), in process against the emulator.

The callable is ``callable_overhead``'s typical small one (``save_note``: one Firestore
write, a pydantic result) declared with ``callable_function``, called through the SDK's
request path as a client sends it (a Flask request with a valid emulator ID token, minted
once), timed from the request to the response.

- **Figures** (``observed``): the function as ``callable_function`` returns it, observed:
  the invocation opened, the line built, serialised and written (to ``/dev/null``, as
  the process's stdout), the call counted by a metrics aggregator that flushes as a
  function instance's does (``METRICS_FLUSH_SECONDS``, default 60; how many flushes fell
  in the run is reported).
- **Baseline** (``bare``): the same function without that one layer (its
  ``__wrapped__``): the same body check, policy, validation, handler and answer; the
  layers' annotations find no invocation and do nothing.
- The two alternate call by call (order swapping every round), after a warm-up, so both
  see the same emulator load. Ratios are of the percentiles (p50, p95) and the mean.
  Goal: ``observed`` p50 and p95 ≤ 1.05 × ``bare``.
- Also, without Firestore's noise: the wrapper's own cost per call on a function that
  does nothing (an ``on_request`` answering 204), as the median difference in µs; and the
  time of one flush (the 5m and the 1h document, three outcomes and latency buckets per
  function) of one function's counts, as a deployed instance has (each function is a
  service of its own), and of every deployed function's, as one emulator process may.

Run: ``python -m bench.observability [--calls N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import flask
from firebase_functions import https_fn
from google.cloud import firestore

from bench import callable_overhead, common
from firekit import bootstrap, metrics, observe
from firekit.callables import CallableFunction, callable_function
from pytest_firebase.tokens import mint_id_token

NAME = "observability"
CALLS = 1000
WARMUP = 30
CONFIGS = ("bare", "observed")
BASELINE = "bare"
NOOP_CALLS = 5000
FLUSHES = 20
APP = flask.Flask(__name__)


def functions() -> Mapping[str, CallableFunction]:
    """The observed callable and the same without the wrapper (declared once the
    emulators' environment is set: the decorator initialises the default app)."""
    bootstrap.ensure_initialized()
    observed = callable_function(callable_overhead.Note, name="note_observed")(
        callable_overhead.save_note
    )
    return {"bare": observed.__wrapped__, "observed": observed}  # type: ignore[attr-defined]


def measure(calls: int) -> dict[str, list[float]]:
    """Warm up, then ``calls`` rounds of one call per configuration, order alternating."""
    token = mint_id_token(callable_overhead.CALLER, lifetime_seconds=3600)
    targets = functions()
    measured: dict[str, list[float]] = {config: [] for config in CONFIGS}
    with callable_overhead.quiet():
        for n in range(WARMUP):
            for config in CONFIGS:
                body = callable_overhead.body(n, f"warm{config}")
                callable_overhead.call_once(targets[config], body, token)
        for n in range(calls):
            order = CONFIGS if n % 2 == 0 else CONFIGS[::-1]
            for config in order:
                body = callable_overhead.body(n, f"obs{config}")
                measured[config].append(callable_overhead.call_once(targets[config], body, token))
    return measured


@https_fn.on_request()
def _nothing(request: flask.Request) -> flask.Response:
    return flask.Response(status=204)


def wrapper_cost_us(calls: int = NOOP_CALLS) -> float:
    """The wrapper's own cost per call: median time of an observed call of a function that
    does nothing, less the median of the same function bare, in µs."""
    observed = observe.observed(_nothing)
    times: dict[str, list[float]] = {"bare": [], "observed": []}
    pairs = [("bare", _nothing), ("observed", observed)]
    with callable_overhead.quiet(), APP.test_request_context("/", method="GET"):
        for n in range(calls):
            for name, function in pairs if n % 2 == 0 else pairs[::-1]:
                started = time.perf_counter()
                function(flask.request)
                times[name].append((time.perf_counter() - started) * 1e6)
    return round(statistics.median(times["observed"]) - statistics.median(times["bare"]), 1)


def flush_ms(db: firestore.Client, functions: Sequence[str], flushes: int = FLUSHES) -> float:
    """Median time of one flush of ``functions``' counts, each with three outcomes and
    latencies over the buckets (the 5m and the 1h document, one batch)."""
    took = []
    for _ in range(flushes):
        aggregator = metrics.Aggregator(autoflush=False, db=lambda: db)
        for n, name in enumerate(functions):
            for outcome, latency in (("ok", 12.0 + n), ("ok", 240.0), ("INVALID_ARGUMENT", 3.0)):
                aggregator.record(name, outcome, outcome == "ok", latency)
        started = time.perf_counter()
        if not aggregator.flush():
            raise RuntimeError("a flush failed")
        took.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(took), 2)


def _stats(values: Sequence[float]) -> dict[str, float]:
    figures = common.percentiles(values, 50, 95) | {"mean": statistics.fmean(values)}
    return {key: round(value, 3) for key, value in figures.items()}


def run(
    db: firestore.Client, *, calls: int = CALLS, noop_calls: int = NOOP_CALLS
) -> dict[str, Any]:
    """Measure both configurations (and the wrapper and a flush alone); summarise."""
    import main  # the deployed names; imported once the emulators' environment is set

    flushing = metrics.Aggregator(autoflush=True)  # as a function instance counts and flushes
    counts_before = metrics.AGGREGATOR
    metrics.AGGREGATOR = flushing
    try:
        measured = measure(calls)
        wrapper_us = wrapper_cost_us(noop_calls)
    finally:
        metrics.AGGREGATOR = counts_before
    stats = {config: _stats(measured[config]) for config in CONFIGS}
    ratios = {k: common.ratio(stats["observed"][k], stats[BASELINE][k]) for k in stats[BASELINE]}
    written = _notes_written(db)
    flush = {"one": flush_ms(db, ["note_observed"]), "all": flush_ms(db, main.DEPLOYED)}
    rows = [
        {
            "config": config,
            "calls": len(measured[config]),
            "written": written[config],
            "p50 ms": stats[config]["p50"],
            "p95 ms": stats[config]["p95"],
            "mean ms": stats[config]["mean"],
            "x p50": ratios["p50"] if config != BASELINE else None,
            "x p95": ratios["p95"] if config != BASELINE else None,
        }
        for config in CONFIGS
    ]
    return {
        "figures": {
            "observed": {
                "latencyMs": stats["observed"],
                "calls": calls,
                "notesWritten": written["observed"],
                "metricsFlushesDuringRun": flushing.flushes,
                "wrapperUsPerCall": wrapper_us,
                "flushMsOneFunction": flush["one"],
                "flushMsEveryFunction": flush["all"],
                "deployedFunctions": len(main.DEPLOYED),
            }
        },
        "baseline": {
            "latencyMs": stats[BASELINE],
            "calls": calls,
            "notesWritten": written[BASELINE],
            "what": "the same callable_function without firekit.observe's wrapper "
            "(its __wrapped__)",
        },
        "ratios": {"observed": ratios},
        "params": {
            "calls": calls,
            "warmup": WARMUP,
            "handler": "bench.callable_overhead.save_note: one Firestore set, a pydantic result",
            "metricsFlushSeconds": flushing.interval,
            "noopCalls": noop_calls,
            "flushes": FLUSHES,
            "goal": "ratio.observed.p50 and .p95 <= 1.05",
        },
        "rows": rows,
    }


def _notes_written(db: firestore.Client) -> dict[str, int]:
    prefix = f"{callable_overhead.CALLER}-obs"
    names = [ref.id for ref in db.collection(callable_overhead.NOTES).list_documents()]
    return {config: sum(1 for n in names if n.startswith(prefix + config)) for config in CONFIGS}


def write(outcome: Mapping[str, Any], directory: Path = common.RESULTS) -> Path:
    """The outcome of :func:`run` as ``<directory>/observability.json``."""
    return common.write_outcome(NAME, outcome, directory)


COLUMNS = ("config", "calls", "written", "p50 ms", "p95 ms", "mean ms", "x p50", "x p95")


def main() -> None:
    """Start or reuse the emulators, run the benchmark, write and print its results."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=CALLS)
    args = parser.parse_args()
    with common.emulators() as stack, common.triggers_paused(stack):
        outcome = run(common.firestore_client(stack), calls=args.calls)
    path = common.report(NAME, outcome, COLUMNS)
    observed = outcome["figures"]["observed"]
    print(
        f"wrapper alone: {observed['wrapperUsPerCall']} µs a call; one flush: "
        f"{observed['flushMsOneFunction']} ms (one function), "
        f"{observed['flushMsEveryFunction']} ms (all {observed['deployedFunctions']}); "
        f"flushes during the run: {observed['metricsFlushesDuringRun']}"
    )
    print(f"written to {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
