"""run_transaction: contention anywhere in a transaction, read or commit, is retried, and
contention that outlasts every attempt is BUSY (ABORTED), never INTERNAL."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc
from google.cloud import firestore

from firekit.errors import BUSY
from firekit.transactions import run_transaction


def test_a_read_refused_for_contention_is_run_again_on_a_new_transaction(
    firestore_db: firestore.Client,
) -> None:
    ref = firestore_db.document("counters/c1")
    ref.set({"n": 0})
    attempts: list[bytes] = []

    def apply(transaction: firestore.Transaction) -> int:
        attempts.append(transaction.id)
        n = int(ref.get(transaction=transaction).get("n"))
        if len(attempts) == 1:  # as the emulator answers a read stuck behind a lock
            raise gexc.Aborted("Transaction lock timeout.")
        transaction.update(ref, {"n": n + 1})
        return n + 1

    assert run_transaction(firestore_db, apply, busy_message="busy counter") == 1
    assert ref.get().get("n") == 1  # the refused attempt wrote nothing
    assert len(attempts) == 2 and attempts[0] != attempts[1]


def test_contention_that_outlasts_every_attempt_is_busy(firestore_db: firestore.Client) -> None:
    calls = 0

    def apply(transaction: firestore.Transaction) -> None:
        nonlocal calls
        calls += 1
        raise gexc.Aborted("Transaction lock timeout.")

    with pytest.raises(type(BUSY())) as refused:
        run_transaction(firestore_db, apply, busy_message="The counter is busy.", attempts=3)

    assert BUSY.raised(refused.value) and refused.value.message == "The counter is busy."
    assert calls == 3
