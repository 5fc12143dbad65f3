"""The webhook benchmark cannot rot: it runs small against the emulator, through the same
code ``make bench`` runs at full size, and both paths are checked to do the same work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from firebase_admin import auth
from google.cloud import firestore

from bench import webhook
from marketplace.payments import plans


def test_the_webhook_bench_applies_every_event_once_as_the_bare_handler_does(
    firestore_db: firestore.Client, auth_emulator: Any, tmp_path: Path
) -> None:
    outcome = webhook.run(firestore_db, customers=2)
    written = json.loads(webhook.write(outcome, directory=tmp_path).read_text())

    assert written["params"]["events"] == 20
    for config in webhook.CONFIGS:
        figures, baseline = written["figures"][config], written["baseline"][config]
        assert figures["events"] == baseline["events"] == figures["ledgerEntries"] == 20
        assert figures["sameEndStateAsBaseline"]
        # Per agent: 8 (cancels) or 7 (renews) applied; a renewal invoice of an active
        # subscription changes nothing; the past_due update after the failed invoice of
        # the same second is stale.
        assert (
            figures["outcomes"]
            == baseline["outcomes"]
            == {
                "applied": 15,
                "no_effect": 3,
                "stale": 2,
            }
        )
        assert figures["latencyMs"]["p50"] > 0 and baseline["latencyMs"]["p95"] > 0
        assert written["ratio"][config]["p50"] > 0
    # The agent who renews is on the plan, the one who cancelled is not, on both paths;
    # with the claim sync, the claim follows and the unrelated claim stays.
    for world in ("wa", "wb"):
        renewed, cancelled = f"wh-{world}-000", f"wh-{world}-001"
        for uid, plan in ((renewed, plans.PLAN), (cancelled, None)):
            assert firestore_db.document(f"users/{uid}").get().get("plan") == plan
            claims = auth.get_user(uid).custom_claims or {}
            assert (claims.get("plan"), claims["team"]) == (plan, "north")
    assert [row["config"] for row in written["rows"]] == list(webhook.CONFIGS)
