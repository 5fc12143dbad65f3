"""Account administration: changing a user's role.

The profile's ``role`` is the record: a change to it and its audit entry commit in one
transaction, so concurrent changes are ordered and none escapes the audit log. The custom
claim (what rules and callables enforce) is its copy, synced after the commit and
re-checked until both agree: whichever admin's sync runs last reads the last committed
role, so claim and profile converge however two changes interleave. A call that failed
after the commit is completed by its retry, which finds the record set and syncs the claim.
"""

from __future__ import annotations

from dataclasses import dataclass

from firebase_admin import auth
from google.cloud import firestore
from pydantic import BaseModel, ConfigDict

from firekit import claims
from firekit.errors import BUSY, FailedPrecondition, Refusal
from firekit.ids import PlainId
from firekit.transactions import run_transaction
from marketplace import audit
from marketplace.profiles import new_profile, profile_ref
from marketplace.roles import ROLE_CLAIM, Role, role_of

SYNC_ATTEMPTS = 5

OWN_ROLE = Refusal(FailedPrecondition, "own_role", "Admins cannot change their own role.")
"""An admin demoting themselves could leave the marketplace with no admin at all."""


class SetRoleRequest(BaseModel):
    """An admin's request to give ``uid`` the role ``role``."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    uid: PlainId
    role: Role


class SetRoleResult(BaseModel):
    """What changed."""

    model_config = ConfigDict(defer_build=True)

    uid: str
    role: Role
    previousRole: Role
    changed: bool


@dataclass(frozen=True)
class _Recorded:
    previous: Role
    changed: bool


def set_role(db: firestore.Client, *, actor_uid: str, request: SetRoleRequest) -> SetRoleResult:
    """Give a user a role: record and audit it, then sync the custom claim."""
    if request.uid == actor_uid:
        raise OWN_ROLE()
    try:
        user = auth.get_user(request.uid)
    except auth.UserNotFoundError:
        raise claims.NO_SUCH_USER() from None
    # Refuse an over-limit claim set before recording anything.
    claims.merge_claims(user.custom_claims, {ROLE_CLAIM: request.role.value})
    recorded = _record(db, actor_uid, request.uid, request.role)
    sync_role_claim(db, request.uid)
    return SetRoleResult(
        uid=request.uid,
        role=request.role,
        previousRole=recorded.previous,
        changed=recorded.changed,
    )


def _record(db: firestore.Client, actor_uid: str, uid: str, role: Role) -> _Recorded:
    ref = profile_ref(db, uid)

    def apply(transaction: firestore.Transaction) -> _Recorded:
        snapshot = ref.get(transaction=transaction)
        stored = snapshot.to_dict() or {}
        previous = role_of(stored)  # a missing or unknown role reads as the default
        if snapshot.exists and stored.get("role") == role.value:
            return _Recorded(previous=role, changed=False)
        if snapshot.exists:
            transaction.update(ref, {"role": role.value, "updatedAt": firestore.SERVER_TIMESTAMP})
        else:
            transaction.set(ref, new_profile(None, None, role))
        entry = audit.audit_entry(
            "user.role_changed",
            actor_uid=actor_uid,
            target=f"users/{uid}",
            change={"role": {"from": previous.value, "to": role.value}},
        )
        audit.append_in(transaction, db, entry)
        return _Recorded(previous=previous, changed=True)

    return run_transaction(
        db, apply, busy_message="The user is being changed by someone else; try again."
    )


def sync_role_claim(db: firestore.Client, uid: str) -> Role:
    """Copy the recorded role into the user's custom claims, other claims kept.

    Re-reads the record after setting the claim: if another change committed meanwhile,
    it syncs again, so the claim ends equal to the last committed role.
    """
    ref = profile_ref(db, uid)
    for _ in range(SYNC_ATTEMPTS):
        role = role_of(ref.get().to_dict() or {})
        claims.update_claims(uid, {ROLE_CLAIM: role.value})
        if role_of(ref.get().to_dict() or {}) == role:
            return role
    raise BUSY("The role kept changing while it was being applied; try again.")
