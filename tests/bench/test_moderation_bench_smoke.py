"""The moderation benchmark cannot rot: it runs small against the emulator through the
same code ``make bench`` runs at 100 and 20,000 queued listings; every page reads its size
plus one, count() counts the queue, the baseline reads all of it (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from google.cloud import firestore

from bench import common, moderation


def test_the_moderation_bench_reads_a_page_plus_one_at_every_size(
    firestore_db: firestore.Client, tmp_path: Path
) -> None:
    outcome = moderation.run(firestore_db, sizes=(30, 90))
    written = json.loads(common.write_outcome("moderation", outcome, tmp_path).read_text())

    assert written["source"]["commit"]
    assert written["ratio"]["goalMet"] is True
    assert written["ratio"]["firstRead"] == written["ratio"]["deepRead"] == 1.0
    for size in (30, 90):
        figures = written["figures"][str(size)]
        for part in ("first", "next", "deep"):
            assert figures[part]["documentsRead"] == moderation.PAGE + 1, part
            assert figures[part]["shown"] == moderation.PAGE and figures[part]["hasNext"]
        # One aggregation read below 1,000 matched; it read no document.
        assert figures["count"]["counted"] == figures["count"]["indexEntriesMatched"] == size
        assert figures["count"]["aggregationReads"] == 1
        assert figures["count"]["documentsRead"] == 0
        assert figures["readAll"]["documentsRead"] == figures["readAll"]["found"] == size
    assert [row["queued"] for row in written["rows"]] == [30, 90]
