"""Firestore CloudEvents as the emulator delivers them, for calling triggers in-process.

:func:`firestore_event` builds a real ``cloudevents.http.CloudEvent`` with the attributes
the Firestore emulator sends (binary mode, ``application/protobuf`` data holding a
``google.events.cloud.firestore.v1.DocumentEventData``). Pass it to the decorated trigger
function object, and the SDK's own ``_firestore_endpoint_handler`` decodes it. Calling the
function again with the same event object is a redelivery of the same event (same id).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

from cloudevents.http import CloudEvent
from google.events.cloud.firestore_v1 import types as fs_types
from google.protobuf import struct_pb2, timestamp_pb2

from pytest_firebase.tokens import default_project

EventKind = Literal["written", "created", "updated", "deleted"]
DATA_SCHEMA = (
    "https://github.com/googleapis/google-cloudevents/blob/main/proto/google/events/cloud/"
    "firestore/v1/data.proto"
)


def firestore_event(
    document: str,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    kind: EventKind = "written",
    event_id: str | None = None,
    time: dt.datetime | None = None,
    project: str | None = None,
    database: str = "(default)",
    location: str = "us-central1",
) -> CloudEvent:
    """A Firestore document event for ``document`` (``users/u1``), as the emulator sends it.

    ``before``/``after`` are plain dicts (None: the document did not / no longer exists).
    ``event_id`` defaults to a fresh UUID, like the emulator's; pass one to redeliver.
    """
    document = document.strip("/")
    project_id = project or default_project()
    when = (time or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    name = f"projects/{project_id}/databases/{database}/documents/{document}"
    payload = fs_types.DocumentEventData(
        value=_document(name, after, when) if after is not None else None,
        old_value=_document(name, before, when) if before is not None else None,
    )
    attributes = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": f"//firestore.googleapis.com/projects/{project_id}/databases/{database}",
        "type": f"google.cloud.firestore.document.v1.{kind}",
        "subject": f"documents/{document}",
        # The emulator truncates to whole seconds; keep sub-second precision for ordering.
        "time": when.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/protobuf",
        "dataschema": DATA_SCHEMA,
        "location": location,
        "project": project_id,
        "database": database,
        "namespace": "(default)",
        "document": document,
    }
    return CloudEvent(attributes, fs_types.DocumentEventData.serialize(payload))


def deliver(function: Callable[..., object], event: CloudEvent) -> None:
    """Deliver ``event`` to a Firestore-triggered function object, as the runtime does.

    Exists for typing: the SDK annotates its wrapped functions as taking the decoded
    ``Event``, while what they really accept is the raw ``CloudEvent``.
    """
    function(event)


def redelivery(event: CloudEvent) -> CloudEvent:
    """A copy of ``event`` with the same id and payload (what a platform retry delivers)."""
    return CloudEvent(dict(event.get_attributes()), event.get_data())


def _document(name: str, fields: Mapping[str, Any], when: dt.datetime) -> fs_types.Document:
    stamp = _timestamp(when)
    return fs_types.Document(
        name=name,
        fields={key: to_value(value) for key, value in fields.items()},
        create_time=stamp,
        update_time=stamp,
    )


def to_value(value: Any) -> fs_types.Value:
    """Encode a plain Python value as a Firestore ``Value`` (as the emulator would)."""
    if value is None:
        return fs_types.Value(null_value=struct_pb2.NullValue.NULL_VALUE)
    if isinstance(value, bool):  # before int: bool is an int subclass
        return fs_types.Value(boolean_value=value)
    if isinstance(value, int):
        return fs_types.Value(integer_value=value)
    if isinstance(value, float):
        return fs_types.Value(double_value=value)
    if isinstance(value, str):
        return fs_types.Value(string_value=value)
    if isinstance(value, bytes):
        return fs_types.Value(bytes_value=value)
    if isinstance(value, dt.datetime):
        return fs_types.Value(timestamp_value=_timestamp(value))
    if isinstance(value, Mapping):
        fields = {str(key): to_value(item) for key, item in value.items()}
        return fs_types.Value(map_value=fs_types.MapValue(fields=fields))
    if isinstance(value, list | tuple):
        values = [to_value(item) for item in value]
        return fs_types.Value(array_value=fs_types.ArrayValue(values=values))
    raise TypeError(f"Cannot encode {type(value).__name__} as a Firestore value.")


def _timestamp(when: dt.datetime) -> timestamp_pb2.Timestamp:
    # Naive datetimes are taken as UTC, as Firestore clients do.
    aware = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(aware.astimezone(dt.UTC))
    return stamp
