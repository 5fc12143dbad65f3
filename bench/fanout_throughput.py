"""Fan-out throughput: telling 10,000 matching buyers about one listing, against a raw
batched write of 10,000 documents to the same emulator in the same run (goal: ≤ 2.0 x).

The world (``bench.fanout_world``): 10,000 buyers, each with a profile, a private account
with an email and their push token (as the devices trigger keeps it), one device and one
saved search that matches the listing (every channel on), and the alert index holding the
searches, written before the clock starts. The fan-out: the listing's ``new_listing`` job,
every task run in process by the code the ``deliverAlerts`` task function runs (a task
runs up to 50 chunks of 200), pushes through an in-memory transport (FCM is a network
call outside Firestore). It reads the index shards of the listing's audiences and each
buyer's account, writes an inbox document per buyer (also their email digest item) and a
record per chunk, and sends a push per buyer.

The baseline, after an emptied database: 10,000 documents shaped like the inbox documents,
written with ``set`` in batches of 500, one batch after another (the fan-out's chunks run
one after another too), into a collection of their own.

The fan-out runs on both of its paths (``--paths``): through ``firekit.wire`` (the
default) and through the SDK's public API (``FANOUT_WIRE=0``), each path a row of
``rows`` with its own ratio. All run ``--reps`` times (3), interleaved: seed and fan out
on each path (which goes first alternates), then the baseline, then again, after an
untimed warm-up (2,000 recipients on each path, a raw write). A freshly started
emulator's JVM speeds up as it warms, and one that has run for long slows down, so
running one side first or after the other would favour one of them; each ratio is of
the two medians, and the wire path's median round gives the steps
(``figures.stepRows``).

Every RPC of the fan-out is metered by step (source query, listing re-reads, account
``get_all``, the chunk commit, record updates). A task reads its next chunk while the
current one commits and acts, so the steps' waits overlap: the wall time minus their sum
is the fan-out's own Python work minus that overlap, and may be negative. After the run,
every buyer is checked to hold exactly one inbox document of the job.

Run: ``python -m bench.fanout_throughput [--recipients N] [--chunk N] [--reps N]
[--paths wire,public SDK]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.cloud import firestore

from bench import common
from bench import fanout_world as world
from firekit import fanout, wire

NAME = "fanout_throughput"
RECIPIENTS = 10_000
REPS = 3
RAW = "_benchRawWrites"
GOAL = 2.0
WALL_MINUS_RPC = "wall - RPC waits (python - read-ahead overlap)"
"""The last row: the fan-out's Python work minus what of it the read-ahead overlaps."""


def raw_document(number: int) -> dict[str, Any]:
    """A document of the inbox documents' shape and size."""
    return {
        "kind": "listing_match",
        "title": "New home matching your search",
        "body": "Bright two bed flat near the park in London, £350,000",
        "listingId": world.LISTING_ID,
        "link": f"/listings/{world.LISTING_ID}",
        "data": {"searchIds": [f"{world.recipient_uid(number)}-0"], "event": "new_listing"},
        "createdAt": firestore.SERVER_TIMESTAMP,
        "read": False,
    }


def raw_write(db: Any, count: int) -> float:
    """Seconds to write ``count`` documents in sequential batches of 500 ``set`` calls."""
    started = time.perf_counter()
    for start in range(0, count, world.BATCH):
        batch = db.batch()
        for number in range(start, min(count, start + world.BATCH)):
            batch.set(db.document(f"{RAW}/{world.recipient_uid(number)}"), raw_document(number))
        batch.commit()
    return time.perf_counter() - started


@dataclass
class _Rep:
    """One seeded, metered fan-out and what it left."""

    job: world.FanoutRun
    meter: world.Meter
    chunk_ms: list[float]
    inboxes: dict[str, int]
    digests: int
    seeded: int
    seed_s: float


def _fan_out_once(db: Any, recipients: int, chunk_size: int, progress: bool) -> _Rep:
    """An emptied database, the world seeded, the job run metered, its outcome counted."""
    world.reset(db)
    started = time.perf_counter()
    seeded = world.write_all(db, [*world.the_listing(), *world.matching_buyers(recipients)])
    seed_s = time.perf_counter() - started
    print(f"seeded {seeded:,} documents ({recipients:,} buyers) in {seed_s:.1f} s")
    chunk_ms: list[float] = []
    last = [time.perf_counter()]

    def on_chunk() -> None:
        now = time.perf_counter()
        chunk_ms.append((now - last[0]) * 1000)
        last[0] = now
        if progress and len(chunk_ms) % 10 == 0:
            print(f"  chunk {len(chunk_ms)}: {chunk_ms[-1]:.0f} ms")

    with world.metered(db) as meter:
        last[0] = time.perf_counter()
        job = world.run_job(db, chunk_size=chunk_size, on_chunk=on_chunk)
    print(f"  fan-out: {job.seconds:.2f} s")
    digests = sum(
        1
        for _ in db.collection_group("notifications")
        .where(
            filter=firestore.FieldFilter("emailDay", ">", "")  # marked for a digest
        )
        .select([])
        .stream()
    )
    return _Rep(job, meter, chunk_ms, world.inbox_counts(db), digests, seeded, seed_s)


WARM_UP = 2_000
"""Recipients of the untimed fan-out on each path before the rounds."""
PATHS = {"wire": "1", "public SDK": "0"}
"""The fan-out's two paths and their ``FANOUT_WIRE`` setting (see ``firekit.wire``)."""


@contextmanager
def fanout_path(name: str) -> Iterator[None]:
    """The fan-out on one of :data:`PATHS` inside the block (``FANOUT_WIRE`` is read at
    each call)."""
    before = os.environ.get(wire.SETTING)
    os.environ[wire.SETTING] = PATHS[name]
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(wire.SETTING, None)
        else:
            os.environ[wire.SETTING] = before


def run(
    db: Any,
    *,
    recipients: int = RECIPIENTS,
    chunk_size: int = fanout.CHUNK_SIZE,
    reps: int = REPS,
    paths: Sequence[str] = tuple(PATHS),
    warm_up: int = WARM_UP,
    progress: bool = False,
) -> dict[str, Any]:
    """``reps`` rounds of (a seeded fan-out on each path, then the baseline), interleaved
    so none gets the emulator warmer than the others (the paths swap places each round),
    after an untimed fan-out of ``warm_up`` recipients on each path and a raw write (a
    fresh emulator's first round is slow for whichever side runs first); the median
    round of each is reported, the first path's steps in detail."""
    load_before = os.getloadavg()
    rounds: dict[str, list[_Rep]] = {name: [] for name in paths}
    baseline_s: list[float] = []
    if warm_up:
        for name in paths:
            print(f"warm-up, {name}:")
            with fanout_path(name):
                _fan_out_once(db, min(warm_up, recipients), chunk_size, progress=False)
        world.reset(db)
        raw_write(db, min(warm_up, recipients))
    for rep in range(reps):
        for name in paths if rep % 2 == 0 else list(reversed(paths)):
            print(f"round {rep + 1}, {name}:")
            with fanout_path(name):
                rounds[name].append(_fan_out_once(db, recipients, chunk_size, progress))
        world.reset(db)
        baseline_s.append(raw_write(db, recipients))
        print(f"  raw write: {baseline_s[-1]:.2f} s")
    load_after = os.getloadavg()
    main = rounds[paths[0]]
    middle = _median(main)
    outcome = summarise(
        job=middle.job,
        meter=middle.meter,
        recipients=recipients,
        chunk_size=chunk_size,
        chunk_ms=middle.chunk_ms,
        inboxes=middle.inboxes,
        digests=middle.digests,
        baseline_s=baseline_s,
        fanout_s=[r.job.seconds for r in main],
        all_told_every_round=all(_all_told(r, recipients) for rs in rounds.values() for r in rs),
        params={
            "recipients": recipients,
            "chunkSize": chunk_size,
            "reps": reps,
            "warmUpRecipients": min(warm_up, recipients),
            "paths": {name: f"{wire.SETTING}={PATHS[name]}" for name in paths},
            "detailedPath": paths[0],
            "code": world.code_state(),
            "seededDocuments": middle.seeded,
            "seedSeconds": round(middle.seed_s, 2),
            "loadAverage1mBeforeAfter": [round(load_before[0], 2), round(load_after[0], 2)],
            "pushTransport": "in memory (FCM is a network call outside Firestore; the "
            "emulators' RecordingTransport would add a write per push)",
            "baselineWhat": f"{recipients:,} inbox-shaped documents, sequential batches of "
            f"{world.BATCH} set(), into {RAW}, emptied database",
        },
    )
    baseline = statistics.median(baseline_s)
    outcome["figures"]["stepRows"] = outcome["rows"]  # of the detailed path's median round
    outcome["rows"] = [_path_row(name, reps, baseline, recipients) for name, reps in rounds.items()]
    for row in outcome["rows"]:
        outcome["ratios"][RATIO_OF[row["path"]]] = row["× raw write"]
    return outcome


RATIO_OF = {"wire": "fanoutOverRawWrite", "public SDK": "publicSdkFanoutOverRawWrite"}


def _median(reps: Sequence[_Rep]) -> _Rep:
    return sorted(reps, key=lambda r: r.job.seconds)[(len(reps) - 1) // 2]


def _path_row(name: str, reps: Sequence[_Rep], baseline: float, recipients: int) -> dict[str, Any]:
    """One path's median round against the baseline's median."""
    middle = _median(reps)
    total = middle.meter.total()
    seconds = statistics.median(r.job.seconds for r in reps)
    return {
        "path": name,
        "setting": f"{wire.SETTING}={PATHS[name]}",
        "seconds": round(seconds, 2),
        "each round": [round(r.job.seconds, 2) for r in reps],
        "× raw write": common.ratio(seconds, baseline),
        "read": total.read,
        "written": total.written,
        "rpc s": round(total.seconds, 2),
        "wall - rpc s": round(middle.job.seconds - total.seconds, 2),
        "all told": all(_all_told(r, recipients) for r in reps),
    }


def _all_told(rep: _Rep, recipients: int) -> bool:
    inboxes = rep.inboxes
    return (
        len(inboxes) == recipients
        and all(n == 1 for n in inboxes.values())
        and rep.job.pushes == recipients
    )


def summarise(
    *,
    job: world.FanoutRun,
    meter: world.Meter,
    recipients: int,
    chunk_size: int,
    chunk_ms: Sequence[float],
    inboxes: dict[str, int],
    digests: int,
    baseline_s: Sequence[float],
    fanout_s: Sequence[float],
    all_told_every_round: bool,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Figures, baseline, ratio, and one row per step of the fan-out."""
    total = meter.total()
    baseline = statistics.median(baseline_s)
    # Python work minus the overlap of the read-ahead with the current chunk's RPCs.
    python_s = job.seconds - total.seconds
    figures = {
        "fanoutSeconds": round(job.seconds, 2),
        "fanoutSecondsEachRound": [round(x, 3) for x in fanout_s],
        "recipients": job.recipients,
        "recipientsPerSecond": round(job.recipients / job.seconds, 1),
        "tasks": job.tasks,
        "chunks": job.chunks,
        "chunkSize": chunk_size,
        "chunkMs": {k: round(v, 1) for k, v in common.percentiles(chunk_ms, 50, 95).items()}
        | {"first": round(chunk_ms[0], 1), "last": round(chunk_ms[-1], 1)},
        "outcomes": job.outcomes,
        "pushesSent": job.pushes,
        "documentsWritten": total.written,
        "documentsWrittenPerSecond": round(total.written / job.seconds, 1),
        "documentsRead": total.read,
        "missingLookups": total.missing,
        "rpcs": total.calls,
        "rpcSeconds": round(total.seconds, 2),
        "wallMinusRpcSeconds": round(python_s, 2),
        "check": {
            "usersWithInbox": len(inboxes),
            "usersWithExactlyOneInbox": sum(1 for n in inboxes.values() if n == 1),
            "digests": digests,
            "allTold": len(inboxes) == recipients
            and all(n == 1 for n in inboxes.values())
            and job.pushes == recipients,
            "allToldEveryRound": all_told_every_round,
        },
        "steps": meter.as_dict(),
    }
    base = {
        "what": params["baselineWhat"],
        "documents": recipients,
        "seconds": round(baseline, 3),
        "secondsEachRep": [round(s, 3) for s in baseline_s],
        "documentsPerSecond": round(recipients / baseline, 1),
    }
    ratios = {
        "fanoutOverRawWrite": common.ratio(statistics.median(fanout_s), baseline),
        "goal": GOAL,
        "perDocumentWritten": common.ratio(
            job.seconds / max(1, total.written), baseline / recipients
        ),
    }
    rows: list[dict[str, Any]] = [
        _row(name, step.calls, step.seconds, job.seconds, read=step.read, written=step.written)
        for name, step in sorted(meter.steps.items(), key=lambda item: -item[1].seconds)
    ]
    rows.append(_row(WALL_MINUS_RPC, None, python_s, job.seconds))
    return {"figures": figures, "baseline": base, "ratios": ratios, "params": params, "rows": rows}


def _row(
    step: str,
    calls: int | None,
    seconds: float,
    whole: float,
    *,
    read: int | None = None,
    written: int | None = None,
) -> dict[str, Any]:
    return {
        "step": step,
        "calls": calls,
        "seconds": round(seconds, 2),
        "share %": round(100 * seconds / whole, 1),
        "read": read,
        "written": written,
    }


COLUMNS = ("step", "calls", "seconds", "share %", "read", "written")
PATH_COLUMNS = (
    "path",
    "setting",
    "seconds",
    "each round",
    "× raw write",
    "read",
    "written",
    "rpc s",
    "wall - rpc s",
    "all told",
)


def write(outcome: dict[str, Any], directory: Path = common.RESULTS) -> Path:
    """The outcome of :func:`run` as ``<directory>/fanout_throughput.json``."""
    return common.write_outcome(NAME, outcome, directory)


def main() -> None:
    """Start or reuse the emulators, run the benchmark, write and print its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=RECIPIENTS)
    parser.add_argument("--chunk", type=int, default=fanout.CHUNK_SIZE)
    parser.add_argument("--reps", type=int, default=REPS)
    parser.add_argument(
        "--paths",
        default=",".join(PATHS),
        help="comma-separated, of: " + ", ".join(PATHS) + " (the first in detail)",
    )
    args = parser.parse_args()
    with common.emulators() as stack, common.triggers_paused(stack):
        outcome = run(
            common.firestore_client(stack),
            recipients=args.recipients,
            chunk_size=args.chunk,
            reps=args.reps,
            paths=args.paths.split(","),
            progress=True,
        )
    path = write(outcome)
    figures, base, ratios = outcome["figures"], outcome["baseline"], outcome["ratios"]
    common.print_table(figures["stepRows"], COLUMNS)
    print()
    common.print_table(outcome["rows"], PATH_COLUMNS)
    print(
        f"\nfan-out: {figures['recipients']:,} recipients in {figures['fanoutSeconds']} s "
        f"({figures['recipientsPerSecond']}/s, {figures['tasks']} tasks, "
        f"{figures['chunks']} chunks of {figures['chunkSize']}, "
        f"{figures['documentsWritten']:,} documents written); "
        f"all told once: {figures['check']['allTold']}"
    )
    print(
        f"raw batched write of {base['documents']:,}: {base['seconds']} s "
        f"({base['documentsPerSecond']}/s); ratio {ratios['fanoutOverRawWrite']} "
        f"(goal ≤ {GOAL}); on the public SDK path: "
        f"{ratios.get('publicSdkFanoutOverRawWrite', 'not run')}"
    )
    print(f"written to {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
