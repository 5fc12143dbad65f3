"""firekit: the generic integration core of a Firebase Functions (Python) backend.

Nothing here knows the domain. Modules: :mod:`~firekit.bootstrap` (the admin app),
:mod:`~firekit.settings` (params and secrets), :mod:`~firekit.errors` (the error
hierarchy and its one mapping), :mod:`~firekit.logs` (structured lines),
:mod:`~firekit.observe` (one line per invocation of every deployed function) with
:mod:`~firekit.metrics` (its counts, flushed to ``_metrics``),
:mod:`~firekit.callables` (``callable_function``), :mod:`~firekit.ratelimit`,
:mod:`~firekit.events` (``document_trigger``) with :mod:`~firekit.changes` (the types
its handlers see), :mod:`~firekit.ledger` (idempotency),
:mod:`~firekit.diff` (loop guard) and :mod:`~firekit.claims` (custom claims).
"""

from firekit.bootstrap import db, ensure_initialized, firebase_app, is_emulated
from firekit.callables import CallContext, MaybeSignedIn, callable_function
from firekit.errors import (
    Aborted,
    AppError,
    Conflict,
    FailedPrecondition,
    Forbidden,
    InvalidArgument,
    InvalidState,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from firekit.events import DocumentChange, EffectMode, Effects, document_trigger
from firekit.ratelimit import RateLimit

__all__ = [
    "Aborted",
    "AppError",
    "CallContext",
    "Conflict",
    "DocumentChange",
    "EffectMode",
    "Effects",
    "FailedPrecondition",
    "Forbidden",
    "InvalidArgument",
    "InvalidState",
    "MaybeSignedIn",
    "NotFound",
    "PermissionDenied",
    "RateLimit",
    "ResourceExhausted",
    "Unauthenticated",
    "callable_function",
    "db",
    "document_trigger",
    "ensure_initialized",
    "firebase_app",
    "is_emulated",
]
