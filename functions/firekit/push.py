"""Push through FCM (``firebase_admin.messaging``), with dead-token clean-up.

:func:`send_pushes` sends one message per registered device of each recipient in calls of
up to 500 (FCM's ``send_each`` limit), and deletes the devices FCM reports as
unregistered, so a dead token costs one failed send, once.

**Where the tokens come from.** Devices are documents under their user
(``users/{uid}/devices/{token}``, the id is the token), written by the apps. A fan-out
must not query them per recipient: :func:`sync_tokens`, run by a trigger on every device
write, keeps the newest :data:`MAX_DEVICES` tokens as a list on a document the fan-out
reads anyway (the user's private account). A push then carries its tokens, and sending
to 10,000 users reads no device at all. The sync re-reads the user's devices in a
transaction each time, so duplicated or reordered trigger events converge on what the
devices are now. A push without tokens (an account synced before the trigger existed)
falls back to reading that user's devices.

Every message carries a digest of the notification's id as its collapse id and tag
(APNs ``apns-collapse-id``; Android ``collapse_key`` and notification ``tag``; Web Push
``Topic`` and notification ``tag``). A push sent twice (the one ambiguous moment of any
at-least-once delivery: the process dies after FCM accepted the message and before we
recorded it) therefore replaces the first on the device instead of showing twice: the
collapse ids while it is undelivered, the tags once it is on screen.

Failures FCM calls transient (unavailable, internal, quota) are returned for a later
retry of those users alone; others are logged and dropped, since the inbox holds the
notification anyway. A user's devices are capped at :data:`MAX_DEVICES` (the newest), so
a slice of 100 users is always one ``send_each`` call.

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from firebase_admin import exceptions, messaging
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from firekit import logs
from firekit.bootstrap import is_emulated

DESCENDING = firestore.Query.DESCENDING
MAX_PER_CALL = 500
"""FCM's ``send_each`` limit."""
MAX_DEVICES = 5
"""Devices pushed per user (the most a phone, a tablet and a few browsers need)."""
TRANSIENT = (exceptions.UnavailableError, messaging.QuotaExceededError, exceptions.InternalError)
"""What FCM answers when trying again later can help."""
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
    tokens: tuple[str, ...] | None = None
    """The user's registration tokens, as :func:`tokens_in` read them; None: unknown (the
    user's devices are then read)."""


@dataclass(frozen=True)
class Devices:
    """Where a user's devices are, and where their tokens are kept for fan-outs."""

    collection: str = "users/{uid}/devices"
    """The path pattern of a user's device collection (document id = token)."""
    newest_by: str = "updatedAt"
    """The field that says which devices were used last (kept when there are more)."""
    holder: str = "users/{uid}/private/account"
    """The document that keeps the tokens (function-owned field), read by fan-outs."""
    tokens_field: str = "pushTokens"

    def devices_of(self, db: firestore.Client, uid: str) -> firestore.Query:
        """A user's newest :data:`MAX_DEVICES` devices."""
        collection = db.collection(self.collection.format(uid=uid))
        return collection.order_by(self.newest_by, direction=DESCENDING).limit(MAX_DEVICES)

    def device(self, db: firestore.Client, uid: str, token: str) -> firestore.DocumentReference:
        """One device's document."""
        return db.collection(self.collection.format(uid=uid)).document(token)

    def holder_of(self, db: firestore.Client, uid: str) -> firestore.DocumentReference:
        """The document keeping the user's tokens."""
        return db.document(self.holder.format(uid=uid))


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


def tokens_in(devices: Devices, holder: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    """The tokens kept on a holder document's data; None if they were never synced."""
    kept = (holder or {}).get(devices.tokens_field)
    if not isinstance(kept, list):
        return None
    return tuple(t for t in kept if isinstance(t, str) and t)[:MAX_DEVICES]


def sync_tokens(
    db: firestore.Client, transaction: firestore.Transaction, devices: Devices, uid: str
) -> list[str] | None:
    """Keep the user's newest tokens on their holder document (in ``transaction``).

    Reads the devices as they are now, so it is right whatever event ran it, however
    late or often. Returns the tokens written, or None when nothing was written (they
    were already right, or the user has no holder document: a deleted user).
    """
    holder = devices.holder_of(db, uid)
    snapshot = holder.get(transaction=transaction)
    if not snapshot.exists:
        return None
    found = devices.devices_of(db, uid).stream(transaction=transaction)
    tokens = [s.id for s in found]
    if (snapshot.to_dict() or {}).get(devices.tokens_field) == tokens:
        return None
    transaction.update(holder, {devices.tokens_field: tokens})
    return tokens


def _read_tokens(db: firestore.Client, devices: Devices, uid: str) -> tuple[str, ...]:
    return tuple(s.id for s in devices.devices_of(db, uid).select([]).stream())


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
    targets: list[tuple[Push, str]] = []
    for push in pushes:
        tokens = push.tokens if push.tokens is not None else _read_tokens(db, devices, push.uid)
        if not tokens:
            report.users_without_devices += 1
        targets += [(push, token) for token in dict.fromkeys(tokens)]
    dead: list[firestore.DocumentReference] = []
    for part in _chunks(targets, MAX_PER_CALL):
        response = transport.send_each([message_for(push, token) for push, token in part])
        for (push, token), result in zip(part, response.responses, strict=True):
            if result.success:
                report.sent += 1
            elif isinstance(result.exception, messaging.UnregisteredError):
                dead.append(devices.device(db, push.uid, token))
            elif isinstance(result.exception, TRANSIENT):
                report.retry.add(push.uid)
            else:
                report.failed += 1
                logs.warning(
                    "push failed",
                    error=type(result.exception).__name__,
                    token=token[:8] + "…",
                )
    for part in _chunks(dead, MAX_PER_CALL):
        # Deleting the device runs the sync trigger, which drops the token from the
        # holder document too.
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
