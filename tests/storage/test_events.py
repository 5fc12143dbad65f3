"""Object events from the stand-in: what fake-gcs-server publishes, and the CloudEvent the
bridge makes of it, which must be exactly what the Functions SDK decodes in production."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cloudevents.http import CloudEvent
from firebase_functions import storage_fn
from google.cloud import storage  # type: ignore[attr-defined]

import devstack
from firekit import storage as firekit_storage
from pytest_firebase.stack import EmulatorStack
from pytest_firebase.storage import from_notification, storage_event


@pytest.fixture
def subscription(firebase_stack: EmulatorStack) -> Iterator[str]:
    """A pull subscription of our own on the stand-in's topic (beside the bridge's)."""
    project = firebase_stack.config.project_id
    url = f"http://{firebase_stack.host('pubsub')}/v1/projects/{project}/subscriptions/t-{uuid.uuid4().hex[:8]}"
    topic = f"projects/{project}/topics/{devstack.STORAGE_EVENTS_TOPIC}"
    requests.put(url, json={"topic": topic}, timeout=10).raise_for_status()
    yield url
    requests.delete(url, timeout=10)


def pull(subscription: str, wanted: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for _ in range(50):
        answer = requests.post(f"{subscription}:pull", json={"maxMessages": 10}, timeout=10)
        messages += [m["message"] for m in answer.json().get("receivedMessages", [])]
        if len(messages) >= wanted:
            return messages
    return messages


def test_writes_and_deletes_under_uploads_are_published_and_nothing_else(
    subscription: str,
) -> None:
    bucket = firekit_storage.bucket(devstack.STORAGE_BUCKET)
    name = f"uploads/listings/events-{uuid.uuid4().hex[:8]}/AAAAAAAAAAAAAAAAAAAA"
    bucket.blob(f"photos-elsewhere/{uuid.uuid4().hex}").upload_from_string(b"x")
    blob = bucket.blob(name)
    blob.upload_from_string(b"\xff\xd8\xff bytes", content_type="image/jpeg")
    blob.delete()

    messages = pull(subscription, 2)

    kinds = [(m["attributes"]["eventType"], m["attributes"]["objectId"]) for m in messages]
    assert kinds == [("OBJECT_FINALIZE", name), ("OBJECT_DELETE", name)]


def test_a_notification_becomes_the_event_eventarc_sends(subscription: str) -> None:
    bucket = firekit_storage.bucket(devstack.STORAGE_BUCKET)
    name = f"uploads/avatars/u-{uuid.uuid4().hex[:8]}/AAAAAAAAAAAAAAAAAAAA"
    blob = bucket.blob(name)
    blob.upload_from_string(b"12345", content_type="image/png")
    [message] = pull(subscription, 1)

    attributes, data = from_notification(message)

    assert attributes["type"] == "google.cloud.storage.object.v1.finalized"
    assert attributes["source"] == f"//storage.googleapis.com/projects/_/buckets/{bucket.name}"
    assert attributes["subject"] == f"objects/{name}"
    assert attributes["id"] == message["messageId"]  # a Pub/Sub redelivery is the same event
    assert (data["name"], data["size"], data["contentType"]) == (name, "5", "image/png")
    assert data["generation"] == str(blob.generation) and data["metageneration"] == "1"
    decoded = decode(CloudEvent(attributes, data))
    assert decoded.data.generation == str(blob.generation)
    assert decoded.time.tzinfo is not None


@pytest.mark.parametrize(
    ("updated", "expected"),
    [
        ("2026-12-03T05:34:06Z", "2026-12-03T05:34:06.000000Z"),
        ("2026-12-03T05:34:06.37793Z", "2026-12-03T05:34:06.37793Z"),
    ],
)
def test_a_time_without_a_fraction_is_given_one(updated: str, expected: str) -> None:
    data = {"bucket": "b", "name": "uploads/x", "generation": "1", "size": "1", "updated": updated}
    message = {
        "attributes": {"eventType": "OBJECT_FINALIZE", "eventTime": updated},
        "data": base64.b64encode(json.dumps(data).encode()).decode(),
        "messageId": "42",
    }

    attributes, _ = from_notification(message)

    assert attributes["time"] == expected
    assert (
        decode(
            CloudEvent(
                attributes,
                {**data, "id": "b/x/1", "storageClass": "STANDARD", "metageneration": "1"},
            )
        ).id
        == "42"
    )


def test_the_in_process_event_is_decoded_as_production_decodes_it() -> None:
    when = dt.datetime(2026, 12, 3, 5, 34, 6, tzinfo=dt.UTC)
    event = storage_event(
        "b", "uploads/x", generation=7, size=3, content_type="image/jpeg", time=when, event_id="e1"
    )

    decoded = decode(event)

    assert (decoded.id, decoded.time, decoded.subject) == ("e1", when, "objects/uploads/x")
    assert (decoded.data.bucket, decoded.data.generation, decoded.data.size) == ("b", "7", "3")


def decode(event: CloudEvent) -> Any:
    """What a storage_fn handler receives for ``event`` (the SDK's own decoding)."""
    seen: list[Any] = []
    handler = storage_fn.on_object_finalized(bucket="b")(seen.append)
    handler(event)  # type: ignore[arg-type]
    return seen[0]


def test_the_stand_in_buckets_exist(firebase_stack: EmulatorStack) -> None:
    client = firekit_storage.client()
    assert {b.name for b in client.list_buckets()} >= set(devstack.BUCKETS)
    assert isinstance(client, storage.Client)
