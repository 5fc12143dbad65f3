"""The profile trigger: derived fields once per event, and its own writes never loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from api.accounts import on_profile_updated
from pytest_firebase.events import deliver, redelivery
from pytest_firebase.rest import FirestoreRest
from pytest_firebase.wait import stays_absent
from seed.load import load_users

PROFILE = {"displayName": "Ana", "photoURL": None, "role": "buyer", "searchName": "ana"}


def ledger_entries(db: Any) -> list[dict[str, Any]]:
    return [
        d.to_dict()
        for d in db.collection("_eventLedger").stream()
        if d.to_dict()["function"] == "on_profile_updated"
    ]


def test_an_edit_derives_the_search_name_once_however_often_delivered(
    firestore_db: Any, firestore_event: Callable[..., Any]
) -> None:
    edited = {**PROFILE, "displayName": "  Ana   MARÍA "}
    firestore_db.document("users/ana").set(edited)
    event = firestore_event("users/ana", before=PROFILE, after=edited, kind="updated")

    for delivery in (event, redelivery(event), redelivery(event)):
        deliver(on_profile_updated, delivery)

    stored = firestore_db.document("users/ana").get().to_dict()
    assert stored["searchName"] == "ana maría"
    assert stored["updatedAt"] is not None
    assert len(ledger_entries(firestore_db)) == 1


def test_the_triggers_own_write_is_skipped(
    firestore_db: Any, firestore_event: Callable[..., Any]
) -> None:
    derived = {**PROFILE, "searchName": "ana", "updatedAt": "later"}
    firestore_db.document("users/ana").set(PROFILE)
    event = firestore_event("users/ana", before=PROFILE, after=derived, kind="updated")

    deliver(on_profile_updated, event)

    assert firestore_db.document("users/ana").get().to_dict() == PROFILE  # untouched
    assert ledger_entries(firestore_db) == []


@pytest.mark.e2e
def test_an_owner_edit_is_stamped_by_the_real_trigger_without_looping(
    firestore_db: Any,
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
    assert len(ledger_entries(firestore_db)) == 1
