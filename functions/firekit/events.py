"""``document_trigger``: idempotent, loop-safe, typed Firestore triggers.

For each delivered event, in this order:

1. Loop guard: an update whose changed fields all lie in ``owned_fields`` (the fields
   this handler writes itself), or that changed nothing, is ``skipped_own_write``.
   Then the change filter: with ``only_when_changed``, an update that changed none of
   those fields (nor a path inside one) is ``skipped_unwatched``. The two are apart on
   purpose: ``owned_fields`` says what the handler writes, ``only_when_changed`` what it
   reacts to. Creates and deletes are never skipped. Both skips cost no read or write.
2. Validation: the after-document must fit ``model``; if not, the event is recorded in
   the ledger as INVALID (field paths and reasons, never values) and acknowledged:
   ``invalid``, no effect, no exception, so no retry loop. A before-document that no
   longer fits (an older schema) is passed as ``before=None`` with ``before_data`` set.
3. The ledger (:mod:`firekit.ledger`) makes the effect happen once: in
   ``EffectMode.TRANSACTIONAL`` the handler's writes and the DONE record commit together;
   in ``EffectMode.RECOMPUTE`` there is no ledger at all: the handler recomputes derived
   state from what is stored (a count, a summary), so a duplicate is harmless and the
   ledger's read and write would only add latency to the hot path;
   in ``EffectMode.CLAIM`` the handler runs after a leased claim and may call the
   outside world. The lease is never shorter than the function's timeout (refused at
   decoration), so a live attempt cannot be taken over; and an attempt only finishes
   (DONE or FAILED) while it still owns its claim. One that lost it anyway (it outlived
   its lease, e.g. through clock skew between instances) writes nothing and logs
   ``lost its claim`` (ERROR if its effect happened, else WARNING).

Exceptions and retries: an unexpected exception is logged with its traceback and
recorded as a FAILED attempt. It is re-raised only when the function was declared with
``retry=True`` and fewer than ``max_attempts`` attempts have been made, so the platform
redelivers exactly when that can help; otherwise the event is acknowledged. Without
``retry=True`` (the default) nothing is ever re-raised. Retry is off by default because
a retried trigger is redelivered for up to 7 days; turn it on per function where a
transient failure (a provider outage) must not lose the effect. firebase-functions 0.6.0
cannot express it for Firestore triggers, so ``retry=True`` sets it in the manifest.

The function is :func:`firekit.observe.observed`: each delivery produces exactly one log
line, whose outcome this layer annotates: ``applied``, ``duplicate``,
``skipped_own_write``, ``skipped_unwatched``, ``invalid`` or ``error`` (an ERROR, with
the traceback when an exception caused it).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, cast

from cloudevents.http import CloudEvent
from firebase_functions import firestore_fn
from firebase_functions.core import Change
from firebase_functions.params import Expression
from google.cloud import firestore
from pydantic import BaseModel, ConfigDict, ValidationError

from firekit import ledger, logs, observe
from firekit.bootstrap import db, ensure_initialized
from firekit.changes import DocumentChange, EffectMode, Effects, EventInProgress, Handler
from firekit.diff import changed_paths, only_owned
from firekit.errors import field_issues, log_unexpected

M = TypeVar("M", bound=BaseModel)
__all__ = [
    "AnyDocument",
    "DocumentChange",
    "EffectMode",
    "Effects",
    "EventFunction",
    "EventInProgress",
    "EventKind",
    "Handler",
    "document_trigger",
]
EventKind = Literal["written", "created", "updated", "deleted"]


class AnyDocument(BaseModel):
    """The model of a trigger that takes any document: one that re-reads what it needs
    as stored, or acts on the raw ``before_data``/``after_data``. A document that no
    longer fits its strict model must still reach such a handler."""

    model_config = ConfigDict(extra="allow", defer_build=True)  # built at the first event


EventFunction = Callable[[CloudEvent], None]
"""What the decorator returns: the SDK's own wrapped function (CloudEvent in)."""

DEFAULT_TIMEOUT_SECONDS = 60
"""The platform's timeout for an event function that sets none."""
MAX_TIMEOUT_SECONDS = 540
"""The platform's cap for event functions: assumed when the timeout is a deploy-time param."""
LEASE_MARGIN_SECONDS = 30
"""Default claim lease: the function's timeout plus this."""

_SDK_DECORATORS = {
    "written": firestore_fn.on_document_written,
    "created": firestore_fn.on_document_created,
    "updated": firestore_fn.on_document_updated,
    "deleted": firestore_fn.on_document_deleted,
}


@dataclass(frozen=True)
class _Trigger(Generic[M]):
    name: str
    on: EventKind
    model: type[M]
    owned_fields: frozenset[str]
    watched_fields: frozenset[str] | None
    mode: EffectMode
    lease: dt.timedelta
    max_attempts: int
    retry: bool


@dataclass(frozen=True)
class _LedgerRecord:
    client: firestore.Client
    ref: firestore.DocumentReference
    base: dict[str, Any]


@dataclass(frozen=True)
class _Result:
    outcome: str
    fields: dict[str, Any] = field(default_factory=dict)
    reraise: BaseException | None = None


def document_trigger(
    document: str,
    *,
    model: type[M],
    owned_fields: Collection[str] = (),
    only_when_changed: Collection[str] | None = None,
    name: str | None = None,
    on: EventKind = "written",
    mode: EffectMode | str = EffectMode.TRANSACTIONAL,
    lease_seconds: int | None = None,
    max_attempts: int = 5,
    retry: bool = False,
    **firestore_options: Any,
) -> Callable[[Handler[M]], EventFunction]:
    """Declare a Firestore trigger on ``document`` (a path pattern like ``users/{uid}``).

    ``on`` picks the SDK trigger (written/created/updated/deleted). ``owned_fields`` are
    the dotted fields this handler writes to the same document (the loop guard);
    ``only_when_changed`` the dotted fields it reacts to: an update that changes none of
    them is skipped before any ledger work (creates and deletes always run). ``lease_seconds``
    (claim mode) defaults to the function's timeout plus 30 s; a lease shorter than the
    timeout raises ``ValueError`` here, since a live attempt could then be taken over.
    The timeout is the one the deploy manifest gets (``timeout_sec``, else the global
    options, else 60 s; a param counts as the 540 s maximum). ``name`` (default: the
    handler's name) is the deployed name and the ledger key; it must match the attribute
    exported from ``main.py``. ``retry`` asks the platform to redeliver failed events
    (see the module docstring). Other keyword arguments go to the SDK decorator
    (``region``, ``timeout_sec``, ``secrets``, ...).
    """
    effect_mode = EffectMode(mode)

    def decorate(handler: Handler[M]) -> EventFunction:
        function_name = name or handler.__name__

        @functools.wraps(handler)
        def run(event: firestore_fn.Event[Any]) -> None:
            _handle(trigger, handler, event)

        run.__name__ = run.__qualname__ = function_name
        ensure_initialized()
        sdk_decorator: Any = _SDK_DECORATORS[on](document=document, **firestore_options)
        function = sdk_decorator(run)
        # The manifest's timeout is what the platform enforces (global options included).
        timeout = _timeout_seconds(function.__firebase_endpoint__.timeoutSeconds)
        if lease_seconds is not None and lease_seconds < timeout:
            raise ValueError(
                f"{function_name}: lease_seconds={lease_seconds} is shorter than the "
                f"function's timeout ({timeout} s); a live attempt could be taken over."
            )
        trigger = _Trigger(
            name=function_name,
            on=on,
            model=model,
            owned_fields=frozenset(owned_fields),
            watched_fields=None if only_when_changed is None else frozenset(only_when_changed),
            mode=effect_mode,
            lease=dt.timedelta(seconds=lease_seconds or timeout + LEASE_MARGIN_SECONDS),
            max_attempts=max_attempts,
            retry=retry,
        )
        if retry:
            enable_platform_retry(function)
        return cast(EventFunction, observe.observed(function))

    return decorate


def _timeout_seconds(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, Expression):
        return MAX_TIMEOUT_SECONDS  # a param: its value is unknown until deploy
    return DEFAULT_TIMEOUT_SECONDS  # None or the SDK's reset sentinel


def enable_platform_retry(function: Any) -> None:
    """Have the platform redeliver the events a run of ``function`` failed on."""
    # firebase-functions 0.6.0 has no retry option for Firestore (or Storage) triggers: it writes
    # retry=False into the manifest firebase-tools deploys from. The manifest's
    # eventTrigger is a plain dict, so the flag is set there, where the CLI reads it.
    function.__firebase_endpoint__.eventTrigger["retry"] = True


def _handle(trigger: _Trigger[M], handler: Handler[M], event: firestore_fn.Event[Any]) -> None:
    observe.annotate(event_id=event.id, document=event.document)
    try:
        result = _process(trigger, handler, event)
    except Exception as exc:  # ledger or Firestore trouble outside the handler
        log_unexpected(exc)
        result = _Result("error", {"errorType": type(exc).__name__}, exc if trigger.retry else None)
    # Said outright: a redelivery asked for on purpose (in progress elsewhere) is no failure.
    severity: logs.Severity = "ERROR" if result.outcome == "error" else "INFO"
    observe.annotate(outcome=result.outcome, severity=severity, **result.fields)
    if result.reraise is not None:
        raise result.reraise


def _process(trigger: _Trigger[M], handler: Handler[M], event: firestore_fn.Event[Any]) -> _Result:
    before_data, after_data = _document_states(trigger.on, event)
    changed = changed_paths(before_data, after_data)
    is_update = before_data is not None and after_data is not None
    if is_update and only_owned(changed, trigger.owned_fields):
        return _Result("skipped_own_write", {"changedFields": sorted(changed)})
    if is_update and not _touches_watched(changed, trigger.watched_fields):
        return _Result("skipped_unwatched", {"changedFields": sorted(changed)})
    client = db()
    record = _LedgerRecord(
        client,
        ledger.ledger_ref(client, trigger.name, event.id),
        ledger.base_record(trigger.name, event.id, event.document, event.type),
    )
    try:
        after = trigger.model.model_validate(after_data) if after_data is not None else None
    except ValidationError as exc:
        issues = field_issues(exc)
        ledger.record_invalid(record.ref, record.base, list(issues))
        return _Result("invalid", {"issues": issues})
    change = DocumentChange(
        before=_lenient(trigger.model, before_data),
        after=after,
        before_data=before_data,
        after_data=after_data,
        changed_fields=changed,
        params=dict(event.params),
        event_id=event.id,
        event_type=event.type,
        document=event.document,
        time=event.time,
    )
    if trigger.mode is EffectMode.TRANSACTIONAL:
        return _run_transactional(trigger, handler, change, record)
    if trigger.mode is EffectMode.RECOMPUTE:
        return _run_recompute(trigger, handler, change, record)
    return _run_claimed(trigger, handler, change, record)


def _run_recompute(
    trigger: _Trigger[M],
    handler: Handler[M],
    change: DocumentChange[M],
    record: _LedgerRecord,
) -> _Result:
    # No ledger to count attempts: a failure is redelivered (with retry=True) until it
    # succeeds or the platform's retry window ends; the next change recomputes anyway.
    try:
        handler(change, Effects(record.client, trigger.name, change.event_id, None))
    except Exception as exc:
        log_unexpected(exc)
        fields = {"errorType": type(exc).__name__}
        return _Result("error", fields, exc if trigger.retry else None)
    return _Result("applied")


def _run_transactional(
    trigger: _Trigger[M],
    handler: Handler[M],
    change: DocumentChange[M],
    record: _LedgerRecord,
) -> _Result:
    def apply(transaction: firestore.Transaction) -> None:
        handler(change, Effects(record.client, trigger.name, change.event_id, transaction))

    try:
        verdict = ledger.apply_once(
            record.client, record.ref, record.base, apply, trigger.max_attempts
        )
    except Exception as exc:
        return _failure(trigger, record, exc, claim_token=None)
    return _verdict_result(trigger, verdict)


def _run_claimed(
    trigger: _Trigger[M],
    handler: Handler[M],
    change: DocumentChange[M],
    record: _LedgerRecord,
) -> _Result:
    lease, max_attempts = trigger.lease, trigger.max_attempts
    token = ledger.new_claim_token()
    verdict = ledger.claim(
        record.client, record.ref, record.base, lease, max_attempts, claim_token=token
    )
    if verdict is not ledger.Verdict.CLAIMED:
        return _verdict_result(trigger, verdict)
    try:
        handler(change, Effects(record.client, trigger.name, change.event_id, None))
    except Exception as exc:
        return _failure(trigger, record, exc, claim_token=token)
    try:
        ledger.mark_done(record.client, record.ref, token)
    except ledger.ClaimLost as lost:
        _log_lost_claim(trigger, record, lost, effect_applied=True)
        return _Result("applied", {"ledgerMarked": False, "claimLost": True})
    except Exception as exc:
        # The effect happened: never ask for a redelivery that would repeat it. The lease
        # still guards against one until it expires.
        log_unexpected(exc)
        return _Result("applied", {"ledgerMarked": False})
    return _Result("applied")


def _log_lost_claim(
    trigger: _Trigger[M], record: _LedgerRecord, lost: ledger.ClaimLost, *, effect_applied: bool
) -> None:
    # Another attempt took the event over: its record stands, this attempt's is not written.
    # If this attempt's effect happened, the other attempt may repeat it: an ERROR.
    log = logs.error if effect_applied else logs.warning
    log(
        f"{trigger.name}: attempt lost its claim; ledger record left to its owner",
        function=trigger.name,
        eventId=record.base["eventId"],
        effectApplied=effect_applied,
        ledgerState=lost.state,
        ledgerAttempts=lost.attempts,
    )


def _verdict_result(trigger: _Trigger[M], verdict: ledger.Verdict) -> _Result:
    if verdict in (ledger.Verdict.APPLIED, ledger.Verdict.CLAIMED):
        return _Result("applied")
    if verdict is ledger.Verdict.GAVE_UP:
        return _Result("error", {"reason": "gave_up"})
    if verdict is ledger.Verdict.IN_PROGRESS:
        # Another attempt holds the lease. With retries on, ask to be redelivered: if that
        # attempt dies, this redelivery is what eventually applies the effect.
        retry_later = EventInProgress(f"{trigger.name}: event is being processed elsewhere")
        return _Result(
            "duplicate", {"reason": "in_progress"}, retry_later if trigger.retry else None
        )
    return _Result("duplicate")


def _failure(
    trigger: _Trigger[M], record: _LedgerRecord, exc: Exception, *, claim_token: str | None
) -> _Result:
    log_unexpected(exc)
    error_type = type(exc).__name__
    try:
        attempts = ledger.mark_failed(
            record.client, record.ref, record.base, error_type, claim_token
        )
    except ledger.ClaimLost as lost:
        # The event belongs to another attempt now: no redelivery needed on our account.
        _log_lost_claim(trigger, record, lost, effect_applied=False)
        return _Result("error", {"errorType": error_type, "claimLost": True})
    gave_up = attempts >= trigger.max_attempts
    fields = {"errorType": error_type, "attempts": attempts, "gaveUp": gave_up}
    return _Result("error", fields, exc if trigger.retry and not gave_up else None)


def _touches_watched(changed: frozenset[str], watched: frozenset[str] | None) -> bool:
    # A path inside a watched map counts (price.amount for price), and so does a change of
    # a whole map holding a watched path (price replaced, for price.amount).
    if watched is None:
        return True
    return any(
        path == wanted or path.startswith(f"{wanted}.") or wanted.startswith(f"{path}.")
        for path in changed
        for wanted in watched
    )


def _document_states(
    on: EventKind, event: firestore_fn.Event[Any]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    # written/updated events carry a Change; created/deleted a single snapshot.
    data = event.data
    if isinstance(data, Change):
        return _as_dict(data.before), _as_dict(data.after)
    if on == "deleted":
        return _as_dict(data), None
    return None, _as_dict(data)


def _as_dict(snapshot: firestore.DocumentSnapshot[Any] | None) -> dict[str, Any] | None:
    if snapshot is None or not snapshot.exists:
        return None
    return snapshot.to_dict() or {}


def _lenient(model: type[M], data: Mapping[str, Any] | None) -> M | None:
    if data is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None  # an older shape; the raw dict stays available as before_data
