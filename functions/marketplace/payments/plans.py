"""The agent plan: a Stripe subscription mirrored under ``customers/{uid}/subscriptions``,
a ``plan`` custom claim and the profile's ``plan``.

**Starting** (:func:`start`, the ``start_agent_plan`` callable). The payment sheet runs
in its *deferred intent* mode: it collects the card and hands the app a PaymentMethod;
the app calls us with its id; we create the subscription, which charges the card at
once (``payment_behavior=allow_incomplete``), and answer with the first invoice's
PaymentIntent client secret and the customer id. The sheet takes that secret and
completes: at once when the payment already succeeded, after the customer's
authentication (3-D Secure) when it needs one. Why this flow: localstripe has neither
``default_incomplete`` nor a way to subscribe a customer without a payment method, and
creating with a saved default card is what real Stripe does for "finalize on the server"
too, so both behave alike. A card declined at attach or at the first charge is
answered ``FAILED_PRECONDITION`` (``card_declined``) and the subscription it left
``incomplete`` is cancelled, so the next try (another card) starts afresh.

**One subscription per user**, even when calls race: a lease (:mod:`firekit.leases` on
``_paymentLocks/plan-{uid}``: created only if absent, so pollers never contend for a
transaction) lets one call at a time look at the customer's subscriptions in Stripe and
create one only if none is live; the Stripe idempotency key
``agent-plan-{uid}-{n}`` (``n``: how many plan subscriptions the customer already had)
makes a creator that died after Stripe answered, and its successor, get the same one.

**The mirror** (``customers/{uid}/subscriptions/{id}``, :class:`Subscription`) is written
by the webhook's handlers, inside the event's transaction, from the event's own copy of
the object, never from a network call (the webhook holds no Stripe API key). Order:
each document keeps ``stripeCreated``, the ``created`` of the newest event applied; an
event applies only if ``(created, rank of its status)`` is greater than the stored one.
Stripe's timestamps are whole seconds and one second often holds a whole lifecycle
(created ``incomplete``, paid, cancelled), so within a second the status decides by its
place in the lifecycle (:data:`RANK`: incomplete < active/trialing < past_due <
unpaid/paused < canceled/incomplete_expired): a later state never loses to an earlier one
delivered after it, whatever the delivery order. Invoice events (localstripe sends no
``customer.subscription.updated`` when a payment completes) count as what they imply:
a paid invoice makes an ``incomplete``, ``past_due`` or ``unpaid`` subscription
``active``; a failed one makes an ``active`` one ``past_due``.

**The plan** is ``agent_pro`` while some mirrored subscription to :data:`PLAN_ID` is
``active`` or ``trialing``; anything else (cancelled, unpaid, past due, paused,
incomplete) downgrades. The same transaction sets the profile's ``plan`` (what listing
review reads). The ``plan`` custom claim is synced after the commit (a webhook
followup, and the callable itself) from the mirror, merged into the other claims and
refused beyond 1,000 bytes (checked before anything is bought, too).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from firebase_admin import auth
from google.cloud import firestore
from pydantic import BaseModel, ConfigDict

from firekit import claims, leases, logs, webhooks
from firekit.errors import BUSY, FailedPrecondition, FieldIssue, InvalidArgument, NotFound
from firekit.transactions import run_transaction
from firekit.webhooks import Outcome, WebhookEvent
from marketplace import queries
from marketplace.models.billing import Subscription
from marketplace.models.common import Money
from marketplace.payments import customers
from marketplace.payments.requests import CARD_DECLINED, StartPlanRequest
from marketplace.payments.stripe_api import stripe_id
from marketplace.profiles import profile_ref

if TYPE_CHECKING:
    import stripe  # where used at run time, imported there: see stripe_api for why

PlanName = Literal["agent_pro"]
PLAN: PlanName = "agent_pro"
"""The plan's name in the claim and on the profile."""
PLAN_CLAIM = "plan"
PLAN_ID = "homefront_agent_pro_monthly"
"""The Stripe plan (a Price with this id on real Stripe), created on first need."""
PLAN_PRICE = Money(amount=4900, currency="GBP")
PLAN_INTERVAL = "month"
PLAN_PRODUCT = "Homefront Agent Pro"

GRANTING = ("active", "trialing")
ENDED = frozenset({"canceled", "incomplete_expired"})
RANK: Mapping[str, int] = {
    "incomplete": 0,
    "trialing": 1,
    "active": 1,
    "past_due": 2,
    "unpaid": 3,
    "paused": 3,
    "canceled": 4,
    "incomplete_expired": 4,
}
"""Place in the lifecycle: breaks ties between events of the same second."""
NO_EFFECT = "no_effect"
"""An event that says nothing new about the subscription (e.g. a failed first payment)."""

LEASE = dt.timedelta(seconds=60)
"""Longer than any one step of a start (the customer, then the subscription): the lease
is renewed before each, so a holder that outlived it stops before it buys anything."""
WAIT = dt.timedelta(seconds=25)
SETTING_UP = "Your plan is being set up; try again in a moment."
SYNC_ATTEMPTS = 5
LIST_LIMIT = 100


class PlanStart(BaseModel):
    """What the payment sheet needs, and where the plan stands."""

    model_config = ConfigDict(defer_build=True)

    customerId: str
    subscriptionId: str
    status: str
    """The subscription's Stripe status now (``active``, or ``incomplete`` until paid)."""
    clientSecret: str | None
    """The first invoice's PaymentIntent, for the sheet (None when nothing is due)."""
    requiresAction: bool
    """The customer must authenticate the payment (3-D Secure) in the sheet."""
    plan: PlanName | None
    """The plan as granted now; with ``requiresAction`` it follows the webhook."""


def subscription_ref(
    db: firestore.Client, uid: str, subscription_id: str
) -> firestore.DocumentReference:
    """``customers/{uid}/subscriptions/{subscriptionId}``."""
    ref: firestore.DocumentReference = (
        customers.customer_ref(db, uid).collection("subscriptions").document(subscription_id)
    )
    return ref


def _granting_query(db: firestore.Client, uid: str) -> firestore.Query:
    return queries.PLAN_SUBSCRIPTIONS.build(
        db, path={"uid": uid}, equals={"status": list(GRANTING)}
    )


def _grants(subscription: Mapping[str, Any]) -> bool:
    return subscription.get("plan") == PLAN_ID and subscription.get("status") in GRANTING


def entitled_plan(db: firestore.Client, uid: str) -> PlanName | None:
    """The plan the mirror grants ``uid`` right now."""
    found = any(_grants(s.to_dict() or {}) for s in _granting_query(db, uid).stream())
    return PLAN if found else None


# --- reading Stripe's objects (as events and the API give them, in any API version) ---


def _first_item(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    items = (obj.get(key) or {}).get("data") if isinstance(obj.get(key), Mapping) else None
    first = items[0] if isinstance(items, list) and items else None
    return first if isinstance(first, Mapping) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def subscription_plan(subscription: Mapping[str, Any]) -> str | None:
    """The plan (price) of a subscription's first item."""
    item = _first_item(subscription, "items")
    return (
        stripe_id(item.get("plan"))
        or stripe_id(item.get("price"))
        or stripe_id(subscription.get("plan"))
    )


def _observed(subscription: Mapping[str, Any]) -> dict[str, Any] | None:
    """The mirror's fields as a subscription object states them (None: not usable)."""
    status, plan = subscription.get("status"), subscription_plan(subscription)
    if status not in RANK or plan is None:
        return None
    # current_period_end moved from the subscription to its items in API 2025-03-31.
    end = _int(subscription.get("current_period_end"))
    if end is None:
        end = _int(_first_item(subscription, "items").get("current_period_end"))
    return {
        "status": status,
        "plan": plan,
        "currentPeriodEnd": dt.datetime.fromtimestamp(end, dt.UTC) if end else None,
        "cancelAtPeriodEnd": subscription.get("cancel_at_period_end") is True,
    }


def invoice_subscription(invoice: Mapping[str, Any]) -> str | None:
    """The subscription an invoice bills (``parent`` since 2025-03-31, before: top level)."""
    parent = invoice.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    nested = details.get("subscription") if isinstance(details, Mapping) else None
    return stripe_id(nested) or stripe_id(invoice.get("subscription"))


def _invoice_line(invoice: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """The plan and the period end of an invoice's first line."""
    line = _first_item(invoice, "lines")
    pricing = line.get("pricing")
    details = pricing.get("price_details") if isinstance(pricing, Mapping) else None
    plan = stripe_id(line.get("plan")) or stripe_id(line.get("price"))
    if plan is None and isinstance(details, Mapping):
        plan = stripe_id(details.get("price"))
    period = line.get("period")
    return plan, _int(period.get("end")) if isinstance(period, Mapping) else None


# --- applying what Stripe says, in order ---------------------------------------------


Proposal = Callable[[Mapping[str, Any] | None], dict[str, Any] | None]
"""From the stored mirror (None: none yet), the mirror's fields an event implies."""


def _key(created: int, fields: Mapping[str, Any]) -> tuple[int, int, bool]:
    # Same second: the later lifecycle state wins; then a scheduled cancellation.
    return created, RANK.get(str(fields.get("status")), -1), fields.get("cancelAtPeriodEnd") is True


def apply(
    db: firestore.Client,
    transaction: firestore.Transaction,
    uid: str,
    subscription_id: str,
    *,
    created: int,
    propose: Proposal,
) -> str:
    """Write what Stripe said at ``created`` about a subscription, unless the mirror
    already holds something as new; keep the profile's ``plan`` in step. In
    ``transaction``: every read first, then the writes."""
    ref = subscription_ref(db, uid, subscription_id)
    snapshot = ref.get(transaction=transaction)
    stored = snapshot.to_dict() if snapshot.exists else None
    granting = [s for s in transaction.get(_granting_query(db, uid)) if s.id != subscription_id]
    profile = profile_ref(db, uid).get(transaction=transaction)

    fields = propose(stored)
    if fields is None:
        return NO_EFFECT
    if stored is not None and _key(created, fields) <= _key(stored["stripeCreated"], stored):
        return Outcome.STALE
    mirror = Subscription.model_validate(
        {
            **fields,
            "stripeCreated": created,
            "updatedAt": dt.datetime.now(dt.UTC),
        }
    )
    transaction.set(ref, mirror.model_dump(mode="python"))
    granted = _grants(fields) or any(_grants(s.to_dict() or {}) for s in granting)
    plan = PLAN if granted else None
    if profile.exists and (profile.to_dict() or {}).get("plan") != plan:
        transaction.update(
            profile.reference, {"plan": plan, "updatedAt": firestore.SERVER_TIMESTAMP}
        )
    return Outcome.APPLIED


def on_subscription_event(
    db: firestore.Client, transaction: firestore.Transaction, event: WebhookEvent
) -> str:
    """``customer.subscription.*``: the event carries the whole subscription."""
    subscription_id, customer_id = (
        stripe_id(event.data.get("id")),
        stripe_id(event.data.get("customer")),
    )
    observed = _observed(event.data)
    if subscription_id is None or customer_id is None or observed is None:
        return Outcome.UNKNOWN_SUBJECT
    uid = customers.uid_of_customer(db, transaction, customer_id)
    if uid is None:
        return Outcome.UNKNOWN_SUBJECT
    return apply(
        db, transaction, uid, subscription_id, created=event.created, propose=lambda _: observed
    )


def _invoice_handler(paid: bool) -> webhooks.Handler:
    def handle(
        db: firestore.Client, transaction: firestore.Transaction, event: WebhookEvent
    ) -> str:
        subscription_id = invoice_subscription(event.data)
        customer_id = stripe_id(event.data.get("customer"))
        if subscription_id is None or customer_id is None:
            return Outcome.UNKNOWN_SUBJECT  # not a subscription's invoice
        uid = customers.uid_of_customer(db, transaction, customer_id)
        if uid is None:
            return Outcome.UNKNOWN_SUBJECT
        plan, end = _invoice_line(event.data)

        def propose(stored: Mapping[str, Any] | None) -> dict[str, Any] | None:
            if stored is None:
                # Paid before we saw the subscription: it is active (its own events, older
                # or of a lower rank, will not undo that). Failed: nothing to downgrade.
                if not paid or plan is None:
                    return None
                stored = {"plan": plan, "cancelAtPeriodEnd": False, "currentPeriodEnd": None}
                status = "active"
            elif paid and stored.get("status") in ("incomplete", "past_due", "unpaid"):
                status = "active"
            elif not paid and stored.get("status") in GRANTING:
                status = "past_due"
            else:
                return None
            period_end = dt.datetime.fromtimestamp(end, dt.UTC) if end else None
            stored_end = stored.get("currentPeriodEnd")
            if period_end is None or (stored_end is not None and stored_end > period_end):
                period_end = stored_end
            return {
                "status": status,
                "plan": stored["plan"],
                "currentPeriodEnd": period_end,
                "cancelAtPeriodEnd": stored.get("cancelAtPeriodEnd") is True,
            }

        return apply(db, transaction, uid, subscription_id, created=event.created, propose=propose)

    return handle


# --- the plan claim -------------------------------------------------------------------


def sync_plan_claim(db: firestore.Client, uid: str) -> PlanName | None:
    """Copy the plan the mirror grants into the ``plan`` claim, other claims kept.

    Re-reads the mirror after setting the claim and syncs again if it changed meanwhile,
    so the claim ends equal to the last committed state. An account that no longer
    exists, or whose claims have no room left (1,000 bytes), is logged and skipped: no
    retry of the event could change that.
    """
    for _ in range(SYNC_ATTEMPTS):
        plan = entitled_plan(db, uid)
        try:
            current = (auth.get_user(uid).custom_claims or {}).get(PLAN_CLAIM)
            if current != plan:
                if plan is None:
                    claims.update_claims(uid, remove=(PLAN_CLAIM,))
                else:
                    claims.update_claims(uid, {PLAN_CLAIM: plan})
        except (auth.UserNotFoundError, NotFound):
            logs.warning("plan claim not synced: no such user", uid=uid, plan=plan)
            return plan
        except FailedPrecondition as exc:
            logs.error("plan claim not synced: claims full", uid=uid, plan=plan, detail=exc.details)
            return plan
        if entitled_plan(db, uid) == plan:
            return plan
    raise BUSY("The plan kept changing while it was being applied; try again.")


def _sync_after_event(db: firestore.Client, event: WebhookEvent) -> None:
    customer_id = stripe_id(event.data.get("customer"))
    if customer_id is None:
        return
    uid = customers.uid_of_customer(db, None, customer_id)
    if uid is not None:
        sync_plan_claim(db, uid)


SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
)
HANDLERS: dict[str, webhooks.Handler] = {
    **dict.fromkeys(SUBSCRIPTION_EVENTS, on_subscription_event),
    "invoice.paid": _invoice_handler(paid=True),
    "invoice.payment_succeeded": _invoice_handler(paid=True),
    "invoice.payment_failed": _invoice_handler(paid=False),
}
"""Stripe event types this module applies, by type."""
FOLLOWUPS: dict[str, webhooks.Followup] = dict.fromkeys(HANDLERS, _sync_after_event)
"""After each of them commits: the ``plan`` claim follows the mirror."""


# --- starting the plan ----------------------------------------------------------------


def start(
    db: firestore.Client,
    api: stripe.StripeClient,
    *,
    uid: str,
    email: str | None,
    request: StartPlanRequest,
) -> PlanStart:
    """Subscribe ``uid`` to the agent plan with the card, or answer the live subscription."""
    _check_claims_room(uid)
    card = _payment_method(api, request.paymentMethodId)
    # One call per user at a time from here on: the customer's own lease would make
    # concurrent callers poll it in transactions, which can starve its creator's commit.
    with _lease(db, uid) as held:
        customer_id = customers.ensure_customer(db, api, uid, email)
        if card.get("customer") not in (None, customer_id):
            raise _unusable_card()
        _still_ours(held)
        subscription, intent = _live_or_new(db, api, uid, customer_id, card)
        if _declined(subscription, intent):
            _cancel(db, api, uid, subscription)
            raise CARD_DECLINED()
        record(db, uid, subscription)
    plan = sync_plan_claim(db, uid)
    status = intent.get("status") if intent else None
    return PlanStart(
        customerId=customer_id,
        subscriptionId=subscription["id"],
        status=subscription["status"],
        clientSecret=intent.get("client_secret") if intent else None,
        requiresAction=status in ("requires_action", "requires_confirmation"),
        plan=plan,
    )


def record(db: firestore.Client, uid: str, subscription: Mapping[str, Any]) -> str:
    """Mirror a subscription as the API just gave it (versioned by its own ``created``:
    any event about it is at least as new, so none is lost to this write)."""
    observed = _observed(subscription)
    if observed is None:
        raise RuntimeError("Stripe returned a subscription without a status or plan")

    def write(transaction: firestore.Transaction) -> str:
        return apply(
            db,
            transaction,
            uid,
            subscription["id"],
            created=subscription["created"],
            propose=lambda _: observed,
        )

    return run_transaction(db, write, busy_message="Your plan is being updated; try again.")


def _check_claims_room(uid: str) -> None:
    try:
        user = auth.get_user(uid)
    except auth.UserNotFoundError:
        raise claims.NO_SUCH_USER() from None
    claims.merge_claims(user.custom_claims, {PLAN_CLAIM: PLAN})  # CLAIMS_FULL if full


def _unusable_card() -> InvalidArgument:
    issue: FieldIssue = {
        "field": "paymentMethodId",
        "issue": "unusable_payment_method",
        "message": "No such payment method, or not one of yours.",
    }
    return InvalidArgument("The payment method cannot be used.", [issue])


def _payment_method(api: stripe.StripeClient, payment_method_id: str) -> dict[str, Any]:
    import stripe  # lazy (loaded with the client): see stripe_api

    try:
        card: dict[str, Any] = api.v1.payment_methods.retrieve(payment_method_id).to_dict()
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            raise _unusable_card() from exc
        raise
    card["customer"] = stripe_id(card.get("customer"))
    return card


def _live_or_new(
    db: firestore.Client,
    api: stripe.StripeClient,
    uid: str,
    customer_id: str,
    card: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The customer's live plan subscription, or a new one charged to ``card``; with the
    PaymentIntent of its first invoice."""
    import stripe  # lazy (loaded with the client): see stripe_api

    listed = api.v1.subscriptions.list(
        params={"customer": customer_id, "status": "all", "limit": LIST_LIMIT}
    )
    ours = [s.to_dict() for s in listed.data if subscription_plan(s.to_dict()) == PLAN_ID]
    live = sorted((s for s in ours if s["status"] not in ENDED), key=lambda s: s["created"])
    if live:
        intent = _first_payment(api, live[-1])
        if not _declined(live[-1], intent):
            return live[-1], intent
        _cancel(db, api, uid, live[-1])  # an earlier declined try, left behind: start afresh
    ensure_plan(api)
    try:
        if card.get("customer") is None:
            api.v1.payment_methods.attach(card["id"], params={"customer": customer_id})
    except stripe.CardError as exc:
        raise CARD_DECLINED() from exc
    api.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": card["id"]}}
    )
    created = api.v1.subscriptions.create(
        params={
            "customer": customer_id,
            "items": [{"plan": PLAN_ID}],
            "payment_behavior": "allow_incomplete",
            "metadata": {"uid": uid, "purpose": "agent_plan"},
        },
        options={"idempotency_key": f"agent-plan-{uid}-{len(ours)}"},
    ).to_dict()
    return created, _first_payment(api, created)


def _cancel(
    db: firestore.Client, api: stripe.StripeClient, uid: str, subscription: Mapping[str, Any]
) -> None:
    record(db, uid, api.v1.subscriptions.cancel(subscription["id"]).to_dict())


def _first_payment(
    api: stripe.StripeClient, subscription: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The PaymentIntent of the subscription's latest invoice (None: nothing to pay)."""
    invoice_id = stripe_id(subscription.get("latest_invoice"))
    if invoice_id is None:
        return None
    invoice = api.v1.invoices.retrieve(invoice_id).to_dict()
    if "payment_intent" in invoice:  # API versions before 2025-03-31, and localstripe
        intent_id = stripe_id(invoice.get("payment_intent"))
    else:  # since: through the invoice's payments
        expanded = api.v1.invoices.retrieve(invoice_id, params={"expand": ["payments"]})
        payment = _first_item(expanded.to_dict(), "payments").get("payment")
        intent_id = (
            stripe_id(payment.get("payment_intent")) if isinstance(payment, Mapping) else None
        )
    if intent_id is None:
        return None
    intent: dict[str, Any] = api.v1.payment_intents.retrieve(intent_id).to_dict()
    return intent


def _declined(subscription: Mapping[str, Any], intent: Mapping[str, Any] | None) -> bool:
    """A first payment that failed (not one waiting for authentication)."""
    failed = intent is not None and intent.get("status") in ("requires_payment_method", "canceled")
    return subscription.get("status") == "incomplete" and failed


def ensure_plan(api: stripe.StripeClient) -> None:
    """Create the plan in Stripe if it is not there yet (idempotent, race-safe)."""
    import stripe  # lazy (loaded with the client): see stripe_api

    try:
        existing = api.v1.plans.retrieve(PLAN_ID)
    except stripe.InvalidRequestError as exc:
        if exc.http_status != 404:
            raise
        params: dict[str, Any] = {
            "id": PLAN_ID,
            "amount": PLAN_PRICE.amount,
            "currency": PLAN_PRICE.currency.lower(),
            "interval": PLAN_INTERVAL,
            "product": {"name": PLAN_PRODUCT},
        }
        try:
            api.v1.plans.create(params=params, options={"idempotency_key": f"plan-{PLAN_ID}"})  # type: ignore[arg-type]
        except stripe.StripeError as race:
            # Created by a concurrent call meanwhile (409 locally, 400 on Stripe)?
            if race.http_status not in (400, 409):
                raise
            existing = api.v1.plans.retrieve(PLAN_ID)
        else:
            return
    if (existing.amount, existing.currency.upper(), existing.interval) != (
        PLAN_PRICE.amount,
        PLAN_PRICE.currency,
        PLAN_INTERVAL,
    ):
        raise RuntimeError(f"Stripe plan {PLAN_ID} does not match the price in the code")


def _still_ours(held: leases.Lease) -> None:
    """Renew the plan's lease, or stop: a holder whose lease lapsed (a slow Stripe call)
    may have been overtaken by another start, which must be the only one to subscribe."""
    try:
        held.renew(LEASE)
    except leases.LeaseLost:
        raise BUSY(SETTING_UP) from None


def _lease(db: firestore.Client, uid: str) -> leases.Lease:
    """Hold ``_paymentLocks/plan-{uid}`` for the block; wait for it up to ``WAIT``."""
    lock = db.collection(customers.LOCKS).document(f"plan-{uid}")
    return leases.acquire(lock, LEASE, wait=WAIT, busy_message=SETTING_UP)
