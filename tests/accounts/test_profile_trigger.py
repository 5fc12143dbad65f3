"""The profile trigger: derived fields once per event, in any order, and no loops."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from google.cloud import firestore

from api.accounts import on_profile_updated
from pytest_firebase.events import deliver, redelivery
from pytest_firebase.rest import FirestoreRest
from pytest_firebase.wait import stays_absent
from seed.load import load_users

PROFILE = {"displayName": "Ana", "photoURL": None, "role": "buyer", "searchName": "ana"}


@pytest.fixture
def uid() -> str:
    # Unique per test: a real trigger fired by another test may still be running.
    return f"user-{uuid.uuid4().hex[:10]}"


def ledger_entries(db: Any, uid: str) -> list[dict[str, Any]]:
    return [
        entry
        for entry in (d.to_dict() for d in db.collection("_eventLedger").stream())
        if entry["function"] == "on_profile_updated" and entry["document"] == f"users/{uid}"
    ]


def test_an_edit_is_applied_once_however_often_it_is_delivered(
    firestore_db: firestore.Client, firestore_event: Callable[..., Any], uid: str
) -> None:
    edited = {**PROFILE, "displayName": "  Ana   MARÍA "}
    profile = firestore_db.document(f"users/{uid}")
    profile.set(edited)
    event = firestore_event(f"users/{uid}", before=PROFILE, after=edited, kind="updated")

    deliver(on_profile_updated, event)
    first = profile.get().to_dict()
    deliver(on_profile_updated, redelivery(event))
    deliver(on_profile_updated, redelivery(event))

    assert first["searchName"] == "ana maría"
    # A second application would have stamped a new updatedAt.
    assert profile.get().to_dict()["updatedAt"] == first["updatedAt"]
    assert [e["state"] for e in ledger_entries(firestore_db, uid)] == ["DONE"]


def test_events_applied_out_of_order_leave_the_newest_state(
    firestore_db: firestore.Client, firestore_event: Callable[..., Any], uid: str
) -> None:
    renamed_b = {**PROFILE, "displayName": "Bea"}
    renamed_c = {**PROFILE, "displayName": "Cy"}
    firestore_db.document(f"users/{uid}").set(renamed_c)  # the newest write
    older = firestore_event(f"users/{uid}", before=PROFILE, after=renamed_b, kind="updated")
    newer = firestore_event(f"users/{uid}", before=renamed_b, after=renamed_c, kind="updated")

    deliver(on_profile_updated, newer)
    deliver(on_profile_updated, older)  # the stale one arrives last

    assert firestore_db.document(f"users/{uid}").get().get("searchName") == "cy"


def test_the_triggers_own_write_is_skipped(
    firestore_db: firestore.Client, firestore_event: Callable[..., Any], uid: str
) -> None:
    derived = {**PROFILE, "searchName": "ana", "updatedAt": "later"}
    firestore_db.document(f"users/{uid}").set(PROFILE)
    event = firestore_event(f"users/{uid}", before=PROFILE, after=derived, kind="updated")

    deliver(on_profile_updated, event)

    assert firestore_db.document(f"users/{uid}").get().to_dict() == PROFILE  # untouched
    assert ledger_entries(firestore_db, uid) == []


def test_an_edit_of_a_profile_deleted_since_changes_nothing(
    firestore_db: firestore.Client, firestore_event: Callable[..., Any], uid: str
) -> None:
    event = firestore_event(
        f"users/{uid}", before=PROFILE, after={**PROFILE, "displayName": "Gone"}, kind="updated"
    )

    deliver(on_profile_updated, event)

    assert not firestore_db.document(f"users/{uid}").get().exists
    assert [e["state"] for e in ledger_entries(firestore_db, uid)] == ["DONE"]


@pytest.mark.e2e
def test_an_owner_edit_is_stamped_by_the_real_trigger_without_looping(
    firestore_db: firestore.Client,
    auth_emulator: Any,
    as_user: Callable[..., FirestoreRest],
    wait_for: Callable[..., Any],
) -> None:
    load_users()
    profile = firestore_db.document("users/seed-buyer")
    created_stamp = profile.get().get("updatedAt")

    edit = as_user("seed-buyer", {"role": "buyer"}).update(
        "users/seed-buyer", {"displayName": "Bea  BUYER-Jones"}
    )

    assert edit.ok, edit.error_message
    stored = wait_for(
        lambda: (d := profile.get().to_dict())["searchName"] == "bea buyer-jones" and d,
        timeout=30,
        what="the profile trigger's derived fields",
    )
    assert stored["updatedAt"] > created_stamp
    # The trigger's own write fired the trigger again; the loop guard must stop there.
    stays_absent(
        lambda: profile.get().get("updatedAt") != stored["updatedAt"],
        duration=4.0,
        what="a second stamp (the trigger re-triggered itself)",
    )
    assert len(ledger_entries(firestore_db, "seed-buyer")) == 1
