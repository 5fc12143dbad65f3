"""Moderating reports: an admin dismisses one, or blocks the user it reports.

A report is ``open`` until an admin closes it, once: ``dismissed`` (nothing to act on)
or ``actioned`` (the reported user suspended, as :mod:`marketplace.suspensions` does it).
Each close, its audit entry and (for a block) the suspension commit in one transaction
that reads the report first, so two admins closing one report at once are ordered: one
closes it, the other finds it closed.

**Repeats.** Closing a report the way it is already closed succeeds and changes nothing
(``changed: false``, no audit entry): a retried call, or a second admin who agreed. A
block repeated also makes the Auth account agree again, which heals a call that failed
after its commit. Closing it the other way is refused (:data:`REPORT_NOT_OPEN`): the
other admin's decision stands, and the caller is told so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from google.cloud import firestore
from pydantic import BaseModel, ConfigDict

from firekit import claims, ownership
from firekit.errors import FailedPrecondition, NotFound, Refusal
from firekit.ids import PlainId
from firekit.ownership import AccountState
from firekit.transactions import run_transaction
from marketplace import audit, suspensions
from marketplace.models.reports import ReportStatus

REPORTS = "reports"
BUSY_MESSAGE = "The report is being handled by someone else; try again."

NO_SUCH_REPORT = Refusal(NotFound, "no_such_report", "No such report.")
REPORT_NOT_OPEN = Refusal(
    FailedPrecondition, "report_not_open", "The report was already closed the other way."
)
"""Details carry ``status``: how it was closed."""
REPORT_NOT_READY = Refusal(
    FailedPrecondition,
    "report_not_ready",
    "The report does not name the reported user yet; try again in a moment.",
)
"""The trigger that completes a report has not run yet."""


class DismissReportRequest(BaseModel):
    """An admin dismisses a report: nothing to act on."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    reportId: PlainId


class BlockReportedUserRequest(BaseModel):
    """An admin acts on a report: the reported user is suspended, for ``reason``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    reportId: PlainId
    reason: suspensions.AdminReason


class ReportClosed(BaseModel):
    """The report's status now, and whether this call closed it."""

    model_config = ConfigDict(defer_build=True)

    reportId: str
    status: ReportStatus
    changed: bool


class ReportedUserBlocked(ReportClosed):
    """The report's status now, whether this call closed it, and the reported user's
    account now."""

    uid: str
    account: AccountState
    disabled: bool


@dataclass(frozen=True)
class _Read:
    ref: firestore.DocumentReference
    data: dict[str, Any]

    @property
    def status(self) -> str:
        # Open until the completing trigger says otherwise (it writes "open" if unset).
        return str(self.data.get("status") or "open")


def _read(db: firestore.Client, transaction: firestore.Transaction, report_id: str) -> _Read:
    ref = db.collection(REPORTS).document(report_id)
    snapshot = ref.get(transaction=transaction)
    if not snapshot.exists:
        raise NO_SUCH_REPORT()
    return _Read(ref, snapshot.to_dict() or {})


def _closing(read: _Read, status: ReportStatus) -> bool:
    """Whether to close the report as ``status`` now: False if it is closed so already."""
    if read.status == status:
        return False
    if read.status != "open":
        raise REPORT_NOT_OPEN(status=read.status)
    return True


def dismiss(db: firestore.Client, *, actor_uid: str, report_id: str) -> ReportClosed:
    """Dismiss an open report (see the module for repeats and races)."""

    def apply(transaction: firestore.Transaction) -> bool:
        read = _read(db, transaction, report_id)
        if not _closing(read, "dismissed"):
            return False
        transaction.update(
            read.ref, {"status": "dismissed", "resolvedAt": firestore.SERVER_TIMESTAMP}
        )
        audit.record_in(
            transaction,
            db,
            "report.dismissed",
            actor_uid=actor_uid,
            target=f"{REPORTS}/{report_id}",
            before={"status": "open"},
            after={"status": "dismissed"},
        )
        return True

    changed = run_transaction(db, apply, busy_message=BUSY_MESSAGE)
    return ReportClosed(reportId=report_id, status="dismissed", changed=changed)


def block_reported_user(
    db: firestore.Client,
    *,
    actor_uid: str,
    request: BlockReportedUserRequest,
    now: dt.datetime,
) -> ReportedUserBlocked:
    """Act on an open report: it becomes ``actioned`` and the reported user is suspended
    (left as they are if suspended or erased already), one audit entry on the user; then
    their Auth account made to agree."""

    def apply(transaction: firestore.Transaction) -> tuple[str, bool]:
        read = _read(db, transaction, request.reportId)
        reported = read.data.get("reportedUid")
        if not isinstance(reported, str) or not reported:
            raise REPORT_NOT_READY()
        if ownership.is_pseudonym(reported):  # erased since: nobody left to block
            raise claims.NO_SUCH_USER("The reported user's account was erased.")
        if reported == actor_uid:
            raise suspensions.OWN_ACCOUNT()
        if not _closing(read, "actioned"):
            return reported, False
        before, after = suspensions.suspend_in(
            transaction, db, reported, reason=request.reason, now=now
        )
        transaction.update(
            read.ref, {"status": "actioned", "resolvedAt": firestore.SERVER_TIMESTAMP}
        )
        report = {"id": request.reportId}
        audit.record_in(
            transaction,
            db,
            "user.blocked",
            actor_uid=actor_uid,
            target=f"users/{reported}",
            before={"account": before, "report": report | {"status": "open"}},
            after={"account": after, "report": report | {"status": "actioned"}},
            reason=request.reason,
        )
        return reported, True

    reported, changed = run_transaction(db, apply, busy_message=BUSY_MESSAGE)
    state = suspensions.sync_sign_in(db, reported)
    return ReportedUserBlocked(
        reportId=request.reportId,
        status="actioned",
        changed=changed,
        uid=reported,
        account=state,
        disabled=state != "open",
    )
