"""Load the seed data into running emulators (idempotent: safe to run again).

Run by the dev command after the emulators start; tests call ``load_users`` directly.
Seed accounts are created with the Admin SDK, which (as in production) does not run the
sign-up blocking function, so this sets the role claim and writes the profile itself,
through the same domain code the functions use.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))

from firebase_admin import auth  # noqa: E402

from firekit import bootstrap, claims  # noqa: E402
from marketplace import profiles  # noqa: E402
from marketplace.roles import ROLE_CLAIM, Role  # noqa: E402


@dataclass(frozen=True)
class SeedUser:
    """One seeded account and how to sign in as it."""

    uid: str
    email: str
    password: str
    display_name: str
    role: Role


def seed_users(path: Path = ROOT / "seed" / "users.json") -> list[SeedUser]:
    """The seeded accounts, from ``seed/users.json``."""
    rows = json.loads(path.read_text())
    return [
        SeedUser(r["uid"], r["email"], r["password"], r["displayName"], Role(r["role"]))
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
    return users


def main() -> int:
    """Load everything; print what was loaded."""
    users = load_users()
    print(f"seed: {len(users)} users loaded")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
