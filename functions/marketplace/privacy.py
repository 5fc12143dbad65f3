"""Leaving and taking your data: what the callables take and answer, and their refusals.

Kept apart from :mod:`marketplace.erasure` and :mod:`marketplace.export` so that
``main.py``'s import of the callables loads pydantic models only.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from firekit.errors import FailedPrecondition, Refusal, ResourceExhausted
from marketplace.models.common import Uid

REAUTH_WINDOW = dt.timedelta(minutes=5)
"""How recent the caller's sign-in must be to delete their account."""
CLOCK_SKEW = dt.timedelta(seconds=30)
"""Allowed between the Auth server's clock and ours."""

REAUTH_REQUIRED = Refusal(
    FailedPrecondition,
    "reauth_required",
    "Sign in again to delete your account (your last sign-in is over 5 minutes old).",
)
EXPORT_TODAY = Refusal(
    ResourceExhausted, "export_today", "You can export your data once a day; try again tomorrow."
)
OWN_ACCOUNT = Refusal(
    FailedPrecondition,
    "own_account",
    "Admins do not erase, suspend or re-enable their own account: close it from the app "
    "(delete_my_account), and leave suspending it to another admin.",
)
"""One refusal for every admin action on the admin's own account (erase_user,
disable_user, block_reported_user): a reason means one thing across the contract."""


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DeleteAccountRequest(_Request):
    """Delete the caller's account: nothing to say but yes."""

    confirm: Literal[True]


class EraseUserRequest(_Request):
    """An admin erases a user's account, for a stated reason (kept in the audit log)."""

    uid: Uid
    reason: Annotated[str, Field(min_length=3, max_length=500)]


class ExportRequest(_Request):
    """Export the caller's data: nothing to choose."""


class ErasureStarted(BaseModel):
    """Phase one is done (the account is closed); the cascade runs on."""

    erasureId: str
    state: Literal["running", "done"]


class ExportStarted(BaseModel):
    """The export is queued; an inbox entry announces its download link."""

    exportId: str


def signed_in_recently(auth_time: object, now: dt.datetime) -> bool:
    """Whether the ID token's ``auth_time`` (seconds since the epoch) is within
    :data:`REAUTH_WINDOW` of ``now``."""
    if isinstance(auth_time, bool) or not isinstance(auth_time, int | float):
        return False
    signed_in = dt.datetime.fromtimestamp(auth_time, dt.UTC)
    return now - REAUTH_WINDOW - CLOCK_SKEW <= signed_in <= now + CLOCK_SKEW
