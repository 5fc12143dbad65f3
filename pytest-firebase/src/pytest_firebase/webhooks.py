"""Stripe-signed webhook payloads, signed exactly as Stripe signs them.

``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed by the
endpoint secret>``. Tests use this to send genuine, forged and expired deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SignedWebhook:
    """A raw body and the headers Stripe would send with it."""

    body: bytes
    headers: dict[str, str]


def stripe_signature(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value for ``body``."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def stripe_webhook(
    event: dict[str, Any] | bytes, secret: str, *, timestamp: int | None = None
) -> SignedWebhook:
    """Sign an event (a dict is serialised as Stripe does; bytes are sent as they are)."""
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    stamp = int(time.time()) if timestamp is None else timestamp
    return SignedWebhook(
        body=body,
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": stripe_signature(body, secret, stamp),
        },
    )


def stripe_event(
    event_type: str, obj: dict[str, Any], *, event_id: str, created: int | None = None
) -> dict[str, Any]:
    """A minimal Stripe event envelope around ``obj``."""
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()) if created is None else created,
        "type": event_type,
        "livemode": False,
        "pending_webhooks": 1,
        "data": {"object": obj},
    }
