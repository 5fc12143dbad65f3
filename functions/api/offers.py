"""Offers: the buyer's and the agent's moves (callables), what follows each (a trigger)
and the offer clock (a schedule). See :mod:`marketplace.offers`,
:mod:`marketplace.offer_upkeep` and, for rentals' holding deposits,
:mod:`marketplace.payments.deposits`."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

from firebase_functions import scheduler_fn

from firekit import bootstrap, logs, observe
from firekit.callables import CallContext, callable_function
from firekit.errors import BUSY, MOVE_NOT_ALLOWED
from firekit.events import AnyDocument, DocumentChange, Effects, document_trigger
from firekit.ratelimit import RateLimit
from marketplace import config
from marketplace import offers as o
from marketplace.listings import NO_SUCH_LISTING, OWN_LISTING
from marketplace.payments.requests import PAYMENTS_UNAVAILABLE

# The Stripe SDK comes in with the first client made (stripe_api.client): most moves never
# call Stripe, and no other function's cold start should pay for it.

_OFFERS = RateLimit(20, per_seconds=60)
_MOVES = RateLimit(60, per_seconds=60)
_MOVE_REFUSALS = (o.NO_SUCH_OFFER, MOVE_NOT_ALLOWED, BUSY)


@callable_function(
    o.MakeOfferRequest,
    rate_limit=_OFFERS,
    refusals=(
        o.EMAIL_NOT_VERIFIED,
        NO_SUCH_LISTING,
        o.NOT_OFFERABLE,
        OWN_LISTING,
        o.WRONG_CURRENCY,
        o.WRONG_CONDITIONS,
        o.BAD_EXPIRY,
        PAYMENTS_UNAVAILABLE,
        BUSY,
    ),
    secrets=[config.STRIPE_SECRET_KEY],
)
def make_offer(call: CallContext, data: o.MakeOfferRequest) -> o.OfferResult:
    """A buyer (verified email) offers on a listing; their open offer there is replaced.
    For a rental, the answer carries what the payment sheet needs to hold the deposit."""
    from marketplace.payments import stripe_api

    verified = call.claim("email_verified") is True
    email = call.claim("email")
    with _stripe_errors(call, "The offer could not be made."):
        return o.make(
            bootstrap.db(),
            buyer_uid=call.uid,
            email_verified=verified,
            request=data,
            stripe_api=stripe_api.client,
            email=email if isinstance(email, str) else None,
        )


@callable_function(
    o.OfferRequest,
    rate_limit=_MOVES,
    refusals=(
        *_MOVE_REFUSALS,
        o.NOT_OFFERABLE,
        o.ANOTHER_OFFER_ACCEPTED,
        o.DEPOSIT_NOT_HELD,
        PAYMENTS_UNAVAILABLE,
    ),
    secrets=[config.STRIPE_SECRET_KEY],
)
def accept_offer(call: CallContext, data: o.OfferRequest) -> o.OfferResult:
    """The agent accepts an open offer; the buyer accepts the agent's counter. A rental's
    deposit must be held; the offer trigger then takes it."""
    from marketplace.payments import stripe_api

    with _stripe_errors(call, "The offer could not be accepted."):
        return o.answer_as(
            bootstrap.db(),
            data.offerId,
            call.uid,
            agent="accept",
            buyer="accept_counter",
            stripe_api=stripe_api.client,
        )


@callable_function(
    o.RejectOfferRequest, rate_limit=_MOVES, refusals=(*_MOVE_REFUSALS, o.REASON_REQUIRED)
)
def reject_offer(call: CallContext, data: o.RejectOfferRequest) -> o.OfferResult:
    """The agent rejects an offer (with a reason); the buyer declines a counter."""
    return o.answer_as(
        bootstrap.db(), data.offerId, call.uid, agent="reject", buyer="decline", reason=data.reason
    )


@callable_function(o.CounterOfferRequest, rate_limit=_MOVES, refusals=_MOVE_REFUSALS)
def counter_offer(call: CallContext, data: o.CounterOfferRequest) -> o.OfferResult:
    """The agent names the amount they would accept; the buyer may accept or decline it."""
    return o.answer_as(bootstrap.db(), data.offerId, call.uid, agent="counter", amount=data.amount)


@callable_function(o.OfferRequest, rate_limit=_MOVES, refusals=_MOVE_REFUSALS)
def withdraw_offer(call: CallContext, data: o.OfferRequest) -> o.OfferResult:
    """The buyer withdraws their open (or countered) offer."""
    return o.answer_as(bootstrap.db(), data.offerId, call.uid, buyer="withdraw")


# Claim mode, retried: telling people and rejecting the other offers reach beyond this
# document; each revision is followed up once, and a rerun finds it all done.
@document_trigger(
    "offers/{offerId}",
    model=AnyDocument,
    on="written",
    only_when_changed=("revision",),
    mode="claim",
    retry=True,
    secrets=[config.STRIPE_SECRET_KEY],
)
def follow_offer_move(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    """Take or let go the deposit as the move asked, tell the other party; after an
    acceptance, reject the other offers."""
    from marketplace import offer_upkeep  # lazy: notify imports the messaging SDK
    from marketplace.payments import stripe_api

    if change.after_data is None:
        return
    offer_id = change.params["offerId"]
    done = offer_upkeep.follow_up(effects.db, offer_id, change.after_data, stripe_api.client)
    logs.info("offer move followed up", offerId=offer_id, **done)


# Claim mode, retried: each offer it ends is a move of its own, refused once made, so a
# rerun ends nothing twice. Any status change is claimed (the handler, not the wrapper,
# knows which statuses are off the market): 2 reads and 2 writes.
@document_trigger(
    "listings/{listingId}",
    model=AnyDocument,
    on="updated",
    only_when_changed=("status",),
    mode="claim",
    retry=True,
)
def on_listing_off_market(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    """A listing that leaves the market (let, sold, withdrawn, archived) ends its open
    offers: their holds are let go, their buyers told."""
    from marketplace import offer_upkeep

    if change.after_data is None:
        return
    listing_id = change.params["listingId"]
    status = str(change.after_data.get("status"))
    ended = offer_upkeep.end_offers_off_market(effects.db, listing_id, status)
    logs.info("offers of a listing off the market", listingId=listing_id, ended=ended)


@scheduler_fn.on_schedule(
    schedule="every 5 minutes", timeout_sec=300, secrets=[config.STRIPE_SECRET_KEY]
)
def offer_clock(event: scheduler_fn.ScheduledEvent) -> None:
    """Lapse the offers whose time is up; watch the deposits' holds and finish stuck asks."""
    from marketplace import offer_upkeep
    from marketplace.payments import stripe_api

    done = offer_upkeep.tick(bootstrap.db(), stripe_api.client, dt.datetime.now(dt.UTC))
    observe.annotate(offers=done)


@contextlib.contextmanager
def _stripe_errors(call: CallContext, failed: str) -> Iterator[None]:
    """Stripe's failures as our refusals (its own words go to the log only)."""
    try:
        yield
    except Exception as exc:
        import stripe  # only once something failed: most moves never load it

        if not isinstance(exc, stripe.StripeError):
            raise
        from api.stripe_errors import our_error

        raise our_error(exc, call.function, failed=failed) from exc
