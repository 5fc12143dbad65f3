"""The reads the admin console makes, under the real rules: admins read the moderation
queue (a page and its count()), open reports, the audit log (in pages) and the metrics;
nobody else reads any of them; the audit log is append-only for every client, admins
included. (The full who-may-what grid is tests/security/test_rules_matrix.py.)"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import requests

from pytest_firebase.rest import FirestoreRest, encode_value
from pytest_firebase.stack import EmulatorStack
from pytest_firebase.tokens import mint_id_token
from tests.listings.factories import listing

ROLES = {"admin": {"role": "admin"}, "agent": {"role": "agent"}, "buyer": {"role": "buyer"}}
ENTRY = {
    "action": "user.disabled",
    "actorUid": "admin-1",
    "target": "users/u1",
    "change": {"before": {"account": "open"}, "after": {"account": "suspended"}},
    "reason": "Spam.",
    "requestId": "r1",
}


@pytest.fixture
def stored(firestore_db: Any) -> None:
    """Two listings waiting for review, an open report, an audit entry, a metrics window."""
    now = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    for n in range(2):
        firestore_db.document(f"listings/queued-{n}").set(
            listing("agent-x", status="pending_review", createdAt=now + dt.timedelta(minutes=n))
        )
    firestore_db.document("reports/r1").set(
        {
            "reporterId": "u2",
            "conversationId": "l1__u2",
            "reason": "spam",
            "status": "open",
            "createdAt": now,
        }
    )
    firestore_db.document("auditLog/e1").set(ENTRY | {"at": now})
    firestore_db.document("_metrics/5m-20261101T1200").set({"window": "5m", "start": now})


def count(stack: EmulatorStack, token: str, collection: str, field: str, value: Any) -> Any:
    """A count() of one equality, as the console's getCountFromServer sends it."""
    project = stack.config.project_id
    base = f"http://{stack.host('firestore')}/v1/projects/{project}/databases/(default)/documents"
    equal = {"field": {"fieldPath": field}, "op": "EQUAL", "value": encode_value(value, project)}
    query = {"from": [{"collectionId": collection}], "where": {"fieldFilter": equal}}
    body = {
        "structuredAggregationQuery": {
            "structuredQuery": query,
            "aggregations": [{"alias": "n", "count": {}}],
        }
    }
    return requests.post(
        f"{base}:runAggregationQuery",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("role", sorted(ROLES))
def test_only_admins_read_the_queue_the_reports_the_log_and_the_metrics(
    role: str, as_user: Callable[..., FirestoreRest], firebase_stack: EmulatorStack
) -> None:
    client = as_user(f"{role}-1", ROLES[role])
    token = mint_id_token(f"{role}-1", claims=ROLES[role], project=firebase_stack.config.project_id)
    queue = [("status", "==", "pending_review")]
    reads = {
        # queries.MODERATION_QUEUE, a page of 1 (+1 to know there is a next one).
        "queue page": client.query("listings", queue, order_by=[("createdAt", "asc")], limit=2),
        "queue count": count(firebase_stack, token, "listings", "status", "pending_review"),
        "open reports": client.query(
            "reports", [("status", "==", "open")], order_by=[("createdAt", "asc")], limit=50
        ),
        "audit log": client.query("auditLog", [], order_by=[("at", "desc")], limit=50),
        "audit by actor": client.query(
            "auditLog", [("actorUid", "==", "admin-1")], order_by=[("at", "desc")], limit=50
        ),
        "metrics": client.get("_metrics/5m-20261101T1200"),
    }
    allowed = {
        what: answer.status_code == 200 if isinstance(answer, requests.Response) else answer.ok
        for what, answer in reads.items()
    }

    assert allowed == dict.fromkeys(reads, role == "admin")
    if role == "admin":
        assert [d["status"] for d in reads["queue page"].documents] == ["pending_review"] * 2
        [result] = [r for r in reads["queue count"].json() if "result" in r]
        assert result["result"]["aggregateFields"]["n"] == {"integerValue": "2"}


@pytest.mark.usefixtures("stored")
def test_the_audit_log_is_append_only_for_admins_too(as_user: Callable[..., FirestoreRest]) -> None:
    admin = as_user("admin-1", ROLES["admin"])
    forged = ENTRY | {"actorUid": "admin-1", "at": dt.datetime.now(dt.UTC)}

    assert admin.create("auditLog/forged", forged).denied
    assert admin.set("auditLog/e1", forged).denied
    assert admin.update("auditLog/e1", {"reason": "Nothing happened."}).denied
    assert admin.delete("auditLog/e1").denied
    assert admin.get("auditLog/e1").data["reason"] == "Spam."  # as it was written


@pytest.mark.usefixtures("stored")
def test_admins_read_the_audit_log_a_page_at_a_time(as_user: Callable[..., FirestoreRest]) -> None:
    admin = as_user("admin-1", ROLES["admin"])

    assert admin.query("auditLog", [], order_by=[("at", "desc")], limit=100).ok
    assert admin.query("auditLog", [], order_by=[("at", "desc")], limit=101).denied
    assert admin.query("auditLog", [], order_by=[("at", "desc")]).denied  # no limit: whole
