"""Finding a user by email: who they are, their role, plan and state, the last audit
entries about them; the lookup itself audited, in the transaction that reads."""

from __future__ import annotations

import datetime as dt

import pytest
from google.cloud import firestore

from api.admin import find_user
from marketplace import queries
from pytest_firebase.auth import AuthEmulator
from pytest_firebase.callables import call
from tests.listings.factories import uid

from .factories import ADMIN, audit_entries, member

T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def db(auth_emulator: AuthEmulator, firestore_db: firestore.Client) -> firestore.Client:
    return firestore_db


def past_entry(db: firestore.Client, who: str, minutes: int, action: str = "user.disabled") -> None:
    db.collection("auditLog").document(f"past-{minutes:03d}").set(
        {
            "action": action,
            "actorUid": "admin-old",
            "target": f"users/{who}",
            "change": {"before": {"account": "open"}, "after": {"account": "suspended"}},
            "reason": f"entry {minutes}",
            "requestId": f"request-{minutes}",
            "at": T0 + dt.timedelta(minutes=minutes),
        }
    )


def test_an_admin_finds_a_user_with_their_last_ten_audit_entries(db: firestore.Client) -> None:
    who, admin = member(db, role="agent"), uid("admin")
    db.document(f"users/{who}").update({"plan": "agent_pro", "displayName": "Ada Agent"})
    for minutes in range(12):
        past_entry(db, who, minutes)
    past_entry(db, "someone-else", 99)

    result = call(find_user, {"email": f"  {who.upper()}@Example.TEST "}, uid=admin, claims=ADMIN)

    assert result.ok, result.body
    found = result.data
    recent = found.pop("recentAudit")
    assert found == {
        "uid": who,
        "email": f"{who}@example.test",
        "displayName": "Ada Agent",
        "role": "agent",
        "plan": "agent_pro",
        "disabled": False,
        "closed": False,
        "account": "open",
    }
    assert [e["reason"] for e in recent] == [f"entry {m}" for m in range(11, 1, -1)]
    assert recent[0]["id"] == "past-011" and recent[0]["requestId"] == "request-11"
    assert recent[0]["change"] == {"before": {"account": "open"}, "after": {"account": "suspended"}}
    looked_up = [e for e in audit_entries(db) if e["action"] == "user.looked_up"]
    assert [(e["actorUid"], e["target"]) for e in looked_up] == [(admin, f"users/{who}")]


def test_the_next_lookup_shows_the_one_before(db: firestore.Client) -> None:
    who = member(db)
    email = f"{who}@example.test"
    first = call(find_user, {"email": email}, uid="admin-a", claims=ADMIN)

    second = call(find_user, {"email": email}, uid="admin-b", claims=ADMIN)

    assert first.data["recentAudit"] == []
    [earlier] = second.data["recentAudit"]
    assert (earlier["action"], earlier["actorUid"]) == ("user.looked_up", "admin-a")
    assert earlier["change"] == {"before": {}, "after": {}}


def test_nobody_with_that_email_is_not_found_and_not_audited(db: firestore.Client) -> None:
    member(db)

    result = call(find_user, {"email": "nobody@example.test"}, uid="admin-a", claims=ADMIN)
    malformed = call(find_user, {"email": "not an email"}, uid="admin-a", claims=ADMIN)

    assert result.error_details == {"reason": "no_such_user"}
    assert malformed.error_status == "INVALID_ARGUMENT"
    assert "not an email" not in str(malformed.body)
    assert audit_entries(db) == []


def test_the_consoles_audit_queries_find_entries_newest_first(db: firestore.Client) -> None:
    who = member(db)
    for minutes, action in ((1, "user.disabled"), (2, "user.enabled"), (3, "user.disabled")):
        past_entry(db, who, minutes, action)

    newest = [s.id for s in queries.AUDIT_LOG.build(db, limit=50).stream()]
    by_action = queries.AUDIT_BY_ACTION.build(db, equals={"action": "user.disabled"}, limit=50)
    by_actor = queries.AUDIT_BY_ACTOR.build(db, equals={"actorUid": "admin-old"}, limit=2)
    of_target = queries.AUDIT_OF_TARGET.build(db, equals={"target": f"users/{who}"}, limit=50)

    assert newest == ["past-003", "past-002", "past-001"]
    assert [s.id for s in by_action.stream()] == ["past-003", "past-001"]
    assert [s.id for s in by_actor.stream()] == ["past-003", "past-002"]
    assert [s.id for s in of_target.stream()] == newest
    with pytest.raises(ValueError, match="pages of 1 to 100"):
        queries.AUDIT_LOG.build(db, limit=101)
