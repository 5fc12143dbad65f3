"""One small error hierarchy, mapped to the callable wire format in exactly one place.

Raise an :class:`AppError` subclass anywhere below a handler; :func:`to_https_error` turns
it into the SDK's ``HttpsError`` with a stable code, the message and the details. Anything
else becomes ``INTERNAL`` with a generic message, and its traceback goes to the log only,
so neither our internals nor a third party's raw error text ever reach a client.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import Any, ClassVar, TypedDict

from firebase_functions.https_fn import FunctionsErrorCode, HttpsError
from pydantic import ValidationError

from firekit import logs

INTERNAL_MESSAGE = "Internal error."
ROOT_FIELD = "__root__"
"""Field name used in details when the whole payload, not one field, is at fault."""

# pydantic error types whose message is written by a developer's validator, so it may
# quote the submitted value; for these the message is kept only if it does not.
_AUTHORED_MESSAGE_TYPES = frozenset({"value_error", "assertion_error"})


class FieldIssue(TypedDict):
    """One field-level problem: where, a stable machine-readable reason, a short text."""

    field: str
    issue: str
    message: str


class AppError(Exception):
    """An expected failure, safe to show to the caller: code, message and details."""

    code: ClassVar[FunctionsErrorCode] = FunctionsErrorCode.INTERNAL
    default_message: ClassVar[str] = INTERNAL_MESSAGE

    def __init__(self, message: str | None = None, details: Any = None) -> None:
        self.message = message or self.default_message
        self.details = details
        # A non-empty str(err) keeps our own log lines readable (HttpsError's is empty).
        super().__init__(self.message)


class InvalidArgument(AppError):
    """The request itself is wrong; ``details`` lists every bad field."""

    code = FunctionsErrorCode.INVALID_ARGUMENT
    default_message = "Invalid argument."

    def __init__(self, message: str | None = None, details: list[FieldIssue] | None = None):
        super().__init__(message, details or [])


class Unauthenticated(AppError):
    """The caller is not signed in (or the token is missing)."""

    code = FunctionsErrorCode.UNAUTHENTICATED
    default_message = "Authentication required."


class PermissionDenied(AppError):
    """The caller is signed in but may not do this."""

    code = FunctionsErrorCode.PERMISSION_DENIED
    default_message = "Permission denied."


class NotFound(AppError):
    """The thing the request names does not exist."""

    code = FunctionsErrorCode.NOT_FOUND
    default_message = "Not found."


class FailedPrecondition(AppError):
    """The system is not in a state that allows this request (e.g. a wrong status)."""

    code = FunctionsErrorCode.FAILED_PRECONDITION
    default_message = "Failed precondition."


class ResourceExhausted(AppError):
    """A quota or rate limit was hit."""

    code = FunctionsErrorCode.RESOURCE_EXHAUSTED
    default_message = "Too many requests."


class Conflict(AppError):
    """What the request wants to create already exists."""

    code = FunctionsErrorCode.ALREADY_EXISTS
    default_message = "Already exists."


class Aborted(AppError):
    """A concurrency conflict the caller may retry (e.g. transaction contention)."""

    code = FunctionsErrorCode.ABORTED
    default_message = "Aborted, please retry."


# Names the style guide uses for the same things.
Forbidden = PermissionDenied
InvalidState = FailedPrecondition


def error_name(code: FunctionsErrorCode) -> str:
    """The canonical wire name of a code, e.g. ``INVALID_ARGUMENT``."""
    return code.name


def to_https_error(exc: BaseException, context: Mapping[str, Any] | None = None) -> HttpsError:
    """Map any exception to the one ``HttpsError`` the client will see.

    ``AppError`` keeps its code, message and details; an ``HttpsError`` raised by hand
    passes through; anything else is logged with its traceback (plus ``context``) and
    becomes ``INTERNAL`` with a generic message.
    """
    if isinstance(exc, HttpsError):
        return exc
    if isinstance(exc, AppError):
        return HttpsError(exc.code, exc.message, exc.details)
    log_unexpected(exc, context)
    return HttpsError(FunctionsErrorCode.INTERNAL, INTERNAL_MESSAGE)


def log_unexpected(exc: BaseException, context: Mapping[str, Any] | None = None) -> None:
    """Log an unexpected exception with its traceback, in a form Error Reporting picks up."""
    # Error Reporting groups entries whose message is a formatted Python traceback.
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    logs.error(trace, errorType=type(exc).__name__, **dict(context or {}))


def field_issues(error: ValidationError) -> list[FieldIssue]:
    """Field-level details of a pydantic error, never echoing the submitted values."""
    issues: list[FieldIssue] = []
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        field = ".".join(str(part) for part in item["loc"]) or ROOT_FIELD
        issues.append({"field": field, "issue": item["type"], "message": _safe_message(item)})
    return issues


def _safe_message(item: Mapping[str, Any]) -> str:
    # errors(include_input=False) drops the "input" key, so look it up again via the
    # raw error list is not possible here; authored messages are checked by the caller.
    message = str(item["msg"])
    if item["type"] in _AUTHORED_MESSAGE_TYPES:
        return "Value is invalid." if _looks_like_it_quotes_input(message) else message
    return message


def _looks_like_it_quotes_input(message: str) -> bool:
    # Without the input we cannot compare; keep authored messages only when they are
    # short and free of quotes, which is how a value usually gets interpolated.
    return len(message) > 120 or any(quote in message for quote in ("'", '"', "`"))


def invalid_argument(error: ValidationError, message: str | None = None) -> InvalidArgument:
    """Turn a pydantic ``ValidationError`` into an :class:`InvalidArgument`."""
    return InvalidArgument(message or "Invalid request data.", field_issues(error))
