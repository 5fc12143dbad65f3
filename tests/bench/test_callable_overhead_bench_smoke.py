"""The callable-overhead benchmark cannot rot: it runs small against the emulator, through
the same code ``make bench`` runs at 500 calls a configuration, and every call is checked
to have written its note."""

from __future__ import annotations

import json
from pathlib import Path

from google.cloud import firestore

from bench import callable_overhead


def test_the_callable_bench_times_each_configuration_and_writes_every_note(
    firestore_db: firestore.Client, tmp_path: Path
) -> None:
    outcome = callable_overhead.run(firestore_db, calls=5)
    written = json.loads(callable_overhead.write(outcome, directory=tmp_path).read_text())

    assert written["baseline"]["notesWritten"] == 5
    for config in ("policy", "withRateLimit"):
        assert written["figures"][config]["notesWritten"] == 5
        assert written["figures"][config]["latencyMs"]["p50"] > 0
        assert written["ratio"][config]["p50"] > 0 and written["ratio"][config]["p95"] > 0
    # The rate-limited configuration counted each of its calls, and only its own.
    counters = [doc.to_dict() for doc in firestore_db.collection("_rateLimits").stream()]
    assert [(c["scope"], c["count"]) for c in counters] == [
        ("note_limited", 5 + callable_overhead.WARMUP)
    ]
    assert written["source"]["commit"]
    assert [row["config"] for row in written["rows"]] == list(callable_overhead.CONFIGS)
