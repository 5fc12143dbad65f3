"""The marketplace's test suite runs on the pytest-firebase plugin and our dev stack.

The plugin registers itself (the installed pytest-firebase's ``pytest11`` entry point), so
there is no ``pytest_plugins`` line here: naming it again would register it twice.
"""

from __future__ import annotations

import os
import urllib.request
from typing import Any

import pytest
import stripe
from google.cloud import firestore

import devstack
from pytest_firebase.stack import StackConfig

SLOW_MARKERS = ("stack", "package")
"""Tests that start a stack of their own (30 to 90 s a file)."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The slow files first, so that under `-n 2` none of them is the last file a worker
    # takes while the other has nothing left. The plugin's hook runs after this one and
    # moves the trigger tests before them (in their order).
    slow = [i for i in items if any(i.get_closest_marker(m) for m in SLOW_MARKERS)]
    if slow:
        items[:] = slow + [i for i in items if i not in slow]


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


@pytest.fixture
def stripe_client(firebase_stack: Any, firestore_db: firestore.Client) -> stripe.StripeClient:
    """The functions' own Stripe client, on an empty localstripe (webhooks stay registered)."""
    from marketplace.payments import stripe_api

    base = stripe_api.api_base()
    request = urllib.request.Request(f"{base}/_config/data", method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return stripe_api.client()
