"""The chat benchmarks cannot rot: each runs small against the emulator, through the same
code ``make bench`` runs at full size, and its summaries and counts are checked."""

from __future__ import annotations

import json
from pathlib import Path

from google.cloud import firestore

from bench import chat_cost, chat_latency


def test_the_latency_bench_times_each_configuration_and_counts_its_round_trips(
    firestore_db: firestore.Client, tmp_path: Path
) -> None:
    outcome = chat_latency.run(firestore_db, messages=4, metered=2)
    written = json.loads(chat_latency.write(outcome, directory=tmp_path).read_text())

    assert [row["config"] for row in written["rows"]] == list(chat_latency.CONFIGS)
    assert all(row["messages"] == 4 for row in written["rows"])
    # The bare trigger commits once; the summary and the badge are each a transaction.
    assert written["baseline"]["roundTrips"]["perMessage"] == 1
    for config in ("trigger", "direct"):
        figures = written["figures"][config]
        assert figures["summaryAndCountsRight"]
        assert figures["roundTrips"]["perMessage"] > 1
        assert written["ratio"][config]["p50"] > 0 and written["ratio"][config]["p95"] > 0
    assert written["source"]["commit"]


def test_the_cost_bench_reads_the_same_at_every_size_and_counts_exactly(
    firestore_db: firestore.Client, tmp_path: Path
) -> None:
    outcome = chat_cost.run(firestore_db, scales=(10, 1_200), messages=2)
    written = json.loads(chat_cost.write(outcome, directory=tmp_path).read_text())

    rows = {(r["messagesBefore"], r["state"], r["flow"]): r for r in written["rows"]}
    assert set(rows) == {
        (size, state, flow)
        for size in (10, 1_200)
        for state, flow in (
            ("readRegularly", "message"),
            ("readRegularly", "read mark"),
            ("allUnread", "message"),
        )
    }
    assert all(row["unreadExact"] for row in rows.values())
    # A read mark writes the reader's unread, their badge and the streak's inbox entry.
    assert rows[(10, "readRegularly", "read mark")]["written"] == 3
    for state, flow in (("readRegularly", "message"), ("readRegularly", "read mark")):
        small, large = rows[(10, state, flow)], rows[(1_200, state, flow)]
        assert (small["billedReads"], small["written"]) == (large["billedReads"], large["written"])
    # 1,200 unread and more: the recount's count() matches over 1,000 entries, two reads.
    unread_small, unread_large = (
        rows[(10, "allUnread", "message")],
        rows[(1_200, "allUnread", "message")],
    )
    assert unread_large["aggregationReads"] == unread_small["aggregationReads"] + 1
    assert unread_large["written"] == unread_small["written"]
