"""Cloud Storage object events as Eventarc delivers them, for a stand-in bucket.

No emulator sends storage events here (the Firebase Storage emulator cannot start offline).
The stand-in, fake-gcs-server, publishes Pub/Sub notifications instead; :func:`from_notification`
turns one into the CloudEvent production delivers, which the bridge
(``python -m pytest_firebase.storage_bridge``) posts to the Functions emulator, and which
:func:`storage_event` builds in-process for calling a trigger's function object directly
(replays, out-of-order deliveries). The same shape both ways, so a handler tested in-process
is the handler that runs live.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from cloudevents.http import CloudEvent

StorageAction = Literal["finalized", "deleted", "metadataUpdated", "archived"]
NOTIFICATION_ACTIONS: dict[str, StorageAction] = {
    "OBJECT_FINALIZE": "finalized",
    "OBJECT_DELETE": "deleted",
    "OBJECT_METADATA_UPDATE": "metadataUpdated",
    "OBJECT_ARCHIVE": "archived",
}
"""A Pub/Sub notification's ``eventType`` → the CloudEvent type's last word."""


def storage_event(
    bucket: str,
    name: str,
    *,
    generation: int | str,
    size: int,
    content_type: str | None = None,
    action: StorageAction = "finalized",
    metadata: Mapping[str, str] | None = None,
    event_id: str | None = None,
    time: dt.datetime | None = None,
) -> CloudEvent:
    """The event for object ``name`` of ``bucket`` (``generation`` identifies the write).

    ``event_id`` defaults to a fresh UUID; pass the same one again for a redelivery.
    """
    when = (time or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    stamp = _rfc3339(when)
    data: dict[str, Any] = {
        "kind": "storage#object",
        "id": f"{bucket}/{name}/{generation}",
        "bucket": bucket,
        "name": name,
        # The JSON API carries int64 fields as strings.
        "generation": str(generation),
        "metageneration": "1",
        "size": str(size),
        "storageClass": "STANDARD",
        "timeCreated": stamp,
        "updated": stamp,
    }
    if content_type is not None:
        data["contentType"] = content_type
    if metadata:
        data["metadata"] = dict(metadata)
    return CloudEvent(_attributes(action, data, event_id or str(uuid.uuid4()), stamp), data)


def from_notification(message: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Pub/Sub notification from the stand-in → (CloudEvent attributes, data).

    Two repairs make the stand-in's payload what production sends: ``metageneration`` (which
    the SDK requires and fake-gcs-server omits) and a fractional second in ``time`` (the SDK
    parses ``%S.%f``; Go trims ``.000``). The event id is the notification's message id, so a
    Pub/Sub redelivery is a redelivery of the same event, as with Eventarc.
    """
    attributes = message["attributes"]
    data = json.loads(base64.b64decode(message["data"]))
    data.setdefault("metageneration", "1")
    stamp = _fractional(data.get("updated") or attributes["eventTime"])
    action = NOTIFICATION_ACTIONS[attributes["eventType"]]
    event_id = message.get("messageId") or message.get("message_id") or str(uuid.uuid4())
    return _attributes(action, data, str(event_id), stamp), data


def _attributes(
    action: StorageAction, data: Mapping[str, Any], event_id: str, stamp: str
) -> dict[str, Any]:
    # Eventarc's shape: the bucket in `source`, the object in `subject` (the Firebase
    # Storage emulator differs; handlers read event.data, never parse these).
    return {
        "specversion": "1.0",
        "id": event_id,
        "type": f"google.cloud.storage.object.v1.{action}",
        "source": f"//storage.googleapis.com/projects/_/buckets/{data['bucket']}",
        "subject": f"objects/{data['name']}",
        "time": stamp,
        "datacontenttype": "application/json",
    }


def _rfc3339(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fractional(stamp: str) -> str:
    head, _, zone = stamp.rstrip("Z").partition("+")
    if "." not in head:
        head += ".000000"
    return f"{head}{'+' + zone if zone else 'Z'}"
