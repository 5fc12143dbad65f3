"""Every admin callable audits what it does: one entry per change, none per refusal.

The admin callables are found, not listed: every callable ``main.py`` exports whose
contract's roles are exactly ``{"admin"}``. Each must have a case here (a new one without
a case fails :func:`test_every_admin_callable_has_a_case`), and each case proves that a
successful call writes exactly one ``auditLog`` entry (actor, action, target, the fields
before and after, the reason, the request id), that a refused call (what it names does
not exist, or the caller is no admin) writes none, and what a repeat does: a call that
changes nothing more records nothing more, or is refused; only a lookup, which shows
personal data each time, is audited each time.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from google.cloud import firestore

from pytest_firebase.auth import AuthEmulator
from pytest_firebase.callables import call
from tests.listings.factories import uid
from tests.security.test_fuzz import CALLABLES

from .factories import ADMIN, audit_entries, member, pending_listing, report

ADMIN_CALLABLES = {
    name for name, function in CALLABLES.items() if function.__contract__.roles == {"admin"}
}
Repeat = Literal["unchanged", "refused", "audited"]


@dataclass(frozen=True)
class Case:
    """One admin call, what its audit entry must say, and how it is refused."""

    request: dict[str, Any]
    action: str
    target: str
    before: dict[str, Any]
    after: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]
    """The fields after, or (the call's answer) -> them, when the answer names a value."""
    refused: dict[str, Any]
    """A well-formed request the callable refuses: it names nothing that exists."""
    refusal: str
    repeat: Repeat
    reason: str | None = None
    repeat_refusal: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def expected_after(self, answer: dict[str, Any]) -> dict[str, Any]:
        return self.after(answer) if callable(self.after) else self.after


def _approve(db: firestore.Client) -> Case:
    listing_id = pending_listing(db)
    return Case(
        {"listingId": listing_id},
        "listing.approved",
        f"listings/{listing_id}",
        {"status": "pending_review"},
        {"status": "active"},
        {"listingId": "no-such-listing"},
        "no_such_listing",
        "refused",
        repeat_refusal="transition_not_allowed",
    )


def _reject(db: firestore.Client) -> Case:
    listing_id = pending_listing(db)
    why = "The photos show another home."
    return Case(
        {"listingId": listing_id, "reason": why},
        "listing.rejected",
        f"listings/{listing_id}",
        {"status": "pending_review"},
        {"status": "rejected"},
        {"listingId": "no-such-listing", "reason": why},
        "no_such_listing",
        "refused",
        reason=why,
        repeat_refusal="transition_not_allowed",
    )


def _set_role(db: firestore.Client) -> Case:
    who = member(db)
    return Case(
        {"uid": who, "role": "agent"},
        "user.role_changed",
        f"users/{who}",
        {"role": "buyer"},
        {"role": "agent"},
        {"uid": "no-such-user", "role": "agent"},
        "no_such_user",
        "unchanged",
    )


def _erase(db: firestore.Client) -> Case:
    who = member(db)
    why = "Legal request 42."
    return Case(
        {"uid": who, "reason": why},
        "user.erased",
        f"users/{who}",
        {"account": "open", "erasureId": None},
        lambda answer: {"account": "closed", "erasureId": answer["erasureId"]},
        {"uid": "no-such-user", "reason": why},
        "no_such_user",
        "unchanged",
        reason=why,
    )


def _dismiss(db: firestore.Client) -> Case:
    report_id = report(db, reported=member(db))
    return Case(
        {"reportId": report_id},
        "report.dismissed",
        f"reports/{report_id}",
        {"status": "open"},
        {"status": "dismissed"},
        {"reportId": "no-such-report"},
        "no_such_report",
        "unchanged",
    )


def _block(db: firestore.Client) -> Case:
    reported = member(db)
    report_id = report(db, reported=reported)
    why = "Threats in chat."
    return Case(
        {"reportId": report_id, "reason": why},
        "user.blocked",
        f"users/{reported}",
        {"account": "open", "report": {"id": report_id, "status": "open"}},
        {"account": "suspended", "report": {"id": report_id, "status": "actioned"}},
        {"reportId": "no-such-report", "reason": why},
        "no_such_report",
        "unchanged",
        reason=why,
    )


def _find(db: firestore.Client) -> Case:
    who = member(db)
    return Case(
        {"email": f"{who}@example.test"},
        "user.looked_up",
        f"users/{who}",
        {},
        {},
        {"email": "nobody@example.test"},
        "no_such_user",
        "audited",
    )


def _disable(db: firestore.Client) -> Case:
    who = member(db)
    why = "Spam from this account."
    return Case(
        {"uid": who, "disabled": True, "reason": why},
        "user.disabled",
        f"users/{who}",
        {"account": "open"},
        {"account": "suspended"},
        {"uid": "no-such-user", "disabled": True, "reason": why},
        "no_such_user",
        "unchanged",
        reason=why,
    )


CASES: dict[str, Callable[[firestore.Client], Case]] = {
    "approve_listing": _approve,
    "reject_listing": _reject,
    "set_user_role": _set_role,
    "erase_user": _erase,
    "dismiss_report": _dismiss,
    "block_reported_user": _block,
    "find_user": _find,
    "disable_user": _disable,
}


def test_every_admin_callable_has_a_case() -> None:
    assert set(CASES) == ADMIN_CALLABLES


@pytest.fixture
def world(auth_emulator: AuthEmulator, firestore_db: firestore.Client) -> firestore.Client:
    """An emptied database and Auth emulator."""
    return firestore_db


def invocation_lines(capsys: pytest.CaptureFixture[str], function: str) -> list[dict[str, Any]]:
    """The log lines (firekit.observe's, one per invocation) ``function`` wrote so far."""
    captured = capsys.readouterr()
    lines = [
        json.loads(line) for line in (captured.out + captured.err).splitlines() if line[:1] == "{"
    ]
    return [line for line in lines if "latency_ms" in line and line.get("function") == function]


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_successful_admin_call_writes_exactly_one_audit_entry(
    world: firestore.Client, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    case, admin = CASES[name](world), uid("admin")
    started = dt.datetime.now(dt.UTC)
    capsys.readouterr()

    result = call(CALLABLES[name], case.request, uid=admin, claims=ADMIN)

    assert result.ok, result.body
    [entry] = audit_entries(world)
    assert {k: entry[k] for k in ("action", "actorUid", "target", "reason")} == {
        "action": case.action,
        "actorUid": admin,
        "target": case.target,
        "reason": case.reason,
    }
    assert entry["change"] == {"before": case.before, "after": case.expected_after(result.data)}
    assert set(entry["change"]["before"]) == set(entry["change"]["after"])
    assert entry["change"]["before"] != entry["change"]["after"] or name == "find_user"
    # The entry names the request its log line names: one id joins the two.
    [line] = invocation_lines(capsys, name)
    assert (line["outcome"], line["uid"]) == ("ok", admin)
    assert entry["requestId"] == line["request_id"]
    assert entry["at"] >= started - dt.timedelta(seconds=5)  # the server's time of the commit


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_refused_admin_call_writes_no_audit_entry(world: firestore.Client, name: str) -> None:
    case, admin = CASES[name](world), uid("admin")

    missing = call(CALLABLES[name], case.refused, uid=admin, claims=ADMIN)
    not_admin = call(CALLABLES[name], case.request, uid=admin, claims={"role": "agent"})
    signed_out = call(CALLABLES[name], case.request)

    assert missing.error_details == {"reason": case.refusal}
    assert not_admin.error_details == {"reason": "role"}
    assert signed_out.error_details == {"reason": "signed_out"}
    assert audit_entries(world) == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_repeated_admin_call_records_nothing_more_unless_it_discloses_again(
    world: firestore.Client, name: str
) -> None:
    case, admin = CASES[name](world), uid("admin")
    first = call(CALLABLES[name], case.request, uid=admin, claims=ADMIN)

    again = call(CALLABLES[name], case.request, uid=admin, claims=ADMIN)

    assert first.ok, first.body
    entries = audit_entries(world)
    if case.repeat == "refused":
        assert again.error_details == {"reason": case.repeat_refusal}
        assert len(entries) == 1
    elif case.repeat == "unchanged":
        assert again.ok, again.body
        # The same answer, but for what describes this call (whether it changed anything;
        # the role before it).
        about_the_call = ("changed", "previousRole")
        assert {k: v for k, v in again.data.items() if k not in about_the_call} == {
            k: v for k, v in first.data.items() if k not in about_the_call
        }
        assert again.data.get("changed", False) is False
        assert len(entries) == 1
    else:
        assert again.ok, again.body
        assert [e["action"] for e in entries] == [case.action, case.action]
        assert entries[0]["requestId"] != entries[1]["requestId"]
