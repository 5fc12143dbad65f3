"""Stripe's webhook (see :mod:`firekit.webhooks` for what it guarantees) and the
reconciliation that catches what it missed."""

from __future__ import annotations

from firebase_functions import https_fn, scheduler_fn
from flask import Request, Response

from firekit import bootstrap, observe
from marketplace import config

# The handlers import what they run (the intake with every payments handler, the Stripe
# SDK, the reconciliation) themselves: only this family's instances need it, and every
# other function's cold start imports this module for its decorators.


@https_fn.on_request(secrets=[config.STRIPE_WEBHOOK_SECRET], timeout_sec=60)
def stripe_webhook(request: Request) -> Response:
    """Verify, apply once, answer: 200 done or not ours, 409 being applied by another
    delivery, other 4xx refused, 500 retry."""
    from firekit import webhooks  # lazy: see the imports
    from marketplace.payments import events, stripe_api  # lazy: see the imports

    verify = webhooks.stripe_verifier(stripe_api.webhook_secret)
    return webhooks.handle_request(request, events.intake(), verify)


@scheduler_fn.on_schedule(
    schedule="every 15 minutes", timeout_sec=540, secrets=[config.STRIPE_SECRET_KEY]
)
def reconcile_stripe_events(event: scheduler_fn.ScheduledEvent) -> None:
    """Every 15 minutes: apply any recent Stripe event the webhook missed (idempotent), and
    cancel any deposit hold no offer records (an offer call that died mid-way)."""
    from marketplace.payments import deposits, reconcile, stripe_api  # lazy: see the imports

    db, api = bootstrap.db(), stripe_api.client()
    report = reconcile.reconcile(db, api)
    observe.annotate(reconciled=report.outcomes)
    observe.annotate(orphansCancelled=deposits.sweep_orphans(db, api))
