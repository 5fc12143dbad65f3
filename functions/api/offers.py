"""Offers: the buyer's and the agent's moves (callables), what follows each (a trigger)
and the offer clock (a schedule). See :mod:`marketplace.offers` and
:mod:`marketplace.offer_upkeep`."""

from __future__ import annotations

import datetime as dt

from firebase_functions import scheduler_fn

from firekit import bootstrap, logs
from firekit.callables import CallContext, callable_function
from firekit.errors import BUSY
from firekit.events import AnyDocument, DocumentChange, Effects, document_trigger
from firekit.ratelimit import RateLimit
from marketplace import offers as o
from marketplace.listings import NO_SUCH_LISTING

_OFFERS = RateLimit(20, per_seconds=60)
_MOVES = RateLimit(60, per_seconds=60)
_MOVE_REFUSALS = (o.NO_SUCH_OFFER, o.MOVE_NOT_ALLOWED, BUSY)


@callable_function(
    o.MakeOfferRequest,
    rate_limit=_OFFERS,
    refusals=(
        o.EMAIL_NOT_VERIFIED,
        NO_SUCH_LISTING,
        o.NOT_OFFERABLE,
        o.OWN_LISTING,
        o.WRONG_CURRENCY,
        o.WRONG_CONDITIONS,
        o.BAD_EXPIRY,
        BUSY,
    ),
)
def make_offer(call: CallContext, data: o.MakeOfferRequest) -> o.OfferResult:
    """A buyer (verified email) offers on a listing; their open offer there is replaced."""
    verified = call.claim("email_verified") is True
    return o.make(bootstrap.db(), buyer_uid=call.uid, email_verified=verified, request=data)


@callable_function(
    o.OfferRequest,
    rate_limit=_MOVES,
    refusals=(*_MOVE_REFUSALS, o.NOT_OFFERABLE, o.ANOTHER_OFFER_ACCEPTED),
)
def accept_offer(call: CallContext, data: o.OfferRequest) -> o.OfferResult:
    """The agent accepts an open offer; the buyer accepts the agent's counter."""
    return o.answer_as(
        bootstrap.db(), data.offerId, call.uid, agent="accept", buyer="accept_counter"
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
)
def follow_offer_move(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    """Tell the other party of the move; after an acceptance, reject the other offers."""
    from marketplace import offer_upkeep  # lazy: notify imports the messaging SDK

    if change.after_data is None:
        return
    done = offer_upkeep.follow_up(effects.db, change.params["offerId"], change.after_data)
    logs.info("offer move followed up", offerId=change.params["offerId"], **done)


@scheduler_fn.on_schedule(schedule="every 5 minutes", timeout_sec=300)
def offer_clock(event: scheduler_fn.ScheduledEvent) -> None:
    """Lapse the offers whose time is up."""
    from marketplace import offer_upkeep

    lapsed = offer_upkeep.lapse_due(bootstrap.db(), dt.datetime.now(dt.UTC))
    logs.info("offer clock", lapsed=lapsed)
