"""Test data for the admin callables: accounts in Auth with a profile, reports, listings
waiting for review, and the audit log as stored."""

from __future__ import annotations

import datetime as dt
from typing import Any

from firebase_admin import auth
from google.cloud import firestore

from marketplace.models.audit import AuditEntry
from tests.listings.factories import listing, uid

ADMIN = {"role": "admin"}
PASSWORD = "admin-tests-pass"
REPORTED_AT = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


def member(db: firestore.Client, prefix: str = "member", *, role: str = "buyer") -> str:
    """A user with an Auth account (email ``<uid>@example.test``) and a profile."""
    who = uid(prefix)
    auth.create_user(uid=who, email=f"{who}@example.test", password=PASSWORD, display_name=who)
    auth.set_custom_user_claims(who, {"role": role})
    db.document(f"users/{who}").set({"displayName": who.title(), "role": role, "plan": None})
    return who


def report(
    db: firestore.Client, *, reported: str | None, status: str | None = "open", **extra: Any
) -> str:
    """A report of a conversation, completed by its trigger unless ``reported`` is None."""
    report_id = uid("report")
    data: dict[str, Any] = {
        "reporterId": "reporter-1",
        "conversationId": f"home-1__{reported or 'someone'}",
        "reason": "harassment",
        "note": "",
        "createdAt": REPORTED_AT,
        **extra,
    }
    if reported is not None:
        data |= {"reportedUid": reported, "listingId": "home-1", "excerpt": "Hello?"}
    if status is not None:
        data["status"] = status
    db.document(f"reports/{report_id}").set(data)
    return report_id


def pending_listing(db: firestore.Client) -> str:
    """A listing waiting for review whose agent is an agent (it passes every check)."""
    owner = uid("agent")
    db.document(f"users/{owner}").set({"displayName": "Agent", "role": "agent"})
    listing_id = uid("home")
    data = listing(owner, status="pending_review")
    data["address"] |= {"line1": f"Flat {listing_id}, 12 High Street"}  # no duplicate
    db.document(f"listings/{listing_id}").set(data)
    return listing_id


def audit_entries(db: firestore.Client) -> list[dict[str, Any]]:
    """Every entry of the audit log, each checked against the model (newest last)."""
    entries = [doc.to_dict() or {} for doc in db.collection("auditLog").stream()]
    for entry in entries:
        AuditEntry.model_validate(entry)
    return sorted(entries, key=lambda e: e["at"])
