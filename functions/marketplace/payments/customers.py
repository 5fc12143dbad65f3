"""One Stripe customer per user, created on first need, never twice.

Two guards, because either alone fails somewhere:

- a Firestore lease (``_paymentLocks/customer-{uid}``, taken in a transaction) lets one
  caller at a time create; the others wait for its result. This is what holds against
  localstripe, which ignores idempotency keys, and against a caller that outlives
  Stripe's 24-hour idempotency window;
- the Stripe idempotency key ``customer-{uid}`` makes a creator that died after Stripe
  answered (lease expired, next caller creates again) get the same customer back.

The id is stored in ``customers/{uid}`` and mirrored on ``users/{uid}/private/account``,
both written by functions only; ``_stripeCustomers/{customerId}`` maps it back to the
user, so a webhook finds the user with one read in its transaction.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import stripe
from google.api_core.exceptions import Aborted as Contended
from google.cloud import firestore

from firekit.errors import Aborted
from firekit.transactions import run_transaction
from marketplace.profiles import account_ref

CUSTOMERS = "customers"
BY_STRIPE_ID = "_stripeCustomers"
LOCKS = "_paymentLocks"
LEASE = dt.timedelta(seconds=30)
"""Longer than one Stripe call with the SDK's retries."""
WAIT_S = 25.0
POLL_S = 0.2


def customer_ref(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    """``customers/{uid}``: the user's Stripe customer mirror."""
    return db.collection(CUSTOMERS).document(uid)


def stored_customer_id(db: firestore.Client, uid: str) -> str | None:
    """The user's Stripe customer id, if one was created."""
    value = (customer_ref(db, uid).get().to_dict() or {}).get("stripeCustomerId")
    return value if isinstance(value, str) else None


def _take_lease(db: firestore.Client, uid: str) -> tuple[str | None, bool]:
    """``(existing id, None)`` or ``(None, True)`` if we may create, ``(None, False)`` if
    someone else is creating right now."""
    lock = db.collection(LOCKS).document(f"customer-{uid}")
    ref = customer_ref(db, uid)

    def take(transaction: firestore.Transaction) -> tuple[str | None, bool]:
        existing = (ref.get(transaction=transaction).to_dict() or {}).get("stripeCustomerId")
        if isinstance(existing, str):
            return existing, False
        held = (lock.get(transaction=transaction).to_dict() or {}).get("until")
        now = dt.datetime.now(dt.UTC)
        if isinstance(held, dt.datetime) and held > now:
            return None, False
        transaction.set(lock, {"until": now + LEASE, "expiresAt": now + dt.timedelta(days=1)})
        return None, True

    try:
        return run_transaction(db, take, busy_message="customer being created")
    except Aborted:
        return None, False  # contended: someone else is at it; wait and look again


def ensure_customer(
    db: firestore.Client, api: stripe.StripeClient, uid: str, email: str | None
) -> str:
    """The user's Stripe customer id, creating the customer if there is none yet."""
    deadline = time.monotonic() + WAIT_S
    while True:
        existing, may_create = _take_lease(db, uid)
        if existing is not None:
            return existing
        if may_create:
            try:
                return _create(db, api, uid, email)
            except BaseException:
                # Free the lease at once, or a retry would wait it out and give up. Should
                # it have lapsed and gone to another caller meanwhile, freeing theirs at
                # worst lets a third create too: the idempotency key makes that the same
                # customer.
                db.collection(LOCKS).document(f"customer-{uid}").delete()
                raise
        # Someone else holds the lease: wait with plain reads (a transaction per poll
        # would contend with the creator's own commit) until they are done or it lapses.
        while time.monotonic() < deadline:
            time.sleep(POLL_S)
            found = stored_customer_id(db, uid)
            if found is not None:
                return found
            held = db.collection(LOCKS).document(f"customer-{uid}").get().to_dict() or {}
            until = held.get("until")
            if not isinstance(until, dt.datetime) or until <= dt.datetime.now(dt.UTC):
                break  # lapsed (its holder died) or released: try to take it
        else:
            raise Aborted("Your payment account is being set up; try again in a moment.")


COMMIT_ATTEMPTS = 3


def _create(db: firestore.Client, api: stripe.StripeClient, uid: str, email: str | None) -> str:
    params: dict[str, Any] = {"metadata": {"uid": uid}}
    if email:
        params["email"] = email
    customer = api.v1.customers.create(
        params=params,  # type: ignore[arg-type]
        options={"idempotency_key": f"customer-{uid}"},
    )
    batch = db.batch()
    batch.set(
        customer_ref(db, uid),
        {
            "stripeCustomerId": customer.id,
            "email": email,
            "createdAt": firestore.SERVER_TIMESTAMP,
        },
    )
    batch.set(account_ref(db, uid), {"stripeCustomerId": customer.id}, merge=True)
    batch.set(db.collection(BY_STRIPE_ID).document(customer.id), {"uid": uid})
    batch.delete(db.collection(LOCKS).document(f"customer-{uid}"))
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            batch.commit()
            break
        except Contended:
            # Waiters' lease transactions can hold the lock document past the emulator's
            # (or Firestore's) lock wait; the writes are plain sets: try them again.
            if attempt == COMMIT_ATTEMPTS:
                raise
    return str(customer.id)


def uid_of_customer(
    db: firestore.Client,
    transaction: firestore.Transaction | None,
    stripe_customer_id: str,
) -> str | None:
    """Our user for a Stripe customer id, read in ``transaction`` if given (None: not ours)."""
    ref = db.collection(BY_STRIPE_ID).document(stripe_customer_id)
    snapshot = ref.get(transaction=transaction)
    uid = (snapshot.to_dict() or {}).get("uid") if snapshot.exists else None
    return uid if isinstance(uid, str) else None
