"""Test data for featured listings: an agent with an active listing, and Stripe events in
the shapes Stripe documents (localstripe sends no ``charge.refunded`` and has no disputes).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pytest_firebase.webhooks import stripe_event
from tests.listings.factories import listing


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def agent_with_listing(db: Any, status: str = "active") -> tuple[str, str]:
    """A new agent (profile) owning one listing in ``status``: ``(uid, listingId)``."""
    uid, listing_id = new_id("agent"), new_id("home")
    db.document(f"users/{uid}").set({"displayName": "Agent", "role": "agent", "verified": True})
    db.document(f"listings/{listing_id}").set(listing(uid, status=status))
    return uid, listing_id


def featured_until(db: Any, listing_id: str) -> dt.datetime | None:
    value: dt.datetime | None = (db.document(f"listings/{listing_id}").get().to_dict() or {}).get(
        "featuredUntil"
    )
    return value


def event(event_type: str, obj: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    """A Stripe event envelope with a fresh id."""
    return stripe_event(event_type, obj, event_id=f"evt_{uuid.uuid4().hex[:14]}", created=created)


def intent_succeeded(intent: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    """``payment_intent.succeeded`` for a PaymentIntent as Stripe returned it."""
    paid = {
        **intent,
        "status": "succeeded",
        "amount_received": intent["amount"],
        "latest_charge": charge_id(intent["id"]),
    }
    return event("payment_intent.succeeded", paid, created)


def intent_failed(intent: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    """``payment_intent.payment_failed``: the card was declined; the client may retry."""
    failed = {
        **intent,
        "status": "requires_payment_method",
        "last_payment_error": {"type": "card_error", "code": "card_declined"},
    }
    return event("payment_intent.payment_failed", failed, created)


def charge_id(intent_id: str) -> str:
    return "ch_" + intent_id.removeprefix("pi_")


def charge(intent: dict[str, Any], refunded: int = 0) -> dict[str, Any]:
    """The Charge of a paid PaymentIntent (the fields of Stripe's Charge object we rely on
    and their neighbours), ``refunded`` minor units of it refunded."""
    return {
        "id": charge_id(intent["id"]),
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"],
        "amount_refunded": refunded,
        "refunded": refunded >= intent["amount"],
        "captured": True,
        "paid": True,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "payment_intent": intent["id"],
        "metadata": {},
        "status": "succeeded",
        "disputed": False,
        "livemode": False,
        "created": intent["created"],
    }


def charge_refunded(
    intent: dict[str, Any], amount: int | None = None, created: int | None = None
) -> dict[str, Any]:
    """``charge.refunded`` after ``amount`` (default: all) was refunded."""
    refunded = intent["amount"] if amount is None else amount
    return event("charge.refunded", charge(intent, refunded), created)


def dispute_closed(
    intent: dict[str, Any], status: str = "lost", created: int | None = None
) -> dict[str, Any]:
    """``charge.dispute.closed``: Stripe's Dispute object, ``won`` or ``lost``."""
    dispute = {
        "id": "dp_" + intent["id"].removeprefix("pi_"),
        "object": "dispute",
        "amount": intent["amount"],
        "currency": intent["currency"],
        "charge": charge_id(intent["id"]),
        "payment_intent": intent["id"],
        "status": status,
        "reason": "fraudulent",
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "created": intent["created"],
    }
    return event("charge.dispute.closed", dispute, created)
