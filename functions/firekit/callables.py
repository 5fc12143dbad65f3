"""``callable_function``: a thin policy layer over ``https_fn.on_call``.

Order of checks, and why: auth and role first (cheap, and nothing about the payload is
revealed to strangers), then validation (so malformed calls write nothing, not even a
rate-limit counter), then the rate limit, then the handler. Every failure goes through
:func:`firekit.errors.to_https_error` here and nowhere else, and every call produces
exactly one ``logKind=call`` log line.

The SDK rejects a *present but invalid* ID token with ``UNAUTHENTICATED`` before our code
runs; such calls get the SDK's own log line, not ours.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import flask
from firebase_functions import https_fn
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from firekit import logs
from firekit.bootstrap import db, ensure_initialized, is_emulated
from firekit.errors import (
    ROOT_FIELD,
    FieldIssue,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
    error_name,
    invalid_argument,
    to_https_error,
)
from firekit.ratelimit import RateLimit, consume

M = TypeVar("M", bound=BaseModel)
CallableFunction = Callable[[flask.Request], flask.Response]
"""What the decorator returns: the SDK's own wrapped function (Flask request in, response out)."""


@dataclass(frozen=True)
class CallContext:
    """Who is calling, as verified by the SDK, plus the raw request."""

    uid: str | None
    claims: Mapping[str, Any]
    raw_request: flask.Request
    function: str
    app_check: Mapping[str, Any] | None = None

    def claim(self, name: str, default: Any = None) -> Any:
        """One claim of the caller's ID token (custom claims included)."""
        return self.claims.get(name, default)


@dataclass(frozen=True)
class _Policy(Generic[M]):
    function: str
    model: type[M]
    roles: frozenset[str]
    role_claim: str
    allow_anonymous: bool
    require_app_check: bool
    rate_limit: RateLimit | None = field(default=None)


def callable_function(
    model: type[M],
    *,
    roles: Collection[str] | None = None,
    allow_anonymous: bool = False,
    rate_limit: RateLimit | None = None,
    role_claim: str = "role",
    require_app_check: bool = False,
    name: str | None = None,
    **on_call_options: Any,
) -> Callable[[Callable[[CallContext, M], object]], CallableFunction]:
    """Declare a callable whose input is ``model`` and whose caller is checked first.

    ``roles``: the caller's ``role_claim`` claim (a string or a list) must name one of
    them. ``require_app_check``: refuse calls without a valid App Check token (skipped
    under the emulators). ``name`` (default: the handler's name) is the deployed name
    and must match the attribute exported from ``main.py``. Other keyword arguments go
    to ``https_fn.on_call`` unchanged (``secrets``, ``region``, ``memory``, ...).
    The handler returns a pydantic model, a dict, or any JSON-able value.
    """

    def decorate(handler: Callable[[CallContext, M], object]) -> CallableFunction:
        policy = _Policy(
            function=name or handler.__name__,
            model=model,
            roles=frozenset(roles or ()),
            role_claim=role_claim,
            allow_anonymous=allow_anonymous,
            require_app_check=require_app_check,
            rate_limit=rate_limit,
        )

        @functools.wraps(handler)
        def run(request: https_fn.CallableRequest[Any]) -> Any:
            return _invoke(policy, handler, request)

        # The SDK names the endpoint after __name__; firebase-tools deploys that name.
        run.__name__ = run.__qualname__ = policy.function
        ensure_initialized()
        return cast(CallableFunction, https_fn.on_call(**on_call_options)(run))

    return decorate


def _invoke(
    policy: _Policy[M],
    handler: Callable[[CallContext, M], object],
    request: https_fn.CallableRequest[Any],
) -> Any:
    started = time.perf_counter()
    uid = request.auth.uid if request.auth else None
    outcome = "ok"
    try:
        call = _authorize(policy, request)
        data = _validate(policy.model, request.data)
        if policy.rate_limit is not None:
            consume(db(), policy.function, _rate_key(call), policy.rate_limit)
        return _to_json(handler(call, data))
    except Exception as exc:  # every failure is mapped here, in one place
        error = to_https_error(exc, {"function": policy.function, "uid": uid})
        outcome = error_name(error.code)
        raise error from exc
    finally:
        latency_ms = (time.perf_counter() - started) * 1000
        logs.call_line(policy.function, uid, outcome, latency_ms)


def _authorize(policy: _Policy[M], request: https_fn.CallableRequest[Any]) -> CallContext:
    auth = request.auth
    # A role requirement implies a signed-in caller, whatever allow_anonymous says.
    if auth is None and (policy.roles or not policy.allow_anonymous):
        raise Unauthenticated()
    if policy.require_app_check and request.app is None and not is_emulated():
        raise Unauthenticated("App Check token missing or invalid.")
    claims: dict[str, Any] = dict(auth.token) if auth else {}
    if policy.roles and not _has_role(claims.get(policy.role_claim), policy.roles):
        raise PermissionDenied()
    return CallContext(
        uid=auth.uid if auth else None,
        claims=claims,
        raw_request=request.raw_request,
        function=policy.function,
        app_check=request.app.token if request.app else None,
    )


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


def _rate_key(call: CallContext) -> str:
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
