"""Leaving and taking your data: closing an account (the caller's, or an admin's for a
user), exporting the caller's data, and the Cloud Tasks worker and clock that carry both
out. See :mod:`marketplace.erasure`, :mod:`marketplace.export` and the map they follow,
:mod:`marketplace.ownership`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from firebase_functions import https_fn, options, scheduler_fn, tasks_fn
from pydantic import ValidationError

from firekit import bootstrap, claims, observe
from firekit.callables import CallContext, callable_function
from firekit.errors import BUSY, log_unexpected
from firekit.fanout.queue import Task, cloud_tasks_queue
from firekit.ratelimit import RateLimit
from marketplace import privacy as p
from marketplace.roles import Role

# marketplace.erasure and marketplace.export (firebase_admin.auth, Stripe, the alert
# index, zip writing) are imported inside the handlers: main.py imports this module for
# every function's cold start.

QUEUE_FUNCTION = "accountTasks"
"""The worker's queue (named after it: letters, digits and hyphens only, hence camelCase)."""
ERASE, EXPORT = "erase", "export"
STALLED = dt.timedelta(hours=1)
"""A running erasure untouched this long has lost its task (retries spent): queue it again."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _queue(kind: str, job: str, hop: int = 0, **params: Any) -> None:
    cloud_tasks_queue(QUEUE_FUNCTION)(
        Task(job=f"{kind}-{job}", kind=kind, params=params, first_chunk=hop)
    )


@callable_function(
    p.DeleteAccountRequest,
    rate_limit=RateLimit(5, per_seconds=3600),
    refusals=(p.REAUTH_REQUIRED, BUSY),
)
def delete_my_account(call: CallContext, data: p.DeleteAccountRequest) -> p.ErasureStarted:
    """Close the caller's account at once and erase it (signed in within 5 minutes)."""
    from marketplace import erasure  # lazy: see the imports

    now = _now()
    if not p.signed_in_recently(call.claim("auth_time"), now):
        raise p.REAUTH_REQUIRED()
    erasure_id = erasure.begin(bootstrap.db(), call.uid, requested_by="self", now=now)
    _queue(ERASE, erasure_id)
    observe.annotate(erasureId=erasure_id)
    return p.ErasureStarted(erasureId=erasure_id, state="running")


# Admins erase by hand (a legal request, an abusive account): 30 an hour stops a script.
@callable_function(
    p.EraseUserRequest,
    roles={Role.ADMIN.value},
    rate_limit=RateLimit(30, per_seconds=3600),
    refusals=(p.OWN_ACCOUNT, claims.NO_SUCH_USER, BUSY),
)
def erase_user(call: CallContext, data: p.EraseUserRequest) -> p.ErasureStarted:
    """Admin only: close a user's account and erase it; the reason goes in the audit log."""
    from marketplace import erasure  # lazy: see the imports

    if data.uid == call.uid:
        raise p.OWN_ACCOUNT()
    erasure_id = erasure.begin_for_admin(
        bootstrap.db(), data.uid, actor_uid=call.uid, reason=data.reason, now=_now()
    )
    _queue(ERASE, erasure_id)
    observe.annotate(erasureId=erasure_id)
    return p.ErasureStarted(erasureId=erasure_id, state="running")


@callable_function(
    p.ExportRequest, rate_limit=RateLimit(10, per_seconds=3600), refusals=(p.EXPORT_TODAY,)
)
def export_my_data(call: CallContext, data: p.ExportRequest) -> p.ExportStarted:
    """Queue an archive of the caller's data (once a day); an inbox entry brings its link."""
    from marketplace import export  # lazy: see the imports

    export_id = export.start(bootstrap.db(), call.uid, _now())
    _queue(EXPORT, export_id, uid=call.uid, exportId=export_id)
    return p.ExportStarted(exportId=export_id)


@tasks_fn.on_task_dispatched(
    retry_config=options.RetryConfig(
        max_attempts=50, min_backoff_seconds=5, max_backoff_seconds=600
    ),
    rate_limits=options.RateLimits(max_concurrent_dispatches=10),
    timeout_sec=540,
    memory=options.MemoryOption.MB_512,
)
def accountTasks(request: https_fn.CallableRequest[Any]) -> dict[str, Any]:  # noqa: N802
    """Run an erasure's cascade for a while (handing the rest to the next task), or build
    an export."""
    try:
        task = Task.model_validate(request.data)
    except ValidationError:
        observe.annotate(outcome="refused", severity="ERROR")
        return {"outcome": "refused"}  # can never succeed: acknowledged, loudly
    observe.annotate(job=task.job)
    try:
        outcome = _run(task)
    except _RetryLaterError as exc:
        observe.annotate(outcome="deferred", severity="INFO", reason=str(exc))
        raise https_fn.HttpsError(https_fn.FunctionsErrorCode.UNAVAILABLE, "retry") from exc
    except Exception as exc:
        log_unexpected(exc)
        raise
    observe.annotate(outcome=outcome)
    return {"outcome": outcome}


class _RetryLaterError(RuntimeError):
    """Not now: the queue tries again with backoff."""


def _run(task: Task) -> str:
    from firekit.ownership import StepNotReadyError

    db = bootstrap.db()
    if task.kind == EXPORT:
        from marketplace import export  # lazy: see the imports

        export.build(db, task.params["uid"], task.params["exportId"], _now())
        return "exported"
    from marketplace import erasure  # lazy: see the imports

    erasure_id = task.job.removeprefix(f"{ERASE}-")
    try:
        result = erasure.CASCADE.run(db, erasure_id)
    except StepNotReadyError as exc:
        raise _RetryLaterError(str(exc)) from exc
    if result.outcome == "busy":
        raise _RetryLaterError("another task holds the erasure")
    if result.outcome == "more":
        _queue(ERASE, erasure_id, task.first_chunk + 1)
    return result.outcome


@scheduler_fn.on_schedule(schedule="every 60 minutes", timeout_sec=300)
def privacy_clock(event: scheduler_fn.ScheduledEvent) -> None:
    """Hourly: queue again any erasure whose task gave up (its retries spent while a
    processor was down), so none stays half done; delete archives whose link expired."""
    from marketplace import erasure, export  # lazy: see the imports

    now = _now()
    stalled = erasure.stalled(bootstrap.db(), now - STALLED)
    hour = int(now.timestamp() // 3600)  # a new task name per hour: names are not reusable
    for erasure_id in stalled:
        _queue(ERASE, erasure_id, hour)
    swept = export.sweep_expired(now)
    observe.annotate(requeued=len(stalled), archives=swept)
