"""The marketplace's test suite runs on the pytest-firebase plugin and our dev stack.

The plugin registers itself (the installed pytest-firebase's ``pytest11`` entry point), so
there is no ``pytest_plugins`` line here: naming it again would register it twice.
"""

from __future__ import annotations

import os

import pytest

import devstack
from pytest_firebase.stack import StackConfig

IN_PROCESS_OPTION = "--in-process-stack"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        IN_PROCESS_OPTION,
        action="store_true",
        help="run on the stack without the Functions emulator (make test's second phase: "
        "every test not marked e2e)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption(IN_PROCESS_OPTION):
        needing = [i.nodeid for i in items if i.get_closest_marker("e2e")]
        if needing:
            raise pytest.UsageError(
                f"{IN_PROCESS_OPTION} runs no Functions emulator, but these tests need its "
                f"triggers: {needing[:5]}... (select them with -m 'not e2e')"
            )


@pytest.fixture(scope="session")
def firebase_stack_config(pytestconfig: pytest.Config) -> StackConfig:
    """The same stack `make dev` runs: the emulator suite, localstripe and the storage
    stand-in; with --in-process-stack, the same without the Functions emulator."""
    return devstack.stack_config(in_process=pytestconfig.getoption(IN_PROCESS_OPTION))


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
