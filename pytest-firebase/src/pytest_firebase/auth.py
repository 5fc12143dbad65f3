"""The Auth emulator through the same REST endpoints the client SDKs use.

Sign-ups here run the project's blocking functions (``before_user_created``) in the
Functions emulator, and the ID tokens returned are real emulator tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from pytest_firebase.tokens import decode_unverified

API_KEY = "fake-api-key"  # the emulator accepts any key


@dataclass(frozen=True)
class SignedInUser:
    """What a client holds after signing in."""

    uid: str
    id_token: str
    refresh_token: str

    @property
    def claims(self) -> dict[str, Any]:
        """The (unverified) claims inside the ID token."""
        return decode_unverified(self.id_token)


class AuthError(Exception):
    """The Auth emulator refused a request; ``message`` is its error message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class AuthEmulator:
    """Client-side calls to the Auth emulator, plus its admin endpoints."""

    def __init__(self, host: str, project: str) -> None:
        self.host = host
        self.project = project
        self._session = requests.Session()

    def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._session.post(url, json=body, timeout=30)
        payload: dict[str, Any] = response.json() if response.content else {}
        if response.status_code >= 400:
            raise AuthError(response.status_code, payload.get("error", {}).get("message", ""))
        return payload

    def _identity(self, method: str, body: dict[str, Any]) -> SignedInUser:
        url = f"http://{self.host}/identitytoolkit.googleapis.com/v1/accounts:{method}"
        payload = self._post(f"{url}?key={API_KEY}", {**body, "returnSecureToken": True})
        return SignedInUser(payload["localId"], payload["idToken"], payload["refreshToken"])

    def sign_up(self, email: str, password: str) -> SignedInUser:
        """Create an email/password account, as ``createUserWithEmailAndPassword`` does."""
        return self._identity("signUp", {"email": email, "password": password})

    def sign_in(self, email: str, password: str) -> SignedInUser:
        """Sign in with email and password."""
        return self._identity("signInWithPassword", {"email": email, "password": password})

    def refresh(self, user: SignedInUser) -> SignedInUser:
        """Exchange the refresh token for a fresh ID token (picks up new custom claims)."""
        url = f"http://{self.host}/securetoken.googleapis.com/v1/token?key={API_KEY}"
        response = self._session.post(
            url,
            data={"grant_type": "refresh_token", "refresh_token": user.refresh_token},
            timeout=30,
        )
        payload = response.json()
        if response.status_code >= 400:
            raise AuthError(response.status_code, payload.get("error", {}).get("message", ""))
        return SignedInUser(payload["user_id"], payload["id_token"], payload["refresh_token"])

    def reset(self) -> None:
        """Delete every account in the project."""
        url = f"http://{self.host}/emulator/v1/projects/{self.project}/accounts"
        self._session.delete(url, timeout=30).raise_for_status()
