"""Featured listings: the agent's callable that starts the payment (the webhook applies it;
see :mod:`marketplace.payments.featured`)."""

from __future__ import annotations

import stripe

from api.stripe_errors import our_error
from firekit import bootstrap
from firekit.callables import CallContext, callable_function
from firekit.ratelimit import RateLimit
from marketplace import config
from marketplace.payments import featured, stripe_api
from marketplace.roles import Role

# Twenty a minute: a repeat returns the same payment, so this only bounds Stripe calls.
_AGENT_LIMIT = RateLimit(20, per_seconds=60)


@callable_function(
    featured.FeatureRequest,
    roles={Role.AGENT.value},
    rate_limit=_AGENT_LIMIT,
    secrets=[config.STRIPE_SECRET_KEY],
)
def feature_listing(call: CallContext, data: featured.FeatureRequest) -> featured.FeatureOffer:
    """The listing's agent: pay to feature an active listing for 1-30 days (price set here).

    Returns the PaymentIntent's client secret, the customer id and the amount for the
    payment sheet; the listing is featured when Stripe's webhook says the payment succeeded.
    """
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
