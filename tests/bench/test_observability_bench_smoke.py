"""The observability benchmark cannot rot: it runs small against the emulator, through the
same code `python -m bench.observability` runs at 1,000 calls, and every call of both
configurations is checked to have written its note."""

from __future__ import annotations

import json
from pathlib import Path

from google.cloud import firestore

from bench import observability
from firekit import metrics


def test_the_observability_bench_times_both_configurations_and_a_flush(
    firestore_db: firestore.Client, tmp_path: Path
) -> None:
    outcome = observability.run(firestore_db, calls=5, noop_calls=50)
    written = json.loads(observability.write(outcome, directory=tmp_path).read_text())

    observed, baseline = written["figures"]["observed"], written["baseline"]
    assert observed["notesWritten"] == baseline["notesWritten"] == 5
    assert observed["latencyMs"]["p50"] > 0 and baseline["latencyMs"]["p50"] > 0
    assert written["ratio"]["observed"]["p50"] > 0 and written["ratio"]["observed"]["p95"] > 0
    assert observed["flushMsOneFunction"] > 0 and observed["flushMsEveryFunction"] > 0
    assert isinstance(observed["wrapperUsPerCall"], float)
    assert [row["config"] for row in written["rows"]] == list(observability.CONFIGS)
    # The flushes it timed wrote the two windows' documents.
    ids = sorted(ref.id for ref in firestore_db.collection(metrics.COLLECTION).list_documents())
    assert {i[:3] for i in ids} == {"1h-", "5m-"}
    assert written["source"]["commit"]
