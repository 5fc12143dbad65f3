"""Every Stripe event type the marketplace applies, and the one path they all take.

The webhook and the reconciliation both feed events through :func:`intake`, so an event
the webhook missed and reconciliation found is applied exactly as the webhook would have.

PaymentIntent and charge events concern more than one kind of payment (a featured
listing, a holding deposit): each goes to the module of its payment's purpose, found from
our own link ``_stripePayments/{paymentIntentId}``, never from the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from google.cloud import firestore

from firekit import webhooks
from firekit.webhooks import Outcome, WebhookEvent
from marketplace.payments import deposits, featured, plans
from marketplace.payments.stripe_api import stripe_id

PROVIDER = "stripe"
BY_PURPOSE = (featured, deposits)
"""Modules whose events are routed by the purpose of the payment they concern."""
OTHER_PURPOSE = featured.OTHER_PURPOSE


def handlers() -> dict[str, webhooks.Handler]:
    """The handlers of every module, by event type (a type claimed twice is a bug, unless
    routed by purpose)."""
    routes: dict[str, dict[str, webhooks.Handler]] = {}
    for module in BY_PURPOSE:
        for kind, handler in module.HANDLERS.items():
            routes.setdefault(kind, {})[module.PURPOSE] = handler
    clash = set(plans.HANDLERS) & set(routes)
    if clash:
        raise RuntimeError(f"event types handled twice: {sorted(clash)}")
    return {**plans.HANDLERS, **{kind: ByPurpose(r) for kind, r in routes.items()}}


@dataclass(frozen=True)
class ByPurpose:
    """A handler that passes each event to the one for its payment's purpose."""

    routes: Mapping[str, webhooks.Handler]

    def __call__(
        self, db: firestore.Client, transaction: firestore.Transaction, event: WebhookEvent
    ) -> str:
        about = "id" if event.data.get("object") == "payment_intent" else "payment_intent"
        intent_id = stripe_id(event.data.get(about))
        if intent_id is None:
            return Outcome.UNKNOWN_SUBJECT
        links = db.collection(featured.PAYMENT_LINKS)
        link = links.document(intent_id).get(transaction=transaction).to_dict() or {}
        # No link: a PaymentIntent may still say what it is for (a plan's invoice says
        # nothing: another purpose); the handler then finds nothing of ours.
        purpose = link.get("purpose") or (
            (event.data.get("metadata") or {}).get("purpose") if about == "id" else None
        )
        if purpose is None and about == "payment_intent":
            return Outcome.UNKNOWN_SUBJECT
        handler = self.routes.get(str(purpose))
        return handler(db, transaction, event) if handler else OTHER_PURPOSE


def intake() -> webhooks.Intake:
    """Stripe's intake: verified events applied once each."""
    return webhooks.Intake(PROVIDER, handlers(), followups=plans.FOLLOWUPS)
