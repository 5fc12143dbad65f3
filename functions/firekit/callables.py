"""``callable_function``: a thin policy layer over ``https_fn.on_call``.

Order of checks, and why: the request's shape first (a POST of a UTF-8 JSON object
``{"data": ...}`` of bounded size and depth: anything else is ``INVALID_ARGUMENT`` before
the SDK parses it, since the SDK turns a body it cannot parse into ``INTERNAL``), then
auth, a closed account's tombstone and role (cheap, and nothing about the payload is
revealed to strangers), then
validation (so malformed calls write nothing, not even a rate-limit counter), then the
rate limit, then the handler. Every failure goes through
:func:`firekit.errors.to_https_error` here and nowhere else. The function is
:func:`firekit.observe.observed`: every call produces exactly one log line, whose caller
and outcome (the error's code name, or ``ok``) this layer annotates.

Signed in is a type, not a check: a callable that needs a caller (the default, and
always with ``roles``) hands its handler a :class:`CallContext`, whose ``uid`` is a
``str``; only ``allow_anonymous=True`` (without roles) hands it a :class:`MaybeSignedIn`,
whose ``uid`` may be ``None``.

The SDK rejects a *present but invalid* ID token with ``UNAUTHENTICATED`` before our code
runs; such calls still get their line (the outcome read from the SDK's answer, no uid).

Every refusal a callable gives carries a stable ``reason`` and is declared on it
(``refusals=``, plus its policy's own): an answer with a code and reason it does not
declare (or with no reason, other than ``INVALID_ARGUMENT``'s field issues and
``INTERNAL``) is logged as ``undeclared refusal`` and, under the emulators, warned about
(:class:`UndeclaredRefusal`), so the client contract cannot silently fall behind the code.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, cast, overload

import flask
from firebase_functions import https_fn
from firebase_functions.https_fn import FunctionsErrorCode, HttpsError
from flask_cors import cross_origin
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from firekit import logs, observe, ownership
from firekit.bootstrap import db, ensure_initialized, is_emulated
from firekit.errors import (
    ROOT_FIELD,
    FieldIssue,
    InvalidArgument,
    PermissionDenied,
    Refusal,
    Unauthenticated,
    error_name,
    invalid_argument,
    to_https_error,
)
from firekit.ratelimit import RATE_LIMITED, RateLimit, consume

M = TypeVar("M", bound=BaseModel)
CallableFunction = Callable[[flask.Request], flask.Response]
"""What the decorator returns: the SDK's wrapped function behind the body check, observed
(Flask request in, response out), with the SDK's deploy manifest attribute."""

MAX_BODY_BYTES = 1024 * 1024
"""A callable's whole request body: a Firestore document holds at most 1 MiB anyway."""
MAX_BODY_DEPTH = 32
"""Nesting of objects and arrays in the body, the body itself being 1 (Firestore's own
limit on a document's maps and arrays is 20 levels)."""
_INT64 = range(-(2**63), 2**63)


@dataclass(frozen=True)
class MaybeSignedIn:
    """Who is calling a callable declared ``allow_anonymous=True``: ``uid`` is ``None``
    for a caller who is not signed in. Also the raw request, and the caller's claims."""

    uid: str | None
    claims: Mapping[str, Any]
    raw_request: flask.Request
    function: str
    app_check: Mapping[str, Any] | None = None

    def claim(self, name: str, default: Any = None) -> Any:
        """One claim of the caller's ID token (custom claims included)."""
        return self.claims.get(name, default)


@dataclass(frozen=True)
class CallContext(MaybeSignedIn):
    """Who is calling, as verified by the SDK: a signed-in caller, so ``uid`` is a ``str``."""

    uid: str


SIGNED_OUT = Refusal(Unauthenticated, "signed_out", "Authentication required.")
NO_APP_CHECK = Refusal(Unauthenticated, "app_check", "App Check token missing or invalid.")
WRONG_ROLE = Refusal(PermissionDenied, "role", "Your role may not call this.")
"""The refusals every callable's policy may give, by what it declares (see
:attr:`Contract.policy_refusals`); ``INVALID_ARGUMENT`` carries field issues instead."""


@dataclass(frozen=True)
class Contract(Generic[M]):
    """What a callable promises its clients, kept on the deployed function as
    ``__contract__`` for the generated client contract (``contract/build.py``): its
    name, request model, handler (whose return annotation is the response), who may call
    it and every way it may refuse."""

    function: str
    model: type[M]
    roles: frozenset[str]
    role_claim: str
    allow_anonymous: bool
    require_app_check: bool
    rate_limit: RateLimit | None = field(default=None)
    refusals: tuple[Refusal, ...] = ()
    handler: Callable[..., object] | None = None

    @property
    def policy_refusals(self) -> tuple[Refusal, ...]:
        """The refusals the policy itself may give before the handler runs."""
        return (
            *(() if self.allow_anonymous else (SIGNED_OUT,)),
            ownership.ACCOUNT_CLOSED,
            *((NO_APP_CHECK,) if self.require_app_check else ()),
            *((WRONG_ROLE,) if self.roles else ()),
            *((RATE_LIMITED,) if self.rate_limit else ()),
        )

    def declares(self, error: HttpsError) -> bool:
        """Whether the contract names this answer: a declared refusal (its code and
        reason), or an answer that carries no reason by design (``INVALID_ARGUMENT``:
        field issues; ``INTERNAL``: nothing at all)."""
        if error.code in _WITHOUT_REASON:
            return True
        reason = _reason_of(error)
        return any(
            refusal.error.code == error.code and refusal.reason == reason
            for refusal in (*self.refusals, *self.policy_refusals)
        )


class UndeclaredRefusal(UserWarning):
    """A callable refused in a way its ``refusals=`` does not declare, so the client
    contract no longer says everything it may answer.

    Always logged (``undeclared refusal``, ERROR) with the answer unchanged; under the
    emulators also warned, so a test run that turns warnings into errors (this suite's
    ``filterwarnings = error``) fails the call that showed it.
    """


_WITHOUT_REASON = frozenset({FunctionsErrorCode.INVALID_ARGUMENT, FunctionsErrorCode.INTERNAL})


def _reason_of(error: HttpsError) -> object:
    return error.details.get("reason") if isinstance(error.details, Mapping) else None


def _report_undeclared(policy: Contract[Any], error: HttpsError) -> None:
    code, reason = error_name(error.code), _reason_of(error)
    logs.error("undeclared refusal", function=policy.function, code=code, reason=reason)
    if is_emulated():
        declared = sorted(f"{r.error.code.name}:{r.reason}" for r in policy.refusals)
        warnings.warn(
            UndeclaredRefusal(
                f"{policy.function} answered {code} with reason {reason!r}, which its "
                f"refusals= does not declare (it declares {declared})"
            ),
            stacklevel=2,
        )


SignedInHandler = Callable[[CallContext, M], object]
AnyCallerHandler = Callable[[MaybeSignedIn, M], object]


@overload
def callable_function(
    model: type[M],
    *,
    roles: Collection[str] | None = None,
    allow_anonymous: Literal[False] = False,
    rate_limit: RateLimit | None = None,
    refusals: Sequence[Refusal] = (),
    role_claim: str = "role",
    require_app_check: bool = False,
    name: str | None = None,
    **on_call_options: Any,
) -> Callable[[SignedInHandler[M]], CallableFunction]: ...


@overload
def callable_function(
    model: type[M],
    *,
    roles: None = None,
    allow_anonymous: Literal[True],
    rate_limit: RateLimit | None = None,
    refusals: Sequence[Refusal] = (),
    role_claim: str = "role",
    require_app_check: bool = False,
    name: str | None = None,
    **on_call_options: Any,
) -> Callable[[AnyCallerHandler[M]], CallableFunction]: ...


def callable_function(
    model: type[M],
    *,
    roles: Collection[str] | None = None,
    allow_anonymous: bool = False,
    rate_limit: RateLimit | None = None,
    refusals: Sequence[Refusal] = (),
    role_claim: str = "role",
    require_app_check: bool = False,
    name: str | None = None,
    **on_call_options: Any,
) -> Callable[[Any], CallableFunction]:
    """Declare a callable whose input is ``model`` and whose caller is checked first.

    The handler gets a :class:`CallContext` (signed-in caller) and the validated model,
    or with ``allow_anonymous=True`` a :class:`MaybeSignedIn`. ``roles``: the caller's
    ``role_claim`` claim (a string or a list) must name one of them; roles with
    ``allow_anonymous=True`` is a contradiction and raises ``ValueError``.
    ``require_app_check``: refuse calls without a valid App Check token (skipped under
    the emulators). ``refusals``: every :class:`~firekit.errors.Refusal` the handler may
    raise, for the client contract (the policy's own are added there). ``name``
    (default: the handler's name) is the deployed name and must match the attribute
    exported from ``main.py``. Other keyword arguments go to
    ``https_fn.on_call`` unchanged (``secrets``, ``region``, ``memory``, ...).
    The handler returns a pydantic model, a dict, or any JSON-able value.
    """
    if allow_anonymous and roles:
        raise ValueError("A callable with roles needs a signed-in caller: drop allow_anonymous.")

    def decorate(handler: Callable[[Any, M], object]) -> CallableFunction:
        policy = Contract(
            function=name or handler.__name__,
            model=model,
            roles=frozenset(roles or ()),
            role_claim=role_claim,
            allow_anonymous=allow_anonymous,
            require_app_check=require_app_check,
            rate_limit=rate_limit,
            refusals=tuple(refusals),
            handler=handler,
        )

        @functools.wraps(handler)
        def run(request: https_fn.CallableRequest[Any]) -> Any:
            return _invoke(policy, handler, request)

        # The SDK names the endpoint after __name__; firebase-tools deploys that name.
        run.__name__ = run.__qualname__ = policy.function
        ensure_initialized()
        sdk_entry = cast(CallableFunction, https_fn.on_call(**on_call_options)(run))
        checked = _checking_the_body(sdk_entry, on_call_options.get("cors"))
        checked.__contract__ = policy  # type: ignore[attr-defined]
        return observe.observed(checked)

    return decorate


def _invoke(
    policy: Contract[M],
    handler: Callable[[Any, M], object],
    request: https_fn.CallableRequest[Any],
) -> Any:
    uid = request.auth.uid if request.auth else None
    observe.annotate(uid=uid)
    try:
        call = _authorize(policy, request)
        data = _validate(policy.model, request.data)
        if policy.rate_limit is not None:
            consume(db(), policy.function, _rate_key(call), policy.rate_limit)
        result = _to_json(handler(call, data))
    except Exception as exc:  # every failure is mapped here, in one place
        error = to_https_error(exc)
        observe.annotate(outcome=error_name(error.code), reason=_reason_of(error))
        if not policy.declares(error):
            _report_undeclared(policy, error)
        raise error from exc
    observe.annotate(outcome="ok")
    return result


def _authorize(policy: Contract[M], request: https_fn.CallableRequest[Any]) -> MaybeSignedIn:
    auth = request.auth
    # A token without a uid is no caller at all: the handler's uid is a str or nothing.
    uid = auth.uid if auth is not None and auth.uid else None
    if uid is None and not policy.allow_anonymous:
        raise SIGNED_OUT()
    # An ID token outlives its account by up to an hour (and the SDK checks no revocation):
    # a closed account's tombstone refuses it, one read, before anything else is revealed.
    if uid is not None and ownership.is_closed(db(), uid):
        raise ownership.ACCOUNT_CLOSED()
    if policy.require_app_check and request.app is None and not is_emulated():
        raise NO_APP_CHECK()
    claims: dict[str, Any] = dict(auth.token) if auth is not None and uid is not None else {}
    if policy.roles and not _has_role(claims.get(policy.role_claim), policy.roles):
        raise WRONG_ROLE()
    app_check = request.app.token if request.app else None
    if uid is None:
        return MaybeSignedIn(None, claims, request.raw_request, policy.function, app_check)
    return CallContext(uid, claims, request.raw_request, policy.function, app_check)


def _has_role(claim: object, allowed: frozenset[str]) -> bool:
    if isinstance(claim, str):
        return claim in allowed
    if isinstance(claim, list):
        return any(isinstance(role, str) and role in allowed for role in claim)
    return False


def _validate(model: type[M], data: object) -> M:
    # Checked before pydantic so the message does not name our model class.
    if not isinstance(data, dict):
        issue: FieldIssue = {
            "field": ROOT_FIELD,
            "issue": "object_type",
            "message": "Expected an object.",
        }
        raise InvalidArgument("Request data must be an object.", [issue])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_argument(exc) from None


def _rate_key(call: MaybeSignedIn) -> str:
    """Whose budget a call spends: the uid, or for anonymous callers their address.

    The address is the LAST ``X-Forwarded-For`` entry: the one Google's front end appends
    on Cloud Run / Cloud Functions 2nd gen. Earlier entries are whatever the client sent,
    so keying on them would let every request claim a fresh budget. Without the header
    (not behind Google's front end), the socket's peer address is used.
    """
    if call.uid is not None:
        return call.uid
    forwarded = call.raw_request.headers.get("X-Forwarded-For", "")
    appended_by_proxy = forwarded.rsplit(",", 1)[-1].strip()
    return "ip:" + (appended_by_proxy or call.raw_request.remote_addr or "unknown")


def _to_json(result: object) -> Any:
    # Serialised here, inside the one error mapping, rather than failing later in the
    # SDK's jsonify where the error would escape our log line.
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    return to_jsonable_python(result)


# --- the request's shape, checked before the SDK parses it -----------------------------


def _checking_the_body(sdk_entry: CallableFunction, cors: Any) -> CallableFunction:
    # The SDK reads the body with Flask's request.json and json.loads, outside any
    # handler of ours: a body that is not JSON, not UTF-8, nested past the recursion
    # limit, or a bare string or number comes back as INTERNAL with no line of ours.
    # So every request the SDK would refuse or choke on is answered here instead.
    origins = cors.cors_origins if cors is not None and cors.cors_origins is not None else "*"

    @cross_origin(methods="POST", origins=origins)  # as the SDK answers, so browsers see it
    def refuse(issue: FieldIssue) -> flask.Response:
        observe.annotate(outcome="INVALID_ARGUMENT", reason=issue["issue"])
        error = to_https_error(InvalidArgument("Malformed request.", [issue]))
        wire = {
            "status": error_name(error.code),
            "message": error.message,
            "details": error.details,
        }
        return flask.make_response(flask.jsonify(error=wire), 400)  # INVALID_ARGUMENT's status

    @functools.wraps(sdk_entry)
    def entry(request: flask.Request) -> flask.Response:
        issue = None if request.method == "OPTIONS" else malformed_call_body(request)
        if issue is not None:
            return refuse(issue)
        return sdk_entry(request)

    return entry


def malformed_call_body(request: flask.Request) -> FieldIssue | None:
    """What is wrong with a callable request's method, type or body; ``None`` if nothing.

    A callable takes a POST of ``application/json``: one UTF-8 JSON object, at most
    :data:`MAX_BODY_BYTES`, whose only key is ``data``, nested at most
    :data:`MAX_BODY_DEPTH` deep, without NaN or Infinity, integers within 64 bits and no
    unpaired surrogate in any string (Firestore could store none of those).
    """
    if request.method != "POST":
        return _issue("method", "A callable takes a POST.")
    if request.mimetype != "application/json":
        return _issue("content_type", "Send the body as application/json.")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _too_large()
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY_BYTES:
        return _too_large()
    try:
        body = _JSON.decode(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return _issue("body_encoding", "The request body is not UTF-8.")
    except RecursionError:
        return _too_deep()
    except ValueError:
        return _issue("body_json", "The request body is not JSON.")
    if not isinstance(body, dict) or set(body) != {"data"}:
        return _issue("body_shape", 'The request body must be a JSON object {"data": ...}.')
    return _unstorable(body)


def _unstorable(body: dict[str, Any]) -> FieldIssue | None:
    # Depth first with an explicit stack: no recursion, whatever the caller nests.
    pending: list[tuple[Any, int]] = [(body, 1)]
    while pending:
        value, depth = pending.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            for leaf in (key, item):
                if isinstance(leaf, str) and not _is_encodable(leaf):
                    return _issue("body_encoding", "A string in the body is not valid Unicode.")
                if isinstance(leaf, int) and leaf not in _INT64:
                    return _issue("body_number", "An integer in the body is beyond 64 bits.")
            if isinstance(item, dict | list):
                if depth >= MAX_BODY_DEPTH:
                    return _too_deep()
                pending.append((item, depth + 1))
    return None


def _is_encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate, which JSON's \ud800 can spell
        return False
    return True


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: valid JSON, but no JSON value can carry it back
        raise ValueError(f"{text} is out of range")
    return value


_JSON = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
"""Strict JSON: NaN and Infinity (spelled out, or as a number too large for a double),
which Python's json reads by default, are refused."""


def _too_large() -> FieldIssue:
    return _issue("body_too_large", f"The request body is over {MAX_BODY_BYTES} bytes.")


def _too_deep() -> FieldIssue:
    return _issue("body_too_deep", f"The request body nests over {MAX_BODY_DEPTH} levels.")


def _issue(kind: str, message: str) -> FieldIssue:
    return {"field": ROOT_FIELD, "issue": kind, "message": message}
