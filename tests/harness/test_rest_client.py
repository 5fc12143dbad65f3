"""The REST client acts exactly as a client SDK would: values, queries, writes."""

from __future__ import annotations

import datetime as dt

import stripe
from google.cloud import firestore

from pytest_firebase.rest import SERVER_TIMESTAMP, FirestoreRest, GeoPoint, Reference
from pytest_firebase.webhooks import stripe_event, stripe_webhook

EVERY_KIND = {
    "null": None,
    "flag": True,
    "count": 7,
    "ratio": 0.25,
    "name": "Ana",
    "raw": b"\x00\x01",
    "when": dt.datetime(2026, 11, 24, 12, 30, tzinfo=dt.UTC),
    "where": GeoPoint(51.5, -0.12),
    "ref": Reference("users/ana"),
    "tags": ["a", 1, {"nested": [True]}],
    "address": {"city": "Leeds", "rooms": {"bed": 2}},
}


def test_every_value_kind_round_trips(
    admin_rest: FirestoreRest, firestore_db: firestore.Client
) -> None:
    admin_rest.set("things/t1", EVERY_KIND).expect_ok()

    assert admin_rest.get("things/t1").data == EVERY_KIND
    stored = firestore_db.document("things/t1").get().to_dict()
    assert stored["address"] == {"city": "Leeds", "rooms": {"bed": 2}}
    assert stored["where"].latitude == 51.5


def test_create_refuses_an_existing_document_and_update_a_missing_one(
    admin_rest: FirestoreRest, firestore_db: firestore.Client
) -> None:
    assert admin_rest.create("things/t1", {"n": 1}).ok
    assert admin_rest.create("things/t1", {"n": 2}).status == 409
    assert admin_rest.update("things/missing", {"n": 1}).status == 404
    assert admin_rest.update("things/t1", {"m": 2}).ok
    assert admin_rest.get("things/t1").data == {"n": 1, "m": 2}  # a masked update merges


def test_server_timestamps_are_request_time(
    admin_rest: FirestoreRest, firestore_db: firestore.Client
) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)

    admin_rest.set("things/t1", {"at": SERVER_TIMESTAMP, "n": 1}).expect_ok()

    assert admin_rest.get("things/t1").data["at"] > before  # type: ignore[index]


def test_queries_filter_order_and_limit(
    admin_rest: FirestoreRest, firestore_db: firestore.Client
) -> None:
    for i in range(5):
        admin_rest.set(f"homes/h{i}", {"city": "Leeds" if i % 2 else "York", "price": i})

    result = admin_rest.query(
        "homes", [("city", "==", "Leeds")], order_by=[("price", "desc")], limit=1
    )

    assert [d["__path__"] for d in result.documents] == ["homes/h3"]


def test_signed_webhooks_verify_with_the_official_stripe_sdk() -> None:
    event = stripe_event(
        "customer.created", {"id": "cus_1", "object": "customer"}, event_id="evt_1"
    )
    delivery = stripe_webhook(event, "whsec_test")

    verified = stripe.Webhook.construct_event(
        delivery.body, delivery.headers["Stripe-Signature"], "whsec_test"
    )

    assert verified["id"] == "evt_1"
    forged = stripe_webhook(event, "whsec_other")
    try:
        stripe.Webhook.construct_event(
            forged.body, forged.headers["Stripe-Signature"], "whsec_test"
        )
    except stripe.SignatureVerificationError:
        pass
    else:
        raise AssertionError("a signature made with another secret verified")
