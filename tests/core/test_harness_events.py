"""The CloudEvent factory: values survive the SDK's own decoding, attributes match."""

from __future__ import annotations

import datetime as dt
from typing import Any

from firebase_functions import firestore_fn
from google.cloud.firestore import DocumentSnapshot

from pytest_firebase.events import deliver, firestore_event, redelivery

RECEIVED: list[firestore_fn.Event[Any]] = []


@firestore_fn.on_document_written(document="things/{thingId}")
def raw_written(event: firestore_fn.Event[Any]) -> None:
    RECEIVED.append(event)


@firestore_fn.on_document_created(document="things/{thingId}")
def raw_created(event: firestore_fn.Event[Any]) -> None:
    RECEIVED.append(event)


VALUES = {
    "s": "text",
    "i": 42,
    "f": 1.5,
    "b": True,
    "n": None,
    "t": dt.datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC),
    "l": [1, "two", [3]],
    "m": {"nested": {"deep": False}, "empty": {}},
    "raw": b"\x00\x01",
}


def test_values_survive_the_sdk_decoding(firebase_project: str) -> None:
    event = firestore_event("things/t1", before={"s": "old"}, after=VALUES, event_id="evt-1")
    deliver(raw_written, event)
    received = RECEIVED[-1]
    before, after = received.data.before, received.data.after
    assert isinstance(after, DocumentSnapshot) and isinstance(before, DocumentSnapshot)
    assert after.to_dict() == VALUES and before.to_dict() == {"s": "old"}
    assert received.params == {"thingId": "t1"}
    assert (received.id, received.document, received.project) == (
        "evt-1",
        "things/t1",
        firebase_project,
    )


def test_attributes_match_the_emulators(firebase_project: str) -> None:
    event = firestore_event("things/t2", after={"a": 1}, kind="created")
    attributes = event.get_attributes()
    assert attributes["type"] == "google.cloud.firestore.document.v1.created"
    assert attributes["source"] == (
        f"//firestore.googleapis.com/projects/{firebase_project}/databases/(default)"
    )
    assert attributes["subject"] == "documents/things/t2"
    assert attributes["datacontenttype"] == "application/protobuf"
    assert (attributes["database"], attributes["namespace"]) == ("(default)", "(default)")
    deliver(raw_created, event)
    assert RECEIVED[-1].data.to_dict() == {"a": 1}


def test_redelivery_keeps_id_and_payload() -> None:
    event = firestore_event("things/t3", before=None, after={"a": 1})
    again = redelivery(event)
    assert again is not event
    assert again["id"] == event["id"] and again.get_data() == event.get_data()
    deliver(raw_written, again)
    assert RECEIVED[-1].data.before is None
