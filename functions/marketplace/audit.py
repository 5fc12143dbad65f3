"""The audit log: one append-only ``auditLog`` entry per admin action, written in the
transaction that makes the change, so the change and its record commit together or not
at all (:class:`marketplace.models.audit.AuditEntry` is the shape)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.cloud import firestore

from firekit import observe
from marketplace.models.audit import AuditAction

AUDIT_LOG = "auditLog"


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"before": ..., "after": ...}`` over the fields that differ: a field named on one
    side only is ``None`` on the other, a field equal on both sides is left out."""
    fields = [f for f in dict.fromkeys((*before, *after)) if before.get(f) != after.get(f)]
    return {
        "before": {f: before.get(f) for f in fields},
        "after": {f: after.get(f) for f in fields},
    }


def record_in(
    transaction: firestore.Transaction,
    db: firestore.Client,
    action: AuditAction,
    *,
    actor_uid: str,
    target: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    reason: str | None = None,
) -> str:
    """Append the entry of one action inside ``transaction`` (the one that makes the
    change); returns its id. ``before``/``after``: the target's fields as they were and
    as they became (see :func:`changed`). Never name a user's id in them: the erasure
    pseudonymises ``actorUid`` and a ``users/{uid}`` target, nothing inside ``change``."""
    ref = db.collection(AUDIT_LOG).document()
    transaction.create(
        ref,
        {
            "action": action,
            "actorUid": actor_uid,
            "target": target,
            "change": changed(before, after),
            "reason": reason,
            "requestId": observe.request_id(),
            "at": firestore.SERVER_TIMESTAMP,
        },
    )
    return str(ref.id)
