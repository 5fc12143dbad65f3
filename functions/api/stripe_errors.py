"""Stripe's errors as the payment callables answer them: a stable code and our own words.

Stripe's text can name our account's objects and changes without notice, so it goes to
the log only; the caller learns whether to retry (``UNAVAILABLE``,
:data:`~marketplace.payments.requests.PAYMENTS_UNAVAILABLE`), that the card was declined
(``FAILED_PRECONDITION``, :data:`~marketplace.payments.requests.CARD_DECLINED`), or that
the payment could not be made (``INTERNAL``). ``INTERNAL`` carries no reason, as every
``INTERNAL`` answer does: it says only "not your fault, not worth retrying as is", and a
client has nothing to branch on, so it is no declared refusal either.
"""

from __future__ import annotations

import stripe

from firekit import logs
from firekit.errors import AppError
from marketplace.payments.requests import CARD_DECLINED, PAYMENTS_UNAVAILABLE

TRANSIENT = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)
"""Stripe errors worth another try later (the SDK has already retried them)."""


def our_error(exc: stripe.StripeError, function: str, *, failed: str) -> AppError:
    """The error the caller sees for ``exc``: retry later, card declined, or ``failed``
    (our words) as ``INTERNAL``."""
    logs.error(
        "stripe call failed",
        function=function,
        stripeError=type(exc).__name__,
        stripeCode=exc.code,
        httpStatus=exc.http_status,
        requestId=exc.request_id,
    )
    if isinstance(exc, TRANSIENT):
        return PAYMENTS_UNAVAILABLE()
    if isinstance(exc, stripe.CardError):
        return CARD_DECLINED()
    return AppError(failed)
