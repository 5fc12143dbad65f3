"""The marketplace's test suite runs on the pytest_firebase plugin and our dev stack."""

from __future__ import annotations

import pytest

import devstack
from pytest_firebase.stack import StackConfig

pytest_plugins = ["pytest_firebase.plugin"]


@pytest.fixture(scope="session")
def firebase_stack_config() -> StackConfig:
    """The same stack `make dev` runs: the emulator suite plus localstripe."""
    return devstack.stack_config()
