"""The agent plan: the agent's callable that starts it (the webhook keeps it in step;
see :mod:`marketplace.payments.plans`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from firekit import bootstrap, claims
from firekit.callables import CallContext, callable_function
from firekit.errors import BUSY
from firekit.ratelimit import RateLimit
from marketplace import config
from marketplace.payments.requests import CARD_DECLINED, PAYMENTS_UNAVAILABLE, StartPlanRequest
from marketplace.roles import Role

if TYPE_CHECKING:
    from marketplace.payments.plans import PlanStart

# The Stripe SDK (and stripe_errors, stripe_api, which import it) and marketplace.payments.plans
# (with the webhook intake it shares) are imported where a call is made: only the
# payment functions' instances need them, not every function's cold start.

# Ten a minute: a repeat returns the same subscription, so this only bounds Stripe calls.
_AGENT_LIMIT = RateLimit(10, per_seconds=60)


@callable_function(
    StartPlanRequest,
    roles={Role.AGENT.value},
    rate_limit=_AGENT_LIMIT,
    refusals=(
        claims.NO_SUCH_USER,
        claims.CLAIMS_FULL,
        CARD_DECLINED,
        PAYMENTS_UNAVAILABLE,
        BUSY,
    ),
    secrets=[config.STRIPE_SECRET_KEY],
)
def start_agent_plan(call: CallContext, data: StartPlanRequest) -> PlanStart:
    """An agent: subscribe to the agent plan with the card the payment sheet collected.

    Returns the customer id and the first payment's client secret for the sheet; the plan
    is granted when the payment succeeds (at once, or by the webhook after 3-D Secure).
    """
    import stripe  # lazy: see the imports

    from api.stripe_errors import our_error  # lazy: see the imports
    from marketplace.payments import plans, stripe_api  # lazy: see the imports

    email = call.claim("email")
    try:
        return plans.start(
            bootstrap.db(),
            stripe_api.client(),
            uid=call.uid,
            email=email if isinstance(email, str) else None,
            request=data,
        )
    except stripe.StripeError as exc:
        raise our_error(exc, call.function, failed="The plan could not be started.") from exc
