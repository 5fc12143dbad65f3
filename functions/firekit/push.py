"""Push through FCM (``firebase_admin.messaging``), with dead-token clean-up.

:func:`send_pushes` looks up each recipient's registered devices, sends one message per
device in calls of up to 500 (FCM's ``send_each`` limit), and deletes the devices FCM
reports as unregistered, so a dead token costs one failed send, once.

Every message carries a digest of the notification's id as its collapse id and tag
(APNs ``apns-collapse-id``; Android ``collapse_key`` and notification ``tag``; Web Push
``Topic`` and notification ``tag``). A push sent twice (the one ambiguous moment of any
at-least-once delivery: the process dies after FCM accepted the message and before we
recorded it) therefore replaces the first on the device instead of showing twice: the
collapse ids while it is undelivered, the tags once it is on screen.

Failures FCM calls transient (unavailable, internal, quota) are returned for a later
retry of those users alone; others are logged and dropped, since the inbox holds the
notification anyway. A user's devices are capped at :data:`MAX_DEVICES` per push, so a
slice of 100 users is always one ``send_each`` call.

FCM cannot be reached from the emulators, so there :func:`default_transport` is a
:class:`RecordingTransport`: it writes each message it would send, exactly as built, to
``_pushOutbox`` and answers the way FCM does. Tokens starting with ``expired-`` are
answered ``UNREGISTERED`` (like Stripe's test card numbers), so dead-token clean-up is
testable end to end.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from firebase_admin import exceptions, messaging
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from firekit import logs
from firekit.bootstrap import is_emulated

MAX_PER_CALL = 500
"""FCM's ``send_each`` limit."""
MAX_DEVICES = 5
"""Devices pushed per user (the most a phone, a tablet and a few browsers need)."""
TRANSIENT = (exceptions.UnavailableError, messaging.QuotaExceededError, exceptions.InternalError)
"""What FCM answers when trying again later can help."""
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
    retry: set[str] = field(default_factory=set)
    """Users with a transient failure on some device: push them again later."""


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
            token = str(message.token)
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
        "token": message.token,
        "title": note.title if note else None,
        "body": note.body if note else None,
        "data": dict(message.data or {}),
        "collapseKey": android.collapse_key if android else None,
        "androidTag": android.notification.tag if android and android.notification else None,
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
    with warnings.catch_warnings():
        # firebase-admin 7.7 deprecates ``token`` for ``fid`` (installation ids), but the
        # apps register what ``getToken()`` returns: a registration token, sent as such.
        warnings.simplefilter("ignore", DeprecationWarning)
        return messaging.Message(
            token=token,
            notification=messaging.Notification(title=push.title, body=push.body),
            data=dict(push.data),
            android=messaging.AndroidConfig(
                collapse_key=collapse, notification=messaging.AndroidNotification(tag=collapse)
            ),
            apns=messaging.APNSConfig(headers={"apns-collapse-id": collapse}),
            webpush=messaging.WebpushConfig(
                headers={"Topic": collapse},
                notification=messaging.WebpushNotification(tag=collapse),
            ),
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
    return {owner: sorted(refs, key=lambda r: r.id)[:MAX_DEVICES] for owner, refs in found.items()}


def send_pushes(
    db: firestore.Client,
    transport: PushTransport,
    devices: Devices,
    pushes: Sequence[Push],
) -> PushReport:
    """Send each push to every device of its user; delete devices FCM says are gone.

    Transient failures name their users in ``report.retry``; other failures are counted
    and logged, not raised: the notification is in the user's inbox either way.
    """
    report = PushReport()
    tokens = device_tokens(db, devices, (p.uid for p in pushes))
    targets = [(push, ref) for push in pushes for ref in tokens.get(push.uid, [])]
    report.users_without_devices = sum(1 for p in pushes if p.uid not in tokens)
    dead: list[firestore.DocumentReference] = []
    for part in _chunks(targets, MAX_PER_CALL):
        response = transport.send_each([message_for(push, ref.id) for push, ref in part])
        for (push, ref), result in zip(part, response.responses, strict=True):
            if result.success:
                report.sent += 1
            elif isinstance(result.exception, messaging.UnregisteredError):
                dead.append(ref)
            elif isinstance(result.exception, TRANSIENT):
                report.retry.add(push.uid)
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
