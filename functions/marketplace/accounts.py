"""Account administration: changing a user's role, and finding a user by email.

The profile's ``role`` is the record: a change to it and its audit entry commit in one
transaction, so concurrent changes are ordered and none escapes the audit log. The custom
claim (what rules and callables enforce) is its copy, synced after the commit and
re-checked until both agree: whichever admin's sync runs last reads the last committed
role, so claim and profile converge however two changes interleave. A call that failed
after the commit is completed by its retry, which finds the record set and syncs the claim.

Finding a user shows an admin personal data (email, name), so each lookup is audited
(``user.looked_up``, nothing changed) in the transaction that reads what it shows: no
lookup is answered that the log does not hold.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

from firebase_admin import auth
from google.cloud import firestore
from pydantic import BaseModel, ConfigDict, StringConstraints

from firekit import claims, ownership
from firekit.errors import BUSY, FailedPrecondition, Refusal
from firekit.ids import PlainId
from firekit.ownership import AccountState
from firekit.transactions import run_transaction
from marketplace import audit
from marketplace.models.audit import AuditAction, AuditChange
from marketplace.profiles import new_profile, profile_ref
from marketplace.roles import ROLE_CLAIM, Role, RoleName, role_of

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
        audit.record_in(
            transaction,
            db,
            "user.role_changed",
            actor_uid=actor_uid,
            target=f"users/{uid}",
            before={"role": previous.value},
            after={"role": role.value},
        )
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


# --- finding a user ----------------------------------------------------------------------

RECENT_AUDIT = 10
"""The audit entries about the user a lookup shows, newest first."""
EMAIL_SHAPE = r"^[^@\s]{1,64}@[^@\s]{1,255}$"
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, max_length=320, pattern=EMAIL_SHAPE),
]


class FindUserRequest(BaseModel):
    """An admin looks a user up by the email they sign in with."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    email: Email


class AuditRecord(BaseModel):
    """One audit entry as an admin reads it: an ``auditLog`` document and its ``id``."""

    model_config = ConfigDict(defer_build=True)

    id: str
    action: AuditAction
    actorUid: str
    target: str
    change: AuditChange
    reason: str | None = None
    requestId: str
    at: dt.datetime | None
    """None only for an entry of a write still in flight (its server time not set yet)."""


class FoundUser(BaseModel):
    """Who has that email: the account, its role and plan, and what admins did to it."""

    model_config = ConfigDict(defer_build=True)

    uid: str
    email: str | None
    displayName: str
    role: RoleName
    plan: Literal["agent_pro"] | None
    disabled: bool
    """Sign-in refused: the Auth account is disabled."""
    closed: bool
    """Being erased, or erased (the profile may be gone)."""
    account: AccountState
    """What the callables and the rules enforce: ``open``, ``suspended`` or ``closed``."""
    recentAudit: list[AuditRecord]
    """The last :data:`RECENT_AUDIT` entries whose target is ``users/{uid}`` (this lookup's
    own not among them), newest first."""


def find_user(db: firestore.Client, *, actor_uid: str, email: str) -> FoundUser:
    """The user signing in with ``email``, their lookup audited in the reads' transaction.

    Raises :data:`~firekit.claims.NO_SUCH_USER` (nothing audited) when nobody does."""
    from marketplace import queries  # lazy: its table of queries imports every model

    try:
        user = auth.get_user_by_email(email)
    except auth.UserNotFoundError:
        raise claims.NO_SUCH_USER() from None
    target = f"users/{user.uid}"
    recent = queries.AUDIT_OF_TARGET.build(db, equals={"target": target}, limit=RECENT_AUDIT)

    def apply(transaction: firestore.Transaction) -> FoundUser:
        profile = profile_ref(db, user.uid).get(transaction=transaction).to_dict() or {}
        tombstone = ownership.tombstone_ref(db, user.uid).get(transaction=transaction)
        entries = [
            AuditRecord.model_validate({**(s.to_dict() or {}), "id": s.id})
            for s in transaction.get(recent)
        ]
        audit.record_in(
            transaction,
            db,
            "user.looked_up",
            actor_uid=actor_uid,
            target=target,
            before={},
            after={},
        )
        state = ownership.account_state(tombstone)
        plan = profile.get("plan")
        return FoundUser(
            uid=user.uid,
            email=user.email,
            displayName=str(profile.get("displayName") or user.display_name or ""),
            role=role_of(profile).value,
            plan="agent_pro" if plan == "agent_pro" else None,
            disabled=bool(user.disabled),
            closed=state == "closed",
            account=state,
            recentAudit=entries,
        )

    return run_transaction(db, apply, busy_message="The user is being changed; try again.")
