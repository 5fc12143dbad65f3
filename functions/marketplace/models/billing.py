"""``customers/{uid}/...``: the mirror of a user's Stripe state, written by functions only."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from firekit.docmodel import Document
from marketplace.models.common import DocRef, Money


class Customer(Document):
    """``customers/{uid}``: the user's one Stripe customer."""

    path = "customers/{uid}"

    stripeCustomerId: str
    email: str | None = None
    createdAt: dt.datetime


class Subscription(Document):
    """``customers/{uid}/subscriptions/{subscriptionId}``."""

    path = "customers/{uid}/subscriptions/{subscriptionId}"

    status: Literal[
        "incomplete",
        "incomplete_expired",
        "trialing",
        "active",
        "past_due",
        "canceled",
        "unpaid",
        "paused",
    ]
    plan: str
    currentPeriodEnd: dt.datetime | None = None
    cancelAtPeriodEnd: bool = False
    stripeCreated: int
    """The ``created`` of the newest Stripe event applied: older events never overwrite."""
    updatedAt: dt.datetime


class Payment(Document):
    """``customers/{uid}/payments/{paymentIntentId}``."""

    path = "customers/{uid}/payments/{paymentId}"

    amount: Money
    status: Literal[
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "processing",
        "succeeded",
        "canceled",
        "refunded",
        "disputed",
    ]
    purpose: Literal["plan", "featured_listing", "deposit"]
    listingId: DocRef | None = None
    days: Annotated[int, Field(ge=1)] | None = None
    """Featured listings: the days of featured time this payment buys."""
    stripeCreated: int
    updatedAt: dt.datetime
