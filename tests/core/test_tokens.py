"""Unsigned emulator ID tokens: accepted by firebase_admin and by the Firestore rules."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import requests
from firebase_admin import auth  # type: ignore[import-untyped, unused-ignore]

from firekit.bootstrap import firebase_app
from pytest_firebase.tokens import (
    decode_unverified,
    encode_unsigned,
    id_token_claims,
    mint_id_token,
)

RULES = """
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /private/{uid} {
      allow read: if request.auth.uid == uid && request.auth.token.tier == 'gold';
    }
  }
}
"""


def test_admin_sdk_verifies_an_unsigned_token_under_the_auth_emulator_env(
    firebase_project: str,
) -> None:
    token = mint_id_token("u-1", claims={"role": "agent"}, email="a@example.com")
    verified = auth.verify_id_token(token, app=firebase_app())
    assert verified["uid"] == verified["user_id"] == "u-1"
    assert verified["role"] == "agent"
    assert verified["aud"] == firebase_project
    assert verified["iss"] == f"https://securetoken.google.com/{firebase_project}"
    assert verified["firebase"] == {
        "sign_in_provider": "password",
        "identities": {"email": ["a@example.com"]},
    }


def test_token_for_another_project_is_rejected() -> None:
    wrong = encode_unsigned({**id_token_claims("u-1"), "aud": "someone-else"})
    with pytest.raises(auth.InvalidIdTokenError):
        auth.verify_id_token(wrong, app=firebase_app())


def test_shape_and_reserved_claims() -> None:
    token = mint_id_token("u-2", project="p", now=1_000, lifetime_seconds=60)
    assert token.split(".")[2] == ""  # no signature
    assert decode_unverified(token)["exp"] == 1_060
    for name in ("sub", "firebase", "user_id"):
        with pytest.raises(ValueError, match="Reserved"):
            mint_id_token("u-2", claims={name: "someone-else"})


@pytest.fixture
def private_doc(firestore_db: object) -> Iterator[tuple[str, str]]:
    """A document in a throwaway emulator project with its own rules (shared rules stay
    untouched); yields the project id and the document's REST URL."""
    project = f"demo-tokens-{uuid.uuid4().hex[:8]}"
    base = f"http://{os.environ['FIRESTORE_EMULATOR_HOST']}"
    body = {"rules": {"files": [{"name": "firestore.rules", "content": RULES}]}}
    rules_url = f"{base}/emulator/v1/projects/{project}:securityRules"
    requests.put(rules_url, json=body, timeout=10).raise_for_status()
    doc = f"{base}/v1/projects/{project}/databases/(default)/documents/private/u-7"
    fields = {"fields": {"x": {"integerValue": "1"}}}
    owner = {"Authorization": "Bearer owner"}
    requests.patch(doc, json=fields, headers=owner, timeout=10).raise_for_status()
    yield project, doc
    requests.delete(
        f"{base}/emulator/v1/projects/{project}/databases/(default)/documents", timeout=10
    )


def test_firestore_emulator_applies_rules_to_the_token(private_doc: tuple[str, str]) -> None:
    project, doc = private_doc

    def read_as(uid: str, tier: str) -> int:
        token = mint_id_token(uid, project=project, claims={"tier": tier})
        return requests.get(
            doc, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).status_code

    assert read_as("u-7", "gold") == 200
    assert read_as("u-7", "silver") == 403
    assert read_as("u-8", "gold") == 403
