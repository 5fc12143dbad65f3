"""Profiles: ``users/{uid}`` (public) and ``users/{uid}/private/account`` (owner only).

Profiles are created by the sign-up blocking function, not by clients, so every account
has one from its first moment and its ``role`` is only ever written here, mirroring the
custom claim that actually grants the role.
"""

from __future__ import annotations

from typing import Any

from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore

from marketplace.roles import DEFAULT_ROLE, Role

USERS = "users"
PRIVATE_ACCOUNT = "private/account"
DERIVED_FIELDS = frozenset({"searchName", "updatedAt"})
"""Fields the profile trigger derives; its own writes to them must not re-trigger it."""


def profile_ref(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    """The public profile document of ``uid``."""
    return db.collection(USERS).document(uid)


def account_ref(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    """The owner-only account document of ``uid`` (email and settings)."""
    return db.document(f"{USERS}/{uid}/{PRIVATE_ACCOUNT}")


def search_name(display_name: str) -> str:
    """The form of a name that people search by: case-folded, whitespace collapsed."""
    return " ".join(display_name.casefold().split())


def refresh_derived_fields(
    db: firestore.Client, transaction: firestore.Transaction, uid: str
) -> None:
    """Recompute ``searchName`` and stamp ``updatedAt`` from the profile as stored now.

    Nothing happens if the profile is gone (deleted since the event was sent).
    """
    snapshot = profile_ref(db, uid).get(transaction=transaction)
    if not snapshot.exists:
        return
    name = str((snapshot.to_dict() or {}).get("displayName", ""))
    transaction.update(
        snapshot.reference,
        {"searchName": search_name(name), "updatedAt": firestore.SERVER_TIMESTAMP},
    )


def new_profile(display_name: str | None, photo_url: str | None, role: Role) -> dict[str, Any]:
    """The first version of a public profile."""
    return {
        "displayName": display_name or "",
        "searchName": search_name(display_name or ""),
        "photoURL": photo_url,
        "role": role.value,
        "createdAt": firestore.SERVER_TIMESTAMP,
        "updatedAt": firestore.SERVER_TIMESTAMP,
    }


def create_profile(
    db: firestore.Client,
    uid: str,
    *,
    email: str | None,
    display_name: str | None = None,
    photo_url: str | None = None,
    role: Role = DEFAULT_ROLE,
) -> bool:
    """Create the profile and private account documents once; False if they existed.

    Both documents are written in one batch with create-only semantics, so a retried
    sign-up never overwrites a profile the user has since edited.
    """
    batch = db.batch()
    batch.create(profile_ref(db, uid), new_profile(display_name, photo_url, role))
    batch.create(account_ref(db, uid), {"email": email, "createdAt": firestore.SERVER_TIMESTAMP})
    try:
        batch.commit()
    except AlreadyExists:
        return False
    return True
