"""Suspending an account takes effect at once: the rules and every callable refuse its
still-valid ID token, sign-in and token refresh are refused; re-enabling lifts it; a retry
heals a call that died between the commit and Auth; erasing a suspended account works."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import pytest
from firebase_admin import auth
from google.cloud import firestore

from api.admin import disable_user, find_user
from api.privacy import erase_user
from firekit import ownership
from pytest_firebase.auth import AuthEmulator, AuthError
from pytest_firebase.callables import call
from pytest_firebase.rest import FirestoreRest
from pytest_firebase.stack import EmulatorStack
from seed.load import load_users
from tests.listings.factories import uid
from tests.security.test_fuzz import CALLABLES

from .factories import ADMIN, PASSWORD, audit_entries, member

WHY = "Spam from this account."


def suspend(who: str, admin: str, disabled: bool = True) -> dict[str, object]:
    result = call(
        disable_user, {"uid": who, "disabled": disabled, "reason": WHY}, uid=admin, claims=ADMIN
    )
    assert result.ok, result.body
    data: dict[str, object] = result.data
    return data


@pytest.fixture
def db(auth_emulator: AuthEmulator, firestore_db: firestore.Client) -> firestore.Client:
    return firestore_db


def test_a_suspension_refuses_the_still_valid_token_at_once(
    db: firestore.Client, auth_emulator: AuthEmulator, firebase_stack: EmulatorStack
) -> None:
    who = member(db)
    session = auth_emulator.sign_in(f"{who}@example.test", PASSWORD)
    rest = FirestoreRest(
        firebase_stack.host("firestore"), firebase_stack.config.project_id, session.id_token
    )
    inbox = f"users/{who}/notifications"
    # A read-only callable the policy lets through to its handler while the account is open.
    probe = {"viewingId": "no-such-viewing"}
    assert rest.query(inbox, [], limit=10).ok
    assert call(CALLABLES["confirm_viewing"], probe, token=session.id_token).error_details != {
        "reason": "account_closed"
    }
    before = int(time.time())

    answer = suspend(who, uid("admin"))

    assert answer == {"uid": who, "disabled": True, "account": "suspended", "changed": True}
    # The same ID token, unexpired: refused by the rules and by the callables' policy.
    assert rest.query(inbox, [], limit=10).denied
    refused = call(CALLABLES["confirm_viewing"], probe, token=session.id_token)
    assert refused.error_details == {"reason": "account_closed"}
    # Auth: no new sign-in, no token refresh, every session revoked.
    record = auth.get_user(who)
    assert record.disabled and record.tokens_valid_after_timestamp // 1000 >= before
    with pytest.raises(AuthError):
        auth_emulator.sign_in(f"{who}@example.test", PASSWORD)
    with pytest.raises(AuthError):
        auth_emulator.refresh(session)
    tombstone = ownership.tombstone_ref(db, who).get().to_dict() or {}
    assert tombstone["kind"] == "suspension" and tombstone["reason"] == WHY
    assert "expiresAt" not in tombstone  # kept until lifted, not a TTL's to remove


def test_re_enabling_lifts_the_suspension(
    db: firestore.Client, auth_emulator: AuthEmulator, firebase_stack: EmulatorStack
) -> None:
    who, admin = member(db), uid("admin")
    suspend(who, admin)

    answer = suspend(who, admin, disabled=False)

    assert answer == {"uid": who, "disabled": False, "account": "open", "changed": True}
    assert not ownership.is_closed(db, who)
    assert not auth.get_user(who).disabled
    session = auth_emulator.sign_in(f"{who}@example.test", PASSWORD)
    rest = FirestoreRest(
        firebase_stack.host("firestore"), firebase_stack.config.project_id, session.id_token
    )
    assert rest.query(f"users/{who}/notifications", [], limit=10).ok
    entries = audit_entries(db)
    assert [(e["action"], e["change"]) for e in entries] == [
        ("user.disabled", {"before": {"account": "open"}, "after": {"account": "suspended"}}),
        ("user.enabled", {"before": {"account": "suspended"}, "after": {"account": "open"}}),
    ]


def test_a_retry_heals_a_call_that_died_between_its_commit_and_auth(db: firestore.Client) -> None:
    who, admin = member(db), uid("admin")
    # The suspension committed (with its audit entry), then the function died before Auth.
    ownership.tombstone_ref(db, who).set(ownership.suspension(WHY, dt.datetime.now(dt.UTC)))
    assert not auth.get_user(who).disabled

    retry = suspend(who, admin)

    assert retry == {"uid": who, "disabled": True, "account": "suspended", "changed": False}
    assert auth.get_user(who).disabled
    # And the other way: lifted, then died before Auth was enabled again.
    ownership.tombstone_ref(db, who).delete()
    assert suspend(who, admin, disabled=False)["changed"] is False
    assert not auth.get_user(who).disabled
    assert audit_entries(db) == []  # the retries changed nothing the log did not hold


def test_a_suspended_account_can_still_be_erased_and_then_not_re_enabled(
    db: firestore.Client,
) -> None:
    who, admin = member(db), uid("admin")
    suspend(who, admin)

    erased = call(erase_user, {"uid": who, "reason": "Legal request."}, uid=admin, claims=ADMIN)
    enable = call(
        disable_user, {"uid": who, "disabled": False, "reason": WHY}, uid=admin, claims=ADMIN
    )
    disable = call(
        disable_user, {"uid": who, "disabled": True, "reason": WHY}, uid=admin, claims=ADMIN
    )
    found = call(find_user, {"email": f"{who}@example.test"}, uid=admin, claims=ADMIN)

    assert erased.ok, erased.body
    tombstone = ownership.tombstone_ref(db, who).get().to_dict() or {}
    assert tombstone["erasureId"] == erased.data["erasureId"] and tombstone["kind"] == "erasure"
    assert enable.error_details == disable.error_details == {"reason": "account_erased"}
    assert auth.get_user(who).disabled
    assert (found.data["account"], found.data["closed"], found.data["disabled"]) == (
        "closed",
        True,
        True,
    )
    actions = [(e["action"], e["change"]["before"].get("account")) for e in audit_entries(db)]
    assert actions == [
        ("user.disabled", "open"),
        ("user.erased", "suspended"),
        ("user.looked_up", None),
    ]


def test_admins_cannot_suspend_themselves_or_nobody(db: firestore.Client) -> None:
    admin = member(db, "admin", role="admin")
    own = call(
        disable_user, {"uid": admin, "disabled": True, "reason": WHY}, uid=admin, claims=ADMIN
    )
    nobody = call(
        disable_user, {"uid": "nobody", "disabled": True, "reason": WHY}, uid=admin, claims=ADMIN
    )
    vague = call(
        disable_user, {"uid": admin, "disabled": "yes", "reason": " "}, uid=admin, claims=ADMIN
    )

    assert own.error_details == {"reason": "own_account"}
    assert nobody.error_details == {"reason": "no_such_user"}
    assert vague.error_status == "INVALID_ARGUMENT"
    assert {d["field"] for d in vague.error_details} == {"disabled", "reason"}
    assert not auth.get_user(admin).disabled
    assert not ownership.is_closed(db, admin)
    assert audit_entries(db) == []


def test_two_admins_at_odds_leave_auth_agreeing_with_the_last_committed_state(
    db: firestore.Client,
) -> None:
    who = member(db)
    moves = [("admin-a", True), ("admin-b", False)] * 3
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(
            pool.map(
                lambda move: call(
                    disable_user,
                    {"uid": who, "disabled": move[1], "reason": WHY},
                    uid=move[0],
                    claims=ADMIN,
                ),
                moves,
            )
        )

    assert all(a.ok for a in answers), [a.body for a in answers if not a.ok]
    state = ownership.account_state(ownership.tombstone_ref(db, who).get())
    assert auth.get_user(who).disabled == (state == "suspended")
    entries = audit_entries(db)
    assert len(entries) == sum(bool(a.data["changed"]) for a in answers)
    # Each entry starts where the one before it ended: no change escaped the log.
    for earlier, later in pairwise(entries):
        assert later["change"]["before"] == earlier["change"]["after"]
    assert (entries[-1]["change"]["after"]["account"] if entries else "open") == state


@pytest.mark.e2e
def test_a_suspension_end_to_end_through_the_functions_emulator(
    auth_emulator: AuthEmulator, firestore_db: firestore.Client, call_emulated: Any
) -> None:
    load_users()
    admin = auth_emulator.sign_in("admin@homefront.test", "seed-admin-pass")
    renter = auth_emulator.sign_in("renter@homefront.test", "seed-buyer-pass")
    lookup = {"email": "renter@homefront.test"}
    assert call_emulated("find_user", lookup, renter.id_token).error_details == {"reason": "role"}

    found = call_emulated("find_user", lookup, admin.id_token)
    request = {"uid": found.data["uid"], "disabled": True, "reason": WHY}
    done = call_emulated("disable_user", request, admin.id_token)
    refused = call_emulated("export_my_data", {}, renter.id_token)  # its token still valid

    assert done.data == {
        "uid": found.data["uid"],
        "disabled": True,
        "account": "suspended",
        "changed": True,
    }
    assert refused.error_details == {"reason": "account_closed"}
    assert [e["action"] for e in audit_entries(firestore_db)] == ["user.looked_up", "user.disabled"]
