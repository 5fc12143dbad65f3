"""One Stripe customer per user, even when ten calls race to create it."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import stripe
from google.cloud import firestore

from marketplace.payments import customers


def test_ten_concurrent_calls_create_exactly_one_customer(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient
) -> None:
    uid = f"agent-{uuid.uuid4().hex[:8]}"

    with ThreadPoolExecutor(10) as pool:
        ids = list(
            pool.map(
                lambda _: customers.ensure_customer(
                    firestore_db, stripe_client, uid, f"{uid}@x.test"
                ),
                range(10),
            )
        )

    assert len(set(ids)) == 1
    in_stripe = [
        c for c in stripe_client.v1.customers.list().data if c.metadata.to_dict().get("uid") == uid
    ]
    assert [c.id for c in in_stripe] == ids[:1]
    stored = firestore_db.document(f"customers/{uid}").get().to_dict()
    assert stored["stripeCustomerId"] == ids[0]
    account = firestore_db.document(f"users/{uid}/private/account").get().to_dict()
    assert account["stripeCustomerId"] == ids[0]
    assert firestore_db.document(f"_stripeCustomers/{ids[0]}").get().to_dict() == {"uid": uid}


def test_a_second_call_reuses_the_customer_without_calling_stripe_again(
    firestore_db: firestore.Client, stripe_client: stripe.StripeClient
) -> None:
    uid = f"agent-{uuid.uuid4().hex[:8]}"
    first = customers.ensure_customer(firestore_db, stripe_client, uid, None)
    second = customers.ensure_customer(firestore_db, stripe_client, uid, None)

    assert first == second
    assert len(stripe_client.v1.customers.list().data) == 1
