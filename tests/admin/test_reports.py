"""Reports: an admin dismisses one, or blocks the user it reports; a report is closed once,
repeats change nothing, and two admins at once cannot both close it."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from firebase_admin import auth
from google.cloud import firestore

from api.admin import block_reported_user, dismiss_report
from firekit import ownership
from pytest_firebase.auth import AuthEmulator
from pytest_firebase.callables import CallResult, call
from tests.listings.factories import uid

from .factories import ADMIN, audit_entries, member, report

WHY = "Threats in chat."


def dismiss(report_id: str, admin: str = "admin-a") -> CallResult:
    return call(dismiss_report, {"reportId": report_id}, uid=admin, claims=ADMIN)


def block(report_id: str, admin: str = "admin-a") -> CallResult:
    request = {"reportId": report_id, "reason": WHY}
    return call(block_reported_user, request, uid=admin, claims=ADMIN)


def stored(db: firestore.Client, report_id: str) -> dict[str, Any]:
    return db.document(f"reports/{report_id}").get().to_dict() or {}


@pytest.fixture
def db(auth_emulator: AuthEmulator, firestore_db: firestore.Client) -> firestore.Client:
    return firestore_db


def test_dismissing_closes_the_report_and_leaves_the_user_alone(db: firestore.Client) -> None:
    reported = member(db)
    report_id = report(db, reported=reported)

    result = dismiss(report_id)

    assert result.data == {"reportId": report_id, "status": "dismissed", "changed": True}
    doc = stored(db, report_id)
    assert doc["status"] == "dismissed" and isinstance(doc["resolvedAt"], dt.datetime)
    assert not ownership.is_closed(db, reported) and not auth.get_user(reported).disabled


def test_a_report_the_trigger_has_not_completed_yet_can_be_dismissed_but_not_acted_on(
    db: firestore.Client,
) -> None:
    report_id = report(db, reported=None, status=None)  # as the reporter wrote it

    acted = block(report_id)
    dismissed = dismiss(report_id)

    assert acted.error_details == {"reason": "report_not_ready"}
    assert dismissed.data["changed"] is True
    assert [e["action"] for e in audit_entries(db)] == ["report.dismissed"]


def test_blocking_suspends_the_reported_user_and_actions_the_report(
    db: firestore.Client,
) -> None:
    reported = member(db)
    report_id = report(db, reported=reported)

    result = block(report_id)

    assert result.data == {
        "reportId": report_id,
        "status": "actioned",
        "changed": True,
        "uid": reported,
        "account": "suspended",
        "disabled": True,
    }
    assert stored(db, report_id)["status"] == "actioned"
    tombstone = ownership.tombstone_ref(db, reported).get().to_dict() or {}
    assert tombstone["kind"] == "suspension" and tombstone["reason"] == WHY
    assert auth.get_user(reported).disabled


def test_blocking_an_already_suspended_user_records_only_the_report(
    db: firestore.Client,
) -> None:
    reported = member(db)
    first, second = report(db, reported=reported), report(db, reported=reported)
    block(first)

    result = block(second)

    assert result.data["changed"] is True and result.data["account"] == "suspended"
    last = audit_entries(db)[-1]
    assert last["change"] == {
        "before": {"report": {"id": second, "status": "open"}},
        "after": {"report": {"id": second, "status": "actioned"}},
    }
    # The first block's reason stands on the suspension.
    assert (ownership.tombstone_ref(db, reported).get().to_dict() or {})["reason"] == WHY


def test_a_report_closed_one_way_is_not_closed_the_other(db: firestore.Client) -> None:
    dismissed, actioned = report(db, reported=member(db)), report(db, reported=member(db))
    dismiss(dismissed)
    block(actioned)

    late_block, late_dismissal = block(dismissed), dismiss(actioned)

    assert late_block.error_details == {"reason": "report_not_open", "status": "dismissed"}
    assert late_dismissal.error_details == {"reason": "report_not_open", "status": "actioned"}
    assert len(audit_entries(db)) == 2


def test_a_repeated_block_heals_auth_and_records_nothing_more(db: firestore.Client) -> None:
    reported = member(db)
    report_id = report(db, reported=reported)
    block(report_id)
    auth.update_user(reported, disabled=False)  # as if the first call died before Auth

    again = block(report_id)

    assert again.data["changed"] is False and again.data["disabled"] is True
    assert auth.get_user(reported).disabled
    assert len(audit_entries(db)) == 1


def test_blocking_refuses_the_caller_themselves_and_an_erased_user(db: firestore.Client) -> None:
    admin = uid("admin")
    about_me = report(db, reported=admin)
    about_former = report(db, reported=ownership.new_pseudonym())

    mine, former = block(about_me, admin), block(about_former, admin)

    assert mine.error_details == {"reason": "own_account"}
    assert former.error_details == {"reason": "no_such_user"}
    assert stored(db, about_me)["status"] == stored(db, about_former)["status"] == "open"
    assert list(db.collection(ownership.TOMBSTONES).stream()) == []
    assert audit_entries(db) == []


@pytest.mark.parametrize(
    ("first", "second"),
    [(dismiss, dismiss), (block, block), (dismiss, block), (block, dismiss)],
    ids=["dismiss-dismiss", "block-block", "dismiss-block", "block-dismiss"],
)
def test_two_admins_closing_one_report_at_once_close_it_once(
    db: firestore.Client, first: Any, second: Any
) -> None:
    reported = member(db)
    reports = [report(db, reported=reported) for _ in range(3)]
    for report_id in reports:  # three rounds: the two calls overlap in at least some
        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(
                pool.map(
                    lambda act: act[0](act[1], act[2]),
                    [(first, report_id, "admin-a"), (second, report_id, "admin-b")],
                )
            )
        closed = [a for a in answers if a.ok and a.data["changed"]]
        others = [a for a in answers if all(a is not c for c in closed)]
        assert len(closed) == 1, [a.body for a in answers]
        [other] = others
        if first is second:
            assert other.ok and other.data["changed"] is False
        else:
            assert other.error_details["reason"] == "report_not_open"
        status = closed[0].data["status"]
        assert stored(db, report_id)["status"] == status
        entries = [e for e in audit_entries(db) if report_id in str(e)]
        assert len(entries) == 1
        assert entries[0]["actorUid"] == ("admin-a" if closed[0] is answers[0] else "admin-b")
