"""Webhook intake: verify the raw body, apply each provider event once, answer so the
provider retries exactly when that can help.

For each request, in this order:

1. **Shape** (nothing read or written yet): ``POST`` only (405), a JSON content type
   (415), a body no larger than ``max_bytes`` (413, judged by ``Content-Length`` before
   the body is read, and by the bytes actually read).
2. **Signature**, on the raw bytes exactly as received: a missing, forged or expired
   signature, or one dated further in the future than the SDK's tolerance for the past,
   answers 400 ``invalid_signature`` and writes nothing; a forger learns nothing more.
   A validly signed body that is not an event (not JSON, not UTF-8, nested too deep, an
   array, a string, a number, no id or type) answers 400 ``malformed_event``. Stripe
   retries any non-2xx; a refused request is refused again, at no cost.
3. **Once**: the event's id keys one document ``_webhookEvents/{provider}:{id}``, which
   is first the event's lease and then its ledger entry. A delivery creates it as a
   lease (:mod:`firekit.leases`: created only if absent, with an expiry); the holder then
   applies the handler's writes and turns the lease into the ledger entry (its outcome,
   held for the ledger's lifetime) in **one transaction**, on the precondition that the
   lease is still as it wrote it. So an event is either fully applied and recorded or
   not at all; no release follows, and there is no moment when the event is recorded
   but still locked. A fresh event costs one write more than its bare transaction (the
   create); the transaction itself reads nothing of ours. A delivery that finds the
   document answers 200 ``duplicate`` if it is an entry, and **409** ``in_progress`` at
   once if it is a lease still held, never queueing on the holder's transaction (50
   simultaneous copies once contended there for 21-38 s and answered 500). 409, because
   the request is sound but conflicts with the event's state right now: it is not our
   failure (a 5xx would page someone), and it is not final (Stripe retries any non-2xx,
   and the retry finds the entry and answers 200). A lease whose holder died lapses
   after ``LEASE_TTL`` and the next delivery takes it over; the old holder, should it
   wake, can no longer commit (its precondition fails).
4. **Answer**: 200 when applied, duplicate, of a type nobody handles, or about a
   subject we do not know (recorded with that outcome, so the provider stops retrying
   and the log says why); 500 when processing failed, so the provider retries (the
   transaction left nothing behind). Every answer is JSON: ``{"outcome": ...}`` below
   400, ``{"error": ...}`` from 400 on, anything unexpected included.

Effects outside Firestore that follow from the stored state (syncing a custom claim from
the mirrored plan) are ``followups``: they run after the commit, for applied, stale *and*
duplicate deliveries, so a delivery that committed and then died before its followup
is completed by the provider's retry. They must be idempotent (they converge on what is
stored); one that fails answers 500.

Each request gets one log line (:mod:`firekit.observe`, of kind ``webhook``): provider,
event id and type, outcome, status, latency.
Handlers guard against reordering themselves (see ``marketplace.payments``): the ledger
makes an event apply once, not in order.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Response
from google.cloud import firestore

from firekit import leases, observe
from firekit.bootstrap import db as default_db
from firekit.errors import log_unexpected
from firekit.transactions import run_transaction

LEDGER = "_webhookEvents"
LEDGER_TTL = dt.timedelta(days=60)
"""Longer than any provider retries an event (Stripe: 3 days) or reconciliation looks
back (30 days), so a late duplicate still finds its entry."""
LEASE_TTL = dt.timedelta(seconds=60)
"""As long as the webhook function's timeout: a delivery that died frees its event then."""
NO_WAIT = dt.timedelta(0)
DEFAULT_MAX_BYTES = 256 * 1024
"""Stripe's events are a few KB; anything this large is not one of them."""
_EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
"""Provider event ids (``evt_...``); anything else cannot key a document safely."""
_LATEST_CREATED = 253402300799
"""The last second of year 9999: the latest time Firestore and ``datetime`` hold."""


class SignatureError(ValueError):
    """The body is not a genuine, fresh event from the provider."""


class MalformedEventError(SignatureError):
    """Genuinely signed, but the body is not an event (not JSON, not an object, ...)."""


@dataclass(frozen=True)
class WebhookEvent:
    """A verified provider event."""

    provider: str
    id: str
    type: str
    created: int
    """The provider's timestamp (seconds): handlers compare it to what they stored."""
    data: Mapping[str, Any]
    """The event's ``data.object`` (the subject as it was when the event was made)."""
    raw: Mapping[str, Any] = field(repr=False)


class Outcome:
    """What processing an event did (the ledger and the log line say it)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED_TYPE = "ignored_type"
    """No handler for this type: recorded, answered 200."""
    UNKNOWN_SUBJECT = "unknown_subject"
    """About a customer (or other subject) we do not know: recorded, answered 200."""
    STALE = "stale"
    """Older than what is stored: recorded, nothing overwritten."""
    IN_PROGRESS = "in_progress"
    """Another delivery of the event holds its lease: nothing done, answered 409."""


_STATUS = {Outcome.IN_PROGRESS: 409}
"""Answers other than 200 for an outcome of processing."""


class Handler(Protocol):
    """Applies one event inside the transaction; returns an :class:`Outcome` value.

    All reads must come before writes (Firestore transactions require it); anything
    outside Firestore (a provider API call) must happen before, in ``prepare``.
    """

    def __call__(
        self, db: firestore.Client, transaction: firestore.Transaction, event: WebhookEvent
    ) -> str:
        """Apply the event."""


Followup = Callable[[firestore.Client, WebhookEvent], None]
"""Brings something outside Firestore in line with what the event's transaction stored."""

Verify = Callable[[bytes, Mapping[str, str]], Mapping[str, Any]]
"""Check the signature on the raw body; return the parsed event or raise SignatureError."""


@dataclass
class Intake:
    """A provider's events and how to apply each type."""

    provider: str
    handlers: Mapping[str, Handler]
    followups: Mapping[str, Followup] = field(default_factory=dict)
    max_bytes: int = DEFAULT_MAX_BYTES

    def ledger_ref(self, db: firestore.Client, event_id: str) -> firestore.DocumentReference:
        """Where the event's processing is recorded: the event's lease until then."""
        return db.collection(LEDGER).document(f"{self.provider}:{event_id}")

    def process(
        self, db: firestore.Client, event: WebhookEvent, *, wait: dt.timedelta = NO_WAIT
    ) -> str:
        """Apply ``event`` once (the webhook and reconciliation both come through here):
        ``in_progress`` if another delivery of it is still being processed after ``wait``
        (the webhook answers at once; reconciliation can afford to wait for it)."""
        result = self._once(db, event, time.monotonic() + wait.total_seconds())
        followup = self.followups.get(event.type)
        if followup is not None and result in (Outcome.APPLIED, Outcome.DUPLICATE, Outcome.STALE):
            followup(db, event)
        return result

    def _once(self, db: firestore.Client, event: WebhookEvent, deadline: float) -> str:
        entry = self.ledger_ref(db, event.id)
        while True:
            # Create first: a fresh event (the common case) costs one write and no read.
            taken = leases.try_acquire_or_read(entry, LEASE_TTL)
            if isinstance(taken, leases.Lease):
                outcome = self._apply(db, event, taken)
                if outcome is not None:
                    return outcome
                continue  # our lease lapsed and was taken over: see what its holder does
            if not taken.exists:
                continue  # its holder failed and released it between our create and read
            if _recorded(taken):
                return Outcome.DUPLICATE
            if not leases.wait_while_held(
                entry, deadline=deadline, done=lambda: _recorded(entry.get())
            ):
                return Outcome.IN_PROGRESS

    def _apply(self, db: firestore.Client, event: WebhookEvent, held: leases.Lease) -> str | None:
        """The event's effects and its ledger entry in one transaction, while ``held`` is
        ours; None if it was taken over first (nothing applied)."""
        handler = self.handlers.get(event.type)

        def apply(transaction: firestore.Transaction) -> str:
            outcome = Outcome.IGNORED_TYPE
            if handler is not None:
                outcome = handler(db, transaction, event)
            transaction.update(held.ref, self._entry(event, outcome), option=held.unchanged())
            return outcome

        try:
            # Contention that outlasts every attempt is Aborted: the caller answers 500
            # and the provider retries.
            return run_transaction(db, apply, busy_message="event contended; retry")
        except Exception:
            if held.release():  # still ours: the failure was the handler's or the store's
                raise
            return None

    def _entry(self, event: WebhookEvent, outcome: str) -> dict[str, Any]:
        # ``until`` as far ahead as the entry lives: to firekit.leases, a recorded event
        # is held for good, so no delivery ever takes it over.
        expires = dt.datetime.now(dt.UTC) + LEDGER_TTL
        return {
            "provider": self.provider,
            "type": event.type,
            "created": event.created,
            "outcome": outcome,
            "processedAt": firestore.SERVER_TIMESTAMP,
            "until": expires,
            "expiresAt": expires,
        }


def _recorded(snapshot: firestore.DocumentSnapshot[Any]) -> bool:
    """Whether the event's document is its ledger entry (not a lease in progress)."""
    return snapshot.exists and "outcome" in (snapshot.to_dict() or {})


def parse_event(provider: str, payload: Mapping[str, Any]) -> WebhookEvent:
    """The fields every provider event has; ``MalformedEventError`` if they are not there."""
    event_id, kind, created = payload.get("id"), payload.get("type"), payload.get("created")
    data = payload.get("data")
    subject = data.get("object") if isinstance(data, Mapping) else None
    if not (isinstance(event_id, str) and _EVENT_ID.fullmatch(event_id)):
        raise MalformedEventError("not an event: no id, or not an id")
    if not (isinstance(kind, str) and 0 < len(kind) <= 200):
        raise MalformedEventError("not an event: no type")
    if type(created) is not int or not 0 <= created <= _LATEST_CREATED:
        raise MalformedEventError("not an event: no created time")
    if not isinstance(subject, Mapping):
        raise MalformedEventError("not an event: no data.object")
    return WebhookEvent(provider, event_id, kind, created, subject, payload)


def parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; ``MalformedEventError`` for anything else."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # not UTF-8 or JSON; nested too deep
        raise MalformedEventError("body is not JSON") from exc
    if not isinstance(payload, dict):
        raise MalformedEventError("body is not a JSON object")
    return payload


def _answer(status: int, outcome: str, **extra: Any) -> Response:
    """The answer in JSON; its outcome (and ``extra``) go on the request's log line."""
    observe.annotate(outcome=outcome, **extra)
    body = {"outcome": outcome} if status < 400 else {"error": outcome}
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


def handle_request(
    request: Any, intake: Intake, verify: Verify, db: firestore.Client | None = None
) -> Response:
    """The whole intake for one HTTP request (see the module docstring)."""
    observe.annotate(kind="webhook", provider=intake.provider)
    try:
        return _take(request, intake, verify, db or default_db())
    except Exception as exc:  # never Flask's HTML 500: our shape, the traceback logged
        log_unexpected(exc)
        return _answer(500, "failed", errorType=type(exc).__name__)


def _take(request: Any, intake: Intake, verify: Verify, db: firestore.Client) -> Response:
    if request.method != "POST":
        return _answer(405, "method_not_allowed")
    if not _is_json(request.headers.get("Content-Type")):
        return _answer(415, "unsupported_media_type")
    if (request.content_length or 0) > intake.max_bytes:
        return _answer(413, "payload_too_large")
    body: bytes = request.get_data(cache=False)
    if len(body) > intake.max_bytes:
        return _answer(413, "payload_too_large")
    try:
        event = parse_event(intake.provider, verify(body, request.headers))
    except MalformedEventError as exc:
        return _answer(400, "malformed_event", reason=str(exc)[:200])
    except SignatureError as exc:
        return _answer(400, "invalid_signature", reason=str(exc)[:200])
    observe.annotate(event_id=event.id, eventType=event.type)
    outcome = intake.process(db, event)
    return _answer(_STATUS.get(outcome, 200), outcome)


def stripe_verifier(secret: Callable[[], str], tolerance_s: int = 300) -> Verify:
    """Stripe's ``Stripe-Signature`` check, by the official SDK, on the raw bytes.

    ``secret`` is called per request (a ``SecretParam`` is readable only at run time).
    Events signed more than ``tolerance_s`` ago are refused (replay protection), and so
    are signatures dated more than ``tolerance_s`` ahead (the SDK checks only the past).
    """

    def verify(body: bytes, headers: Mapping[str, str]) -> Mapping[str, Any]:
        import stripe  # the SDK is loaded only by functions that take Stripe events

        header = headers.get("Stripe-Signature")
        if not header:
            raise SignatureError("no Stripe-Signature header")
        if not header.isascii():  # the SDK's compare_digest raises TypeError on such text
            raise SignatureError("Stripe-Signature header is not ASCII")
        try:
            stripe.WebhookSignature.verify_header(body, header, secret(), tolerance_s)
        except stripe.SignatureVerificationError as exc:
            raise SignatureError("signature does not verify") from exc
        except UnicodeDecodeError as exc:  # the SDK decodes the body before it checks
            raise SignatureError("body is not UTF-8") from exc
        if _signed_at(header) > time.time() + tolerance_s:
            raise SignatureError("signature dated in the future")
        return parse_object(body)

    return verify


def _signed_at(header: str) -> int:
    # The SDK read the same item to verify the signature, so it is there and an integer.
    items = [item.split("=", 2) for item in header.split(",")]
    return int(next(item[1] for item in items if item[0] == "t"))
