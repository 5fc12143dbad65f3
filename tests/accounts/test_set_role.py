"""Changing roles: the admin callable, in-process for the logic and over HTTP for wiring."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from firebase_admin import auth
from google.cloud import firestore

from api.accounts import set_user_role
from pytest_firebase.auth import AuthEmulator
from pytest_firebase.callables import CallResult
from seed.load import load_users

ADMIN = {"role": "admin"}

Call = Callable[..., CallResult]


@pytest.fixture
def people(auth_emulator: AuthEmulator, firestore_db: firestore.Client) -> dict[str, str]:
    """An admin, and a buyer who also holds an unrelated claim that must survive."""
    users = {u.uid: u for u in load_users()}
    auth.create_user(uid="seed-admin-2")  # a second admin, for concurrent changes
    auth.set_custom_user_claims("seed-buyer", {"role": "buyer", "plan": "pro", "beta": True})
    return {"admin": users["seed-admin"].uid, "buyer": users["seed-buyer"].uid}


def audit_entries(db: Any) -> list[dict[str, Any]]:
    return [doc.to_dict() for doc in db.collection("auditLog").stream()]


def test_an_admin_changes_a_role(
    call_function: Call, people: dict[str, str], firestore_db: firestore.Client
) -> None:
    result = call_function(
        set_user_role, {"uid": "seed-buyer", "role": "agent"}, uid=people["admin"], claims=ADMIN
    )

    assert result.data == {
        "uid": "seed-buyer",
        "role": "agent",
        "previousRole": "buyer",
        "changed": True,
    }
    assert auth.get_user("seed-buyer").custom_claims == {
        "role": "agent",
        "plan": "pro",
        "beta": True,
    }
    assert firestore_db.document("users/seed-buyer").get().get("role") == "agent"
    [entry] = audit_entries(firestore_db)
    assert entry["action"] == "user.role_changed"
    assert entry["actorUid"] == "seed-admin"
    assert entry["target"] == "users/seed-buyer"
    assert entry["change"] == {"before": {"role": "buyer"}, "after": {"role": "agent"}}
    assert entry["reason"] is None and entry["requestId"]


def test_repeating_a_role_change_changes_nothing_more(
    call_function: Call, people: dict[str, str], firestore_db: firestore.Client
) -> None:
    request = {"uid": "seed-buyer", "role": "agent"}
    call_function(set_user_role, request, uid=people["admin"], claims=ADMIN)
    again = call_function(set_user_role, request, uid=people["admin"], claims=ADMIN)

    assert again.data["changed"] is False
    assert len(audit_entries(firestore_db)) == 1


def test_a_change_recorded_but_not_yet_enforced_is_completed_by_its_retry(
    call_function: Call, people: dict[str, str], firestore_db: firestore.Client
) -> None:
    # The change and its audit entry committed, then the function died before the claim.
    firestore_db.document("users/seed-buyer").update({"role": "agent"})

    retry = call_function(
        set_user_role, {"uid": "seed-buyer", "role": "agent"}, uid=people["admin"], claims=ADMIN
    )

    assert retry.data["changed"] is False
    assert auth.get_user("seed-buyer").custom_claims == {
        "role": "agent",
        "plan": "pro",
        "beta": True,
    }


def test_concurrent_changes_by_two_admins_leave_claim_record_and_audit_agreeing(
    call_function: Call, people: dict[str, str], firestore_db: firestore.Client
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    auth.set_custom_user_claims("seed-admin-2", {"role": "admin"})
    requests = [("seed-admin", "agent"), ("seed-admin-2", "admin")] * 2
    with ThreadPoolExecutor(max_workers=2) as pool:  # two admins at work at once
        results = list(
            pool.map(
                lambda r: call_function(
                    set_user_role, {"uid": "seed-buyer", "role": r[1]}, uid=r[0], claims=ADMIN
                ),
                requests,
            )
        )

    assert all(r.ok for r in results), [r.body for r in results if not r.ok]
    recorded = firestore_db.document("users/seed-buyer").get().get("role")
    assert auth.get_user("seed-buyer").custom_claims["role"] == recorded
    history = sorted(audit_entries(firestore_db), key=lambda e: e["at"])
    assert len(history) == sum(r.data["changed"] for r in results)
    assert history[-1]["change"]["after"]["role"] == recorded
    # Each entry starts where the previous one ended: no change escaped the log.
    for earlier, later in itertools.pairwise(history):
        assert later["change"]["before"]["role"] == earlier["change"]["after"]["role"]


@pytest.mark.parametrize("claims", [None, {"role": "agent"}, {"role": "buyer"}, {"admin": True}])
def test_only_admins_may_change_roles(
    call_function: Call,
    people: dict[str, str],
    firestore_db: firestore.Client,
    claims: dict[str, Any] | None,
) -> None:
    result = call_function(
        set_user_role, {"uid": "seed-buyer", "role": "admin"}, uid="seed-buyer", claims=claims
    )

    assert (result.error_status, result.error_details) == ("PERMISSION_DENIED", {"reason": "role"})
    assert auth.get_user("seed-buyer").custom_claims["role"] == "buyer"
    assert audit_entries(firestore_db) == []


def test_anonymous_callers_are_refused(call_function: Call, people: dict[str, str]) -> None:
    result = call_function(set_user_role, {"uid": "seed-buyer", "role": "admin"})

    assert (result.error_status, result.error_details) == (
        "UNAUTHENTICATED",
        {"reason": "signed_out"},
    )


def test_malformed_input_names_every_bad_field_and_writes_nothing(
    call_function: Call, people: dict[str, str], firestore_db: firestore.Client
) -> None:
    result = call_function(
        set_user_role,
        {"uid": "../seed-buyer", "role": "owner", "x": 1},
        uid=people["admin"],
        claims=ADMIN,
    )

    assert result.error_status == "INVALID_ARGUMENT"
    assert {d["field"] for d in result.error_details} == {"uid", "role", "x"}
    assert "owner" not in str(result.body) and "../seed-buyer" not in str(result.body)
    assert auth.get_user("seed-buyer").custom_claims["role"] == "buyer"
    assert audit_entries(firestore_db) == []


def test_unknown_users_are_not_found(call_function: Call, people: dict[str, str]) -> None:
    result = call_function(
        set_user_role, {"uid": "nobody", "role": "agent"}, uid=people["admin"], claims=ADMIN
    )

    assert (result.error_status, result.error_details) == ("NOT_FOUND", {"reason": "no_such_user"})


def test_admins_cannot_change_their_own_role(call_function: Call, people: dict[str, str]) -> None:
    result = call_function(
        set_user_role, {"uid": "seed-admin", "role": "buyer"}, uid="seed-admin", claims=ADMIN
    )

    assert (result.error_status, result.error_details) == (
        "FAILED_PRECONDITION",
        {"reason": "own_role"},
    )
    assert auth.get_user("seed-admin").custom_claims["role"] == "admin"


def test_a_change_that_would_overflow_the_claims_limit_is_refused(
    call_function: Call, people: dict[str, str], firestore_db: firestore.Client
) -> None:
    # 1,000 bytes is Firebase's limit for the serialized claims. Role names are all the
    # same length, so only a user with no role claim yet (an imported one) can overflow.
    auth.set_custom_user_claims("seed-buyer", {"notes": "n" * 985})

    result = call_function(
        set_user_role, {"uid": "seed-buyer", "role": "agent"}, uid=people["admin"], claims=ADMIN
    )

    assert result.error_status == "FAILED_PRECONDITION"
    # {"notes": "nnn...", "role": "agent"}: 985 + 30 characters of JSON around them.
    assert result.error_details == {"reason": "claims_full", "size": 1015, "limit": 1000}
    assert auth.get_user("seed-buyer").custom_claims == {"notes": "n" * 985}
    assert firestore_db.document("users/seed-buyer").get().get("role") == "buyer"
    assert audit_entries(firestore_db) == []


@pytest.mark.e2e
def test_role_change_end_to_end_with_real_emulator_tokens(
    auth_emulator: AuthEmulator, firestore_db: firestore.Client, call_emulated: Call
) -> None:
    load_users()
    admin = auth_emulator.sign_in("admin@homefront.test", "seed-admin-pass")
    renter = auth_emulator.sign_in("renter@homefront.test", "seed-buyer-pass")

    refused = call_emulated(
        "set_user_role", {"uid": "seed-buyer", "role": "admin"}, renter.id_token
    )
    done = call_emulated("set_user_role", {"uid": "seed-renter", "role": "agent"}, admin.id_token)

    assert refused.status == 403 and refused.error_status == "PERMISSION_DENIED"
    assert refused.error_details == {"reason": "role"}  # through the emulator's wire too
    assert done.data["role"] == "agent"
    assert auth_emulator.refresh(renter).claims["role"] == "agent"
    assert firestore_db.document("users/seed-renter").get().get("role") == "agent"
