"""The audit log: one append-only ``auditLog`` entry per admin action."""

from __future__ import annotations

from typing import Any

from google.cloud import firestore

AUDIT_LOG = "auditLog"


def audit_entry(
    action: str, *, actor_uid: str, target: str, change: dict[str, Any]
) -> dict[str, Any]:
    """An audit record: who did what to which document, and the before/after values."""
    return {
        "action": action,
        "actorUid": actor_uid,
        "target": target,
        "change": change,
        "at": firestore.SERVER_TIMESTAMP,
    }


def append_in(
    transaction: firestore.Transaction, db: firestore.Client, entry: dict[str, Any]
) -> str:
    """Append ``entry`` inside ``transaction``; returns the new entry's id."""
    ref = db.collection(AUDIT_LOG).document()
    transaction.create(ref, entry)
    return str(ref.id)
