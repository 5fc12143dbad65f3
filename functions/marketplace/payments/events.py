"""Every Stripe event type the marketplace applies, and the one path they all take.

The webhook and the reconciliation both feed events through :func:`intake`, so an event
the webhook missed and reconciliation found is applied exactly as the webhook would have.
"""

from __future__ import annotations

from firekit import webhooks
from marketplace.payments import featured, plans

PROVIDER = "stripe"


def handlers() -> dict[str, webhooks.Handler]:
    """The handlers of every module, by event type (a type claimed twice is a bug)."""
    merged: dict[str, webhooks.Handler] = {}
    for module in (plans, featured):
        clash = set(merged) & set(module.HANDLERS)
        if clash:
            raise RuntimeError(f"event types handled twice: {sorted(clash)}")
        merged |= module.HANDLERS
    return merged


def intake() -> webhooks.Intake:
    """Stripe's intake: verified events applied once each."""
    return webhooks.Intake(PROVIDER, handlers(), followups=plans.FOLLOWUPS)
