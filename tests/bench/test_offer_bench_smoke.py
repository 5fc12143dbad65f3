"""The offer acceptance benchmark cannot rot: it runs small against the emulator and
localstripe through the same code ``make bench`` runs at full size (its own checks: one
deposit taken, every other hold let go; no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.cloud import firestore

from bench import common, offer_accept


def test_the_offer_bench_takes_one_deposit_and_lets_every_other_hold_go(
    firestore_db: firestore.Client, stripe_client: Any, tmp_path: Path
) -> None:
    outcome = offer_accept.run(firestore_db, samples=1, competing=(1, 3))
    written = json.loads(common.write_outcome("offer_accept", outcome, tmp_path).read_text())

    rows = {row["competing"]: row for row in written["rows"]}
    assert set(rows) == {1, 3}
    for n, row in rows.items():
        # Each other hold: looked up, then cancelled, in Stripe; the winner's: looked up, taken.
        assert row["stripeCalls"]["losers"] == {"retrieve": n, "cancel": n}
        assert row["stripeCalls"]["winner"] == {"retrieve": 1, "capture": 1}
        assert row["stripeCalls"]["accept"] == {}
        assert row["acceptWrites"] == 2  # the offer and the listing, one batch
        assert row["readsPerLoser"] > 0 and row["writesPerLoser"] > 0
    assert written["ratio"]["acceptP50at1"] == 1.0
