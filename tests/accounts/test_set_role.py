"""Changing roles: the admin callable, in-process for the logic and over HTTP for wiring."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from firebase_admin import auth

from api.accounts import set_user_role
from pytest_firebase.auth import AuthEmulator
from pytest_firebase.callables import CallResult
from seed.load import load_users

ADMIN = {"role": "admin"}

Call = Callable[..., CallResult]


@pytest.fixture
def people(auth_emulator: AuthEmulator, firestore_db: Any) -> dict[str, str]:
    """An admin, and a buyer who also holds an unrelated claim that must survive."""
    users = {u.uid: u for u in load_users()}
    auth.set_custom_user_claims("seed-buyer", {"role": "buyer", "plan": "pro", "beta": True})
    return {"admin": users["seed-admin"].uid, "buyer": users["seed-buyer"].uid}


def audit_entries(db: Any) -> list[dict[str, Any]]:
    return [doc.to_dict() for doc in db.collection("auditLog").stream()]


def test_an_admin_changes_a_role(
    call_function: Call, people: dict[str, str], firestore_db: Any
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
    assert entry["change"] == {"role": {"from": "buyer", "to": "agent"}}


def test_repeating_a_role_change_changes_nothing_more(
    call_function: Call, people: dict[str, str], firestore_db: Any
) -> None:
    request = {"uid": "seed-buyer", "role": "agent"}
    call_function(set_user_role, request, uid=people["admin"], claims=ADMIN)
    again = call_function(set_user_role, request, uid=people["admin"], claims=ADMIN)

    assert again.data["changed"] is False
    assert len(audit_entries(firestore_db)) == 1


def test_a_half_finished_change_is_completed_by_its_retry(
    call_function: Call, people: dict[str, str], firestore_db: Any
) -> None:
    # The claim was set but the mirror never happened (the function died in between).
    auth.set_custom_user_claims("seed-buyer", {"role": "agent", "plan": "pro"})

    retry = call_function(
        set_user_role, {"uid": "seed-buyer", "role": "agent"}, uid=people["admin"], claims=ADMIN
    )

    assert retry.data["changed"] is True
    assert retry.data["previousRole"] == "buyer"
    assert firestore_db.document("users/seed-buyer").get().get("role") == "agent"
    assert audit_entries(firestore_db)[0]["change"]["role"] == {"from": "buyer", "to": "agent"}


@pytest.mark.parametrize("claims", [None, {"role": "agent"}, {"role": "buyer"}, {"admin": True}])
def test_only_admins_may_change_roles(
    call_function: Call, people: dict[str, str], firestore_db: Any, claims: dict[str, Any] | None
) -> None:
    result = call_function(
        set_user_role, {"uid": "seed-buyer", "role": "admin"}, uid="seed-buyer", claims=claims
    )

    assert result.error_status == "PERMISSION_DENIED"
    assert auth.get_user("seed-buyer").custom_claims["role"] == "buyer"
    assert audit_entries(firestore_db) == []


def test_anonymous_callers_are_refused(call_function: Call, people: dict[str, str]) -> None:
    result = call_function(set_user_role, {"uid": "seed-buyer", "role": "admin"})

    assert result.error_status == "UNAUTHENTICATED"


def test_malformed_input_names_every_bad_field_and_writes_nothing(
    call_function: Call, people: dict[str, str], firestore_db: Any
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

    assert result.error_status == "NOT_FOUND"


def test_admins_cannot_change_their_own_role(call_function: Call, people: dict[str, str]) -> None:
    result = call_function(
        set_user_role, {"uid": "seed-admin", "role": "buyer"}, uid="seed-admin", claims=ADMIN
    )

    assert result.error_status == "FAILED_PRECONDITION"
    assert auth.get_user("seed-admin").custom_claims["role"] == "admin"


def test_a_change_that_would_overflow_the_claims_limit_is_refused(
    call_function: Call, people: dict[str, str], firestore_db: Any
) -> None:
    # 1,000 bytes is Firebase's limit for the serialized claims. Role names are all the
    # same length, so only a user with no role claim yet (an imported one) can overflow.
    auth.set_custom_user_claims("seed-buyer", {"notes": "n" * 985})

    result = call_function(
        set_user_role, {"uid": "seed-buyer", "role": "agent"}, uid=people["admin"], claims=ADMIN
    )

    assert result.error_status == "FAILED_PRECONDITION"
    assert auth.get_user("seed-buyer").custom_claims == {"notes": "n" * 985}
    assert firestore_db.document("users/seed-buyer").get().get("role") == "buyer"
    assert audit_entries(firestore_db) == []


@pytest.mark.e2e
def test_role_change_end_to_end_with_real_emulator_tokens(
    auth_emulator: AuthEmulator, firestore_db: Any, call_emulated: Call
) -> None:
    load_users()
    admin = auth_emulator.sign_in("admin@homefront.test", "seed-admin-pass")
    renter = auth_emulator.sign_in("renter@homefront.test", "seed-buyer-pass")

    refused = call_emulated(
        "set_user_role", {"uid": "seed-buyer", "role": "admin"}, renter.id_token
    )
    done = call_emulated("set_user_role", {"uid": "seed-renter", "role": "agent"}, admin.id_token)

    assert refused.status == 403 and refused.error_status == "PERMISSION_DENIED"
    assert done.data["role"] == "agent"
    assert auth_emulator.refresh(renter).claims["role"] == "agent"
    assert firestore_db.document("users/seed-renter").get().get("role") == "agent"


@pytest.mark.e2e
def test_the_health_endpoint_answers(firebase_stack: Any) -> None:
    import requests

    response = requests.get(firebase_stack.functions_url("health"), timeout=30)

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "service": "Homefront",  # from functions/.env, through firebase_functions.params
        "version": "0.1.0",
        "revision": response.json()["revision"],
        "emulated": True,
    }
    assert requests.post(firebase_stack.functions_url("health"), timeout=30).status_code == 405
