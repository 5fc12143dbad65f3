"""Webhook intake: verify the raw body, apply each provider event once, answer so the
provider retries exactly when that can help.

For each request, in this order:

1. **Shape** (nothing read or written yet): ``POST`` only (405), a JSON content type
   (415), a body no larger than ``max_bytes`` (413, judged by ``Content-Length`` before
   the body is read, and by the bytes actually read).
2. **Signature**, on the raw bytes exactly as received: a missing, forged or expired
   signature, or a body that is not an event, answers 400 and writes nothing. The
   provider does not retry a 4xx, and a forger learns nothing from the answer.
3. **Once**: the event's id keys a ledger document ``_webhookEvents/{provider}:{id}``.
   The handler's writes and the ledger entry commit in **one transaction**, so an event
   is either fully applied and recorded or not at all; a duplicate (the provider's
   retry, or the reconciliation feeding an event the webhook already took) finds the
   entry and answers 200 with no effect.
4. **Answer**: 200 when applied, duplicate, of a type nobody handles, or about a
   subject we do not know (recorded with that outcome, so the provider stops retrying
   and the log says why); 500 when processing failed, so the provider retries (the
   transaction left nothing behind).

Effects outside Firestore that follow from the stored state (syncing a custom claim from
the mirrored plan) are ``followups``: they run after the commit, for applied, stale *and*
duplicate deliveries, so a delivery that committed and then died before its followup
is completed by the provider's retry. They must be idempotent (they converge on what is
stored); one that fails answers 500.

Each request logs one structured line: provider, event id and type, outcome, latency.
Handlers guard against reordering themselves (see ``marketplace.payments``): the ledger
makes an event apply once, not in order.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Response
from google.cloud import firestore

from firekit import logs
from firekit.bootstrap import db as default_db
from firekit.errors import log_unexpected
from firekit.transactions import run_transaction

LEDGER = "_webhookEvents"
LEDGER_TTL = dt.timedelta(days=60)
"""Longer than any provider retries an event (Stripe: 3 days) or reconciliation looks
back (30 days), so a late duplicate still finds its entry."""
DEFAULT_MAX_BYTES = 256 * 1024
"""Stripe's events are a few KB; anything this large is not one of them."""


class SignatureError(ValueError):
    """The body is not a genuine, fresh event from the provider."""


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
        """Where the event's processing is recorded."""
        return db.collection(LEDGER).document(f"{self.provider}:{event_id}")

    def process(self, db: firestore.Client, event: WebhookEvent) -> str:
        """Apply ``event`` once (the webhook and reconciliation both come through here)."""
        ledger = self.ledger_ref(db, event.id)
        handler = self.handlers.get(event.type)

        def apply(transaction: firestore.Transaction) -> str:
            if ledger.get(transaction=transaction).exists:
                return Outcome.DUPLICATE
            outcome = Outcome.IGNORED_TYPE
            if handler is not None:
                outcome = handler(db, transaction, event)
            transaction.create(
                ledger,
                {
                    "provider": self.provider,
                    "type": event.type,
                    "created": event.created,
                    "outcome": outcome,
                    "processedAt": firestore.SERVER_TIMESTAMP,
                    "expiresAt": dt.datetime.now(dt.UTC) + LEDGER_TTL,
                },
            )
            return outcome

        # Contention that outlasts every attempt is Aborted: the caller answers 500 and
        # the provider retries (a duplicate delivery racing the first is the usual cause).
        result = run_transaction(db, apply, busy_message="event contended; retry")
        followup = self.followups.get(event.type)
        if followup is not None and result in (Outcome.APPLIED, Outcome.DUPLICATE, Outcome.STALE):
            followup(db, event)
        return result


def parse_event(provider: str, payload: Mapping[str, Any]) -> WebhookEvent:
    """The fields every provider event has; ``SignatureError`` if they are not there."""
    event_id, kind, created = payload.get("id"), payload.get("type"), payload.get("created")
    data = payload.get("data")
    subject = data.get("object") if isinstance(data, Mapping) else None
    if not (isinstance(event_id, str) and event_id and isinstance(kind, str) and kind):
        raise SignatureError("not an event: no id or type")
    if not isinstance(created, int) or not isinstance(subject, Mapping):
        raise SignatureError("not an event: no created time or data.object")
    return WebhookEvent(provider, event_id, kind, created, subject, payload)


def _answer(status: int, body: Mapping[str, Any]) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


def handle_request(
    request: Any, intake: Intake, verify: Verify, db: firestore.Client | None = None
) -> Response:
    """The whole intake for one HTTP request (see the module docstring)."""
    started = time.perf_counter()
    fields: dict[str, Any] = {"function": f"{intake.provider}_webhook", "logKind": "webhook"}

    def done(status: int, outcome: str, **extra: Any) -> Response:
        latency = round((time.perf_counter() - started) * 1000, 1)
        line = {**fields, "status": status, "outcome": outcome, "latencyMs": latency, **extra}
        (logs.info if status < 500 else logs.error)(f"webhook {outcome}", **line)
        return _answer(status, {"outcome": outcome} if status < 400 else {"error": outcome})

    if request.method != "POST":
        return done(405, "method_not_allowed")
    if not _is_json(request.headers.get("Content-Type")):
        return done(415, "unsupported_media_type")
    if (request.content_length or 0) > intake.max_bytes:
        return done(413, "payload_too_large")
    body: bytes = request.get_data(cache=False)
    if len(body) > intake.max_bytes:
        return done(413, "payload_too_large")
    try:
        event = parse_event(intake.provider, verify(body, request.headers))
    except SignatureError as exc:
        return done(400, "invalid_signature", reason=str(exc)[:200])
    fields |= {"eventId": event.id, "eventType": event.type}
    try:
        outcome = intake.process(db or default_db(), event)
    except Exception as exc:
        log_unexpected(exc, fields)
        return done(500, "failed", errorType=type(exc).__name__)
    return done(200, outcome)


def stripe_verifier(secret: Callable[[], str], tolerance_s: int = 300) -> Verify:
    """Stripe's ``Stripe-Signature`` check, by the official SDK, on the raw bytes.

    ``secret`` is called per request (a ``SecretParam`` is readable only at run time).
    Events signed more than ``tolerance_s`` ago are refused (replay protection).
    """

    def verify(body: bytes, headers: Mapping[str, str]) -> Mapping[str, Any]:
        import stripe  # the SDK is loaded only by functions that take Stripe events

        header = headers.get("Stripe-Signature")
        if not header:
            raise SignatureError("no Stripe-Signature header")
        try:
            stripe.Webhook.construct_event(body, header, secret(), tolerance=tolerance_s)
            payload = json.loads(body)
        except stripe.SignatureVerificationError as exc:
            raise SignatureError("signature does not verify") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise SignatureError("body is not JSON") from exc
        if not isinstance(payload, dict):
            raise SignatureError("body is not an event object")
        return payload

    return verify
