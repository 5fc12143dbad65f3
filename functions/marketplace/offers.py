"""Offers: a buyer offers on a listing, its agent accepts, rejects or counters, the buyer
withdraws, accepts a counter or declines it; one graph, every move checked against it.

Each move is one batch committed on a precondition, the offer's update time (and, for an
acceptance, the listing's): of any number of racing moves on one offer exactly one lands,
and the rest decide again on what it left (most then find no edge and are refused with
``FAILED_PRECONDITION``, nothing written). Every move stamps ``revision`` and
``lastChange``; the offer trigger (:mod:`marketplace.offer_upkeep`) tells the other party,
and after an acceptance rejects the listing's other open offers ("another offer was
accepted").

A rental's offer comes with a holding deposit (:mod:`marketplace.payments.deposits`): one
week of the rent offered, held on the renter's card before the offer is written. An
acceptance needs the hold and asks for it to be taken; every other end asks for it to be
let go; the offer trigger then does what was asked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from google.api_core import exceptions as gexc
from google.cloud import firestore
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from firekit import logs
from firekit.errors import (
    BUSY,
    MOVE_NOT_ALLOWED,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Refusal,
)
from firekit.ids import PlainId
from marketplace.listings import NO_SUCH_LISTING, OWN_LISTING, listing_ref
from marketplace.models.common import MAX_MINOR_UNITS, Currency
from marketplace.models.deals import (
    MAX_REASON,
    OPEN_STATUSES,
    OfferMove,
    OfferStatus,
    RentConditions,
    SaleConditions,
)
from marketplace.payments import deposits

if TYPE_CHECKING:
    import stripe

StripeFactory = Callable[[], "stripe.StripeClient"]
"""Makes the Stripe client when a move needs it (most moves never do)."""

OFFERS = "offers"
SLOTS = "_offerSlots"
"""``{listingId}__{buyerId}``: the buyer's open offer on the listing, so a new one replaces
it (and two made at once cannot both stay open)."""
MAX_EXPIRY = dt.timedelta(days=14)
MIN_EXPIRY = dt.timedelta(hours=1)
OFFERABLE = ("active", "under_offer")
"""Listing statuses that take offers (under offer: a back-up offer)."""
ANOTHER_ACCEPTED = "Another offer was accepted."
_ATTEMPTS = 8

NO_SUCH_OFFER = Refusal(NotFound, "no_such_offer", "No such offer.")
NOT_YOUR_OFFER = Refusal(
    PermissionDenied, "not_your_offer", "Only the buyer or the listing's agent may do this."
)
NOT_OFFERABLE = Refusal(
    FailedPrecondition, "not_offerable", "The listing is not on the market for offers."
)
WRONG_CURRENCY = Refusal(
    FailedPrecondition, "wrong_currency", "An offer is made in the listing's currency."
)
WRONG_CONDITIONS = Refusal(
    FailedPrecondition,
    "wrong_conditions",
    "A sale takes mortgage, cash and chain conditions; a rental a move-in date and a term.",
)
BAD_EXPIRY = Refusal(
    FailedPrecondition, "bad_expiry", "An offer expires between 1 hour and 14 days from now."
)
EMAIL_NOT_VERIFIED = Refusal(
    PermissionDenied, "email_not_verified", "Verify your email address before making offers."
)
REASON_REQUIRED = Refusal(
    FailedPrecondition, "reason_required", "Say why the offer is rejected: the buyer reads it."
)
DEPOSIT_NOT_HELD = Refusal(
    FailedPrecondition,
    "deposit_not_held",
    "The renter's holding deposit is not held on their card, so the offer cannot be accepted.",
)
ANOTHER_OFFER_ACCEPTED = Refusal(
    FailedPrecondition, "another_offer_accepted", "Another offer on this listing was accepted."
)

Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REASON)
]
MinorUnits = Annotated[int, Field(ge=1, le=MAX_MINOR_UNITS, strict=True)]
"""Money in minor units, a JSON integer: "340000" (a string) is refused, not converted."""


class MakeOfferRequest(BaseModel):
    """A buyer's offer: the amount in the listing's currency (minor units; for a rental,
    the monthly rent), their conditions, and when it lapses (at most 14 days)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    listingId: PlainId
    amount: MinorUnits
    currency: Currency
    conditions: SaleConditions | RentConditions
    expiresAt: AwareDatetime
    message: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = None


class OfferRequest(BaseModel):
    """A move that needs nothing but the offer: accept, withdraw, accept a counter, decline."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    offerId: PlainId


class RejectOfferRequest(BaseModel):
    """The agent's rejection, with the reason the buyer reads (required of the agent); or
    the buyer declining a counter (a reason is optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    offerId: PlainId
    reason: Reason | None = None


class CounterOfferRequest(BaseModel):
    """The agent's counter: the amount they would accept (same currency)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    offerId: PlainId
    amount: MinorUnits


class OfferResult(BaseModel):
    """The offer after the call."""

    model_config = ConfigDict(defer_build=True)

    offerId: str
    listingId: str
    status: OfferStatus
    amount: int
    currency: str
    counterAmount: int | None = None
    expiresAt: str
    depositState: str | None = None
    deposit: deposits.DepositSheet | None = None
    """Only in the answer to ``make_offer`` of a rental: what the payment sheet needs to
    authorise the holding deposit on the renter's card."""


# --- the graph ------------------------------------------------------------------------

Actor = Literal["buyer", "agent", "system"]


@dataclasses.dataclass(frozen=True)
class Edge:
    """A move allowed from one status: where it leads and who may make it."""

    to: OfferStatus
    by: frozenset[Actor]


_BUYER: frozenset[Actor] = frozenset({"buyer"})
_AGENT: frozenset[Actor] = frozenset({"agent"})
_SYSTEM: frozenset[Actor] = frozenset({"system"})
MOVES: Mapping[tuple[str, str], Edge] = {
    ("open", "accept"): Edge("accepted", _AGENT),
    ("open", "reject"): Edge("rejected", _AGENT),
    ("open", "counter"): Edge("countered", _AGENT),
    ("open", "withdraw"): Edge("withdrawn", _BUYER),
    ("open", "replace"): Edge("replaced", _BUYER),
    ("open", "lapse"): Edge("lapsed", _SYSTEM),
    ("open", "lose"): Edge("rejected", _SYSTEM),
    ("countered", "accept_counter"): Edge("accepted", _BUYER),
    ("countered", "decline"): Edge("declined", _BUYER),
    ("countered", "withdraw"): Edge("withdrawn", _BUYER),
    ("countered", "replace"): Edge("replaced", _BUYER),
    ("countered", "reject"): Edge("rejected", _AGENT),
    ("countered", "lapse"): Edge("lapsed", _SYSTEM),
    ("countered", "lose"): Edge("rejected", _SYSTEM),
}
"""(status, move) → the status it leads to and who may make it; every status not open or
countered is final. Nothing else is a move."""


def edge(status: str, move: OfferMove, actor: Actor) -> Edge:
    """The edge ``move`` takes from ``status`` for ``actor``; refused if there is none."""
    found = MOVES.get((status, move))
    if found is None or actor not in found.by:
        raise MOVE_NOT_ALLOWED(f"An offer that is {status} cannot {_WORDS[move]}.", status=status)
    return found


_WORDS: Mapping[str, str] = {
    "make": "be made",
    "accept": "be accepted",
    "reject": "be rejected",
    "counter": "be countered",
    "withdraw": "be withdrawn",
    "accept_counter": "have its counter accepted",
    "decline": "have its counter declined",
    "lapse": "lapse",
    "replace": "be replaced",
    "lose": "lose to another offer",
}


# --- making an offer ------------------------------------------------------------------


def make(
    db: firestore.Client,
    *,
    buyer_uid: str,
    email_verified: bool,
    request: MakeOfferRequest,
    stripe_api: StripeFactory | None = None,
    email: str | None = None,
    now: dt.datetime | None = None,
) -> OfferResult:
    """Record the buyer's offer; their open offer on the listing, if any, is replaced. A
    rental's offer first creates its deposit's hold (``stripe_api`` required), which is
    cancelled again if the offer is not recorded."""
    moment = now or dt.datetime.now(dt.UTC)
    if not email_verified:
        raise EMAIL_NOT_VERIFIED()
    if not MIN_EXPIRY <= request.expiresAt - moment <= MAX_EXPIRY:
        raise BAD_EXPIRY(field="expiresAt")
    offer_ref = db.collection(OFFERS).document()
    listing = listing_ref(db, request.listingId).get()
    data = _offerable(listing, buyer_uid, request)
    if data["kind"] != "rent":
        return _record_offer(
            db, offer_ref, buyer_uid=buyer_uid, request=request, moment=moment, intent_id=None
        )
    if stripe_api is None:
        raise RuntimeError("a rental's offer needs the Stripe client for its deposit")
    api = stripe_api()
    intent, customer = deposits.authorise(
        db,
        api,
        offer_id=offer_ref.id,
        uid=buyer_uid,
        email=email,
        listing_id=listing.id,
        amount=deposits.weekly(request.amount),
        currency=request.currency,
    )
    try:
        made = _record_offer(
            db, offer_ref, buyer_uid=buyer_uid, request=request, moment=moment, intent_id=intent.id
        )
    except Exception:
        # A commit that failed on the wire may still have landed: its link says so.
        if not db.collection(deposits.PAYMENT_LINKS).document(intent.id).get().exists:
            deposits.cancel_unrecorded(api, intent.id, "offer not recorded")
            raise
        made = result_of(offer_ref.id, offer_ref.get().to_dict() or {})
    return made.model_copy(update={"deposit": deposits.sheet(intent, customer)})


def _record_offer(
    db: firestore.Client,
    offer_ref: firestore.DocumentReference,
    *,
    buyer_uid: str,
    request: MakeOfferRequest,
    moment: dt.datetime,
    intent_id: str | None,
) -> OfferResult:
    """Write the offer (and its deposit's link), replacing the buyer's open one there."""
    slot_ref = db.collection(SLOTS).document(f"{request.listingId}__{buyer_uid}")
    for attempt in range(_ATTEMPTS):
        listing = listing_ref(db, request.listingId).get()
        data = _offerable(listing, buyer_uid, request)
        slot = slot_ref.get()
        previous = _open_offer(db, slot)
        offer = _new_offer(buyer_uid, data, request, listing.id, moment)
        batch = db.batch()
        if intent_id is not None:
            weekly = deposits.weekly(request.amount)
            offer["deposit"] = deposits.new_deposit(intent_id, weekly, request.currency, moment)
            deposits.record_in(
                batch, db, intent_id, uid=buyer_uid, offer_id=offer_ref.id, now=moment
            )
        batch.create(offer_ref, offer)
        if slot.exists:
            batch.update(slot_ref, {"offerId": offer_ref.id}, option=_unchanged(slot))
        else:
            batch.create(slot_ref, {"offerId": offer_ref.id, "createdAt": moment})
        if previous is not None:
            old = previous.to_dict() or {}
            changes = _moved(old, "replace", "replaced", "buyer", reason=None, now=moment)
            changes |= deposits.ask(old.get("deposit"), taken=False, now=moment)
            batch.update(previous.reference, changes, option=_unchanged(previous))
        try:
            batch.commit()
        except (gexc.FailedPrecondition, gexc.Aborted, gexc.AlreadyExists):
            landed = offer_ref.get()
            if landed.exists:  # an earlier attempt's commit landed, its answer was lost
                return result_of(offer_ref.id, landed.to_dict() or {})
            _back_off(attempt)  # another offer of theirs got in first: replace that one
            continue
        logs.info("offer made", offerId=offer_ref.id, listingId=listing.id)
        return result_of(offer_ref.id, offer)
    raise BUSY("Your offers on this listing are busy; try again in a moment.")


def _offerable(
    listing: firestore.DocumentSnapshot[Any], buyer_uid: str, request: MakeOfferRequest
) -> dict[str, Any]:
    if not listing.exists:
        raise NO_SUCH_LISTING()
    data = listing.to_dict() or {}
    if data.get("status") not in OFFERABLE:
        # A draft is nobody's business but its agent's: the same answer as a missing one.
        if data.get("status") in ("draft", "pending_review", "rejected"):
            raise NO_SUCH_LISTING()
        raise NOT_OFFERABLE(status=data.get("status"))
    if data.get("ownerId") == buyer_uid:
        raise OWN_LISTING()
    price = data.get("price") or {}
    if price.get("currency") != request.currency:
        raise WRONG_CURRENCY(field="currency", expected=price.get("currency"))
    wanted = SaleConditions if data.get("kind") == "sale" else RentConditions
    if not isinstance(request.conditions, wanted):
        raise WRONG_CONDITIONS(field="conditions")
    return data


def _open_offer(
    db: firestore.Client, slot: firestore.DocumentSnapshot[Any]
) -> firestore.DocumentSnapshot[Any] | None:
    if not slot.exists:
        return None
    offer = db.collection(OFFERS).document(str((slot.to_dict() or {})["offerId"])).get()
    return (
        offer if offer.exists and (offer.to_dict() or {}).get("status") in OPEN_STATUSES else None
    )


def _new_offer(
    buyer_uid: str,
    listing: Mapping[str, Any],
    request: MakeOfferRequest,
    listing_id: str,
    now: dt.datetime,
) -> dict[str, Any]:
    return {
        "listingId": listing_id,
        "buyerId": buyer_uid,
        "agentId": listing["ownerId"],
        "kind": listing["kind"],
        "amount": {"amount": request.amount, "currency": request.currency},
        "conditions": request.conditions.model_dump(),
        "message": request.message or None,
        "status": "open",
        "counterAmount": None,
        "expiresAt": request.expiresAt.astimezone(dt.UTC),
        "rejectionReason": None,
        "deposit": None,
        "revision": 1,
        "lastChange": {"move": "make", "by": "buyer", "at": now, "reason": None},
        "createdAt": now,
        "updatedAt": now,
        "decidedAt": None,
    }


# --- answering ------------------------------------------------------------------------


def answer(
    db: firestore.Client,
    offer_id: str,
    move: OfferMove,
    actor_uid: str | None,
    *,
    reason: str | None = None,
    amount: int | None = None,
    now: dt.datetime | None = None,
) -> OfferResult:
    """Make ``move`` on the offer as ``actor_uid`` (None: the system); one batch on the
    offer's update time (and the listing's, for an acceptance), decided again if another
    move landed first."""
    for attempt in range(_ATTEMPTS):
        moment = now or dt.datetime.now(dt.UTC)
        snapshot = db.collection(OFFERS).document(offer_id).get()
        data = _visible(snapshot, actor_uid)
        actor = _actor(data, actor_uid)
        target = edge(data["status"], move, actor)
        changes = _moved(data, move, target.to, actor, reason=reason, now=moment)
        if move == "counter":
            changes["counterAmount"] = {"amount": amount, "currency": data["amount"]["currency"]}
        if move == "accept_counter":
            changes["amount"] = data["counterAmount"]
        if target.to not in OPEN_STATUSES:
            taken = target.to == "accepted"
            if taken and data.get("kind") == "rent":
                _require_held(data.get("deposit"), moment)
            changes |= deposits.ask(data.get("deposit"), taken=taken, now=moment)
        batch = db.batch()
        batch.update(snapshot.reference, changes, option=_unchanged(snapshot))
        if target.to == "accepted":
            _take_listing(db, batch, data, offer_id, moment)
        try:
            batch.commit()
        except (gexc.FailedPrecondition, gexc.Aborted, gexc.NotFound):
            _back_off(attempt)
            continue
        logs.info("offer moved", offerId=offer_id, move=move, status=target.to)
        return result_of(offer_id, {**data, **changes})
    raise BUSY("This offer is busy; try again in a moment.")


def answer_as(
    db: firestore.Client,
    offer_id: str,
    uid: str,
    *,
    agent: OfferMove | None = None,
    buyer: OfferMove | None = None,
    reason: str | None = None,
    amount: int | None = None,
    stripe_api: StripeFactory | None = None,
) -> OfferResult:
    """A caller's move: ``agent``'s if they are the listing's agent, ``buyer``'s if the
    buyer (a party with no such move is refused as the graph refuses it). Before an
    acceptance of a rental whose hold Stripe has not reported, Stripe is asked how the hold
    stands (its webhook may be late, or, on the local stand-in, never come)."""
    data = _visible(db.collection(OFFERS).document(offer_id).get(), uid)
    move = agent if uid == data["agentId"] else buyer
    if move is None:
        raise MOVE_NOT_ALLOWED(status=data["status"])
    if move == "reject" and not reason:
        raise REASON_REQUIRED(field="reason")
    target = edge(data["status"], move, _actor(data, uid))  # refused before Stripe is asked
    deposit = data.get("deposit") or {}
    waiting = deposit.get("state") in ("awaiting_card", "failed")
    if target.to == "accepted" and waiting and stripe_api is not None:
        deposits.refresh(db, stripe_api(), offer_id)
    return answer(db, offer_id, move, uid, reason=reason, amount=amount)


def _require_held(deposit: Mapping[str, Any] | None, now: dt.datetime) -> None:
    """An accepted rental takes its deposit: Stripe must hold it, and still for a while."""
    state = (deposit or {}).get("state")
    ends = (deposit or {}).get("captureBefore")
    if state != "held" or (isinstance(ends, dt.datetime) and ends - now <= deposits.RELEASE_BEFORE):
        raise DEPOSIT_NOT_HELD(depositState=state)


def _visible(snapshot: firestore.DocumentSnapshot[Any], actor_uid: str | None) -> dict[str, Any]:
    data = snapshot.to_dict() or {}
    if not snapshot.exists or (
        actor_uid is not None and actor_uid not in (data.get("buyerId"), data.get("agentId"))
    ):
        raise NO_SUCH_OFFER()  # a stranger learns nothing, not even that it exists
    return data


def _actor(data: Mapping[str, Any], actor_uid: str | None) -> Actor:
    if actor_uid is None:
        return "system"
    return "buyer" if actor_uid == data["buyerId"] else "agent"


def _take_listing(
    db: firestore.Client,
    batch: firestore.WriteBatch,
    offer: Mapping[str, Any],
    offer_id: str,
    now: dt.datetime,
) -> None:
    """An acceptance puts the listing under offer, this offer its accepted one: refused if
    another offer holds it (checked on the listing's update time, in the same batch)."""
    listing = listing_ref(db, offer["listingId"]).get()
    data = listing.to_dict() or {}
    if not listing.exists or data.get("status") not in OFFERABLE:
        raise NOT_OFFERABLE(status=data.get("status"))
    held = data.get("acceptedOfferId")
    if held not in (None, offer_id):
        raise ANOTHER_OFFER_ACCEPTED()
    batch.update(
        listing.reference,
        {"status": "under_offer", "acceptedOfferId": offer_id, "updatedAt": now},
        option=_unchanged(listing),
    )


def _moved(
    data: Mapping[str, Any],
    move: OfferMove,
    status: str,
    actor: Actor,
    *,
    reason: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """The fields every move writes: the status, the change to tell, a new revision."""
    changes: dict[str, Any] = {
        "status": status,
        "revision": int(data.get("revision", 0)) + 1,
        "lastChange": {"move": move, "by": actor, "at": now, "reason": reason},
        "updatedAt": now,
    }
    if status not in OPEN_STATUSES:
        changes["decidedAt"] = now
    if status == "rejected":
        changes["rejectionReason"] = reason
    return changes


def result_of(offer_id: str, data: Mapping[str, Any]) -> OfferResult:
    """What a call answers about an offer."""
    counter = data.get("counterAmount")
    expires = data["expiresAt"]
    return OfferResult(
        offerId=offer_id,
        listingId=data["listingId"],
        status=data["status"],
        amount=data["amount"]["amount"],
        currency=data["amount"]["currency"],
        counterAmount=counter["amount"] if counter else None,
        expiresAt=expires.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        depositState=(data.get("deposit") or {}).get("state"),
    )


def _unchanged(snapshot: firestore.DocumentSnapshot[Any]) -> Any:
    return firestore.Client.write_option(last_update_time=snapshot.update_time)


def _back_off(attempt: int) -> None:
    """A random, growing pause: out of step with whoever we collided with."""
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
