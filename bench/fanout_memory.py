"""Fan-out peak memory: a 50,000-recipient fan-out must hold no more than a chunk's worth
(bounded: the same peak at 5,000 and 50,000 recipients).

Each size runs in a fresh Python process (``--measure N``), so one size's heap does not
carry into the next: an emptied database, N matching buyers written (``bench.fanout_world``,
generated batch by batch as they are written, so setting up holds a few batches, not the
world), then with ``tracemalloc`` on:

1. **Baseline**: one chunk's recipients' documents read into a list and held: the alert
   index shards holding the first 200 matching searches (the source query's first page)
   and their owners' private accounts (``get_all``; they hold the push tokens), as
   snapshots. The least a chunk of 200 can hold.
2. **The fan-out**: the listing's ``new_listing`` job, every chunk run in process by the
   code the ``deliverAlerts`` task runs, pushes through an in-memory transport.

For each: the peak of Python allocations made during it (``tracemalloc``: what the step
added on top of what was live when it began) and the peak resident set size above the
resident size when it began (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``;
it counts native memory too: gRPC buffers, tracemalloc's own tables). After every chunk
the live traced memory is sampled too: flat if nothing accumulates across chunks.

Sizes: 200 (a one-chunk fan-out), 5,000 and 50,000 recipients. Ratios: the 50,000 peak
over the 5,000 one (goal ≈ 1: bounded), over the one-chunk fan-out, and over the baseline
list.

Every recipient wants push and has a device, its token kept on the account (``--devices-for
N`` gives only the first N a device). The fan-out streams the index shards (a few hundred
searches each) and holds at most the one it is reading besides its pages.

Run: ``python -m bench.fanout_memory [--sizes 200,5000,50000]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.cloud import firestore

from bench import common
from bench import fanout_world as world
from firekit import fanout
from marketplace import alerts
from marketplace.models.listings import Listing
from marketplace.profiles import account_ref

NAME = "fanout_memory"
SIZES = (200, 5_000, 50_000)
DEVICES_FOR: int | None = None
"""Recipients with a device (None: all)."""
MIB = 1024 * 1024


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_rss_peak() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) to the current RSS; False if not here."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Peak:
    """What one step added at its peak, in MiB."""

    traced_mib: float = 0.0
    """Peak of Python allocations made during the step (tracemalloc)."""
    rss_mib: float | None = None
    """Peak resident set size above the resident size when the step began."""
    rss_method: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, rounded."""
        return {
            "tracedPeakMiB": round(self.traced_mib, 2),
            "rssPeakAboveStartMiB": None if self.rss_mib is None else round(self.rss_mib, 1),
            "rssMethod": self.rss_method,
            "seconds": round(self.seconds, 2),
        }


@contextmanager
def peak() -> Iterator[Peak]:
    """Measure the block's peak memory above where it starts (tracemalloc must be on)."""
    gc.collect()
    measured = Peak()
    exact = _reset_rss_peak()
    rss_start = _status_kib("VmRSS")
    maxrss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.reset_peak()
    traced_start = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    try:
        yield measured
    finally:
        measured.seconds = time.perf_counter() - started
        measured.traced_mib = (tracemalloc.get_traced_memory()[1] - traced_start) / MIB
        high = _status_kib("VmHWM")
        if exact and high is not None and rss_start is not None:
            measured.rss_mib, measured.rss_method = (high - rss_start) / 1024, "VmHWM reset"
        else:
            grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss_start
            measured.rss_mib, measured.rss_method = grown / 1024, "ru_maxrss growth"


def one_chunk_of_documents(db: Any, chunk_size: int = fanout.CHUNK_SIZE) -> list[Any]:
    """The baseline: one chunk's recipients' documents (the index shards holding their
    searches, their accounts), held."""
    probed = alerts.probe_audiences(Listing.model_validate(world.listing()))
    held, owners = [], []
    # The shard documents themselves, as the fan-out reads them (the index's own layout:
    # a ``group`` field, ``entries`` by key), so the baseline holds what a chunk reads.
    shard_docs = db.collection(alerts.SEARCH_INDEX.collection).where(
        filter=firestore.FieldFilter("group", "in", sorted(probed))
    )
    for shard in shard_docs.order_by("__name__").stream():
        held.append(shard)
        entries = (shard.to_dict() or {}).get("entries") or {}
        owners += [kept["v"]["ownerId"] for _, kept in sorted(entries.items())]
        if len(owners) >= chunk_size:
            break
    chunk = sorted(set(owners[:chunk_size]))
    accounts = list(db.get_all([account_ref(db, uid) for uid in chunk]))
    return [*held, *accounts]


def measure_one(
    db: Any,
    recipients: int,
    *,
    chunk_size: int = fanout.CHUNK_SIZE,
    devices_for: int | None = DEVICES_FOR,
    progress: bool = False,
) -> dict[str, Any]:
    """Seed ``recipients`` buyers, then the baseline and the fan-out, each with its peak."""
    world.reset(db)
    buyers = world.matching_buyers(recipients, devices_for=devices_for)
    seeded = world.write_all(db, [*world.the_listing(), *buyers])
    if progress:
        print(f"  {recipients:,}: seeded {seeded:,} documents", file=sys.stderr, flush=True)
    started_tracing = not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()
    try:
        with peak() as baseline:
            held = one_chunk_of_documents(db, chunk_size)
        held_count = len(held)
        del held
        live_after_chunk: list[float] = []

        def on_chunk() -> None:
            live_after_chunk.append(tracemalloc.get_traced_memory()[0] / MIB)
            if progress and len(live_after_chunk) % 25 == 0:
                print(
                    f"  {recipients:,}: chunk {len(live_after_chunk)}", file=sys.stderr, flush=True
                )

        with peak() as run:
            job = world.run_job(db, chunk_size=chunk_size, on_chunk=on_chunk)
    finally:
        if started_tracing:
            tracemalloc.stop()
    inboxes = world.inbox_counts(db)
    first = live_after_chunk[0]
    return {
        "recipients": recipients,
        "chunkSize": chunk_size,
        "withDevice": recipients if devices_for is None else min(recipients, devices_for),
        "chunks": job.chunks,
        "told": job.recipients,
        "pushes": job.pushes,
        "allToldOnce": len(inboxes) == recipients and set(inboxes.values()) == {1},
        "baselineDocuments": held_count,
        "baseline": baseline.as_dict(),
        "fanout": run.as_dict(),
        "liveAfterChunkMiB": {
            "first": round(first, 2),
            "last": round(live_after_chunk[-1], 2),
            "max": round(max(live_after_chunk), 2),
            "growthFirstToLast": round(live_after_chunk[-1] - first, 2),
        },
        "processMaxRssMiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def measure_in_subprocess(
    recipients: int, project: str, chunk_size: int, devices_for: int | None
) -> dict[str, Any]:
    """:func:`measure_one` in a fresh interpreter (the emulator's address is inherited)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "result.json"
        command = [
            sys.executable,
            "-m",
            "bench.fanout_memory",
            "--measure",
            str(recipients),
            "--project",
            project,
            "--chunk",
            str(chunk_size),
            "--out",
            str(out),
        ]
        command += [] if devices_for is None else ["--devices-for", str(devices_for)]
        subprocess.run(command, check=True, cwd=common.ROOT, stdout=subprocess.DEVNULL)
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def run(
    sizes: Sequence[int],
    measure: Callable[[int], dict[str, Any]],
    *,
    chunk_size: int = fanout.CHUNK_SIZE,
) -> dict[str, Any]:
    """Every size measured by ``measure``; figures, baseline and ratios."""
    load_before = os.getloadavg()
    rows = []
    for size in sorted(sizes):
        print(f"measuring {size:,} recipients...", flush=True)
        rows.append(measure(size))
        print(f"  {json.dumps(rows[-1])}", flush=True)
    biggest, smallest = rows[-1], rows[0]
    middle = rows[-2] if len(rows) > 1 else smallest

    def traced(row: dict[str, Any], part: str = "fanout") -> float:
        return float(row[part]["tracedPeakMiB"])

    figures = {
        str(row["recipients"]): {
            k: row[k]
            for k in ("fanout", "liveAfterChunkMiB", "chunks", "allToldOnce", "processMaxRssMiB")
        }
        for row in rows
    }
    baseline = {
        "what": f"one chunk's recipients' documents held in a list ({biggest['baselineDocuments']}"
        f" snapshots: {chunk_size} searches and their accounts), same process as the "
        f"{biggest['recipients']:,}-recipient fan-out",
        **biggest["baseline"],
        "oneChunkFanout": {"recipients": smallest["recipients"], **smallest["fanout"]},
    }
    ratios = {
        f"traced{biggest['recipients']}Over{middle['recipients']}": common.ratio(
            traced(biggest), traced(middle)
        ),
        f"traced{biggest['recipients']}OverOneChunkFanout": common.ratio(
            traced(biggest), traced(smallest)
        ),
        f"traced{biggest['recipients']}OverBaselineList": common.ratio(
            traced(biggest), traced(biggest, "baseline")
        ),
        "goal": "bounded: the peak does not grow with the recipients (≈ 1 across sizes)",
    }
    params = {
        "sizes": sorted(sizes),
        "chunkSize": chunk_size,
        "pushTransport": "in memory",
        "process": "one fresh interpreter per size",
        "recipientsWithDevice": {str(row["recipients"]): row["withDevice"] for row in rows},
        "everyRecipientWantsPush": True,
        "code": world.code_state(),
        "loadAverage1mBefore": round(load_before[0], 2),
    }
    rows_out = [
        {
            "recipients": row["recipients"],
            "chunks": row["chunks"],
            "fan-out traced MiB": row["fanout"]["tracedPeakMiB"],
            "fan-out RSS MiB": row["fanout"]["rssPeakAboveStartMiB"],
            "live growth MiB": row["liveAfterChunkMiB"]["growthFirstToLast"],
            "list traced MiB": row["baseline"]["tracedPeakMiB"],
            "list RSS MiB": row["baseline"]["rssPeakAboveStartMiB"],
            "seconds": row["fanout"]["seconds"],
            "told once": row["allToldOnce"],
        }
        for row in rows
    ]
    return {
        "figures": figures | {"measured": rows},
        "baseline": baseline,
        "ratios": ratios,
        "params": params,
        "rows": rows_out,
    }


COLUMNS = (
    "recipients",
    "chunks",
    "fan-out traced MiB",
    "fan-out RSS MiB",
    "live growth MiB",
    "list traced MiB",
    "list RSS MiB",
    "seconds",
    "told once",
)


def write(outcome: dict[str, Any], directory: Path = common.RESULTS) -> Path:
    """The outcome of :func:`run` as ``<directory>/fanout_memory.json``."""
    return common.write_outcome(NAME, outcome, directory)


def main() -> None:
    """Start or reuse the emulators, measure each size in its own process, write, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--chunk", type=int, default=fanout.CHUNK_SIZE)
    parser.add_argument("--devices-for", type=int, default=None)
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:  # the child: one size, on the parent's emulator
        db = firestore.Client(project=args.project)
        result = measure_one(
            db, args.measure, chunk_size=args.chunk, devices_for=args.devices_for, progress=True
        )
        args.out.write_text(json.dumps(result))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    with common.emulators() as stack, common.triggers_paused(stack):
        project = common.firestore_client(stack).project
        outcome = run(
            sizes,
            lambda n: measure_in_subprocess(n, project, args.chunk, args.devices_for),
            chunk_size=args.chunk,
        )
    path = common.report(NAME, outcome, COLUMNS)
    print(f"\nratios: {outcome['ratios']}")
    print(f"written to {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
