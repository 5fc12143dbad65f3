"""One small error hierarchy, mapped to the callable wire format in exactly one place.

Raise an :class:`AppError` subclass anywhere below a handler; :func:`to_https_error` turns
it into the SDK's ``HttpsError`` with a stable code, the message and the details. Anything
else becomes ``INTERNAL`` with a generic message, and its traceback goes to the log only,
so neither our internals nor a third party's raw error text ever reach a client.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict

from firebase_functions.https_fn import FunctionsErrorCode, HttpsError
from pydantic import ValidationError

from firekit import logs, observe

INTERNAL_MESSAGE = "Internal error."
ROOT_FIELD = "__root__"
"""Field name used in details when the whole payload, not one field, is at fault."""

_GENERIC_FIELD_MESSAGE = "Value is invalid."
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# pydantic error types whose message always quotes part of the input.
_QUOTING_TYPES = frozenset({"union_tag_invalid", "uuid_parsing"})


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


class InvalidArgument(AppError):  # noqa: N818
    """The request itself is wrong; ``details`` lists every bad field."""

    code = FunctionsErrorCode.INVALID_ARGUMENT
    default_message = "Invalid argument."

    def __init__(self, message: str | None = None, details: list[FieldIssue] | None = None):
        super().__init__(message, details or [])


class Unauthenticated(AppError):  # noqa: N818
    """The caller is not signed in (or the token is missing)."""

    code = FunctionsErrorCode.UNAUTHENTICATED
    default_message = "Authentication required."


class PermissionDenied(AppError):  # noqa: N818
    """The caller is signed in but may not do this."""

    code = FunctionsErrorCode.PERMISSION_DENIED
    default_message = "Permission denied."


class NotFound(AppError):  # noqa: N818
    """The thing the request names does not exist."""

    code = FunctionsErrorCode.NOT_FOUND
    default_message = "Not found."


class FailedPrecondition(AppError):  # noqa: N818
    """The system is not in a state that allows this request (e.g. a wrong status)."""

    code = FunctionsErrorCode.FAILED_PRECONDITION
    default_message = "Failed precondition."


class ResourceExhausted(AppError):  # noqa: N818
    """A quota or rate limit was hit."""

    code = FunctionsErrorCode.RESOURCE_EXHAUSTED
    default_message = "Too many requests."


class Conflict(AppError):  # noqa: N818
    """What the request wants to create already exists."""

    code = FunctionsErrorCode.ALREADY_EXISTS
    default_message = "Already exists."


class Aborted(AppError):  # noqa: N818
    """A concurrency conflict the caller may retry (e.g. transaction contention)."""

    code = FunctionsErrorCode.ABORTED
    default_message = "Aborted, please retry."


class Unavailable(AppError):  # noqa: N818
    """A service we depend on cannot be reached right now: the caller may retry shortly."""

    code = FunctionsErrorCode.UNAVAILABLE
    default_message = "Unavailable; try again in a moment."


@dataclass(frozen=True)
class Refusal:
    """One way a callable may refuse, named once: its code, a stable ``reason`` (what a
    client branches on, sent as ``details: {"reason": ...}``) and when it happens.

    Declared where the rule lives (``NO_SUCH_LISTING = Refusal(NotFound, "no_such_listing",
    "No such listing.")``), raised as ``raise NO_SUCH_LISTING()``, and listed in the
    callable's ``refusals=`` so the generated client contract names it.
    """

    error: type[AppError]
    reason: str
    when: str
    """Shown to the caller as the message (unless one is given) and in the contract."""

    def __call__(self, message: str | None = None, **details: Any) -> AppError:
        """The error to raise: this refusal's code and reason, with its own words (or
        ``message``) and any further ``details`` beside the reason."""
        return self.error(message or self.when, {"reason": self.reason, **details})

    def raised(self, error: BaseException) -> bool:
        """Whether ``error`` is this refusal: its code and its reason."""
        details = getattr(error, "details", None)
        return (
            isinstance(error, self.error)
            and isinstance(details, Mapping)
            and details.get("reason") == self.reason
        )


BUSY = Refusal(Aborted, "busy", "Someone else is changing this; try again in a moment.")
"""Contention that outlasted our retries (a transaction, a lease): one meaning, retry
shortly, whatever was contended, so one reason; the message says what was busy."""
MOVE_NOT_ALLOWED = Refusal(
    FailedPrecondition, "move_not_allowed", "That move is not allowed from its current status."
)
"""A state machine's refusal (a viewing's, an offer's): one meaning whatever the machine;
the details name the status, the message says what could not be done."""


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
    """Log an unexpected exception with its traceback, in a form Error Reporting picks up:
    on the line of the invocation in progress (``stack_trace``), or on a line of its own."""
    if observe.record_failure(exc, context):
        return
    # Error Reporting groups entries whose message is a formatted Python traceback.
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    logs.error(trace, errorType=type(exc).__name__, **dict(context or {}))


def field_issues(error: ValidationError) -> list[FieldIssue]:
    """Field-level details of a pydantic error, never echoing the submitted values."""
    issues: list[FieldIssue] = []
    for item in error.errors(include_url=False, include_context=False):
        field = ".".join(_path_part(part) for part in item["loc"]) or ROOT_FIELD
        message = _safe_message(item["type"], item["msg"], item.get("input"))
        issues.append({"field": field, "issue": item["type"], "message": message})
    return issues


def _path_part(part: str | int) -> str:
    # Field names come from the model, but an unknown key or a dict key is the caller's
    # text: keep it only when it looks like a field name, so nothing else is echoed.
    return str(part) if isinstance(part, int) or _FIELD_NAME.fullmatch(part) else "*"


def _safe_message(kind: str, message: str, submitted: Any) -> str:
    # Most pydantic messages are templates filled with the constraint, not the input,
    # but some quote it (a bad union tag, a UUID's offending character, a validator's
    # f-string). The value is looked for in the text instead of trusting the type.
    if kind in _QUOTING_TYPES or any(leaf in message for leaf in _text_leaves(submitted)):
        return _GENERIC_FIELD_MESSAGE
    return message.removeprefix("Value error, ")


def _text_leaves(value: Any, depth: int = 0) -> Iterator[str]:
    # Strings shorter than 3 characters carry no secret and would match almost anything.
    if depth > 4:
        return
    if isinstance(value, str | bytes):
        text = value if isinstance(value, str) else value.decode("utf-8", "replace")
        if len(text) >= 3:
            yield text
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _text_leaves(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _text_leaves(item, depth + 1)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield from _text_leaves(str(value), depth + 1)


def invalid_argument(error: ValidationError, message: str | None = None) -> InvalidArgument:
    """Turn a pydantic ``ValidationError`` into an :class:`InvalidArgument`."""
    return InvalidArgument(message or "Invalid request data.", field_issues(error))
