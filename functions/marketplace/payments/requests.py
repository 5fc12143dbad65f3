"""What the payment callables take, and the refusals peculiar to them: what
``feature_listing`` and ``start_agent_plan`` are declared with. Apart from
:mod:`~marketplace.payments.featured` and :mod:`~marketplace.payments.plans` (which raise
these refusals) so that declaring the callables (every instance's cold start) loads
neither the payments nor the webhook intake they share (see ``bench/cold_start.py``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from firekit.errors import FailedPrecondition, Refusal, Unavailable
from firekit.ids import PlainId

MIN_DAYS = 1
MAX_DAYS = 30
"""How long a listing may be featured for, in days, per payment."""

LISTING_NOT_ACTIVE = Refusal(
    FailedPrecondition, "listing_not_active", "Only an active listing can be featured."
)
CARD_DECLINED = Refusal(
    FailedPrecondition, "card_declined", "The card was declined; try another card."
)
"""Stripe refused the card (at attach or at the charge). Our words, never Stripe's."""
PAYMENTS_UNAVAILABLE = Refusal(
    Unavailable,
    "payments_unavailable",
    "Payments are unavailable right now; try again in a moment.",
)
"""Stripe could not be reached or is overloaded (after the SDK's own retries)."""


class FeatureRequest(BaseModel):
    """An agent's request to feature a listing: which one, and for how many days."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    listingId: PlainId
    days: Annotated[int, Field(strict=True, ge=MIN_DAYS, le=MAX_DAYS)]


class StartPlanRequest(BaseModel):
    """An agent's request to start the plan, with the card the payment sheet collected."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    paymentMethodId: Annotated[str, Field(pattern=r"^pm_[A-Za-z0-9_]{4,100}$")]
