"""Unsigned Firebase ID tokens for the emulators.

The emulators accept ID tokens with ``alg: none`` and an empty signature:

* ``firebase_admin.auth.verify_id_token`` does when ``FIREBASE_AUTH_EMULATOR_HOST`` is set
  (it then checks ``aud``, ``iss`` and ``sub`` only and never contacts the emulator), so
  callables invoked in-process see the uid and claims;
* the Firestore emulator does as ``Authorization: Bearer <token>``, so security rules see
  ``request.auth.uid`` and ``request.auth.token.<claim>``.

No Auth emulator account is needed; use the Auth emulator's own sign-up when a test needs a
real user record (blocking functions, ``auth.get_user``).
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Mapping
from typing import Any

from firebase_admin import _auth_utils  # type: ignore[import-untyped, unused-ignore]

# Claims Firebase reserves (the Admin SDK's own list, which set_custom_user_claims checks),
# plus ``user_id``: minted tokens carry it as the uid's twin, so a custom claim may not
# replace it.
RESERVED_CLAIMS: frozenset[str] = frozenset(_auth_utils.RESERVED_CLAIMS) | {"user_id"}


def default_project() -> str:
    """The project the emulators run for, from the usual environment variables."""
    for name in ("GCLOUD_PROJECT", "GOOGLE_CLOUD_PROJECT"):
        if os.environ.get(name):
            return os.environ[name]
    raise RuntimeError("Set GCLOUD_PROJECT (or pass project=...) to mint emulator tokens.")


def id_token_claims(
    uid: str,
    *,
    project: str | None = None,
    claims: Mapping[str, Any] | None = None,
    email: str | None = None,
    sign_in_provider: str = "password",
    lifetime_seconds: int = 3600,
    now: int | None = None,
) -> dict[str, Any]:
    """The payload of an ID token for ``uid``, shaped as Firebase Auth issues it."""
    reserved = RESERVED_CLAIMS.intersection(claims or {})
    if reserved:
        raise ValueError(f"Reserved claim names cannot be custom claims: {sorted(reserved)}")
    project_id = project or default_project()
    issued = int(time.time()) if now is None else now
    identities: dict[str, list[str]] = {"email": [email]} if email else {}
    payload: dict[str, Any] = {
        "iss": f"https://securetoken.google.com/{project_id}",
        "aud": project_id,
        "sub": uid,
        "user_id": uid,
        "iat": issued,
        "exp": issued + lifetime_seconds,
        "auth_time": issued,
        "firebase": {"sign_in_provider": sign_in_provider, "identities": identities},
    }
    if email:
        payload.update(email=email, email_verified=True)
    return {**payload, **(claims or {})}


def encode_unsigned(payload: Mapping[str, Any]) -> str:
    """Encode any payload as an unsigned JWT (``alg: none``, empty signature)."""
    header = {"alg": "none", "typ": "JWT"}
    return f"{_b64(header)}.{_b64(payload)}."


def mint_id_token(uid: str, **kwargs: Any) -> str:
    """An unsigned emulator ID token for ``uid``; kwargs as for :func:`id_token_claims`."""
    return encode_unsigned(id_token_claims(uid, **kwargs))


def decode_unverified(token: str) -> dict[str, Any]:
    """The payload of a JWT, without any verification (for assertions in tests)."""
    segment = token.split(".")[1]
    padded = segment + "=" * (-len(segment) % 4)
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return payload


def _b64(part: Mapping[str, Any]) -> str:
    raw = json.dumps(dict(part), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
