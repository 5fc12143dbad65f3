"""Test data for notifying one user: users with accounts and devices, notices, the outbox."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from firekit import push
from marketplace.notify import Notice

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def user(
    db: firestore.Client,
    *,
    tokens: int = 2,
    expired: int = 0,
    address: str | None = "",
    synced: bool = True,
    account: bool = True,
    **notifications: Any,
) -> str:
    """A user with ``tokens`` live and ``expired`` dead devices; their tokens kept on the
    account (``synced``); ``notifications`` overrides the default settings if given;
    ``address``: "" for ``<uid>@example.test``, None for none."""
    who = uid("user")
    names = [f"tok-{who}-{n}" for n in range(tokens)]
    names += [f"{push.EXPIRED_PREFIX}{who}-{n}" for n in range(expired)]
    batch = db.batch()
    data: dict[str, Any] = {"createdAt": NOW}
    data["email"] = f"{who}@example.test" if address == "" else address
    if notifications:
        data["notifications"] = {"push": True, "email": True, "quietHours": None} | notifications
    if synced:
        data["pushTokens"] = names
    if account:
        batch.set(db.document(f"users/{who}/private/account"), data)
    for token in names:
        batch.set(
            db.document(f"users/{who}/devices/{token}"),
            {
                "token": token,
                "ownerId": who,
                "platform": "ios",
                "appVersion": "2.5.0",
                "createdAt": NOW,
                "updatedAt": NOW,
            },
        )
    batch.commit()
    return who


def notice(who: str, **overrides: Any) -> Notice:
    fields: dict[str, Any] = {
        "uid": who,
        "id": f"test-{uuid.uuid4().hex[:8]}",
        "kind": "system",
        "title": "Something happened",
        "body": "Details here.",
        "link": "/somewhere",
        "data": {"thing": "t1"},
    }
    return Notice(**(fields | overrides))


def inbox(db: firestore.Client, who: str) -> dict[str, dict[str, Any]]:
    return {s.id: s.to_dict() or {} for s in db.collection(f"users/{who}/notifications").stream()}


def pushes(db: firestore.Client, who: str) -> list[dict[str, Any]]:
    """What the recording transport sent to ``who``'s devices (``_pushOutbox``)."""
    query = (
        db.collection(push.OUTBOX)
        .where(filter=FieldFilter("token", ">=", f"tok-{who}-"))
        .where(filter=FieldFilter("token", "<", f"tok-{who}-~"))
    )
    return [s.to_dict() or {} for s in query.stream()]


def devices(db: firestore.Client, who: str) -> set[str]:
    return {s.id for s in db.collection(f"users/{who}/devices").stream()}
