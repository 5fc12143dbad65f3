"""The one emulator-aware admin app."""

from __future__ import annotations

import firebase_admin  # type: ignore[import-untyped, unused-ignore]
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from firekit import bootstrap


def test_is_emulated_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUNCTIONS_EMULATOR", raising=False)
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    assert not bootstrap.is_emulated()
    monkeypatch.setenv("FUNCTIONS_EMULATOR", "true")
    assert bootstrap.is_emulated()
    monkeypatch.delenv("FUNCTIONS_EMULATOR")
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")
    assert bootstrap.is_emulated()


def test_one_default_app_with_anonymous_credentials(firebase_project: str) -> None:
    bootstrap.ensure_initialized()
    app = bootstrap.firebase_app()
    assert app is firebase_admin.get_app() is bootstrap.firebase_app()
    assert app.project_id == firebase_project
    assert isinstance(app.credential.get_credential(), AnonymousCredentials)


def test_db_is_the_apps_client_and_reaches_the_emulator(
    firestore_db: firestore.Client, firebase_project: str
) -> None:
    client = bootstrap.db()
    assert client is bootstrap.db()
    assert client.project == firebase_project
    client.collection("probe").document("p").set({"ok": True})
    assert (firestore_db.document("probe/p").get().to_dict() or {}) == {"ok": True}
