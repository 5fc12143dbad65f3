"""Stripe's webhook (see :mod:`firekit.webhooks` for what it guarantees)."""

from __future__ import annotations

from firebase_functions import https_fn
from flask import Request, Response

from firekit import webhooks
from marketplace import config
from marketplace.payments import events, stripe_api


@https_fn.on_request(secrets=[config.STRIPE_WEBHOOK_SECRET], timeout_sec=60)
def stripe_webhook(request: Request) -> Response:
    """Verify, apply once, answer: 200 done or not ours, 4xx refused, 500 retry."""
    verify = webhooks.stripe_verifier(stripe_api.webhook_secret)
    return webhooks.handle_request(request, events.intake(), verify)
