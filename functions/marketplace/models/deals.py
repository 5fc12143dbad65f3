"""``offers/{offerId}``: a buyer's offer on a listing, and its holding deposit.

Written only by functions (the offer callables, the Stripe webhook, the offer clock); the
buyer, the listing's agent and admins read it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from firekit.docmodel import Document
from marketplace.models.common import DocRef, Money, Uid, Value
from marketplace.models.viewings import IsoDate

OfferStatus = Literal[
    "open", "countered", "accepted", "rejected", "withdrawn", "declined", "lapsed", "replaced"
]
OPEN_STATUSES = ("open", "countered")
"""An offer someone still has to answer."""
OfferMove = Literal[
    "make",
    "accept",
    "reject",
    "counter",
    "withdraw",
    "accept_counter",
    "decline",
    "lapse",
    "replace",
    "lose",
]
"""``lose``: rejected because another offer on the listing was accepted."""
MAX_REASON = 500


class SaleConditions(Value):
    """What a buyer says of how they will pay."""

    mortgageAgreedInPrinciple: bool = False
    cashBuyer: bool = False
    chainFree: bool = False


class RentConditions(Value):
    """When and for how long a renter wants the home."""

    moveInDate: IsoDate
    termMonths: Annotated[int, Field(ge=1, le=36)]


DepositState = Literal[
    "awaiting_card", "failed", "held", "captured", "released", "expired", "refunded"
]
"""Where the holding deposit is, as Stripe last told us (a webhook event, or its answer to
our own call): the card not yet authorised (or declined: ``failed``, another card may
follow), the amount held on it, taken, let go, lapsed unused (``expired``: Stripe let the
hold go), or taken and given back. ``held`` means Stripe holds it, never more."""
DepositAsk = Literal["authorise", "capture", "cancel"]
"""What we last asked Stripe to do with the hold, written before the call: a crash between
the call and its record is completed by the next run under the same idempotency key."""


class Deposit(Value):
    """A rental's holding deposit: a manual-capture PaymentIntent on the renter's card."""

    amount: Money
    """One week's rent: the monthly rent offered x 12 / 52, rounded down (never from the
    client)."""
    paymentIntentId: str
    state: DepositState = "awaiting_card"
    asked: DepositAsk = "authorise"
    askedAt: dt.datetime
    captureBefore: dt.datetime | None = None
    """When Stripe stops holding it (the charge's ``capture_before``)."""
    captureBeforeAssumed: bool = False
    """True while the charge has not said (always, on the local Stripe stand-in): assumed
    from the authorisation time and Stripe's 7 days."""
    captureBeforeChecked: bool = False
    """The charge was asked for the hold's real end (once, soon after the hold)."""
    capturedAmount: Annotated[int, Field(ge=0)] | None = None
    flaggedAt: dt.datetime | None = None
    """When both parties were told the hold ends within a day."""
    stripeCreated: int = 0
    """The newest Stripe event applied (seconds)."""
    cancellationReason: Annotated[str, Field(max_length=60)] | None = None


class LastChange(Value):
    """The latest move, for the notification trigger and the apps."""

    move: OfferMove
    by: Literal["buyer", "agent", "system"]
    at: dt.datetime
    reason: Annotated[str, Field(max_length=MAX_REASON)] | None = None


class Offer(Document):
    """A buyer's offer on a listing."""

    path = "offers/{offerId}"

    listingId: DocRef
    buyerId: Uid
    agentId: Uid
    kind: Literal["sale", "rent"]
    amount: Money
    """For rent, the monthly rent offered; in the listing's currency."""
    conditions: SaleConditions | RentConditions
    message: Annotated[str, Field(max_length=1000)] | None = None
    status: OfferStatus
    counterAmount: Money | None = None
    """The agent's counter (status ``countered``), which the buyer may accept."""
    expiresAt: dt.datetime
    rejectionReason: Annotated[str, Field(max_length=MAX_REASON)] | None = None
    deposit: Deposit | None = None
    revision: Annotated[int, Field(ge=0)] = 0
    lastChange: LastChange | None = None
    createdAt: dt.datetime
    updatedAt: dt.datetime
    decidedAt: dt.datetime | None = None
