"""Seeded payments: ``agent@`` (``seed-agent``) on the agent plan with a few of their
active listings featured, paid; ``agent2@`` (``seed-agent-2``) on no plan, nothing
featured.

Everything is real in the stack's localstripe and made by the functions' own code, in the
order a client would cause it:

1. the plan: ``plans.start`` with Stripe's test card ``pm_card_visa`` (what
   ``start_agent_plan`` runs: the customer through ``customers.ensure_customer``, the
   plan, the card attached and made the default, the subscription charged at once, its
   mirror, the profile's ``plan`` and the ``plan`` claim);
2. each feature: ``featured.start`` (what ``feature_listing`` runs: the PaymentIntent at
   the server's price, its ``Payment`` mirror and ``_stripePayments`` link), then the test
   card set on the intent and the intent confirmed, as the payment sheet does;
3. the events Stripe made meanwhile, listed from localstripe, go through
   ``reconcile.apply_since``, as the reconciliation feeds them: the webhook's own path
   and handlers, so ``featuredUntil``, the windows in ``_featuredListings``, the mirrors
   and the ledger are what the webhook writes. localstripe also delivers them to
   ``stripe_webhook`` a second after they happen: whichever comes second is a duplicate.

4. the sign-in renter's offer on ``agent@``'s first active London rental, with its holding
   deposit: ``offers.make`` (what ``make_offer`` runs: the manual-capture PaymentIntent of
   a week's rent, then the offer), the test card confirmed on the intent as the payment
   sheet does, and the hold recorded as Stripe reports it (``deposits.refresh``: localstripe
   sends no ``amount_capturable_updated``).

Loading again creates nothing new: a plan that the mirror and Stripe both show active is
kept, and a listing whose paid window is still running gets its ``featuredUntil`` back
from ``_featuredListings`` (the marketplace seed has just overwritten the listing). A
``customers/{uid}`` naming a customer localstripe does not have means Firestore and
localstripe are out of step (localstripe starts empty with every stack): refused, with
what to do.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import stripe
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from marketplace import offers
from marketplace.listings import listing_ref
from marketplace.models.billing import Customer, Payment, Subscription
from marketplace.models.deals import Offer, RentConditions
from marketplace.payments import customers, deposits, featured, plans, reconcile, stripe_api
from marketplace.payments.requests import FeatureRequest, StartPlanRequest
from seed.accounts import SeedUser
from seed.documents import SeedDoc

PLAN_AGENT = "seed-agent"
"""On the agent plan, with featured listings."""
NO_PLAN_AGENT = "seed-agent-2"
"""On no plan, nothing featured, no Stripe customer."""
SIGN_IN_AGENTS = (PLAN_AGENT, NO_PLAN_AGENT)
"""Their listings' featured state comes from real payments, never from the generator."""
FEATURED_DAYS = (7, 14, 30)
"""One featured listing per entry, bought for that many days."""
RENTER = "seed-renter"
"""Offers on ``seed-agent``'s first active London rental, with a held deposit."""
TEST_CARD = "pm_card_visa"
"""Stripe's test PaymentMethod (Visa 4242 4242 4242 4242), known to localstripe too (so
the seed also runs against Stripe's test mode, which refuses raw card numbers)."""


def featured_choices(documents: Sequence[SeedDoc]) -> list[tuple[str, int]]:
    """``(listingId, days)`` of the listings the seed features: ``seed-agent``'s first
    active ones, London first (where the sign-in buyers look)."""
    active = [
        d
        for d in documents
        if d.collection == "listings"
        and d.data["ownerId"] == PLAN_AGENT
        and d.data["status"] == "active"
    ]
    active.sort(key=lambda d: (d.data["address"]["city"] != "London", d.path))
    if len(active) < len(FEATURED_DAYS):
        raise ValueError(f"{PLAN_AGENT} has {len(active)} active listings to feature")
    return [(d.path.split("/")[1], days) for d, days in zip(active, FEATURED_DAYS, strict=False)]


def client() -> stripe.StripeClient:
    """The functions' Stripe client, on this stack's localstripe. Outside the tests (which
    set them) the key and address come from the dev stack's definition, as the functions
    read them under the emulators."""
    if "STRIPE_SECRET_KEY" not in os.environ:
        scripts = str(Path(__file__).resolve().parents[1] / "scripts")
        if scripts not in sys.path:
            sys.path.insert(0, scripts)
        import devstack

        offset = int(os.environ.get("PYTEST_FIREBASE_PORT_OFFSET", "0"))
        for name, value in devstack.stripe_environment(offset).items():
            os.environ.setdefault(name, value)
    return stripe_api.client()


def load(
    db: firestore.Client, people: Sequence[SeedUser], documents: Sequence[SeedDoc]
) -> list[SeedDoc]:
    """Put ``seed-agent`` on the plan and feature their chosen listings (reusing what
    exists); the payment documents as stored, for the summary."""
    agent = next(p for p in people if p.uid == PLAN_AGENT)
    api = client()
    since = int(time.time()) - 1  # Stripe's times are whole seconds
    _check_in_step(db, api, agent.uid)
    _start_plan(db, api, agent)
    now = dt.datetime.now(dt.UTC)
    wanted = featured_choices(documents)
    for listing_id, days in wanted:
        if not _restore_feature(db, agent.uid, listing_id, now):
            _buy_feature(db, api, agent, listing_id, days)
    customer_id = customers.stored_customer_id(db, agent.uid)
    if customer_id is None:
        raise RuntimeError(f"{agent.uid} has no Stripe customer after starting the plan")
    reconcile.apply_since(db, api, since)  # as reconciliation feeds them
    plans.sync_plan_claim(db, agent.uid)  # an Auth emulator emptied since keeps no claim
    for listing_id, _ in wanted:
        until = (listing_ref(db, listing_id).get().to_dict() or {}).get("featuredUntil")
        if not isinstance(until, dt.datetime) or until <= now:
            raise RuntimeError(f"listings/{listing_id} is not featured after paying for it")
    renter = next(p for p in people if p.uid == RENTER)
    offer_id = _hold_deposit(db, api, renter, deposit_listing(documents), now)
    offer = db.document(f"offers/{offer_id}").get()
    held = [SeedDoc(offer.reference.path, Offer, offer.to_dict() or {})]
    return stored(db, agent.uid) + stored(db, renter.uid) + held


def deposit_listing(documents: Sequence[SeedDoc]) -> str:
    """``seed-agent``'s first active London rental: where ``renter@`` has offered."""
    rentals = sorted(
        d.path
        for d in documents
        if d.collection == "listings"
        and d.data["ownerId"] == PLAN_AGENT
        and d.data["status"] == "active"
        and d.data["kind"] == "rent"
        and d.data["address"]["city"] == "London"
    )
    if not rentals:
        raise ValueError(f"{PLAN_AGENT} has no active London rental for {RENTER}'s offer")
    return rentals[0].split("/")[1]


def _hold_deposit(
    db: firestore.Client,
    api: stripe.StripeClient,
    renter: SeedUser,
    listing_id: str,
    now: dt.datetime,
) -> str:
    """The renter's open offer with its deposit held (kept if Stripe still holds it)."""
    for offer in (
        db.collection("offers").where(filter=FieldFilter("buyerId", "==", renter.uid)).stream()
    ):
        data = offer.to_dict() or {}
        deposit = data.get("deposit") or {}
        if data.get("listingId") == listing_id and data.get("status") == "open" and deposit:
            found = api.v1.payment_intents.retrieve(deposit["paymentIntentId"])
            if deposit.get("state") == "held" and found.status == "requires_capture":
                return offer.id
    rent = (listing_ref(db, listing_id).get().to_dict() or {})["price"]
    request = offers.MakeOfferRequest(
        listingId=listing_id,
        amount=rent["amount"] // 100 * 97,  # 3% under the asking rent
        currency=rent["currency"],
        conditions=RentConditions(
            moveInDate=(now + dt.timedelta(days=30)).date().isoformat(), termMonths=12
        ),
        expiresAt=now + dt.timedelta(days=6),  # inside the card hold's 7 days
        message="Working in London from next month; references ready.",
    )
    made = offers.make(
        db,
        buyer_uid=renter.uid,
        email_verified=True,
        request=request,
        stripe_api=lambda: api,
        email=renter.email,
    )
    if made.deposit is None:
        raise RuntimeError(f"{RENTER}'s offer on {listing_id} came with no deposit")
    api.v1.payment_intents.update(
        made.deposit.paymentIntentId, params={"payment_method": TEST_CARD}
    )
    api.v1.payment_intents.confirm(made.deposit.paymentIntentId)
    if deposits.refresh(db, api, made.offerId) != "applied":
        raise RuntimeError(f"{RENTER}'s deposit on {listing_id} is not held after confirming")
    return made.offerId


def _check_in_step(db: firestore.Client, api: stripe.StripeClient, uid: str) -> None:
    customer_id = customers.stored_customer_id(db, uid)
    if customer_id is None:
        return
    try:
        api.v1.customers.retrieve(customer_id)
    except stripe.InvalidRequestError as exc:
        if exc.http_status != 404:
            raise
        raise RuntimeError(
            f"customers/{uid} names {customer_id}, which localstripe does not have: this "
            "Firestore outlived its localstripe. Restart the stack (or empty Firestore)."
        ) from exc


def _start_plan(db: firestore.Client, api: stripe.StripeClient, agent: SeedUser) -> None:
    """The plan as ``start_agent_plan`` starts it, unless mirror and Stripe show it live."""
    mirrored = db.collection(f"customers/{agent.uid}/subscriptions").stream()
    live = [
        s.id
        for s in mirrored
        if s.get("plan") == plans.PLAN_ID and s.get("status") in plans.GRANTING
    ]
    if live and api.v1.subscriptions.retrieve(live[0]).status in plans.GRANTING:
        return
    started = plans.start(
        db,
        api,
        uid=agent.uid,
        email=agent.email,
        request=StartPlanRequest(paymentMethodId=TEST_CARD),
    )
    if started.plan != plans.PLAN:
        raise RuntimeError(f"the seeded plan did not start: {started.status}")


def _restore_feature(db: firestore.Client, uid: str, listing_id: str, now: dt.datetime) -> bool:
    """Give the listing back the ``featuredUntil`` its paid, still running windows set (the
    marketplace seed overwrote it); False if it has none."""
    windows = db.collection(featured.WINDOWS).document(listing_id).get().to_dict() or {}
    paid = {
        s.id
        for s in db.collection(f"customers/{uid}/payments").stream()
        if (s.to_dict() or {}).get("status") == "succeeded"
    }
    ends = [
        w["until"]
        for pi, w in (windows.get("windows") or {}).items()
        if pi in paid and w["until"] > now
    ]
    if not ends:
        return False
    listing_ref(db, listing_id).update({"featuredUntil": max(ends)})
    return True


def _buy_feature(
    db: firestore.Client, api: stripe.StripeClient, agent: SeedUser, listing_id: str, days: int
) -> None:
    """What ``feature_listing`` and then the payment sheet do."""
    offer = featured.start(
        db,
        api,
        uid=agent.uid,
        email=agent.email,
        request=FeatureRequest(listingId=listing_id, days=days),
    )
    api.v1.payment_intents.update(offer.paymentIntentId, params={"payment_method": TEST_CARD})
    intent = api.v1.payment_intents.confirm(offer.paymentIntentId)
    if intent.status != "succeeded":
        raise RuntimeError(f"the seeded payment for {listing_id} is {intent.status}")


def stored(db: firestore.Client, uid: str) -> list[SeedDoc]:
    """The user's payment documents as they are stored now."""
    found: list[SeedDoc] = []
    customer = db.document(f"customers/{uid}").get()
    if customer.exists:
        found.append(SeedDoc(customer.reference.path, Customer, customer.to_dict() or {}))
    for name, model in (("subscriptions", Subscription), ("payments", Payment)):
        for snapshot in db.collection(f"customers/{uid}/{name}").stream():
            found.append(SeedDoc(snapshot.reference.path, model, snapshot.to_dict() or {}))
    return found
