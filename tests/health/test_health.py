"""The health endpoint: every check against the real emulators and localstripe, and what
it answers when Firestore or Stripe cannot be reached or a backlog has piled up."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from google.cloud import firestore

from firekit import health, ledger, ownership
from firekit.fanout import engine
from marketplace import health as marketplace_health
from marketplace.payments import stripe_api

CHECKS = ["firestore", "stripe", "event_claims", "fanout_chunks", "pending_deletions"]


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a blackholed server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def firestore_at(monkeypatch: pytest.MonkeyPatch, project: str, port: int) -> firestore.Client:
    """A Firestore client that talks to whatever is (or is not) at ``port``."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{port}")
    return firestore.Client(project=project)


def test_a_healthy_backend_answers_200_with_every_check(firestore_db: firestore.Client) -> None:
    status, body = marketplace_health.report(firestore_db, stripe_api.api_base())

    assert status == 200, body
    assert body["status"] == "ok"
    assert body["failed"] == []
    assert list(body["checks"]) == CHECKS
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["firestore"]["ms"] > 0
    assert body["checks"]["stripe"]["status"] < 500  # localstripe answered
    assert body["checks"]["pending_deletions"] == {
        "ok": True,
        "ms": body["checks"]["pending_deletions"]["ms"],
        "count": 0,
        "threshold": marketplace_health.THRESHOLDS["pending_deletions"],
    }
    assert body["emulated"] is True
    assert body["version"] == "0.1.0"
    # The probe is one document, overwritten: the endpoint leaves nothing behind.
    assert [d.id for d in firestore_db.collection("_health").stream()] == ["probe"]


def test_firestore_unreachable_is_a_503_naming_it_and_the_backlogs_it_hides(
    firestore_db: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable = firestore_at(monkeypatch, firestore_db.project, closed_port())

    status, body = marketplace_health.report(unreachable, stripe_api.api_base())

    assert status == 503
    assert body["status"] == "failing"
    # Stripe still answers; everything that needs Firestore is named.
    assert body["failed"] == ["firestore", "event_claims", "fanout_chunks", "pending_deletions"]
    assert body["checks"]["stripe"]["ok"] is True
    assert "Unavailable" in body["checks"]["firestore"]["error"]


def test_a_firestore_that_never_answers_is_reported_within_the_deadline(
    firestore_db: firestore.Client, monkeypatch: pytest.MonkeyPatch, silent_port: int
) -> None:
    hung = firestore_at(monkeypatch, firestore_db.project, silent_port)
    checks = marketplace_health.checks(hung, stripe_api.api_base(), dt.datetime.now(dt.UTC))

    found = health.run(checks, deadline_s=1.0)

    assert found.failed == ["firestore", "event_claims", "fanout_chunks", "pending_deletions"]
    errors = {name: found.checks[name].detail["error"] for name in found.failed}
    assert set(errors.values()) == {"timed out after 1 s"}, errors


def test_stripe_unreachable_is_a_503_naming_it(firestore_db: firestore.Client) -> None:
    status, body = marketplace_health.report(firestore_db, f"http://127.0.0.1:{closed_port()}")

    assert status == 503
    assert body["failed"] == ["stripe"]
    assert "URLError" in body["checks"]["stripe"]["error"]
    assert body["checks"]["firestore"]["ok"] is True


def test_backlogs_past_their_threshold_fail_and_live_work_does_not_count(
    firestore_db: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        marketplace_health,
        "THRESHOLDS",
        {"event_claims": 2, "fanout_chunks": 2, "pending_deletions": 2},
    )
    now = dt.datetime.now(dt.UTC)
    batch = firestore_db.batch()
    for n in range(3):
        # Claims whose attempt died (lease run out), and one still being worked on.
        ledger_ref = firestore_db.collection(ledger.COLLECTION)
        batch.set(
            ledger_ref.document(f"lost-{n}"),
            {"state": "PROCESSING", "leaseExpiresAt": now - dt.timedelta(minutes=5)},
        )
        batch.set(firestore_db.collection(engine.CHUNKS).document(f"job-{n}"), {"state": "written"})
        batch.set(firestore_db.collection(ownership.ERASURES).document(f"e{n}"), {"state": "done"})
    batch.set(
        firestore_db.collection(ledger.COLLECTION).document("live"),
        {"state": "PROCESSING", "leaseExpiresAt": now + dt.timedelta(minutes=5)},
    )
    batch.set(firestore_db.collection(ledger.COLLECTION).document("done"), {"state": "DONE"})
    batch.commit()

    status, body = marketplace_health.report(firestore_db, stripe_api.api_base())

    assert status == 503
    assert body["failed"] == ["event_claims", "fanout_chunks"]
    checks: dict[str, Any] = body["checks"]
    assert (checks["event_claims"]["count"], checks["event_claims"]["threshold"]) == (3, 2)
    assert checks["event_claims"]["error"] == "UnhealthyError: more than 2 waiting"
    assert checks["fanout_chunks"]["count"] == 3
    assert checks["pending_deletions"]["count"] == 0  # finished erasures are not pending


def test_a_report_is_reused_briefly_so_a_flood_costs_one_probe(
    firestore_db: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[int] = []
    real = marketplace_health.report

    def counted(db: firestore.Client, stripe_base: str) -> tuple[int, dict[str, Any]]:
        made.append(1)
        return real(db, stripe_base)

    monkeypatch.setattr(marketplace_health, "report", counted)
    monkeypatch.setattr(marketplace_health, "_REUSED", marketplace_health.Reused())
    threads = [
        threading.Thread(target=marketplace_health.current_report, args=(firestore_db,))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(made) == 1


@pytest.mark.e2e
def test_the_deployed_endpoint_answers(firebase_stack: Any) -> None:
    response = requests.get(firebase_stack.functions_url("health"), timeout=30)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["service"] == "Homefront"  # from functions/.env, through firebase_functions.params
    assert set(body["checks"]) == set(CHECKS)
    assert response.headers["Cache-Control"] == "no-store"
    assert requests.post(firebase_stack.functions_url("health"), timeout=30).status_code == 405
