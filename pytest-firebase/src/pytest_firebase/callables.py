"""Call ``https_fn.on_call`` functions in-process, through the SDK's real request path.

:func:`call` builds a real Flask/Werkzeug request exactly as a Firebase client SDK sends
it (``POST``, JSON ``{"data": ...}``, ``Authorization: Bearer <ID token>``) and invokes the
decorated function object, so the SDK's own request checks, token verification and
error wire format all run. Tokens are unsigned emulator tokens
(:mod:`pytest_firebase.tokens`): ``FIREBASE_AUTH_EMULATOR_HOST`` must be set, though the
Auth emulator itself need not be running.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import firebase_admin  # type: ignore[import-untyped, unused-ignore]
import flask
from firebase_admin import credentials  # type: ignore[import-untyped, unused-ignore]
from google.auth.credentials import AnonymousCredentials

from pytest_firebase.tokens import default_project, mint_id_token

_app_lock = threading.Lock()
_flask_app: flask.Flask | None = None


class AnonymousCredential(credentials.Base):  # type: ignore[misc, unused-ignore]
    """A ``firebase_admin`` credential that never asks Google for a token (no network).

    The harness stays independent of the code under test, so this does not reuse the
    backend's own twin of it.
    """

    def get_credential(self) -> AnonymousCredentials:
        """Return Google's anonymous credentials."""
        return AnonymousCredentials()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class CallResult:
    """What a client SDK would see: the HTTP status and the decoded body."""

    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True for a successful call (HTTP 200 with a ``result``)."""
        return self.status == 200 and "result" in self.body

    @property
    def data(self) -> Any:
        """The function's result; raises ``AssertionError`` if the call failed."""
        if not self.ok:
            raise AssertionError(f"call failed with {self.status}: {self.body}")
        return self.body["result"]

    @property
    def error(self) -> dict[str, Any]:
        """The ``error`` object of a failed call (empty on success)."""
        error: dict[str, Any] = self.body.get("error") or {}
        return error

    @property
    def error_status(self) -> str | None:
        """Canonical error name, e.g. ``INVALID_ARGUMENT``."""
        status = self.error.get("status")
        return str(status) if status is not None else None

    @property
    def error_message(self) -> str | None:
        """The error message the client sees."""
        message = self.error.get("message")
        return str(message) if message is not None else None

    @property
    def error_details(self) -> Any:
        """The error's ``details`` (None when absent)."""
        return self.error.get("details")


def call(
    function: Callable[..., Any],
    data: Any = None,
    *,
    uid: str | None = None,
    claims: Mapping[str, Any] | None = None,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    project: str | None = None,
) -> CallResult:
    """Invoke a callable as a client would; ``uid`` (+ ``claims``) signs the caller in.

    ``token`` sends a hand-made bearer token instead (e.g. a malformed one).
    """
    request_headers = dict(headers or {})
    if token is None and uid is not None:
        token = mint_id_token(uid, project=project, claims=claims)
    if token is not None:
        _require_auth_emulator_env()
        request_headers["Authorization"] = f"Bearer {token}"
    body = json.dumps({"data": data})
    return call_raw(function, body, headers=request_headers, project=project)


def call_raw(
    function: Callable[..., Any],
    body: str | bytes,
    *,
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
    content_type: str = "application/json",
    project: str | None = None,
) -> CallResult:
    """Invoke a callable with an arbitrary body (for protocol-level tests)."""
    ensure_default_app(project)
    app = _app()
    with app.test_request_context(
        "/", method=method, data=body, content_type=content_type, headers=dict(headers or {})
    ):
        response = app.make_response(function(flask.request))
    payload = response.get_json(silent=True)
    return CallResult(response.status_code, payload or {}, dict(response.headers))


def ensure_default_app(project: str | None = None) -> None:
    """Make sure a default ``firebase_admin`` app exists; the SDK verifies tokens with it.

    Reuses an existing app; otherwise creates one with :class:`AnonymousCredential`.
    """
    with _app_lock:
        try:
            firebase_admin.get_app()
        except ValueError:
            options = {"projectId": project or default_project()}
            firebase_admin.initialize_app(AnonymousCredential(), options)


def _app() -> flask.Flask:
    global _flask_app  # noqa: PLW0603 - one app per process, created on first use
    with _app_lock:
        if _flask_app is None:
            _flask_app = flask.Flask("pytest_firebase.callables")
        return _flask_app


def _require_auth_emulator_env() -> None:
    if not os.environ.get("FIREBASE_AUTH_EMULATOR_HOST"):
        raise RuntimeError(
            "Set FIREBASE_AUTH_EMULATOR_HOST: without it firebase_admin rejects unsigned "
            "emulator tokens (the Auth emulator itself need not be running)."
        )
