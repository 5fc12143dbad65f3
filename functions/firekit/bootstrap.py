"""One emulator-aware ``firebase_admin`` app per process, and its Firestore client.

Call :func:`ensure_initialized` at the top of ``main.py``. It must run before the first
request because the SDK itself reaches for the *default* app before our code runs:
``https_fn.on_call`` verifies ID tokens with ``firebase_admin.auth`` on the default app,
and ``firestore_fn`` calls ``initialize_app()`` with Application Default Credentials when
no default app exists, which fails offline under the emulators. The decorators in
:mod:`firekit.callables` and :mod:`firekit.events` also call it at decoration time, so a
forgotten call cannot turn every authenticated call into ``UNAUTHENTICATED``.

Initialisation is cheap and makes no network call: credentials are resolved lazily.
"""

from __future__ import annotations

import json
import os
import threading

import firebase_admin  # type: ignore[import-untyped, unused-ignore]
from firebase_admin import credentials  # type: ignore[import-untyped, unused-ignore]
from firebase_admin import firestore as admin_firestore  # type: ignore[import-untyped, unused-ignore]
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import firestore

_PROJECT_ENV_VARS = ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT")
# Guards check-then-initialise: two threads serving the first requests of an instance
# would otherwise both see "no app" and the second initialize_app() would raise.
_init_lock = threading.Lock()


class AnonymousCredential(credentials.Base):  # type: ignore[misc, unused-ignore]
    """A ``firebase_admin`` credential that never asks Google for a token.

    The emulators ignore credentials, and Application Default Credentials need a network
    (or a key file) that CI machines do not have.
    """

    def get_credential(self) -> Credentials:
        """Return Google's anonymous credentials."""
        return AnonymousCredentials()  # type: ignore[no-untyped-call]


def is_emulated() -> bool:
    """True when running under the Firebase emulators (or tests that point at them)."""
    return os.environ.get("FUNCTIONS_EMULATOR") == "true" or bool(
        os.environ.get("FIRESTORE_EMULATOR_HOST")
    )


def project_id() -> str | None:
    """The project id from the environment, as Cloud Functions and the emulators set it."""
    for name in _PROJECT_ENV_VARS:
        value = os.environ.get(name)
        if value:
            return value
    config = os.environ.get("FIREBASE_CONFIG", "")
    if config.startswith("{"):
        value = json.loads(config).get("projectId")
        return str(value) if value else None
    return None


EMULATED_FUNCTIONS_ORIGIN = "EMULATED_FUNCTIONS_ORIGIN"
"""The Functions emulator's origin (``http://127.0.0.1:5001``), in the environment of the
stack's emulators: a function sees only its own path, not where the emulator serves it."""
DEFAULT_REGION = "us-central1"


def function_url(name: str, region: str = DEFAULT_REGION) -> str:
    """Where the HTTPS function ``name`` answers, for links a function hands out: under the
    emulators, the emulator's ``{origin}/{project}/{region}/{name}``; deployed, the
    project's ``https://{region}-{project}.cloudfunctions.net/{name}`` (2nd gen serves it
    too). A request's own URL cannot say it: each function is its own service."""
    project = project_id() or "unknown-project"
    origin = os.environ.get(EMULATED_FUNCTIONS_ORIGIN) if is_emulated() else None
    if origin:
        return f"{origin.rstrip('/')}/{project}/{region}/{name}"
    return f"https://{region}-{project}.cloudfunctions.net/{name}"


def firebase_app() -> firebase_admin.App:
    """Return the default ``firebase_admin`` app, initialising it exactly once.

    Under the emulators it uses :class:`AnonymousCredential` and the project id from the
    environment; in production, Application Default Credentials. An app someone else
    already initialised is reused rather than replaced.
    """
    with _init_lock:
        try:
            return firebase_admin.get_app()
        except ValueError:  # firebase_admin's way of saying "no default app yet"
            pass
        if is_emulated():
            options = {"projectId": project_id()} if project_id() else None
            return firebase_admin.initialize_app(AnonymousCredential(), options)
        return firebase_admin.initialize_app()


def ensure_initialized() -> None:
    """Initialise the default app now; call it at import of ``main.py`` (no network)."""
    firebase_app()


def db() -> firestore.Client:
    """The Firestore client of the default app (cached by ``firebase_admin``)."""
    client: firestore.Client = admin_firestore.client(firebase_app())
    return client
