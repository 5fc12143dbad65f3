"""Rental holding deposits: one week's rent held on the renter's card while the agent
decides, taken if the offer is accepted, let go otherwise.

**The hold** is a manual-capture PaymentIntent, created by ``make_offer`` under the
idempotency key ``deposit-{offerId}`` before the offer is written, and recorded with it in
one batch (the offer's ``deposit`` and the link ``_stripePayments/{pi}``). If that batch
fails the PaymentIntent is cancelled at once; if the process dies between the two, the
orphan sweep (:func:`sweep_orphans`, in the Stripe reconciliation) finds a PaymentIntent
whose link was never written and cancels it.

**What we ask, then do.** A move that takes the deposit (an acceptance) or lets it go
(any other end) writes ``deposit.asked`` in the move's own batch; :func:`carry_out` then
asks Stripe, after the commit and outside any transaction, with the key
``deposit-{ask}-{offerId}``, and records Stripe's answer. It reads the PaymentIntent
first and does nothing Stripe has already done, so a rerun after a crash (the offer
trigger's retry, the offer clock's sweep) completes the step and never doubles it.

**What Stripe says** arrives by webhook (:data:`HANDLERS`, routed here by the payment's
purpose) or as the answer to our own call, and is applied by rank: a deposit's state only
moves forward (awaiting card < declined < held < taken, let go or lapsed < refunded), so
any number of repeats in any order end where the newest fact leaves it, and an offer
reads ``held`` only while Stripe holds the money.

**The hold's end.** Stripe keeps an authorisation 7 days for most card payments a
customer starts, less in some cases; the charge's ``capture_before`` is the truth. The
webhook records the hold with ``captureBefore`` assumed (authorisation + 7 days, marked
assumed); the offer clock (or the first read of the hold from Stripe) then asks its
charge for the real one, once. A day before it, both
parties are told; an hour before it, if the offer is still undecided, the hold is let go
and the offer lapses: a hold Stripe may already have dropped is never captured.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from google.cloud import firestore
from pydantic import BaseModel, ConfigDict

from firekit import leases, logs
from firekit.transactions import run_transaction
from marketplace.payments import customers
from marketplace.payments.stripe_api import stripe_id

if TYPE_CHECKING:
    import stripe

    from firekit.webhooks import Handler, WebhookEvent

# firekit.webhooks (the intake) is imported where an outcome is returned: every function's
# cold start imports this module through the offer callables, only the webhook needs it.

PURPOSE = "deposit"
PAYMENT_LINKS = "_stripePayments"
OFFERS = "offers"
HOLD = dt.timedelta(days=7)
"""How long Stripe holds most customer-initiated card authorisations (assumed only until
the charge says)."""
WARN_BEFORE = dt.timedelta(hours=24)
RELEASE_BEFORE = dt.timedelta(hours=1)
ORPHAN_GRACE = dt.timedelta(minutes=15)
"""A PaymentIntent with no record this long after it was created is an orphan (a
``make_offer`` still running would have recorded it within its 60 s)."""
LOCK_TTL = dt.timedelta(seconds=60)

RANK: Mapping[str, int] = {
    "awaiting_card": 0,
    "failed": 1,
    "held": 2,
    "captured": 3,
    "released": 3,
    "expired": 3,
    "refunded": 4,
}
"""A deposit's state only moves up this order; ties keep what is stored."""
FINAL = frozenset({"captured", "released", "expired", "refunded"})
UNSETTLED = frozenset({"awaiting_card", "failed", "held"})
"""Stripe may still hold, or be about to hold, the renter's money."""


class DepositSheet(BaseModel):
    """What the payment sheet needs to authorise the hold on the renter's card."""

    model_config = ConfigDict(defer_build=True)

    paymentIntentId: str
    clientSecret: str
    customerId: str
    amount: int
    currency: str


def weekly(monthly: int) -> int:
    """One week's rent from a monthly rent (x 12 / 52, rounded down): the most a holding
    deposit may be in England (Tenant Fees Act 2019)."""
    return monthly * 12 // 52


# --- the hold -------------------------------------------------------------------------


def authorise(
    db: firestore.Client,
    api: stripe.StripeClient,
    *,
    offer_id: str,
    uid: str,
    email: str | None,
    listing_id: str,
    amount: int,
    currency: str,
) -> tuple[stripe.PaymentIntent, str]:
    """Create the hold's PaymentIntent (nothing is held until the sheet confirms it);
    returns it and the customer id."""
    customer = customers.ensure_customer(db, api, uid, email)
    # A card hold, so card only (the typed params of SDK 16 omit payment_method_types).
    params: dict[str, Any] = {
        "amount": amount,
        "currency": currency.lower(),
        "customer": customer,
        "capture_method": "manual",
        "payment_method_types": ["card"],
        "metadata": {"purpose": PURPOSE, "offerId": offer_id, "uid": uid, "listingId": listing_id},
    }
    intent = api.v1.payment_intents.create(
        params=params,  # type: ignore[arg-type]
        options={"idempotency_key": f"deposit-{offer_id}"},
    )
    return intent, customer


def record_in(
    batch: firestore.WriteBatch,
    db: firestore.Client,
    intent_id: str,
    *,
    uid: str,
    offer_id: str,
    now: dt.datetime,
) -> None:
    """Link the PaymentIntent to its offer, in the batch that writes the offer."""
    batch.set(
        db.collection(PAYMENT_LINKS).document(intent_id),
        {"uid": uid, "purpose": PURPOSE, "offerId": offer_id, "createdAt": now},
    )


def new_deposit(intent_id: str, amount: int, currency: str, now: dt.datetime) -> dict[str, Any]:
    """The offer's ``deposit`` as written with the offer: asked to authorise, not held."""
    return {
        "amount": {"amount": amount, "currency": currency},
        "paymentIntentId": intent_id,
        "state": "awaiting_card",
        "asked": "authorise",
        "askedAt": now,
        "captureBefore": None,
        "captureBeforeAssumed": False,
        "captureBeforeChecked": False,
        "capturedAmount": None,
        "flaggedAt": None,
        "stripeCreated": 0,
        "cancellationReason": None,
    }


def sheet(intent: stripe.PaymentIntent, customer: str) -> DepositSheet:
    return DepositSheet(
        paymentIntentId=intent.id,
        clientSecret=str(intent.client_secret),
        customerId=customer,
        amount=intent.amount,
        currency=intent.currency.upper(),
    )


def cancel_unrecorded(api: stripe.StripeClient, intent_id: str, why: str) -> None:
    """Let go a PaymentIntent whose record was never written (best effort: the orphan
    sweep retries what fails here)."""
    import stripe

    try:
        api.v1.payment_intents.cancel(
            intent_id, options={"idempotency_key": f"deposit-orphan-{intent_id}"}
        )
        logs.warning("unrecorded deposit cancelled", paymentIntentId=intent_id, why=why)
    except stripe.StripeError as exc:
        logs.error(
            "unrecorded deposit not cancelled",
            paymentIntentId=intent_id,
            why=why,
            stripeError=type(exc).__name__,
        )


# --- asking Stripe, then recording --------------------------------------------------------


def ask(deposit: Mapping[str, Any] | None, *, taken: bool, now: dt.datetime) -> dict[str, Any]:
    """The fields a move's batch writes to ask for the deposit to be taken or let go
    (nothing if there is no deposit, or it is settled already)."""
    if not deposit or deposit.get("state") not in UNSETTLED:
        return {}
    return {"deposit.asked": "capture" if taken else "cancel", "deposit.askedAt": now}


def carry_out(db: firestore.Client, api: stripe.StripeClient, offer_id: str) -> str:
    """Do what the offer's deposit asks of Stripe, unless Stripe has done it; record the
    answer. Returns the state recorded, or "nothing" (nothing asked, or settled) or
    "busy" (another run holds the deposit's lock: it, or the offer clock, finishes)."""
    offer = db.collection(OFFERS).document(offer_id)
    lock = db.collection(customers.LOCKS).document(f"deposit-{offer_id}")
    held = leases.try_acquire(lock, LOCK_TTL)
    if held is None:
        return "busy"
    with held:
        data = offer.get().to_dict() or {}
        deposit = data.get("deposit") or {}
        if deposit.get("asked") not in ("capture", "cancel") or deposit.get("state") in FINAL:
            return "nothing"
        # An accepted counter may lower the rent: never take more than a week of it.
        most = min(weekly(int(data["amount"]["amount"])), int(deposit["amount"]["amount"]))
        intent = _asked_of_stripe(api, offer_id, deposit, most)
        state = intent_state(intent)
        record(db, offer_id, state, captured=intent.get("amount_received"))
        logs.info("deposit carried out", offerId=offer_id, asked=deposit["asked"], state=state)
        return state


def _asked_of_stripe(
    api: stripe.StripeClient, offer_id: str, deposit: Mapping[str, Any], most: int
) -> dict[str, Any]:
    intent_id = str(deposit["paymentIntentId"])
    intent = api.v1.payment_intents.retrieve(intent_id)
    if intent.status in ("succeeded", "canceled"):
        return intent.to_dict()  # done already (by us before a crash, or by Stripe)
    key = f"deposit-{deposit['asked']}-{offer_id}"
    if deposit["asked"] == "capture" and intent.status == "requires_capture":
        return api.v1.payment_intents.capture(
            intent_id,
            params={"amount_to_capture": min(most, intent.amount)},
            options={"idempotency_key": key},
        ).to_dict()
    # Asked to let go, or to take a hold Stripe never made (nothing to take): let go.
    return api.v1.payment_intents.cancel(intent_id, options={"idempotency_key": key}).to_dict()


def intent_state(intent: Mapping[str, Any]) -> str:
    """A deposit state from a PaymentIntent as Stripe shows it."""
    status = intent.get("status")
    if status == "requires_capture":
        return "held"
    if status == "succeeded":
        return "captured"
    if status == "canceled":
        return "expired" if intent.get("cancellation_reason") == "automatic" else "released"
    if status == "requires_payment_method" and intent.get("last_payment_error"):
        return "failed"
    return "awaiting_card"


def record(
    db: firestore.Client,
    offer_id: str,
    state: str,
    *,
    captured: int | None = None,
    created: int | None = None,
    capture_before: dt.datetime | None = None,
    reason: str | None = None,
) -> str:
    """Apply a state Stripe reported, in its own transaction (see :func:`apply_state`)."""

    def apply(transaction: firestore.Transaction) -> str:
        snapshot = db.collection(OFFERS).document(offer_id).get(transaction=transaction)
        return apply_state(
            transaction,
            snapshot,
            state,
            captured=captured,
            created=created,
            capture_before=capture_before,
            reason=reason,
        )

    return run_transaction(db, apply, busy_message="The deposit is busy; try again.")


def apply_state(
    transaction: firestore.Transaction,
    snapshot: firestore.DocumentSnapshot[Any],
    state: str,
    *,
    captured: int | None = None,
    created: int | None = None,
    capture_before: dt.datetime | None = None,
    reason: str | None = None,
) -> str:
    """Record what Stripe said: the state if it is forward (by :data:`RANK`), and the facts
    the event carries (when the hold was made, what was taken, why it was let go) if
    not yet known, so the same events in any order leave the same deposit. Returns the
    outcome (stale: nothing new)."""
    from firekit.webhooks import Outcome

    deposit = (snapshot.to_dict() or {}).get("deposit")
    if not snapshot.exists or not deposit:
        return Outcome.UNKNOWN_SUBJECT
    changes: dict[str, Any] = {}
    if RANK[state] > RANK[str(deposit.get("state"))]:
        changes["deposit.state"] = state
    if created is not None and created > int(deposit.get("stripeCreated") or 0):
        changes["deposit.stripeCreated"] = created
    if state == "held" and deposit.get("captureBefore") is None:
        authorised = dt.datetime.fromtimestamp(created, dt.UTC) if created else _now()
        changes["deposit.captureBefore"] = capture_before or authorised + HOLD
        changes["deposit.captureBeforeAssumed"] = capture_before is None
    if state == "captured" and captured is not None and deposit.get("capturedAmount") is None:
        changes["deposit.capturedAmount"] = captured
    if reason is not None and deposit.get("cancellationReason") is None:
        changes["deposit.cancellationReason"] = reason[:60]
    if not changes:
        return Outcome.STALE
    transaction.update(snapshot.reference, changes)
    return Outcome.APPLIED


def refresh(db: firestore.Client, api: stripe.StripeClient, offer_id: str) -> str:
    """Ask Stripe how the hold stands and record it (for a hold whose webhook has not
    arrived: the local Stripe stand-in sends none for an authorisation), with the hold's
    real end when it is held."""
    deposit = (db.collection(OFFERS).document(offer_id).get().to_dict() or {}).get("deposit")
    if not deposit or deposit.get("state") in FINAL:
        return "nothing"
    intent = api.v1.payment_intents.retrieve(str(deposit["paymentIntentId"])).to_dict()
    outcome = record(db, offer_id, intent_state(intent), captured=intent.get("amount_received"))
    if intent_state(intent) == "held":
        learn_hold_end(db, api, offer_id)
    return outcome


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- webhook events -------------------------------------------------------------------


def _offer_of(
    db: firestore.Client, transaction: firestore.Transaction, intent_id: str | None
) -> firestore.DocumentSnapshot[Any] | str:
    """The offer whose deposit a PaymentIntent is, from our own link (never the event)."""
    from firekit.webhooks import Outcome

    if intent_id is None:
        return Outcome.UNKNOWN_SUBJECT
    link = db.collection(PAYMENT_LINKS).document(intent_id).get(transaction=transaction)
    offer_id = (link.to_dict() or {}).get("offerId")
    if not isinstance(offer_id, str):
        return Outcome.UNKNOWN_SUBJECT
    offer = db.collection(OFFERS).document(offer_id).get(transaction=transaction)
    deposit = (offer.to_dict() or {}).get("deposit") or {}
    if deposit.get("paymentIntentId") != intent_id:
        return Outcome.UNKNOWN_SUBJECT
    return offer


def _on_intent(state_of: Callable[[WebhookEvent], str]) -> Handler:
    def handle(
        db: firestore.Client, transaction: firestore.Transaction, event: WebhookEvent
    ) -> str:
        offer = _offer_of(db, transaction, stripe_id(event.data.get("id")))
        if isinstance(offer, str):
            return offer
        return apply_state(
            transaction,
            offer,
            state_of(event),
            captured=event.data.get("amount_received"),
            created=event.created,
            reason=event.data.get("cancellation_reason"),
        )

    return handle


def _on_charge(state: str) -> Handler:
    def handle(
        db: firestore.Client, transaction: firestore.Transaction, event: WebhookEvent
    ) -> str:
        offer = _offer_of(db, transaction, stripe_id(event.data.get("payment_intent")))
        if isinstance(offer, str):
            return offer
        return apply_state(transaction, offer, state, created=event.created)

    return handle


def _capturable(event: WebhookEvent) -> str:
    # amount_capturable 0 (a hold reduced to nothing) holds nothing: the status says so.
    return intent_state(event.data) if event.data.get("amount_capturable", 1) else "awaiting_card"


HANDLERS: dict[str, Handler] = {
    "payment_intent.amount_capturable_updated": _on_intent(_capturable),
    "payment_intent.succeeded": _on_intent(lambda _: "captured"),
    "payment_intent.canceled": _on_intent(lambda e: intent_state(e.data)),
    "payment_intent.payment_failed": _on_intent(lambda _: "failed"),
    "charge.refunded": _on_charge("refunded"),
    "charge.expired": _on_charge("expired"),
}
"""Stripe event types applied to deposits (routed here by the payment's purpose)."""


# --- the clock: holds near their end, stuck asks, orphans -------------------------------


def hold_end(api: stripe.StripeClient, intent_id: str) -> tuple[dt.datetime, bool] | None:
    """When the hold ends, from its charge: ``capture_before`` (not assumed), or where
    the charge does not say (the local stand-in) its authorisation + 7 days (assumed);
    None if there is no charge yet."""
    intent = api.v1.payment_intents.retrieve(intent_id).to_dict()
    charge_id = stripe_id(intent.get("latest_charge"))
    if charge_id is None:
        return None
    charge = api.v1.charges.retrieve(charge_id).to_dict()
    seconds = ((charge.get("payment_method_details") or {}).get("card") or {}).get("capture_before")
    if isinstance(seconds, int):
        return dt.datetime.fromtimestamp(seconds, dt.UTC), False
    return dt.datetime.fromtimestamp(int(charge["created"]), dt.UTC) + HOLD, True


def learn_hold_end(db: firestore.Client, api: stripe.StripeClient, offer_id: str) -> bool:
    """Read the held deposit's real end from its charge, once (``captureBeforeChecked``):
    a hold may end sooner than 7 days (a Visa merchant-initiated one after 4 days 18
    hours), and the webhook that reports the hold cannot tell. False if not held."""
    ref = db.collection(OFFERS).document(offer_id)
    deposit = (ref.get().to_dict() or {}).get("deposit") or {}
    if deposit.get("state") != "held" or deposit.get("captureBeforeChecked"):
        return False
    found = hold_end(api, str(deposit["paymentIntentId"]))
    changes: dict[str, Any] = {"deposit.captureBeforeChecked": True}
    if found is not None:
        changes["deposit.captureBefore"], changes["deposit.captureBeforeAssumed"] = found
    ref.update(changes)
    return True


def sweep_orphans(
    db: firestore.Client, api: stripe.StripeClient, *, now: dt.datetime | None = None
) -> int:
    """Cancel every deposit PaymentIntent of the last hold period that Stripe may still
    act on but no offer records (its ``make_offer`` died before the write)."""
    moment = now or _now()
    since = int((moment - HOLD - dt.timedelta(days=1)).timestamp())
    cutoff = int((moment - ORPHAN_GRACE).timestamp())
    cancelled = 0
    for intent in _recent_intents(api, since):
        metadata = intent.get("metadata") or {}
        if metadata.get("purpose") != PURPOSE or intent.get("created", 0) > cutoff:
            continue
        if intent.get("status") in ("succeeded", "canceled"):
            continue
        if not db.collection(PAYMENT_LINKS).document(intent["id"]).get().exists:
            cancel_unrecorded(api, intent["id"], "orphan")
            cancelled += 1
    return cancelled


def _recent_intents(api: stripe.StripeClient, since: int) -> Iterator[dict[str, Any]]:
    """PaymentIntents created since ``since``: asked of Stripe with a ``created`` filter;
    the local stand-in refuses the filter (400), so there every PaymentIntent is read and
    filtered here."""
    import stripe

    try:
        listed = api.v1.payment_intents.list(params={"limit": 100, "created": {"gte": since}})
    except stripe.InvalidRequestError:
        listed = api.v1.payment_intents.list(params={"limit": 100})
    for found in listed.auto_paging_iter():
        intent = found.to_dict()
        if int(intent.get("created", 0)) >= since:
            yield intent
