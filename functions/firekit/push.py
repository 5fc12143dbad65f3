"""Push through FCM (``firebase_admin.messaging``), with dead-token clean-up.

:func:`send_pushes` looks up each recipient's registered devices, sends one message per
device in calls of up to 500 (FCM's ``send_each`` limit), and deletes the devices FCM
reports as unregistered, so a dead token costs one failed send, once.

Every message carries the notification's id as its collapse key (Android
``collapse_key``, APNs ``apns-collapse-id``, Web Push ``Topic``). A push that is sent
twice (the one ambiguous moment of any at-least-once delivery: the process dies after
FCM accepted the message and before we recorded it) therefore replaces the first on the
device instead of showing twice.

FCM cannot be reached from the emulators, so there :func:`default_transport` is a
:class:`RecordingTransport`: it writes each message it would send, exactly as built, to
``_pushOutbox`` and answers the way FCM does. Tokens starting with ``expired-`` are
answered ``UNREGISTERED`` (like Stripe's test card numbers), so dead-token clean-up is
testable end to end.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from firebase_admin import messaging
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from firekit import logs
from firekit.bootstrap import is_emulated

MAX_PER_CALL = 500
"""FCM's ``send_each`` limit."""
MAX_IN = 30
"""Firestore's limit on the values of one ``in`` filter."""
OUTBOX = "_pushOutbox"
EXPIRED_PREFIX = "expired-"


@dataclass(frozen=True)
class Push:
    """One notification for one user, to be sent to each of their devices."""

    uid: str
    collapse_id: str
    """Stable per notification (its document id): duplicates collapse on the device."""
    title: str
    body: str
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Devices:
    """Where a user's devices are: a collection (group) with the owner as a field."""

    collection: str
    owner_field: str


@dataclass
class PushReport:
    """What one :func:`send_pushes` call did."""

    sent: int = 0
    failed: int = 0
    removed_tokens: int = 0
    users_without_devices: int = 0


class PushTransport(Protocol):
    """``messaging.send_each``'s shape: the real FCM or the emulators' recorder."""

    def send_each(self, messages: list[messaging.Message]) -> messaging.BatchResponse:
        """Send each message; one response per message, in order."""


class FcmTransport:
    """The real FCM, through the default app."""

    def send_each(self, messages: list[messaging.Message]) -> messaging.BatchResponse:
        """Send through FCM."""
        return messaging.send_each(messages)


class RecordingTransport:
    """Under the emulators: records every message it would send, answers as FCM would."""

    def __init__(self, db: firestore.Client) -> None:
        self.db = db

    def send_each(self, messages: list[messaging.Message]) -> messaging.BatchResponse:
        """Record each message (one batch) and answer per message."""
        batch = self.db.batch()
        responses = []
        for message in messages:
            token = str(message.fid)
            if token.startswith(EXPIRED_PREFIX):
                error = messaging.UnregisteredError("Requested entity was not found.")
                responses.append(messaging.SendResponse(None, error))
                continue
            ref = self.db.collection(OUTBOX).document()
            batch.set(ref, recorded(message))
            name = f"projects/emulated/messages/{ref.id}"
            responses.append(messaging.SendResponse({"name": name}, None))
        batch.commit()
        return messaging.BatchResponse(responses)


def recorded(message: messaging.Message) -> dict[str, Any]:
    """The parts of a message that decide what the user sees, as stored by the recorder."""
    note = message.notification
    android = message.android
    apns_headers = (message.apns.headers or {}) if message.apns else {}
    webpush_headers = (message.webpush.headers or {}) if message.webpush else {}
    return {
        "token": message.fid,
        "title": note.title if note else None,
        "body": note.body if note else None,
        "data": dict(message.data or {}),
        "collapseKey": android.collapse_key if android else None,
        "apnsCollapseId": apns_headers.get("apns-collapse-id"),
        "webpushTopic": webpush_headers.get("Topic"),
        "recordedAt": firestore.SERVER_TIMESTAMP,
    }


def default_transport(db: firestore.Client) -> PushTransport:
    """FCM when deployed; the recorder under the emulators (FCM is unreachable there)."""
    return RecordingTransport(db) if is_emulated() else FcmTransport()


def message_for(push: Push, token: str) -> messaging.Message:
    """The FCM message for one device, collapsing duplicates of the same notification."""
    # APNs and Web Push limit these ids to 64 and 32 characters: use a digest of it.
    collapse = hashlib.sha256(push.collapse_id.encode()).hexdigest()[:32]
    # firebase-admin 7.7 addresses an app instance by ``fid`` (``token`` is deprecated);
    # the device document's id is whatever the client registered as its FCM target.
    return messaging.Message(
        fid=token,
        notification=messaging.Notification(title=push.title, body=push.body),
        data=dict(push.data),
        android=messaging.AndroidConfig(collapse_key=collapse),
        apns=messaging.APNSConfig(headers={"apns-collapse-id": collapse}),
        webpush=messaging.WebpushConfig(headers={"Topic": collapse}),
    )


def device_tokens(
    db: firestore.Client, devices: Devices, uids: Iterable[str]
) -> dict[str, list[firestore.DocumentReference]]:
    """Each user's device documents (the id is the token), 30 users per query."""
    found: dict[str, list[firestore.DocumentReference]] = {}
    for group in _chunks(sorted(set(uids)), MAX_IN):
        query = db.collection_group(devices.collection).where(
            filter=FieldFilter(devices.owner_field, "in", group)
        )
        for snapshot in query.select([devices.owner_field]).stream():
            owner = (snapshot.to_dict() or {}).get(devices.owner_field)
            # The owner field is written under the rules as the caller's uid, and the
            # path says the same; trust only documents where both agree.
            parent = snapshot.reference.parent.parent
            if isinstance(owner, str) and parent is not None and parent.id == owner:
                found.setdefault(owner, []).append(snapshot.reference)
    return found


def send_pushes(
    db: firestore.Client,
    transport: PushTransport,
    devices: Devices,
    pushes: Sequence[Push],
) -> PushReport:
    """Send each push to every device of its user; delete devices FCM says are gone.

    Failures other than an unregistered token are counted and logged, not raised: the
    notification is in the user's inbox either way, and retrying a whole batch would
    send again to every device that already got it.
    """
    report = PushReport()
    tokens = device_tokens(db, devices, (p.uid for p in pushes))
    targets = [(push, ref) for push in pushes for ref in tokens.get(push.uid, [])]
    report.users_without_devices = sum(1 for p in pushes if p.uid not in tokens)
    dead: list[firestore.DocumentReference] = []
    for part in _chunks(targets, MAX_PER_CALL):
        response = transport.send_each([message_for(push, ref.id) for push, ref in part])
        for (_push, ref), result in zip(part, response.responses, strict=True):
            if result.success:
                report.sent += 1
            elif isinstance(result.exception, messaging.UnregisteredError):
                dead.append(ref)
            else:
                report.failed += 1
                logs.warning(
                    "push failed", error=type(result.exception).__name__,
                    token=ref.id[:8] + "…",
                )  # fmt: skip
    for part in _chunks(dead, MAX_PER_CALL):
        batch = db.batch()
        for ref in part:
            batch.delete(ref)
        batch.commit()
    report.removed_tokens = len(dead)
    return report


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def outbox_since(db: firestore.Client, since: dt.datetime) -> list[dict[str, Any]]:
    """What the recorder sent since ``since`` (for tests and the dev stack)."""
    query = db.collection(OUTBOX).where(filter=FieldFilter("recordedAt", ">=", since))
    return [s.to_dict() or {} for s in query.stream()]
