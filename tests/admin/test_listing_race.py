"""Two admins reviewing one listing at once: one decision wins, one audit entry."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from google.cloud import firestore

from api.listings import approve_listing, reject_listing
from pytest_firebase.callables import call

from .factories import ADMIN, audit_entries, pending_listing

APPROVE = (approve_listing, {})
REJECT = (reject_listing, {"reason": "The photos show another home."})


@pytest.mark.parametrize(
    "moves", [(APPROVE, REJECT), (APPROVE, APPROVE), (REJECT, REJECT)], ids=["ar", "aa", "rr"]
)
def test_one_of_two_admins_reviewing_one_listing_decides(
    firestore_db: firestore.Client, moves: tuple[Any, Any]
) -> None:
    for _ in range(3):  # three rounds: the two calls overlap in at least some
        listing_id = pending_listing(firestore_db)
        calls = [
            (function, {"listingId": listing_id, **extra}, admin)
            for (function, extra), admin in zip(moves, ("admin-a", "admin-b"), strict=True)
        ]
        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(lambda c: call(c[0], c[1], uid=c[2], claims=ADMIN), calls))
        won = [a for a in answers if a.ok]
        lost = [a for a in answers if not a.ok]
        assert len(won) == 1 and len(lost) == 1, [a.body for a in answers]
        assert lost[0].error_details == {"reason": "transition_not_allowed"}
        status = firestore_db.document(f"listings/{listing_id}").get().get("status")
        assert status == won[0].data["status"]
        [entry] = [e for e in audit_entries(firestore_db) if e["target"].endswith(listing_id)]
        assert entry["change"]["after"] == {"status": status}
