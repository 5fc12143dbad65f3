"""Webhook intake against the Firestore emulator: bad requests write nothing, each event
applies once in one transaction, failures answer 500 and leave nothing behind."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier, Timer
from typing import Any

import pytest
from flask import Flask
from google.cloud import firestore

from firekit import webhooks
from pytest_firebase.webhooks import stripe_event, stripe_webhook

SECRET = "whsec_test_core"
APP = Flask(__name__)


class FlakyError(RuntimeError):
    """An injected failure."""


def counter_handler(fail_first: set[str] | None = None) -> webhooks.Handler:
    """Adds the event's amount to ``totals/{customer}``; also writes a per-event row, so a
    half-applied event would show. Raises once for event ids in ``fail_first``."""
    failing = set(fail_first or ())

    def handle(db: Any, transaction: Any, event: webhooks.WebhookEvent) -> str:
        customer = str(event.data["customer"])
        total = db.document(f"totals/{customer}")
        if not (snapshot := total.get(transaction=transaction)).exists and customer == "stranger":
            return webhooks.Outcome.UNKNOWN_SUBJECT
        transaction.set(db.document(f"rows/{event.id}"), {"amount": event.data["amount"]})
        if event.id in failing:
            failing.discard(event.id)
            raise FlakyError("the database hiccuped")
        previous = (snapshot.to_dict() or {}).get("sum", 0) if snapshot.exists else 0
        transaction.set(total, {"sum": previous + event.data["amount"]})
        return webhooks.Outcome.APPLIED

    return handle


def intake(handler: webhooks.Handler) -> webhooks.Intake:
    return webhooks.Intake("stripe", {"charge.counted": handler}, max_bytes=4096)


def post(
    db: Any, the_intake: webhooks.Intake, body: bytes, headers: dict[str, str], method: str = "POST"
) -> tuple[int, dict[str, Any]]:
    verify = webhooks.stripe_verifier(lambda: SECRET)
    with APP.test_request_context("/stripe_webhook", method=method, data=body, headers=headers):
        from flask import request

        response = webhooks.handle_request(request, the_intake, verify, db)
    return response.status_code, json.loads(response.get_data())


def event(
    amount: int = 5, customer: str = "cus_1", event_type: str = "charge.counted"
) -> dict[str, Any]:
    return stripe_event(
        event_type,
        {"customer": customer, "amount": amount},
        event_id=f"evt_{uuid.uuid4().hex[:12]}",
    )


def written(db: Any) -> list[str]:
    return sorted(
        s.reference.path
        for c in ("totals", "rows", webhooks.LEDGER)
        for s in db.collection(c).stream()
    )


def test_a_signed_event_applies_once_however_often_it_comes(firestore_db: Any) -> None:
    the_intake = intake(counter_handler())
    signed = stripe_webhook(event(amount=7), SECRET)

    answers = [post(firestore_db, the_intake, signed.body, signed.headers) for _ in range(3)]

    assert answers == [(200, {"outcome": "applied"})] + [(200, {"outcome": "duplicate"})] * 2
    assert firestore_db.document("totals/cus_1").get().to_dict() == {"sum": 7}


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "forged",
        "expired",
        "from the future",
        "header not ascii",
        "wrong secret",
        "malformed json",
        "not an event",
        "wrong content type",
        "huge",
        "GET",
    ],
)
def test_bad_requests_are_refused_and_write_nothing(firestore_db: Any, case: str) -> None:
    the_intake = intake(counter_handler())
    genuine = stripe_webhook(event(), SECRET)
    body, headers, method = genuine.body, dict(genuine.headers), "POST"
    if case == "missing":
        headers.pop("Stripe-Signature")
    elif case == "forged":
        body = body.replace(b'"amount": 5', b'"amount": 5000')
    elif case == "expired":
        headers = stripe_webhook(event(), SECRET, timestamp=int(time.time()) - 3600).headers
    elif case == "from the future":
        headers = stripe_webhook(event(), SECRET, timestamp=int(time.time()) + 3600).headers
    elif case == "header not ascii":
        headers["Stripe-Signature"] += ",v1=\u00e9t\u00e9"
    elif case == "wrong secret":
        headers = stripe_webhook(event(), "whsec_someone_else").headers
    elif case == "malformed json":
        body, headers = b"{not json", stripe_webhook(b"{not json", SECRET).headers
    elif case == "not an event":
        body = json.dumps({"hello": "world"}).encode()
        headers = stripe_webhook(body, SECRET).headers
    elif case == "wrong content type":
        headers["Content-Type"] = "text/plain"
    elif case == "huge":
        big = event() | {"padding": "x" * 5000}
        body, headers = json.dumps(big).encode(), stripe_webhook(big, SECRET).headers
    elif case == "GET":
        method = "GET"

    status, answer = post(firestore_db, the_intake, body, headers, method)

    expected = {"wrong content type": 415, "huge": 413, "GET": 405}.get(case, 400)
    assert status == expected and "error" in answer
    assert written(firestore_db) == []


def test_a_failure_answers_500_leaves_nothing_and_the_retry_applies_once(
    firestore_db: Any,
) -> None:
    first = event(amount=3)
    the_intake = intake(counter_handler(fail_first={first["id"]}))
    signed = stripe_webhook(first, SECRET)

    failed = post(firestore_db, the_intake, signed.body, signed.headers)
    assert failed == (500, {"error": "failed"})
    assert written(firestore_db) == []  # not even the per-event row: one transaction

    retried = [post(firestore_db, the_intake, signed.body, signed.headers) for _ in range(2)]
    assert [r[1]["outcome"] for r in retried] == ["applied", "duplicate"]
    assert firestore_db.document("totals/cus_1").get().to_dict() == {"sum": 3}


def test_unknown_types_and_subjects_are_recorded_and_answered_200(firestore_db: Any) -> None:
    the_intake = intake(counter_handler())
    other = stripe_webhook(event(event_type="invoice.finalized"), SECRET)
    stranger = stripe_webhook(event(customer="stranger"), SECRET)

    assert post(firestore_db, the_intake, other.body, other.headers) == (
        200,
        {"outcome": "ignored_type"},
    )
    assert post(firestore_db, the_intake, stranger.body, stranger.headers) == (
        200,
        {"outcome": "unknown_subject"},
    )
    ledger = {s.to_dict()["outcome"] for s in firestore_db.collection(webhooks.LEDGER).stream()}
    assert ledger == {"ignored_type", "unknown_subject"}
    assert not firestore_db.document("totals/stranger").get().exists


def test_concurrent_duplicates_apply_once(firestore_db: Any) -> None:
    # Distinct customers: what collides is each event's three deliveries (on the ledger),
    # not twenty events on one hot document (the emulator would time its locks out).
    the_intake = intake(counter_handler())
    events = [event(amount=1, customer=f"cus_{n}") for n in range(20)]
    deliveries = [e for e in events for _ in range(3)]
    random.Random(3).shuffle(deliveries)
    db = firestore.Client()  # a client per test thread pool is fine: it is thread-safe

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(
            pool.map(
                lambda e: the_intake.process(db, webhooks.parse_event("stripe", e)), deliveries
            )
        )

    # A copy that meets another's lease answers in_progress (the webhook says 409).
    assert outcomes.count("applied") == 20
    assert set(outcomes) <= {"applied", "duplicate", "in_progress"}
    totals = [firestore_db.document(f"totals/cus_{n}").get().to_dict() for n in range(20)]
    assert totals == [{"sum": 1}] * 20


def test_a_followup_that_failed_after_the_commit_runs_again_on_the_retry(
    firestore_db: Any,
) -> None:
    calls: list[str] = []

    def sync(db: Any, event: webhooks.WebhookEvent) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise FlakyError("the claims service hiccuped")

    the_intake = webhooks.Intake(
        "stripe", {"charge.counted": counter_handler()}, {"charge.counted": sync}
    )
    signed = stripe_webhook(event(amount=2), SECRET)

    first = post(firestore_db, the_intake, signed.body, signed.headers)
    second = post(firestore_db, the_intake, signed.body, signed.headers)

    assert (first[0], second) == (500, (200, {"outcome": "duplicate"}))
    assert len(calls) == 2  # the retry completed what the first delivery left undone
    assert firestore_db.document("totals/cus_1").get().to_dict() == {"sum": 2}  # applied once


@pytest.mark.parametrize(
    "body",
    [
        b'["evt_1", "charge.counted"]',
        b'"evt_1"',
        b"42",
        b"null",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": "evt_1", "type": "charge.counted", "created": 1e400, "data": {"object": {}}}',
        b'{"id": "a/b/c", "type": "charge.counted", "created": 1, "data": {"object": {}}}',
        b'{"id": "evt_1", "type": "charge.counted", "created": 1, "data": {"object": []}}',
        b'{"id": "evt_1", "type": "x", "created": 99999999999999999999, "data": {"object": {}}}',
        b'{"id": "evt_\xff\xfe", "type": "charge.counted"}',
    ],
    ids=[
        "array",
        "string",
        "number",
        "null",
        "deep",
        "float time",
        "path id",
        "object not a map",
        "huge time",
        "not utf-8",
    ],
)
def test_a_validly_signed_body_that_is_not_an_event_is_refused_with_400(
    firestore_db: Any, body: bytes
) -> None:
    the_intake = webhooks.Intake("stripe", {"charge.counted": counter_handler()})
    signed = stripe_webhook(body, SECRET)

    status, answer = post(firestore_db, the_intake, signed.body, signed.headers)

    expected = "invalid_signature" if body.startswith(b'{"id": "evt_\xff') else "malformed_event"
    assert (status, answer) == (400, {"error": expected})
    assert written(firestore_db) == []


def test_a_copy_that_meets_the_events_lease_answers_409_at_once(firestore_db: Any) -> None:
    the_intake = intake(counter_handler())
    first = event(amount=4)
    signed = stripe_webhook(first, SECRET)
    processing = webhooks.leases.try_acquire(
        the_intake.ledger_ref(firestore_db, first["id"]), webhooks.LEASE_TTL
    )
    assert processing is not None

    assert post(firestore_db, the_intake, signed.body, signed.headers) == (
        409,
        {"error": "in_progress"},
    )
    assert not firestore_db.document("totals/cus_1").get().exists
    processing.release()
    assert post(firestore_db, the_intake, signed.body, signed.headers)[0] == 200
    assert firestore_db.document("totals/cus_1").get().to_dict() == {"sum": 4}


COPIES = 50


def test_fifty_simultaneous_copies_of_one_event_apply_once_and_all_answer_quickly(
    firestore_db: Any,
) -> None:
    the_intake = intake(counter_handler())
    signed = stripe_webhook(event(amount=9), SECRET)
    db = firestore.Client()
    start = Barrier(COPIES)

    def deliver(_: int) -> tuple[int, str, float]:
        start.wait()
        began = time.perf_counter()
        status, answer = post(db, the_intake, signed.body, signed.headers)
        return status, answer.get("outcome") or answer["error"], time.perf_counter() - began

    with ThreadPoolExecutor(COPIES) as pool:
        answers = list(pool.map(deliver, range(COPIES)))

    outcomes = [outcome for _, outcome, _ in answers]
    assert outcomes.count("applied") == 1
    assert {(s, o) for s, o, _ in answers} <= {
        (200, "applied"),
        (200, "duplicate"),
        (409, "in_progress"),
    }
    assert max(seconds for _, _, seconds in answers) < 10
    assert firestore_db.document("totals/cus_1").get().to_dict() == {"sum": 9}
    # The lease became the ledger entry in the applying transaction: nothing left locked.
    entries = [s.to_dict() for s in firestore_db.collection(webhooks.LEDGER).stream()]
    assert [entry["outcome"] for entry in entries] == ["applied"]


def test_a_caller_that_may_wait_gets_the_event_once_its_holder_is_done(firestore_db: Any) -> None:
    # Reconciliation waits out a webhook delivery in progress instead of skipping the event.
    the_intake = intake(counter_handler())
    first = event(amount=6)
    parsed = webhooks.parse_event("stripe", first)
    delivery = webhooks.leases.try_acquire(
        the_intake.ledger_ref(firestore_db, first["id"]), webhooks.LEASE_TTL
    )
    assert delivery is not None
    Timer(0.5, delivery.release).start()

    outcome = the_intake.process(firestore_db, parsed, wait=webhooks.LEASE_TTL)

    assert outcome == "applied"
    assert firestore_db.document("totals/cus_1").get().to_dict() == {"sum": 6}


def test_a_crashed_holders_lease_lapses_and_the_next_delivery_takes_over(
    firestore_db: Any,
) -> None:
    the_intake = intake(counter_handler())
    first = event(amount=3)
    signed = stripe_webhook(first, SECRET)
    crashed = webhooks.leases.try_acquire(
        the_intake.ledger_ref(firestore_db, first["id"]), dt.timedelta(seconds=-1)
    )
    assert crashed is not None  # taken, never released: already lapsed

    answers = [post(firestore_db, the_intake, signed.body, signed.headers) for _ in range(2)]

    assert answers == [(200, {"outcome": "applied"}), (200, {"outcome": "duplicate"})]
    assert firestore_db.document("totals/cus_1").get().to_dict() == {"sum": 3}
    assert not crashed.release()  # the entry is no longer the crashed holder's to delete


def test_a_holder_whose_lease_was_taken_over_commits_nothing(firestore_db: Any) -> None:
    # The holder's transaction writes the entry on the precondition that the lease is as
    # it wrote it: a holder that outlived its lease cannot apply the event a second time.
    first = event(amount=8)
    entry = firestore_db.document(f"{webhooks.LEDGER}/stripe:{first['id']}")
    counting = counter_handler()

    def overtaken(db: Any, transaction: Any, event_: webhooks.WebhookEvent) -> str:
        entry.update({"token": "the-next-delivery"})  # what a takeover does, mid-transaction
        return counting(db, transaction, event_)

    the_intake = intake(overtaken)
    signed = stripe_webhook(first, SECRET)

    assert post(firestore_db, the_intake, signed.body, signed.headers) == (
        409,
        {"error": "in_progress"},
    )
    assert written(firestore_db) == [entry.path]
    assert entry.get().get("token") == "the-next-delivery"
