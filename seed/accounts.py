"""Seeded accounts: Auth users with their role claim and profile documents.

Seed accounts are created with the Admin SDK, which (as in production) does not run the
sign-up blocking function, so this sets the role claim and writes the profile itself,
through the same domain code the functions use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from firebase_admin import auth

from firekit import bootstrap, claims
from marketplace import profiles
from marketplace.roles import ROLE_CLAIM, Role

HERE = Path(__file__).resolve().parent
SIGN_IN_ACCOUNTS = HERE / "users.json"
"""The accounts people sign in as (one per role, listed by ``make dev``)."""
PEOPLE = HERE / "people.json"
"""More agents and buyers, so the marketplace has a population."""


@dataclass(frozen=True)
class SeedUser:
    """One seeded account and how to sign in as it."""

    uid: str
    email: str
    password: str
    display_name: str
    role: Role
    verified: bool = False
    """An agent an admin checked: their listings publish without moderation."""


def seed_users(path: Path = SIGN_IN_ACCOUNTS) -> list[SeedUser]:
    """The seeded accounts listed in ``path`` (default: the sign-in accounts)."""
    rows = json.loads(path.read_text())
    return [
        SeedUser(
            r["uid"],
            r["email"],
            r["password"],
            r["displayName"],
            Role(r["role"]),
            verified=bool(r.get("verified", False)),
        )
        for r in rows
    ]


def _upsert_account(user: SeedUser) -> None:
    fields = {
        "email": user.email,
        "password": user.password,
        "display_name": user.display_name,
        "email_verified": True,
    }
    try:
        auth.update_user(user.uid, **fields)
    except auth.UserNotFoundError:
        auth.create_user(uid=user.uid, **fields)


def load_users(users: list[SeedUser] | None = None) -> list[SeedUser]:
    """Create or refresh every seeded account, its role claim and its profile."""
    bootstrap.ensure_initialized()
    db = bootstrap.db()
    users = seed_users() if users is None else users
    for user in users:
        _upsert_account(user)
        claims.update_claims(user.uid, {ROLE_CLAIM: user.role.value})
        if not profiles.create_profile(
            db, user.uid, email=user.email, display_name=user.display_name, role=user.role
        ):
            profiles.profile_ref(db, user.uid).update({"role": user.role.value})
        if user.verified:
            profiles.profile_ref(db, user.uid).update({"verified": True})
    return users
