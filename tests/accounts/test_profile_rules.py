"""Security rules for profiles, private account data and the audit log, on the real rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.cloud import firestore

from pytest_firebase.rest import FirestoreRest

AsUser = Callable[..., FirestoreRest]


@pytest.fixture
def profiles(admin_rest: FirestoreRest, firestore_db: firestore.Client) -> None:
    for uid, role in (("ana", "buyer"), ("bo", "agent")):
        admin_rest.set(
            f"users/{uid}", {"displayName": uid.title(), "photoURL": None, "role": role}
        ).expect_ok()
        admin_rest.set(f"users/{uid}/private/account", {"email": f"{uid}@example.com"}).expect_ok()
    admin_rest.set("auditLog/e1", {"action": "user.role_changed"}).expect_ok()


def test_signed_in_users_read_profiles_and_visitors_do_not(
    profiles: None, as_user: AsUser, anonymous: FirestoreRest
) -> None:
    assert as_user("bo").get("users/ana").ok
    assert as_user("bo").query("users", limit=50).ok
    assert anonymous.get("users/ana").denied
    assert anonymous.query("users", limit=50).denied


def test_profiles_are_listed_in_pages_of_at_most_50(profiles: None, as_user: AsUser) -> None:
    assert as_user("bo").query("users", limit=51).denied
    assert as_user("bo").query("users").denied  # no limit at all


def test_owners_edit_their_presentational_fields(profiles: None, as_user: AsUser) -> None:
    ana = as_user("ana")

    assert ana.update("users/ana", {"displayName": "Ana María"}).ok
    assert ana.update("users/ana", {"photoURL": "https://img.example.com/a.png"}).ok
    assert ana.get("users/ana").data["displayName"] == "Ana María"  # type: ignore[index]


@pytest.mark.parametrize(
    "change",
    [
        {"role": "admin"},  # raising one's own role
        {"role": "agent", "displayName": "Ana"},  # ... hidden in a legitimate edit
        {"createdAt": "2020-01-01"},  # server-owned timestamp
        {"displayName": 42},  # type confusion
        {"displayName": "x" * 81},  # oversized
        {"photoURL": {"url": "x"}},  # a map where a string belongs
        {"isVerified": True},  # unknown extra field
    ],
)
def test_owners_cannot_write_anything_else(
    profiles: None, as_user: AsUser, change: dict[str, Any]
) -> None:
    assert as_user("ana", {"role": "buyer"}).update("users/ana", change).denied


def test_nobody_edits_or_deletes_someone_elses_profile(profiles: None, as_user: AsUser) -> None:
    assert as_user("bo").update("users/ana", {"displayName": "Hacked"}).denied
    assert as_user("bo", {"role": "admin"}).update("users/ana", {"displayName": "X"}).denied
    assert as_user("ana").delete("users/ana").denied
    assert as_user("bo").delete("users/ana").denied


def test_clients_cannot_create_profiles(as_user: AsUser, firestore_db: firestore.Client) -> None:
    # Functions create profiles at sign-up; a client-made one could pick its own role.
    assert (
        as_user("cy")
        .create("users/cy", {"displayName": "Cy", "photoURL": None, "role": "buyer"})
        .denied
    )


def test_private_account_data_is_the_owners_alone(
    profiles: None, as_user: AsUser, anonymous: FirestoreRest
) -> None:
    assert as_user("ana").get("users/ana/private/account").ok
    assert as_user("bo").get("users/ana/private/account").denied
    assert as_user("bo", {"role": "admin"}).get("users/ana/private/account").denied
    assert anonymous.get("users/ana/private/account").denied
    assert as_user("ana").update("users/ana/private/account", {"email": "x@example.com"}).denied


def test_only_admins_read_the_audit_log_and_nobody_writes_it(
    profiles: None, as_user: AsUser
) -> None:
    assert as_user("root", {"role": "admin"}).list("auditLog").ok
    assert as_user("bo", {"role": "agent"}).list("auditLog").denied
    assert as_user("root", {"role": "admin"}).create("auditLog/e2", {"action": "x"}).denied
    assert as_user("root", {"role": "admin"}).delete("auditLog/e1").denied


def test_core_bookkeeping_is_closed_to_clients(
    as_user: AsUser, firestore_db: firestore.Client
) -> None:
    assert as_user("ana", {"role": "admin"}).list("_eventLedger").denied
    assert as_user("ana").create("_rateLimits/x", {"count": 0}).denied
