"""Suspending an account (an admin's ``disable_user``, or a report's ``block_reported_user``)
and lifting the suspension.

**At once, not when the ID token expires.** A suspension is a tombstone
(:func:`firekit.ownership.suspension`): the security rules' ``live()`` and every
callable's policy already refuse a uid that has one, whatever ID token it still holds
(for up to an hour). It is written in the transaction that records the change and its
audit entry; lifting it deletes it. Unlike an erasure's tombstone it has no
``expiresAt``: it stays until an admin lifts it.

**Auth follows the record.** The tombstone is the record; the Auth account's ``disabled``
flag (no sign-in, no token refresh) and the revocation of its refresh tokens are its copy,
made after the commit by :func:`sync_sign_in`, which re-reads the record until it is
stable, so two admins' opposite calls converge on the last committed state. A call that
failed between the commit and the copy is healed by its retry: the repeat changes nothing
(no second audit entry) and makes the copy again.

An account being erased (its tombstone an erasure's) can be neither suspended nor
re-enabled: :data:`ACCOUNT_ERASED`. Erasing a suspended account replaces the suspension
(:meth:`firekit.ownership.Cascade.begin_in`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from firebase_admin import auth
from google.cloud import firestore
from pydantic import BaseModel, ConfigDict, StringConstraints

from firekit import claims, ownership
from firekit.errors import BUSY, FailedPrecondition, Refusal
from firekit.ids import PlainId
from firekit.ownership import AccountState
from firekit.transactions import run_transaction
from marketplace import audit, privacy
from marketplace.models.audit import MAX_AUDIT_REASON

SYNC_ATTEMPTS = 5
BUSY_MESSAGE = "The account is being changed by someone else; try again."

OWN_ACCOUNT = privacy.OWN_ACCOUNT
ACCOUNT_ERASED = Refusal(
    FailedPrecondition,
    "account_erased",
    "The account is being erased (or was): it stays closed, and cannot be suspended.",
)

AdminReason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=MAX_AUDIT_REASON)
]
"""Why an admin acts, kept in the audit log: a few words at least."""


class DisableUserRequest(BaseModel):
    """An admin suspends (``disabled: true``) or re-enables an account, saying why."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    uid: PlainId
    disabled: bool
    reason: AdminReason


class DisableUserResult(BaseModel):
    """The account's state now, and whether this call changed it."""

    model_config = ConfigDict(defer_build=True)

    uid: str
    disabled: bool
    """Sign-in refused (the Auth account disabled, its refresh tokens revoked)."""
    account: AccountState
    changed: bool


def set_disabled(
    db: firestore.Client, *, actor_uid: str, request: DisableUserRequest, now: dt.datetime
) -> DisableUserResult:
    """Suspend or re-enable ``request.uid``: the tombstone and the audit entry in one
    transaction, then the Auth account made to agree (see the module)."""
    if request.uid == actor_uid:
        raise OWN_ACCOUNT()
    try:
        auth.get_user(request.uid)
    except auth.UserNotFoundError:
        raise claims.NO_SUCH_USER() from None
    ref = ownership.tombstone_ref(db, request.uid)
    wanted: AccountState = "suspended" if request.disabled else "open"

    def apply(transaction: firestore.Transaction) -> bool:
        state = ownership.account_state(ref.get(transaction=transaction))
        if state == "closed":
            raise ACCOUNT_ERASED()
        if state == wanted:
            return False
        if request.disabled:
            transaction.set(ref, ownership.suspension(request.reason, now))
        else:
            transaction.delete(ref)
        audit.record_in(
            transaction,
            db,
            "user.disabled" if request.disabled else "user.enabled",
            actor_uid=actor_uid,
            target=f"users/{request.uid}",
            before={"account": state},
            after={"account": wanted},
            reason=request.reason,
        )
        return True

    changed = run_transaction(db, apply, busy_message=BUSY_MESSAGE)
    state = sync_sign_in(db, request.uid)
    return DisableUserResult(
        uid=request.uid, disabled=state != "open", account=state, changed=changed
    )


def suspend_in(
    transaction: firestore.Transaction,
    db: firestore.Client,
    uid: str,
    *,
    reason: str,
    now: dt.datetime,
) -> tuple[AccountState, AccountState]:
    """Suspend ``uid`` inside ``transaction`` unless their account is closed or suspended
    already; returns its state before and after. Reads first: call before any write."""
    ref = ownership.tombstone_ref(db, uid)
    state = ownership.account_state(ref.get(transaction=transaction))
    if state != "open":
        return state, state
    transaction.set(ref, ownership.suspension(reason, now))
    return state, "suspended"


def sync_sign_in(db: firestore.Client, uid: str) -> AccountState:
    """Make the Auth account agree with the recorded state: disabled, its refresh tokens
    revoked, unless the account is open, then enabled. Re-reads the record after each
    copy and copies again if it moved, so the last committed state wins. An Auth account
    already gone (erased) needs nothing."""
    ref = ownership.tombstone_ref(db, uid)
    for _ in range(SYNC_ATTEMPTS):
        state = ownership.account_state(ref.get())
        try:
            if state == "open":
                auth.update_user(uid, disabled=False)
            else:
                close_sign_in(uid)
        except auth.UserNotFoundError:
            return state
        if ownership.account_state(ref.get()) == state:
            return state
    raise BUSY("The account kept changing while it was being applied; try again.")


def close_sign_in(uid: str) -> None:
    """Disable the Auth account and revoke its refresh tokens (no sign-in, no new ID
    token); raises ``auth.UserNotFoundError`` if there is none."""
    auth.update_user(uid, disabled=True)
    auth.revoke_refresh_tokens(uid)
