"""The idempotency ledger: one document per (function, CloudEvent id).

``_eventLedger/{function}__{eventId}`` records what became of an event, so an event
delivered several times (at-least-once delivery) has its effect once. Two ways in:

* :func:`apply_once` runs transactional effects and writes the ``DONE`` record in the
  same transaction; a duplicate, or the loser of two concurrent deliveries, sees the
  record when Firestore retries it and does nothing.
* :func:`claim` / :func:`mark_done` / :func:`mark_failed` are claim-before-act for side
  effects that cannot join a transaction (email, push, a provider's API), as the Trigger
  Email extension does: PENDING -> PROCESSING with a lease, act, then DONE. A crashed
  attempt whose lease expired may be claimed again. Each claim carries a fresh
  ``claimToken``; the final write (DONE or FAILED) happens in a transaction only while
  the record still holds that token, so an attempt whose claim was taken over can never
  overwrite the new owner's record: it gets :class:`ClaimLost` instead. The claim is a
  transaction on the record, not a :mod:`firekit.leases` lease, because the lease, the
  attempt count and the final state live in one document and must change together (a
  separate lock document could neither count attempts nor refuse a DONE event atomically).

Records carry ``expiresAt`` (30 days, longer than Eventarc's 7-day retry window) for a
Firestore TTL policy.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from google.api_core import exceptions as api_exceptions
from google.cloud import firestore

from firekit import leases
from firekit.transactions import run_transaction

COLLECTION = "_eventLedger"
RETENTION = dt.timedelta(days=30)
_BUSY = "event ledger contended; retry"


class LedgerState(enum.StrEnum):
    """Life of an event in the ledger. No record at all means PENDING."""

    PENDING = "PENDING"
    PROCESSING = "PROCESSING"  # claimed; the lease says until when
    DONE = "DONE"  # the effect happened; redelivery is a no-op
    FAILED = "FAILED"  # the last attempt raised; retried until max attempts
    INVALID = "INVALID"  # the document failed validation; terminal, no effect


class Verdict(enum.Enum):
    """What the ledger decided for this delivery."""

    APPLIED = "applied"
    CLAIMED = "claimed"
    DUPLICATE = "duplicate"
    IN_PROGRESS = "in_progress"
    GAVE_UP = "gave_up"


class ClaimLost(Exception):  # noqa: N818 - a state, like the SDK's NotFound
    """This attempt's claim is gone (taken over after its lease expired, or finished).

    The final write was skipped; ``state`` and ``attempts`` describe the record found.
    """

    def __init__(self, state: str, attempts: int) -> None:
        super().__init__(f"claim lost: the record is {state} after {attempts} attempt(s)")
        self.state = state
        self.attempts = attempts


def new_claim_token() -> str:
    """A token that identifies one claim (one attempt) of an event."""
    return uuid.uuid4().hex


def record_id(function: str, event_id: str) -> str:
    """Ledger document id for an event seen by a function."""
    return quote(f"{function}__{event_id}", safe="")


def ledger_ref(
    client: firestore.Client, function: str, event_id: str
) -> firestore.DocumentReference:
    """Reference to the ledger record of an event."""
    return client.collection(COLLECTION).document(record_id(function, event_id))


def base_record(function: str, event_id: str, document: str, event_type: str) -> dict[str, Any]:
    """Fields every ledger record carries, whatever its state."""
    return {
        "function": function,
        "eventId": event_id,
        "document": document,
        "eventType": event_type,
        "updatedAt": firestore.SERVER_TIMESTAMP,
        "expiresAt": leases.now() + RETENTION,
    }


def apply_once(
    client: firestore.Client,
    ref: firestore.DocumentReference,
    base: Mapping[str, Any],
    apply: Callable[[firestore.Transaction], None],
    max_attempts: int,
) -> Verdict:
    """Run ``apply`` and write the DONE record in one transaction, unless already done.

    ``apply`` may run more than once (Firestore retries contended transactions), so it
    must only read and write through the transaction it is given.
    """

    def apply_and_record(transaction: firestore.Transaction) -> Verdict:
        return _apply_once(transaction, ref, base, apply, max_attempts)

    return run_transaction(client, apply_and_record, busy_message=_BUSY)


def _apply_once(
    transaction: firestore.Transaction,
    ref: firestore.DocumentReference,
    base: Mapping[str, Any],
    apply: Callable[[firestore.Transaction], None],
    max_attempts: int,
) -> Verdict:
    stored = _read(ref, transaction)
    state = stored.get("state", LedgerState.PENDING.value)
    attempts = int(stored.get("attempts", 0))
    if state in (LedgerState.DONE.value, LedgerState.INVALID.value):
        return Verdict.DUPLICATE
    if attempts >= max_attempts:
        return Verdict.GAVE_UP
    apply(transaction)
    done = {
        **base,
        "state": LedgerState.DONE.value,
        "attempts": attempts + 1,
        "doneAt": leases.now(),
    }
    transaction.set(ref, done)
    return Verdict.APPLIED


def claim(
    client: firestore.Client,
    ref: firestore.DocumentReference,
    base: Mapping[str, Any],
    lease: dt.timedelta,
    max_attempts: int,
    *,
    claim_token: str,
) -> Verdict:
    """Claim the event: PENDING, FAILED or expired PROCESSING -> PROCESSING with a lease.

    Only a ``CLAIMED`` verdict may act, and it then finishes with :func:`mark_done` or
    :func:`mark_failed` passing the same ``claim_token`` (see :func:`new_claim_token`).
    """

    def take(transaction: firestore.Transaction) -> Verdict:
        return _claim(transaction, ref, base, lease, max_attempts, claim_token=claim_token)

    return run_transaction(client, take, busy_message=_BUSY)


def _claim(
    transaction: firestore.Transaction,
    ref: firestore.DocumentReference,
    base: Mapping[str, Any],
    lease: dt.timedelta,
    max_attempts: int,
    *,
    claim_token: str,
) -> Verdict:
    stored = _read(ref, transaction)
    state = stored.get("state", LedgerState.PENDING.value)
    attempts = int(stored.get("attempts", 0))
    now = leases.now()
    if state in (LedgerState.DONE.value, LedgerState.INVALID.value):
        return Verdict.DUPLICATE
    if state == LedgerState.PROCESSING.value and stored["leaseExpiresAt"] > now:
        return Verdict.IN_PROGRESS
    if attempts >= max_attempts:
        return Verdict.GAVE_UP
    processing = {
        **base,
        "state": LedgerState.PROCESSING.value,
        "attempts": attempts + 1,
        "leaseExpiresAt": now + lease,
        "claimToken": claim_token,
    }
    transaction.set(ref, processing)
    return Verdict.CLAIMED


def mark_done(client: firestore.Client, ref: firestore.DocumentReference, claim_token: str) -> None:
    """PROCESSING -> DONE after the side effect succeeded, if the claim is still ours.

    Raises :class:`ClaimLost` (and writes nothing) when the record no longer holds
    ``claim_token``.
    """

    def finish(transaction: firestore.Transaction) -> None:
        _mark_done(transaction, ref, claim_token)

    run_transaction(client, finish, busy_message=_BUSY)


def _mark_done(
    transaction: firestore.Transaction, ref: firestore.DocumentReference, claim_token: str
) -> None:
    stored = _read(ref, transaction)
    _require_claim(stored, claim_token)
    done = {
        "state": LedgerState.DONE.value,
        "doneAt": leases.now(),
        "leaseExpiresAt": firestore.DELETE_FIELD,
        "claimToken": firestore.DELETE_FIELD,
        "updatedAt": firestore.SERVER_TIMESTAMP,
    }
    transaction.update(ref, done)


def mark_failed(
    client: firestore.Client,
    ref: firestore.DocumentReference,
    base: Mapping[str, Any],
    error_type: str,
    claim_token: str | None = None,
) -> int:
    """Record a failed attempt and release any lease; return the attempts so far.

    Transactional mode passes no ``claim_token``: the attempt is counted here, and a DONE
    record (a concurrent delivery succeeded meanwhile) is left alone. Claim mode passes
    its token: :func:`claim` already counted the attempt, and the record is written only
    while it still holds that token, else :class:`ClaimLost` is raised.
    """

    def record_failure(transaction: firestore.Transaction) -> int:
        return _mark_failed(transaction, ref, base, error_type, claim_token)

    return run_transaction(client, record_failure, busy_message=_BUSY)


def _mark_failed(
    transaction: firestore.Transaction,
    ref: firestore.DocumentReference,
    base: Mapping[str, Any],
    error_type: str,
    claim_token: str | None,
) -> int:
    stored = _read(ref, transaction)
    if claim_token is not None:
        _require_claim(stored, claim_token)
        attempts = int(stored.get("attempts", 0))
    else:
        attempts = int(stored.get("attempts", 0)) + 1
        if stored.get("state") == LedgerState.DONE.value:
            return attempts
    failed = {**base, "state": LedgerState.FAILED.value, "attempts": attempts}
    transaction.set(ref, {**failed, "lastError": error_type, "failedAt": leases.now()})
    return attempts


def record_invalid(
    ref: firestore.DocumentReference, base: Mapping[str, Any], issues: list[Any]
) -> None:
    """Record that the document failed validation (field paths and reasons, no values)."""
    # A redelivery of the same event finds the record there already: the first stands.
    with contextlib.suppress(api_exceptions.AlreadyExists):
        ref.create({**base, "state": LedgerState.INVALID.value, "issues": issues})


def _require_claim(stored: Mapping[str, Any], claim_token: str) -> None:
    state = str(stored.get("state", LedgerState.PENDING.value))
    if state != LedgerState.PROCESSING.value or stored.get("claimToken") != claim_token:
        raise ClaimLost(state, int(stored.get("attempts", 0)))


def _read(ref: firestore.DocumentReference, transaction: firestore.Transaction) -> dict[str, Any]:
    snapshot = ref.get(transaction=transaction)
    return (snapshot.to_dict() or {}) if snapshot.exists else {}
