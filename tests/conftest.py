"""The marketplace's test suite runs on the pytest-firebase plugin and our dev stack.

The plugin registers itself (the installed pytest-firebase's ``pytest11`` entry point), so
there is no ``pytest_plugins`` line here: naming it again would register it twice.
"""

from __future__ import annotations

import os

import pytest

import devstack
from pytest_firebase.stack import StackConfig


@pytest.fixture(scope="session")
def firebase_stack_config() -> StackConfig:
    """The same stack `make dev` runs: the emulator suite, localstripe and the storage
    stand-in."""
    return devstack.stack_config()


@pytest.fixture(scope="session", autouse=True)
def _stripe_and_storage_environment(firebase_stack_config: StackConfig) -> None:
    # In-process payments code reads the same params the functions read under the
    # emulators: localstripe's address and the secrets' local values.
    os.environ.update(devstack.stripe_environment(firebase_stack_config.port_offset))
    # And Cloud Storage code the stand-in, as the functions reach it.
    os.environ.update(devstack.storage_environment(firebase_stack_config.port_offset))


@pytest.fixture(scope="session", autouse=True)
def _firebase_admin_app() -> None:
    # The plugin pointed the SDKs at the emulators at configure time; the functions'
    # own bootstrap then builds the same default app they use when deployed.
    from firekit.bootstrap import ensure_initialized

    ensure_initialized()
