"""Params declared once, secrets read in handlers and refused when placeholders."""

from __future__ import annotations

import pytest
from firebase_functions import params

from firekit import settings

TEST_SECRET = settings.define_secret("FIREKIT_TEST_SECRET", description="for tests")


def production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUNCTIONS_EMULATOR", raising=False)
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)


def test_declaring_twice_returns_the_same_param() -> None:
    first = settings.define_string("FIREKIT_TEST_URL", default="http://localhost")
    assert settings.define_string("FIREKIT_TEST_URL") is first
    assert settings.define_secret("FIREKIT_TEST_SECRET") is TEST_SECRET
    assert isinstance(TEST_SECRET, params.SecretParam)
    with pytest.raises(ValueError, match="already declared"):
        settings.define_int("FIREKIT_TEST_URL")


def test_values_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    size = settings.define_int("FIREKIT_TEST_SIZE", default=3)
    flag = settings.define_bool("FIREKIT_TEST_FLAG", default=False)
    assert (size.value, flag.value) == (3, False)
    monkeypatch.setenv("FIREKIT_TEST_SIZE", "7")
    monkeypatch.setenv("FIREKIT_TEST_FLAG", "true")
    assert (size.value, flag.value) == (7, True)


@pytest.mark.parametrize("value", ["", "  ", "changeme", "CHANGE-ME", "<your key here>", "todo"])
def test_placeholder_secret_is_refused_in_production(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    production(monkeypatch)
    monkeypatch.setenv("FIREKIT_TEST_SECRET", value)
    with pytest.raises(settings.MissingSecret) as caught:
        settings.require_secret(TEST_SECRET)
    assert "FIREKIT_TEST_SECRET" in str(caught.value)


def test_unlisted_secret_reads_empty_and_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch)
    monkeypatch.delenv("FIREKIT_TEST_SECRET", raising=False)
    with pytest.raises(settings.MissingSecret):
        settings.require_secret(TEST_SECRET)


def test_real_secret_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch)
    monkeypatch.setenv("FIREKIT_TEST_SECRET", "sk_live_real_value")
    assert settings.require_secret(TEST_SECRET) == "sk_live_real_value"


def test_emulators_accept_dummy_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNCTIONS_EMULATOR", "true")
    monkeypatch.setenv("FIREKIT_TEST_SECRET", "changeme")
    assert settings.require_secret(TEST_SECRET) == "changeme"
