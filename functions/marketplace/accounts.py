"""Account administration: changing a user's role.

The custom claim is the source of truth (rules and callables read it from the ID token);
the profile mirrors it so clients can show it and listen for the change, which is their
cue to refresh the ID token. Claims are set first: if the mirror then fails, the call
fails and its retry finds the claim already set and completes the mirror and the audit.
"""

from __future__ import annotations

from dataclasses import dataclass

from firebase_admin import auth
from google.cloud import firestore
from pydantic import BaseModel, ConfigDict, Field

from firekit import claims
from firekit.errors import FailedPrecondition, NotFound
from marketplace import audit
from marketplace.profiles import new_profile, profile_ref
from marketplace.roles import ROLE_CLAIM, Role, role_of


class SetRoleRequest(BaseModel):
    """An admin's request to give ``uid`` the role ``role``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uid: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    role: Role


class SetRoleResult(BaseModel):
    """What changed."""

    uid: str
    role: Role
    previousRole: Role
    changed: bool


@dataclass(frozen=True)
class _Mirror:
    previous: Role
    changed: bool


def set_role(db: firestore.Client, *, actor_uid: str, request: SetRoleRequest) -> SetRoleResult:
    """Give a user a role: merge the claim, mirror it on the profile, audit the change."""
    if request.uid == actor_uid:
        # An admin demoting themselves could leave the marketplace with no admin at all.
        raise FailedPrecondition("Admins cannot change their own role.")
    try:
        user = auth.get_user(request.uid)
    except auth.UserNotFoundError:
        raise NotFound("No such user.") from None
    claim_role = role_of(dict(user.custom_claims or {}))
    claims.update_claims(request.uid, {ROLE_CLAIM: request.role.value})
    mirror = _mirror_role(db, actor_uid, request.uid, request.role, claim_role)
    return SetRoleResult(
        uid=request.uid, role=request.role, previousRole=mirror.previous, changed=mirror.changed
    )


def _mirror_role(
    db: firestore.Client, actor_uid: str, uid: str, role: Role, claim_role: Role
) -> _Mirror:
    ref = profile_ref(db, uid)

    @firestore.transactional
    def apply(transaction: firestore.Transaction) -> _Mirror:
        snapshot = ref.get(transaction=transaction)
        mirrored = Role(snapshot.get("role")) if snapshot.exists else None
        # After a half-finished earlier attempt the claim is already new; the mirror still
        # holds the true previous role, so prefer it when the claim shows no change.
        previous = mirrored if (claim_role == role and mirrored is not None) else claim_role
        if mirrored == role and claim_role == role:
            return _Mirror(previous=role, changed=False)
        if snapshot.exists:
            transaction.update(ref, {"role": role.value, "updatedAt": firestore.SERVER_TIMESTAMP})
        else:
            transaction.set(ref, new_profile(None, None, role))
        audit.append_in(
            transaction,
            db,
            audit.audit_entry(
                "user.role_changed",
                actor_uid=actor_uid,
                target=f"users/{uid}",
                change={"role": {"from": previous.value, "to": role.value}},
            ),
        )
        return _Mirror(previous=previous, changed=True)

    result: _Mirror = apply(db.transaction())
    return result
