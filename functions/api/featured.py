"""Featured listings: the agent's callable that starts the payment (the webhook applies it;
see :mod:`marketplace.payments.featured`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from firekit import bootstrap
from firekit.callables import CallContext, callable_function
from firekit.errors import BUSY
from firekit.ratelimit import RateLimit
from marketplace import config
from marketplace.listings import NO_SUCH_LISTING, NOT_LISTING_OWNER
from marketplace.payments.requests import LISTING_NOT_ACTIVE, PAYMENTS_UNAVAILABLE, FeatureRequest
from marketplace.roles import Role

if TYPE_CHECKING:
    from marketplace.payments.featured import FeatureOffer

# The Stripe SDK (and stripe_errors, stripe_api, which import it) and marketplace.payments.featured
# (with the webhook intake it shares) are imported where a call is made: only the
# payment functions' instances need them, not every function's cold start.

# Twenty a minute: a repeat returns the same payment, so this only bounds Stripe calls.
_AGENT_LIMIT = RateLimit(20, per_seconds=60)


@callable_function(
    FeatureRequest,
    roles={Role.AGENT.value},
    rate_limit=_AGENT_LIMIT,
    # No CARD_DECLINED: creating a PaymentIntent charges nothing (the payment sheet
    # confirms it on the device), so Stripe declines no card in this call.
    refusals=(NO_SUCH_LISTING, NOT_LISTING_OWNER, LISTING_NOT_ACTIVE, PAYMENTS_UNAVAILABLE, BUSY),
    secrets=[config.STRIPE_SECRET_KEY],
)
def feature_listing(call: CallContext, data: FeatureRequest) -> FeatureOffer:
    """The listing's agent: pay to feature an active listing for 1-30 days (price set here).

    Returns the PaymentIntent's client secret, the customer id and the amount for the
    payment sheet; the listing is featured when Stripe's webhook says the payment succeeded.
    """
    import stripe  # lazy: see the imports

    from api.stripe_errors import our_error  # lazy: see the imports
    from marketplace.payments import featured, stripe_api  # lazy: see the imports

    email = call.claim("email")
    try:
        return featured.start(
            bootstrap.db(),
            stripe_api.client(),
            uid=call.uid,
            email=email if isinstance(email, str) else None,
            request=data,
        )
    except stripe.StripeError as exc:
        raise our_error(exc, call.function, failed="The payment could not be started.") from exc
