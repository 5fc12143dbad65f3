"""document_trigger's two skips, told apart: ``owned_fields`` (the handler's own writes)
and ``only_when_changed`` (the fields it reacts to)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.cloud import firestore

from firekit.events import AnyDocument, DocumentChange, Effects, document_trigger
from firekit.ledger import COLLECTION as LEDGER
from pytest_firebase.events import deliver, firestore_event

from .conftest import LogReader

REACTIONS = "reactions"


def react(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    """Counts its runs and writes ``stamp`` back to the document it reacted to."""
    key = change.params["id"]
    effects.tx.set(
        effects.db.collection(REACTIONS).document(key),
        {"runs": firestore.Increment(1)},
        merge=True,
    )
    if change.after_data is not None:
        effects.tx.set(effects.db.document(change.document), {"stamp": 1}, merge=True)


on_price = document_trigger(
    "homes/{id}", model=AnyDocument, only_when_changed=("status", "price.amount"), name="on_price"
)(react)
on_price_stamped = document_trigger(
    "homes/{id}",
    model=AnyDocument,
    owned_fields=("stamp", "status"),
    only_when_changed=("status",),
    name="on_price_stamped",
)(react)


def runs(db: firestore.Client, key: str) -> int:
    snap = db.collection(REACTIONS).document(key).get()
    return int((snap.to_dict() or {}).get("runs", 0))


HOME = {"status": "active", "price": {"amount": 100, "currency": "GBP"}, "views": 1}


def test_an_update_of_no_watched_field_is_skipped_before_the_ledger(
    firestore_db: firestore.Client, unique: Callable[[str], str], read_logs: LogReader
) -> None:
    key = unique("h")
    deliver(on_price, firestore_event(f"homes/{key}", before=HOME, after={**HOME, "views": 2}))
    currency = {**HOME, "price": {"amount": 100, "currency": "EUR"}}  # a sibling of the path
    deliver(on_price, firestore_event(f"homes/{key}", before=HOME, after=currency))
    assert runs(firestore_db, key) == 0
    assert list(firestore_db.collection(LEDGER).stream()) == []
    lines = read_logs("trigger")
    assert [(line["outcome"], line["changedFields"]) for line in lines] == [
        ("skipped_unwatched", ["views"]),
        ("skipped_unwatched", ["price.currency"]),
    ]


def test_a_watched_path_or_the_map_holding_it_runs_the_handler(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> None:
    key = unique("h")
    path = f"homes/{key}"
    cheaper = {**HOME, "price": {"amount": 90, "currency": "GBP"}}
    deliver(on_price, firestore_event(path, before=HOME, after=cheaper))
    deliver(on_price, firestore_event(path, before={**HOME, "price": 100}, after=HOME))
    deliver(on_price, firestore_event(path, before=HOME, after={**HOME, "status": "sold"}))
    assert runs(firestore_db, key) == 3


def test_creates_and_deletes_always_run(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> None:
    key = unique("h")
    bare: dict[str, Any] = {"views": 1}  # no watched field at all
    deliver(on_price, firestore_event(f"homes/{key}", after=bare))
    deliver(on_price, firestore_event(f"homes/{key}", before=bare))
    assert runs(firestore_db, key) == 2


def test_the_loop_guard_comes_first_for_a_watched_field_the_handler_writes(
    firestore_db: firestore.Client, unique: Callable[[str], str], read_logs: LogReader
) -> None:
    key = unique("h")
    own_write = {**HOME, "status": "sold", "stamp": 1}
    deliver(on_price_stamped, firestore_event(f"homes/{key}", before=HOME, after=own_write))
    deliver(on_price_stamped, firestore_event(f"homes/{key}", before=HOME, after={**HOME, "x": 1}))
    edited = {**HOME, "status": "sold", "views": 5}  # someone else's status change
    deliver(on_price_stamped, firestore_event(f"homes/{key}", before=HOME, after=edited))
    assert runs(firestore_db, key) == 1
    outcomes = [line["outcome"] for line in read_logs("trigger")]
    assert outcomes == ["skipped_own_write", "skipped_unwatched", "applied"]
