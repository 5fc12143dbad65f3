"""Stripe's errors as the payment callables answer them: a stable code and our own words.

Stripe's text can name our account's objects and changes without notice, so it goes to
the log only; the caller learns whether to retry (``UNAVAILABLE``), that the card was
declined (``FAILED_PRECONDITION``), or that the payment could not be made (``INTERNAL``).
"""

from __future__ import annotations

import stripe
from firebase_functions.https_fn import FunctionsErrorCode

from firekit import logs
from firekit.errors import AppError, FailedPrecondition


class PaymentsUnavailable(AppError):  # noqa: N818
    """Stripe could not be reached or is overloaded: the caller may retry shortly."""

    code = FunctionsErrorCode.UNAVAILABLE
    default_message = "Payments are unavailable right now; try again in a moment."


TRANSIENT = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)
"""Stripe errors worth another try later (the SDK has already retried them)."""


def our_error(
    exc: stripe.StripeError, function: str, *, failed: str, declined: AppError | None = None
) -> AppError:
    """The error the caller sees for ``exc``: retry later, card declined (``declined``, or
    a generic one), or ``failed`` (our words) as ``INTERNAL``."""
    logs.error(
        "stripe call failed",
        function=function,
        stripeError=type(exc).__name__,
        stripeCode=exc.code,
        httpStatus=exc.http_status,
        requestId=exc.request_id,
    )
    if isinstance(exc, TRANSIENT):
        return PaymentsUnavailable()
    if isinstance(exc, stripe.CardError):
        return declined or FailedPrecondition("The card was declined.")
    return AppError(failed)
