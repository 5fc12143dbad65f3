"""The Stripe client: the official SDK, keyed by a SecretParam, pointed at localstripe
under the emulators.

The API base is the ``STRIPE_API_BASE`` param (Stripe's own by default), except under the
emulators when :data:`EMULATED_BASE_ENV` is set: the dev stack sets that in the emulators'
environment. It cannot set the param itself: firebase-tools resolves declared params only
from ``functions/.env*`` files (writing the default into ``.env.local``), and those
values override the inherited environment, while each stack's localstripe port depends
on its port offset."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from firekit.bootstrap import is_emulated
from firekit.settings import require_secret
from marketplace import config

if TYPE_CHECKING:
    import stripe

# The Stripe SDK (about 30 ms of a cold start) is imported by the first client made: the
# payment modules are imported by every function's cold start for their request models
# and webhook handlers, but only the payment functions' instances call Stripe.

EMULATED_BASE_ENV = "EMULATED_STRIPE_API_BASE"
"""localstripe's address, in the environment of the dev stack's emulators."""
MAX_NETWORK_RETRIES = 2
"""The SDK retries connection errors and 409/429/5xx itself, with the same idempotency
key, so a retry never creates a second object."""
REQUEST_TIMEOUT_S = 10.0
"""One request's limit (the SDK's default is 80 s): it bounds a call with its retries to
about 35 s, which the payment leases are sized to outlast."""


@functools.cache
def _client(key: str, base: str) -> stripe.StripeClient:
    import stripe  # lazy: see the imports

    return stripe.StripeClient(
        key,
        base_addresses={"api": base},
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=REQUEST_TIMEOUT_S),
    )


def client() -> stripe.StripeClient:
    """A client for the configured key and API base (read at call time, in a handler)."""
    return _client(require_secret(config.STRIPE_SECRET_KEY), api_base())


def api_base() -> str:
    """Stripe's API base: the stack's localstripe under the emulators, else the param."""
    emulated = os.environ.get(EMULATED_BASE_ENV) if is_emulated() else None
    return emulated or config.STRIPE_API_BASE.value


def webhook_secret() -> str:
    """The webhook endpoint's signing secret."""
    return require_secret(config.STRIPE_WEBHOOK_SECRET)


def stripe_id(value: object) -> str | None:
    """An expandable field's id (Stripe sends an id, or the object when expanded)."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None
