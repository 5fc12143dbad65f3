"""The Stripe client: the official SDK, keyed by a SecretParam, pointed at localstripe
under the emulators (``STRIPE_API_BASE``)."""

from __future__ import annotations

import functools

import stripe

from firekit.settings import require_secret
from marketplace import config

MAX_NETWORK_RETRIES = 2
"""The SDK retries connection errors and 409/429/5xx itself, with the same idempotency
key, so a retry never creates a second object."""


@functools.cache
def _client(key: str, base: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        key, base_addresses={"api": base}, max_network_retries=MAX_NETWORK_RETRIES
    )


def client() -> stripe.StripeClient:
    """A client for the configured key and API base (read at call time, in a handler)."""
    return _client(require_secret(config.STRIPE_SECRET_KEY), config.STRIPE_API_BASE.value)


def webhook_secret() -> str:
    """The webhook endpoint's signing secret."""
    return require_secret(config.STRIPE_WEBHOOK_SECRET)
