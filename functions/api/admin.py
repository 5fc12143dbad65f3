"""The admin console's own callables: reports (dismiss, block the reported user), finding a
user, suspending or re-enabling an account. Each audits what it does in the transaction
that does it (see :mod:`marketplace.moderation`, :mod:`marketplace.suspensions`,
:func:`marketplace.accounts.find_user`). The other admin callables live with their
domain: ``approve_listing``/``reject_listing`` (listings), ``set_user_role`` (accounts),
``erase_user`` (privacy)."""

from __future__ import annotations

import datetime as dt

from firekit import bootstrap, claims
from firekit.callables import CallContext, callable_function
from firekit.errors import BUSY
from firekit.ratelimit import RateLimit
from marketplace import accounts, moderation, suspensions
from marketplace.roles import Role

ADMIN = {Role.ADMIN.value}
# By hand, one at a time: these stop a runaway script, not a moderator at work.
_MODERATING = RateLimit(120, per_seconds=60)
_LOOKING_UP = RateLimit(60, per_seconds=60)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@callable_function(
    moderation.DismissReportRequest,
    roles=ADMIN,
    rate_limit=_MODERATING,
    refusals=(moderation.NO_SUCH_REPORT, moderation.REPORT_NOT_OPEN, BUSY),
)
def dismiss_report(
    call: CallContext, data: moderation.DismissReportRequest
) -> moderation.ReportClosed:
    """Admin only: close a report with nothing to act on (a repeat changes nothing)."""
    return moderation.dismiss(bootstrap.db(), actor_uid=call.uid, report_id=data.reportId)


@callable_function(
    moderation.BlockReportedUserRequest,
    roles=ADMIN,
    rate_limit=_MODERATING,
    refusals=(
        moderation.NO_SUCH_REPORT,
        moderation.REPORT_NOT_OPEN,
        moderation.REPORT_NOT_READY,
        suspensions.OWN_ACCOUNT,
        claims.NO_SUCH_USER,
        BUSY,
    ),
)
def block_reported_user(
    call: CallContext, data: moderation.BlockReportedUserRequest
) -> moderation.ReportedUserBlocked:
    """Admin only: act on a report: suspend the reported user at once, for a reason."""
    return moderation.block_reported_user(
        bootstrap.db(), actor_uid=call.uid, request=data, now=_now()
    )


@callable_function(
    accounts.FindUserRequest,
    roles=ADMIN,
    rate_limit=_LOOKING_UP,
    refusals=(claims.NO_SUCH_USER, BUSY),
)
def find_user(call: CallContext, data: accounts.FindUserRequest) -> accounts.FoundUser:
    """Admin only: the user with this email, their role, plan, state and recent audit
    entries (the lookup itself audited)."""
    return accounts.find_user(bootstrap.db(), actor_uid=call.uid, email=data.email)


@callable_function(
    suspensions.DisableUserRequest,
    roles=ADMIN,
    rate_limit=_MODERATING,
    refusals=(
        suspensions.OWN_ACCOUNT,
        suspensions.ACCOUNT_ERASED,
        claims.NO_SUCH_USER,
        BUSY,
    ),
)
def disable_user(
    call: CallContext, data: suspensions.DisableUserRequest
) -> suspensions.DisableUserResult:
    """Admin only: suspend an account (refused at once by rules and callables, sign-in
    disabled, tokens revoked) or re-enable it, for a reason."""
    return suspensions.set_disabled(bootstrap.db(), actor_uid=call.uid, request=data, now=_now())
