"""The viewing booking benchmark cannot rot: it runs small against the emulator, through
the same code ``make bench`` runs at full size, and its race is checked for double
bookings (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from google.cloud import firestore

from bench import viewing_booking


def test_the_viewing_bench_books_every_sample_and_its_race_never_double_books(
    firestore_db: firestore.Client, tmp_path: Path
) -> None:
    outcome = viewing_booking.run(firestore_db, samples=3, metered=2, races=1, racers=40)
    written = json.loads(viewing_booking.write(outcome, directory=tmp_path).read_text())

    rows = {row["config"]: row for row in written["rows"]}
    assert set(rows) == {*viewing_booking.CONFIGS, "refused"}
    assert all(rows[config]["samples"] == 3 for config in viewing_booking.CONFIGS)
    # The bare create is one write; a 30-minute booking writes the viewing and a lock per
    # granule in both diaries, and 2 places when it waits for the agent.
    assert (rows["bare"]["round trips"], rows["bare"]["writes"]) == (1, 1)
    assert rows["confirmed"]["writes"] == 1 + 2 * 2
    assert rows["requested"]["writes"] == 1 + 2 * 2 + 2
    assert rows["refused"]["writes"] == 0  # the refused batch commits nothing
    for config in ("requested", "confirmed"):
        assert written["ratio"][config]["p50"] > 0 and written["ratio"][config]["p95"] > 0
        assert written["figures"][config]["cost"]["billedReads"] > 0

    race = written["figures"]["race"]
    (one,) = race["races"]
    assert one["racers"] == 40 and one["winners"] + one["losers"] == 40
    assert one["winners"] >= 1 and one["winnersAreLive"]
    assert one["overlappingPairs"] == 0 and race["overlappingPairs"] == 0
    assert one["lostToNobody"] == 0 and one["everyLoserSlotTaken"]
    assert one["locksMatchLiveViewings"] and race["allChecksPass"]
    assert written["source"]["commit"]
