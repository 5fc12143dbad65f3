"""One Stripe customer per user, created on first need, never twice.

Two guards, because either alone fails somewhere:

- a lease (:mod:`firekit.leases` on ``_paymentLocks/customer-{uid}``) lets one caller at
  a time create; the others wait with plain reads for its result. This is what holds
  against localstripe, which ignores idempotency keys, and against a caller that
  outlives Stripe's 24-hour idempotency window;
- the Stripe idempotency key ``customer-{uid}`` makes a creator that died after Stripe
  answered (lease expired, next caller creates again) get the same customer back.

The id is stored in ``customers/{uid}`` and mirrored on ``users/{uid}/private/account``,
both written by functions only; ``_stripeCustomers/{customerId}`` maps it back to the
user, so a webhook finds the user with one read in its transaction.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from google.cloud import firestore

from firekit import leases
from firekit.errors import BUSY
from marketplace.profiles import account_ref

if TYPE_CHECKING:
    import stripe  # only annotations here; see stripe_api for why not at import

CUSTOMERS = "customers"
BY_STRIPE_ID = "_stripeCustomers"
LOCKS = "_paymentLocks"
LEASE = dt.timedelta(seconds=45)
"""Longer than one Stripe call with the SDK's retries (``stripe_api.REQUEST_TIMEOUT_S``)."""
WAIT = dt.timedelta(seconds=25)
"""How long a caller waits for another's creation before answering ``ABORTED``."""


def customer_ref(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    """``customers/{uid}``: the user's Stripe customer mirror."""
    return db.collection(CUSTOMERS).document(uid)


def stored_customer_id(db: firestore.Client, uid: str) -> str | None:
    """The user's Stripe customer id, if one was created."""
    value = (customer_ref(db, uid).get().to_dict() or {}).get("stripeCustomerId")
    return value if isinstance(value, str) else None


def lock_ref(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    """``_paymentLocks/customer-{uid}``: the lease of whoever is creating the customer."""
    return db.collection(LOCKS).document(f"customer-{uid}")


def ensure_customer(
    db: firestore.Client, api: stripe.StripeClient, uid: str, email: str | None
) -> str:
    """The user's Stripe customer id, creating the customer if there is none yet."""
    deadline = time.monotonic() + WAIT.total_seconds()
    lock = lock_ref(db, uid)
    while (found := stored_customer_id(db, uid)) is None:
        held = leases.try_acquire(lock, LEASE)
        if held is not None:
            # A failed creation frees the lease at once (a retry need not wait it out).
            with held:
                # Read again under the lease: its previous holder may have just finished.
                return stored_customer_id(db, uid) or _create(db, api, uid, email)
        if not leases.wait_while_held(
            lock, deadline=deadline, done=lambda: stored_customer_id(db, uid) is not None
        ):
            raise BUSY("Your payment account is being set up; try again in a moment.")
    return found


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
    batch.commit()
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
