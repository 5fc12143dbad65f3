"""The seed gives every role a known account, and loading it twice changes nothing."""

from __future__ import annotations

from typing import Any

from firebase_admin import auth

from pytest_firebase.auth import AuthEmulator
from seed.load import load_users, seed_users


def test_every_role_has_a_seeded_account_that_can_sign_in(
    auth_emulator: AuthEmulator, firestore_db: Any
) -> None:
    load_users()
    load_users()  # idempotent

    users = seed_users()
    assert {u.role.value for u in users} == {"buyer", "agent", "admin"}
    for user in users:
        signed_in = auth_emulator.sign_in(user.email, user.password)
        assert signed_in.claims["role"] == user.role.value
        assert firestore_db.document(f"users/{user.uid}").get().get("role") == user.role.value
    assert len(list(auth.list_users().iterate_all())) == len(users)
