"""Sign-up: the policy itself, and the blocking function through the Auth emulator."""

from __future__ import annotations

import pytest
from firebase_admin import auth
from google.cloud import firestore

from firekit.errors import InvalidArgument
from marketplace.signup import SignUp, check_sign_up
from pytest_firebase.auth import AuthEmulator, AuthError


def sign_up(email: str | None, *, name: str | None = None, provider: str = "password") -> SignUp:
    return SignUp(uid="u1", email=email, display_name=name, provider=provider)


@pytest.mark.parametrize(
    "email", ["ana@example.com", "a.b+homes@mail.example.co.uk", "o'neil@example.ie"]
)
def test_ordinary_addresses_are_accepted(email: str) -> None:
    check_sign_up(sign_up(email))


@pytest.mark.parametrize(
    "email",
    [
        "no-at-sign",
        "a@b",
        "a@@example.com",
        "a b@example.com",
        "@example.com",
        "ana@example",
        "ana@-.com",
        "x" * 65 + "@e.com",
    ],
)
def test_malformed_addresses_are_refused(email: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_sign_up(sign_up(email))
    assert refused.value.details == [
        {"field": "email", "issue": "malformed", "message": "Enter a valid email address."}
    ]


@pytest.mark.parametrize("email", ["x@mailinator.com", "x@YOPMAIL.com", "x@eu.guerrillamail.com"])
def test_disposable_addresses_are_refused(email: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_sign_up(sign_up(email))
    assert refused.value.details[0]["issue"] == "disposable"


def test_a_password_sign_up_needs_an_email_but_a_phone_sign_up_does_not() -> None:
    with pytest.raises(InvalidArgument):
        check_sign_up(sign_up(None))
    check_sign_up(sign_up(None, provider="phone"))


def test_overlong_display_names_are_refused() -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_sign_up(sign_up("ana@example.com", name="n" * 81))
    assert refused.value.details[0]["field"] == "displayName"


@pytest.mark.e2e
def test_a_new_user_gets_the_buyer_claim_and_a_profile(
    auth_emulator: AuthEmulator, firestore_db: firestore.Client
) -> None:
    user = auth_emulator.sign_up("newcomer@example.com", "correct-horse-1")

    assert user.claims["role"] == "buyer"
    profile = firestore_db.document(f"users/{user.uid}").get()
    assert profile.get("role") == "buyer"
    assert profile.get("createdAt") is not None
    account = firestore_db.document(f"users/{user.uid}/private/account").get()
    assert account.get("email") == "newcomer@example.com"
    # The claim is on the account itself, so every later token carries it too.
    assert (
        auth_emulator.sign_in("newcomer@example.com", "correct-horse-1").claims["role"] == "buyer"
    )


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("someone@mailinator.com", "Disposable email addresses cannot be used"),
        ("someone@localhost", "Enter a valid email address."),
    ],
)
def test_refused_sign_ups_say_why_and_create_nothing(
    auth_emulator: AuthEmulator, firestore_db: firestore.Client, email: str, expected: str
) -> None:
    with pytest.raises(AuthError) as refused:
        auth_emulator.sign_up(email, "correct-horse-1")

    assert expected in refused.value.message
    assert list(auth.list_users().iterate_all()) == []
    assert list(firestore_db.collection("users").stream()) == []
