"""write_if_unchanged: a derived value written only on the version it was derived from."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from google.cloud import firestore

from firekit.errors import BUSY
from firekit.transactions import write_if_unchanged


def test_racing_increments_lose_nothing(firestore_db: firestore.Client) -> None:
    # A read-modify-write that a plain update would lose under the race.
    ref = firestore_db.collection("derived").document(uuid.uuid4().hex)
    start = threading.Barrier(8)

    def bump() -> None:
        start.wait()
        write_if_unchanged(
            ref,
            lambda snap: {"n": int((snap.to_dict() or {}).get("n", 0)) + 1},
            busy_message="busy",
            attempts=40,
        )

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (ref.get().to_dict() or {})["n"] == 8


def test_nothing_to_write_writes_nothing(firestore_db: firestore.Client) -> None:
    ref = firestore_db.collection("derived").document(uuid.uuid4().hex)
    snapshot, written = write_if_unchanged(ref, lambda _s: None, busy_message="busy")
    assert written is None and not snapshot.exists and not ref.get().exists


def test_a_document_that_keeps_changing_is_busy(firestore_db: firestore.Client) -> None:
    ref = firestore_db.collection("derived").document(uuid.uuid4().hex)
    ref.set({"n": 0})

    def meddle(snapshot: Any) -> dict[str, Any]:
        ref.update({"n": firestore.Increment(1)})  # someone writes between read and write
        return {"n": -1}

    with pytest.raises(type(BUSY("x"))):
        write_if_unchanged(ref, meddle, busy_message="busy", attempts=3)
    assert (ref.get().to_dict() or {})["n"] == 3
