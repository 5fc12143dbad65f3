"""Closing an account: the callables (a fresh sign-in needed, an admin's erasure audited),
and phase one's promise: from the moment the tombstone exists, every callable refuses the
closed account's still-valid ID token (the rules' side: tests/rules)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from firebase_admin import auth
from google.cloud import firestore

from api.privacy import delete_my_account, erase_user
from firekit import ownership
from marketplace import erasure
from pytest_firebase.callables import call
from pytest_firebase.tokens import mint_id_token
from tests.listings.factories import uid
from tests.security.test_fuzz import CALLABLES, WELL_FORMED

ADMIN = {"role": "admin"}


def closed_user(db: firestore.Client) -> str:
    user = uid("closed")
    auth.create_user(uid=user, email=f"{user}@example.test")
    erasure.begin(db, user, requested_by="self", now=dt.datetime.now(dt.UTC))
    return user


def test_every_callable_refuses_a_closed_accounts_valid_token(
    firestore_db: firestore.Client,
) -> None:
    user = closed_user(firestore_db)
    # Still valid, signed in a minute ago, with every role: only the tombstone refuses it.
    token = mint_id_token(user, claims={"role": ["admin", "agent"], "email_verified": True})
    answers = {
        name: call(CALLABLES[name], WELL_FORMED[name], token=token) for name in sorted(CALLABLES)
    }
    assert {n: (a.error_status, a.error_details) for n, a in answers.items()} == dict.fromkeys(
        CALLABLES, ("PERMISSION_DENIED", {"reason": "account_closed"})
    )


def test_phase_one_disables_the_account_and_revokes_its_sessions(
    firestore_db: firestore.Client,
) -> None:
    user = closed_user(firestore_db)
    record = auth.get_user(user)
    assert record.disabled
    assert record.tokens_valid_after_timestamp > 0
    assert ownership.is_closed(firestore_db, user)


def test_deleting_needs_a_sign_in_within_five_minutes(firestore_db: firestore.Client) -> None:
    user = uid("stale")
    auth.create_user(uid=user)
    stale = mint_id_token(user, now=int(time.time()) - 600)  # valid, but signed in 10 min ago
    result = call(delete_my_account, {"confirm": True}, token=stale)
    assert result.error_status == "FAILED_PRECONDITION"
    assert result.error_details == {"reason": "reauth_required"}
    assert not ownership.is_closed(firestore_db, user)
    assert not auth.get_user(user).disabled

    fresh = call(delete_my_account, {"confirm": True}, uid=user)
    assert fresh.ok, fresh.error
    assert fresh.data["state"] == "running"
    assert ownership.is_closed(firestore_db, user)


@pytest.mark.parametrize("data", [{}, {"confirm": False}, {"confirm": "yes"}])
def test_deleting_must_be_confirmed(firestore_db: firestore.Client, data: Any) -> None:
    user = uid("unsure")
    result = call(delete_my_account, data, uid=user)
    assert result.error_status == "INVALID_ARGUMENT"
    assert not ownership.is_closed(firestore_db, user)


def test_an_admins_erasure_is_audited_in_the_same_step(firestore_db: firestore.Client) -> None:
    admin, user = uid("admin"), uid("member")
    auth.create_user(uid=user)
    result = call(erase_user, {"uid": user, "reason": "Legal request 42"}, uid=admin, claims=ADMIN)
    assert result.ok, result.error
    entries = [e.to_dict() or {} for e in firestore_db.collection("auditLog").stream()]
    assert [(e["action"], e["actorUid"], e["target"]) for e in entries] == [
        ("user.erased", admin, f"users/{user}")
    ]
    assert entries[0]["change"] == {
        "before": {"account": "open", "erasureId": None},
        "after": {"account": "closed", "erasureId": result.data["erasureId"]},
    }
    assert entries[0]["reason"] == "Legal request 42"
    assert ownership.is_closed(firestore_db, user)


def test_an_admin_cannot_erase_nobody_or_themselves(firestore_db: firestore.Client) -> None:
    admin = uid("admin")
    nobody = call(erase_user, {"uid": "no-such-user", "reason": "Spam."}, uid=admin, claims=ADMIN)
    assert nobody.error_details == {"reason": "no_such_user"}
    themselves = call(erase_user, {"uid": admin, "reason": "Spam."}, uid=admin, claims=ADMIN)
    assert themselves.error_details == {"reason": "own_account"}
    not_admin = call(
        erase_user, {"uid": admin, "reason": "Spam."}, uid=uid("agent"), claims={"role": "agent"}
    )
    assert not_admin.error_details == {"reason": "role"}
    assert list(firestore_db.collection(ownership.TOMBSTONES).stream()) == []
    assert list(firestore_db.collection("auditLog").stream()) == []
