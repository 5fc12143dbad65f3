"""Featured listings: an agent pays to feature one of their active listings for some days.

**Price**: :data:`PRICE_PER_DAY` (500 pence, GBP) times the days asked for
(:data:`MIN_DAYS` to :data:`MAX_DAYS`), computed here; the client names only the listing
and the days, and a request carrying anything else is refused.

**Starting a payment** (:func:`start`): the caller must own the listing and it must be
``active``. Their one Stripe customer is found or created (:mod:`.customers`), then a
PaymentIntent is created with ``uid``, ``listingId``, ``days`` and ``purpose`` in its
metadata, mirrored in ``customers/{uid}/payments/{paymentIntentId}`` (:class:`Payment`)
and linked back in ``_stripePayments/{paymentIntentId}`` (one read finds the payment from
any event that names the PaymentIntent, disputes included, which name no customer).
Repeated calls for the same listing and days while that payment is still waiting for the
card (``requires_payment_method``, ``requires_confirmation``, ``requires_action``) get
the same PaymentIntent and client secret back; once it has succeeded or been cancelled, a
call starts a new payment (buying more days). ``_paymentLocks/featured-{listingId}-{days}``
(the offer) holds the current PaymentIntent; a 30-second lease (:mod:`firekit.leases`,
the same id plus ``-lease``) lets one call at a time create one, so concurrent calls
create one PaymentIntent between them even against localstripe, which ignores
idempotency keys; the Stripe idempotency key (``featured-{attempt}``, kept in the offer
until the PaymentIntent is recorded) makes a creator that died after Stripe answered
get the same PaymentIntent back when the next caller takes over.

**Success** (``payment_intent.succeeded``): the listing's ``featuredUntil`` becomes
``max(now, featuredUntil) + days``: buying again while featured extends the current
period, and time starts when the payment is applied, never before. The window it added is
kept in ``_featuredListings/{listingId}`` (functions only), together with the other
windows still to run. A payment that succeeds when its listing is no longer ``active``
features nothing (recorded as succeeded; refunding it is an admin's call, out of scope
here). The amount is checked against our own mirror, never taken from the event.

**Refund or lost dispute** (``charge.refunded``, any amount, full or partial;
``charge.dispute.closed`` with ``status: lost``): the part of the payment's window that has
not run yet is removed: ``featuredUntil`` moves back by that much (cleared if nothing is
left), and windows bought after it move back by the same amount, so they keep their full
length. Time already used stays used. The payment ends ``refunded`` or ``disputed``: a
final state that no later event changes, so a ``payment_intent.succeeded`` delivered after
the refund features nothing (recorded as stale). A dispute won or still open changes
nothing (recorded as ``no_effect``).

**Order and repeats**: each event applies once (the webhook's ledger), in one transaction
with its effect. A ``payment_intent.payment_failed`` older than what is stored, or after
success, is stale. Events about PaymentIntents that are not for a featured listing
(e.g. a plan's invoice) are recorded as ``other_purpose``; about ones we never created, as
``unknown_subject``: both answer 200, so Stripe stops retrying them.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.cloud import firestore
from pydantic import BaseModel, ConfigDict

from firekit import leases, logs, webhooks
from firekit.errors import BUSY
from firekit.transactions import run_transaction
from firekit.webhooks import Outcome, WebhookEvent
from marketplace.listings import NO_SUCH_LISTING, NOT_LISTING_OWNER, listing_ref
from marketplace.models.billing import Payment
from marketplace.models.common import Money
from marketplace.payments import customers
from marketplace.payments.requests import LISTING_NOT_ACTIVE, FeatureRequest
from marketplace.payments.stripe_api import stripe_id

if TYPE_CHECKING:
    import stripe  # only annotations here; see stripe_api for why not at import

PURPOSE = "featured_listing"
PRICE_PER_DAY = Money(amount=500, currency="GBP")
"""£5.00 a day, in pence."""
PAYMENT_LINKS = "_stripePayments"
"""``{paymentIntentId}`` -> ``{uid, purpose, listingId}``: whose payment an event is about."""
WINDOWS = "_featuredListings"
"""``{listingId}`` -> the featured windows bought for it that have not run out yet."""
LOCK_TTL = dt.timedelta(days=1)
"""A pending payment is offered again for a day at most (Stripe keeps idempotency keys
for 24 hours); then the offer expires and a new call starts afresh."""
REUSABLE = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})
"""PaymentIntent statuses in which the client can still pay it (same client secret)."""
FINAL = frozenset({"succeeded", "refunded", "disputed"})
REVOKED = frozenset({"refunded", "disputed"})

OTHER_PURPOSE = "other_purpose"
"""Outcome: a payment of ours that is not for a featured listing (e.g. the plan's)."""
NO_EFFECT = "no_effect"
"""Outcome: about one of our payments, but nothing to change (a dispute won)."""


class FeatureOffer(BaseModel):
    """What the mobile payment sheet needs to take the payment."""

    model_config = ConfigDict(defer_build=True)

    paymentIntentId: str
    clientSecret: str
    customerId: str
    amount: Money
    days: int


def price(days: int) -> Money:
    """What featuring a listing for ``days`` costs."""
    return Money(amount=PRICE_PER_DAY.amount * days, currency=PRICE_PER_DAY.currency)


def payment_ref(db: firestore.Client, uid: str, payment_id: str) -> firestore.DocumentReference:
    """``customers/{uid}/payments/{paymentIntentId}``: our mirror of one payment."""
    ref: firestore.DocumentReference = (
        customers.customer_ref(db, uid).collection("payments").document(payment_id)
    )
    return ref


# --- starting a payment (the callable) -------------------------------------------------


@dataclass(frozen=True)
class _Purchase:
    uid: str
    customer_id: str
    amount: Money
    request: FeatureRequest


@dataclass(frozen=True)
class _Pending:
    """What the offer document says about this listing and days."""

    intent: str | None = None
    """The PaymentIntent recorded last, if any."""
    attempt: str | None = None
    """The idempotency key of the creation under way (or that died) since."""


def start(
    db: firestore.Client,
    api: stripe.StripeClient,
    *,
    uid: str,
    email: str | None,
    request: FeatureRequest,
) -> FeatureOffer:
    """Start (or offer again) the payment that features ``request.listingId``.

    Stripe errors propagate as raised (the adapter turns them into our own messages);
    nothing of ours is left claimed by a call that failed.
    """
    _require_featurable(db, uid, request.listingId)
    customer_id = customers.ensure_customer(db, api, uid, email)
    purchase = _Purchase(uid, customer_id, price(request.days), request)
    offer = db.collection(customers.LOCKS).document(f"featured-{request.listingId}-{request.days}")
    lease = offer.parent.document(f"{offer.id}-lease")
    deadline = time.monotonic() + customers.WAIT.total_seconds()
    passed_over: str | None = None
    while True:
        current = _pending(offer).intent
        if current is not None and current != passed_over:
            intent = api.v1.payment_intents.retrieve(current)
            if _reusable(intent, purchase):
                return _offer(intent, purchase)
            passed_over = current  # paid or cancelled: this call buys anew
            continue
        if (held := leases.try_acquire(lease, customers.LEASE)) is not None:
            with held:
                created = _create_unless_recorded(db, api, offer, purchase, passed_over)
            if created is not None:
                return _offer(created, purchase)
            continue  # the lease's previous holder recorded one: offer that
        recorded = functools.partial(_recorded_since, offer, current)
        if not leases.wait_while_held(lease, deadline=deadline, done=recorded):
            raise BUSY("This payment is being set up; try again in a moment.")


def _require_featurable(db: firestore.Client, uid: str, listing_id: str) -> None:
    snapshot = listing_ref(db, listing_id).get()
    if not snapshot.exists:
        raise NO_SUCH_LISTING()
    listing = snapshot.to_dict() or {}
    if listing.get("ownerId") != uid:
        raise NOT_LISTING_OWNER("Only the listing's agent may feature it.")
    if listing.get("status") != "active":
        raise LISTING_NOT_ACTIVE()


def _pending(offer: firestore.DocumentReference) -> _Pending:
    stored = offer.get().to_dict() or {}
    intent, attempt = stored.get("paymentIntentId"), stored.get("attempt")
    return _Pending(
        intent if isinstance(intent, str) else None, attempt if isinstance(attempt, str) else None
    )


def _recorded_since(offer: firestore.DocumentReference, seen: str | None) -> bool:
    return _pending(offer).intent not in (None, seen)


def _create_unless_recorded(
    db: firestore.Client,
    api: stripe.StripeClient,
    offer: firestore.DocumentReference,
    purchase: _Purchase,
    passed_over: str | None,
) -> stripe.PaymentIntent | None:
    """Under the lease: create the PaymentIntent, unless one was recorded since we looked."""
    pending = _pending(offer)
    if pending.intent not in (None, passed_over):
        return None
    # A creator whose lease ran out may have reached Stripe: its successor reuses the
    # attempt (the same idempotency key), so Stripe answers with the same intent. The key
    # is stored before Stripe is called, so that successor finds it.
    attempt = pending.attempt if pending.intent is None else None
    attempt = attempt or uuid.uuid4().hex
    expires = dt.datetime.now(dt.UTC) + LOCK_TTL
    fields = {"uid": purchase.uid, "attempt": attempt, "paymentIntentId": None}
    offer.set({**fields, "expiresAt": expires})
    return _create(db, api, offer, attempt, purchase)


def _reusable(intent: stripe.PaymentIntent, purchase: _Purchase) -> bool:
    return (
        intent.status in REUSABLE
        and intent.customer == purchase.customer_id
        and intent.amount == purchase.amount.amount
        and intent.currency.upper() == purchase.amount.currency
    )


def _create(
    db: firestore.Client,
    api: stripe.StripeClient,
    offer: firestore.DocumentReference,
    attempt: str,
    purchase: _Purchase,
) -> stripe.PaymentIntent:
    amount, request = purchase.amount, purchase.request
    params: dict[str, Any] = {
        "amount": amount.amount,
        "currency": amount.currency.lower(),
        "customer": purchase.customer_id,
        "payment_method_types": ["card"],
        "metadata": {
            "uid": purchase.uid,
            "listingId": request.listingId,
            "days": str(request.days),
            "purpose": PURPOSE,
        },
    }
    # Should this fail, leaving the lease's block frees it at once, and the attempt stays
    # in the offer document: if Stripe did create the intent, the retry gets it back.
    intent = api.v1.payment_intents.create(
        params=params,  # type: ignore[arg-type]
        options={"idempotency_key": f"featured-{attempt}"},
    )
    _record(db, offer, intent, purchase)
    return intent


def _record(
    db: firestore.Client,
    offer: firestore.DocumentReference,
    intent: stripe.PaymentIntent,
    purchase: _Purchase,
) -> None:
    uid, request = purchase.uid, purchase.request
    mirror = payment_ref(db, uid, intent.id)
    payment = Payment.model_validate(
        {
            "amount": purchase.amount,
            "status": intent.status,
            "purpose": PURPOSE,
            "listingId": request.listingId,
            "days": request.days,
            "stripeCreated": intent.created,
            "updatedAt": dt.datetime.now(dt.UTC),
        }
    )

    def record(transaction: firestore.Transaction) -> None:
        exists = mirror.get(transaction=transaction).exists
        if not exists:  # never overwrite what a webhook has applied since
            transaction.create(mirror, payment.model_dump(mode="python"))
        transaction.set(
            db.collection(PAYMENT_LINKS).document(intent.id),
            {
                "uid": uid,
                "purpose": PURPOSE,
                "listingId": request.listingId,
            },
        )
        transaction.set(offer, {"paymentIntentId": intent.id}, merge=True)

    run_transaction(db, record, busy_message="Your payment is being set up; try again.")


def _offer(intent: stripe.PaymentIntent, purchase: _Purchase) -> FeatureOffer:
    if not intent.client_secret:
        raise RuntimeError("Stripe returned a PaymentIntent without a client secret")
    return FeatureOffer(
        paymentIntentId=intent.id,
        clientSecret=intent.client_secret,
        customerId=purchase.customer_id,
        amount=purchase.amount,
        days=purchase.request.days,
    )


# --- the webhook's handlers -------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    """One of our featured-listing payments, read in the event's transaction."""

    uid: str
    ref: firestore.DocumentReference
    data: Mapping[str, Any]

    @property
    def status(self) -> str:
        return str(self.data.get("status"))

    @property
    def listing_id(self) -> str:
        return str(self.data.get("listingId"))


def _find(
    db: firestore.Client, transaction: firestore.Transaction, intent_id: str | None
) -> _Found | str:
    """The payment behind a PaymentIntent id, or the outcome to record instead."""
    if intent_id is None:
        return Outcome.UNKNOWN_SUBJECT
    link_snapshot = db.collection(PAYMENT_LINKS).document(intent_id).get(transaction=transaction)
    link = link_snapshot.to_dict() or {}
    uid = link.get("uid")
    if not isinstance(uid, str):
        return Outcome.UNKNOWN_SUBJECT
    if link.get("purpose") != PURPOSE:
        return OTHER_PURPOSE
    ref = payment_ref(db, uid, intent_id)
    snapshot = ref.get(transaction=transaction)
    if not snapshot.exists:
        return Outcome.UNKNOWN_SUBJECT
    return _Found(uid, ref, snapshot.to_dict() or {})


def _intent_payment(
    db: firestore.Client, transaction: firestore.Transaction, event: WebhookEvent
) -> _Found | str:
    metadata = event.data.get("metadata")
    purpose = metadata.get("purpose") if isinstance(metadata, Mapping) else None
    if purpose != PURPOSE:
        return OTHER_PURPOSE
    return _find(db, transaction, stripe_id(event.data.get("id")))


def _payment_update(found: _Found, status: str, event: WebhookEvent) -> dict[str, Any]:
    stored = found.data.get("stripeCreated")
    newest = max(event.created, stored) if isinstance(stored, int) else event.created
    return {"status": status, "stripeCreated": newest, "updatedAt": dt.datetime.now(dt.UTC)}


def _windows(
    db: firestore.Client, transaction: firestore.Transaction, listing_id: str
) -> tuple[firestore.DocumentReference, dict[str, dict[str, dt.datetime]]]:
    ref = db.collection(WINDOWS).document(listing_id)
    stored = (ref.get(transaction=transaction).to_dict() or {}).get("windows") or {}
    return ref, {k: dict(v) for k, v in stored.items() if isinstance(v, Mapping)}


def _save_windows(
    transaction: firestore.Transaction,
    ref: firestore.DocumentReference,
    windows: Mapping[str, Mapping[str, dt.datetime]],
    now: dt.datetime,
) -> None:
    running = {k: w for k, w in windows.items() if w["until"] > now}  # used up: forget
    if running:
        transaction.set(ref, {"windows": running, "updatedAt": now})
    else:
        transaction.delete(ref)


def on_payment_succeeded(
    db: firestore.Client, transaction: firestore.Transaction, event: WebhookEvent
) -> str:
    """Feature the listing for the days paid, from ``max(now, featuredUntil)``."""
    found = _intent_payment(db, transaction, event)
    if isinstance(found, str):
        return found
    if found.status in FINAL:
        return Outcome.STALE  # already applied, or refunded/disputed first: never re-feature
    listing = listing_ref(db, found.listing_id)
    listing_snapshot = listing.get(transaction=transaction)
    windows_ref, windows = _windows(db, transaction, found.listing_id)
    now = dt.datetime.now(dt.UTC)
    reason = _not_featurable(found, listing_snapshot, event)
    if reason is None:
        current = (listing_snapshot.to_dict() or {}).get("featuredUntil")
        begins = max(now, current) if isinstance(current, dt.datetime) else now
        ends = begins + dt.timedelta(days=int(found.data["days"]))
        windows[found.ref.id] = {"from": begins, "until": ends}
        transaction.update(listing, {"featuredUntil": ends})
        _save_windows(transaction, windows_ref, windows, now)
    else:
        logs.warning(
            "paid feature not applied",
            function="stripe_webhook",
            listingId=found.listing_id,
            paymentIntentId=found.ref.id,
            reason=reason,
        )
    transaction.update(found.ref, _payment_update(found, "succeeded", event))
    return Outcome.APPLIED


def _not_featurable(
    found: _Found, listing: firestore.DocumentSnapshot[Any], event: WebhookEvent
) -> str | None:
    """Why a paid feature is not applied, if it is not."""
    stored = found.data.get("amount") or {}
    paid = event.data.get("amount_received", event.data.get("amount"))
    currency = str(event.data.get("currency", "")).upper()
    if paid != stored.get("amount") or currency != stored.get("currency"):
        return "amount_mismatch"
    if not isinstance(found.data.get("days"), int):
        return "no_days"
    if not listing.exists or (listing.to_dict() or {}).get("status") != "active":
        return "listing_not_active"
    return None


def on_payment_failed(
    db: firestore.Client, transaction: firestore.Transaction, event: WebhookEvent
) -> str:
    """Mirror a failed attempt (the client may retry with another card)."""
    found = _intent_payment(db, transaction, event)
    if isinstance(found, str):
        return found
    stored = found.data.get("stripeCreated")
    if found.status in FINAL or (isinstance(stored, int) and event.created < stored):
        return Outcome.STALE
    status = event.data.get("status")
    if status not in REUSABLE | {"canceled", "processing"}:
        status = "requires_payment_method"
    transaction.update(found.ref, _payment_update(found, str(status), event))
    return Outcome.APPLIED


def on_charge_refunded(
    db: firestore.Client, transaction: firestore.Transaction, event: WebhookEvent
) -> str:
    """A refund (full or partial) removes the featured time the payment bought."""
    found = _find(db, transaction, stripe_id(event.data.get("payment_intent")))
    if isinstance(found, str):
        return found
    return _revoke(db, transaction, found, "refunded", event)


def on_dispute_closed(
    db: firestore.Client, transaction: firestore.Transaction, event: WebhookEvent
) -> str:
    """A dispute lost removes the featured time the payment bought; won changes nothing."""
    found = _find(db, transaction, stripe_id(event.data.get("payment_intent")))
    if isinstance(found, str):
        return found
    if event.data.get("status") != "lost":
        return NO_EFFECT
    return _revoke(db, transaction, found, "disputed", event)


def _revoke(
    db: firestore.Client,
    transaction: firestore.Transaction,
    found: _Found,
    status: str,
    event: WebhookEvent,
) -> str:
    if found.status in REVOKED:
        return Outcome.STALE
    listing = listing_ref(db, found.listing_id)
    listing_snapshot = listing.get(transaction=transaction)
    windows_ref, windows = _windows(db, transaction, found.listing_id)
    now = dt.datetime.now(dt.UTC)
    window = windows.pop(found.ref.id, None)
    current = (listing_snapshot.to_dict() or {}).get("featuredUntil")
    if window is not None:
        if listing_snapshot.exists and isinstance(current, dt.datetime):
            unused = min(window["until"], current) - max(window["from"], now)
            if unused > dt.timedelta(0):
                for later in windows.values():  # bought after it: each keeps its length
                    if later["from"] >= window["until"]:
                        later["from"] -= unused
                        later["until"] -= unused
                remaining = current - unused
                featured_until = remaining if remaining > now else None
                transaction.update(listing, {"featuredUntil": featured_until})
        _save_windows(transaction, windows_ref, windows, now)
    transaction.update(found.ref, _payment_update(found, status, event))
    return Outcome.APPLIED


HANDLERS: dict[str, webhooks.Handler] = {
    "payment_intent.succeeded": on_payment_succeeded,
    "payment_intent.payment_failed": on_payment_failed,
    "charge.refunded": on_charge_refunded,
    "charge.dispute.closed": on_dispute_closed,
}
"""Stripe event types this module applies, by type."""
