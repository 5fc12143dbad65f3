"""The fan-out benchmarks cannot rot: each runs small against the emulator, through the
same code ``make bench`` runs at full size, and its counts are checked."""

from __future__ import annotations

import json
from pathlib import Path

from google.cloud import firestore

from bench import fanout_cost, fanout_memory, fanout_throughput, fanout_world


def test_the_throughput_bench_tells_every_recipient_once(
    firestore_db: firestore.Client, tmp_path: Path
) -> None:
    outcome = fanout_throughput.run(firestore_db, recipients=300, reps=1)
    written = json.loads(fanout_throughput.write(outcome, directory=tmp_path).read_text())

    figures = written["figures"]
    assert (figures["recipients"], figures["tasks"], figures["chunks"]) == (300, 1, 2)
    assert figures["pushesSent"] == 300
    assert figures["check"] == {
        "usersWithInbox": 300,
        "usersWithExactlyOneInbox": 300,
        "digests": 300,
        "allTold": True,
        "allToldEveryRound": True,
    }
    steps = figures["steps"]
    # One query streams both chunks, from the index shards holding the 300 searches (the
    # bulk load makes one shard per 250); tokens come with the accounts; inboxes are
    # created without being read first.
    assert steps[fanout_world.SOURCE_STEP]["calls"] == 1
    assert steps[fanout_world.SOURCE_STEP]["read"] == 2
    assert steps["get_all accounts"]["read"] == 300
    assert "device lookup (push)" not in steps and "get_all inbox documents" not in steps
    # 300 inbox documents (each also its digest item), 2 chunk records.
    assert steps["chunk commit (inbox, record)"]["written"] == 302
    assert written["baseline"]["documents"] == 300 and written["ratio"]["fanoutOverRawWrite"] > 0
    assert {row["step"] for row in figures["stepRows"]} >= {fanout_throughput.WALL_MINUS_RPC}
    # A row per path: the public SDK path (FANOUT_WIRE=0) reads and writes the same.
    wire_row, public_row = written["rows"]
    assert (wire_row["path"], public_row["path"]) == ("wire", "public SDK")
    assert wire_row["all told"] and public_row["all told"]
    assert (wire_row["read"], wire_row["written"]) == (public_row["read"], public_row["written"])
    assert written["ratio"]["publicSdkFanoutOverRawWrite"] > 0
    # The attempt that commits a chunk holds it from the commit: no claim transaction.
    assert "claim (transaction)" not in steps


def test_the_cost_bench_reads_the_same_at_every_scale(
    firestore_db: firestore.Client, tmp_path: Path
) -> None:
    outcome = fanout_cost.run(firestore_db, scales=(150, 400))
    written = json.loads(fanout_cost.write(outcome, directory=tmp_path).read_text())

    small, large = written["rows"]
    for row in (small, large):
        assert row["toldExactlyTheMatchingOnce"] and row["told"] == fanout_cost.MATCHES
        assert row["candidatesRead"] == fanout_cost.MATCHES + 40  # the near misses
    assert small["documentsRead"] == large["documentsRead"]
    assert small["documentsWritten"] == large["documentsWritten"]
    assert written["ratio"]["documentsRead400Over150"] == 1.0
    composition = written["figures"]["composition"]["400"]
    assert sum(v for k, v in composition.items() if k.startswith("nearMiss.")) == 40
    assert composition["matching"] == 100


def test_the_memory_bench_measures_each_size(
    firestore_db: firestore.Client, tmp_path: Path
) -> None:
    outcome = fanout_memory.run(
        (200, 300), lambda size: fanout_memory.measure_one(firestore_db, size)
    )
    written = json.loads(fanout_memory.write(outcome, directory=tmp_path).read_text())

    one, two = written["figures"]["measured"]
    assert (one["chunks"], two["chunks"]) == (1, 2)
    assert one["allToldOnce"] and two["allToldOnce"] and two["told"] == 300
    # 200 accounts, and the index shards holding their searches (~150 a shard here).
    assert two["baselineDocuments"] - 200 in (2, 3)
    assert two["fanout"]["tracedPeakMiB"] > 0 and two["baseline"]["tracedPeakMiB"] > 0
    assert written["ratio"]["traced300OverOneChunkFanout"] > 0
    assert fanout_world.inbox_counts(firestore_db) == {
        fanout_world.recipient_uid(n): 1 for n in range(300)
    }
