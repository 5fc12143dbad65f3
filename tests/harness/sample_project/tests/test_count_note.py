"""The sample's function, run by the Functions emulator on a real write."""

import pytest


@pytest.mark.e2e
def test_creating_notes_counts_them_for_their_owner(as_user, firestore_db, wait_for) -> None:
    ada = as_user("ada")
    ada.create("notes/a1", {"owner": "ada", "text": "one"}).expect_ok()
    ada.create("notes/a2", {"owner": "ada", "text": "two"}).expect_ok()

    def counted() -> dict | None:
        counts = ada.get("noteCounts/ada").data
        return counts if counts and counts["notes"] == 2 else None

    assert wait_for(counted, timeout=60, what="ada's note count")["notes"] == 2
