"""Offers: written only by functions (via callables)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from firekit.docmodel import Document
from marketplace.models.common import DocRef, Money, Uid, Value


class Deposit(Value):
    """A holding deposit paid through Stripe."""

    paymentIntentId: str
    status: Literal["requires_payment", "succeeded", "refunded", "failed"]
    amount: Money


class Offer(Document):
    """``offers/{offerId}``: a buyer's offer on a listing."""

    path = "offers/{offerId}"

    listingId: DocRef
    buyerId: Uid
    agentId: Uid
    amount: Money
    status: Literal["submitted", "accepted", "declined", "withdrawn", "expired"]
    message: Annotated[str, Field(max_length=1000)] | None = None
    deposit: Deposit | None = None
    createdAt: dt.datetime
    updatedAt: dt.datetime
