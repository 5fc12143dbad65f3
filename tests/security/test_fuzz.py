"""Bad input never becomes INTERNAL: hostile bodies to every callable and to the webhook.

Every callable exported by ``main.py`` gets bodies that are not JSON, empty, truncated,
not UTF-8, bare values, nested 10,000 deep, over a mebibyte, and well-formed calls whose
fields are reserved or malformed document ids or the wrong type; the Stripe webhook gets
malformed bodies, some validly signed. Each answer must be a 4xx (or a success), never
``INTERNAL``/500, and nothing may be written but rate-limit counters. In-process through
the SDK's real request path; one e2e check proves the same wiring in the Functions emulator.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import main
import pytest
import requests
from google.cloud import firestore
from pydantic import ValidationError

from firekit.ratelimit import COLLECTION as RATE_LIMITS
from pytest_firebase.callables import CallResult, call_raw
from pytest_firebase.stack import EmulatorStack
from pytest_firebase.tokens import mint_id_token
from pytest_firebase.webhooks import stripe_webhook

CALLABLES = {
    name: getattr(main, name)
    for name in main.__all__
    if getattr(getattr(main, name), "__firebase_endpoint__", None) is not None
    and getattr(main, name).__firebase_endpoint__.callableTrigger is not None
}
DEEP = b"[" * 10_000 + b"]" * 10_000
HUGE = b'"' + b"x" * (2 * 1024 * 1024) + b'"'

RAW_BODIES: list[bytes] = [
    b"",
    b" ",
    b"not json",
    b"{",
    b'{"data": {"listingId": "ab',  # truncated
    b'{"data": "\xff\xfe\xfd"}',  # not UTF-8
    b"\xef\xbb\xbf" + b'{"data": {}}',  # a byte-order mark
    b'{"data": {"listingId": "\\ud800"}}',  # an unpaired surrogate
    b'"just a string"',
    b"42",
    b"-1e999",
    b"[]",
    b'[{"data": {}}]',
    b"null",
    b"true",
    b"{}",
    b'{"nodata": {}}',
    b'{"data": {}, "extra": 1}',
    b'{"data": NaN}',
    b'{"data": Infinity}',
    b'{"data": 1' + b"0" * 5000 + b"}",  # past Python's int digit limit
    b'{"data": 123456789012345678901234567890}',
    b'{"data": ' + DEEP + b"}",
    b'{"data": {"x": ' + DEEP + b"}}",
    DEEP,
    b'{"data": ' + HUGE + b"}",
    b'{"data": {"a": 1, "a": 2}}',
    b'{"data": {"__proto__": {"admin": true}}}',
]
DATA_VALUES: list[Any] = [None, 1, 1.5, True, "x", [], [1, 2], "__name__", {"": 1}]

HOSTILE_IDS: list[Any] = [
    "__name__",
    "__key__",
    "__x__",
    "__",
    "___",
    ".",
    "..",
    "a/b",
    "/",
    "",
    " ",
    "\u0000",
    "é" * 200,
    "x" * 1501,
    "no-such-thing",
    "a" * 128,
    5,
    -1,
    1.5,
    True,
    None,
    [],
    ["__name__"],
    {},
    {"__name__": 1},
]
WELL_FORMED: dict[str, dict[str, Any]] = {
    # Every field of each callable's request; each is swapped in turn for a hostile value.
    # Ids name nothing that exists, so no call gets as far as writing.
    "approve_listing": {"listingId": "no-such-listing"},
    "reject_listing": {"listingId": "no-such-listing", "reason": "Spam."},
    "set_listing_status": {"listingId": "no-such-listing", "status": "archived"},
    "feature_listing": {"listingId": "no-such-listing", "days": 3},
    "set_user_role": {"uid": "no-such-user", "role": "agent"},
    "request_photo_upload": {
        "target": "listing",
        "listingId": "no-such-listing",
        "contentType": "image/jpeg",
    },
    "arrange_listing_photos": {"listingId": "no-such-listing", "order": ["A" * 20]},
    "search_near": {"lat": 51.5, "lng": -0.12, "radiusKm": 2, "cursor": "no-such-cursor"},
    # A well-formed card would reach Stripe and create a customer: only broken ones here.
    "start_agent_plan": {"paymentMethodId": "pm_"},
    # Dev-only (exported under the emulators, as here): it reads, never writes.
    "explain_refusal": {"path": "listings/no-such-listing", "op": "update", "data": {}},
    "list_viewing_slots": {
        "listingId": "no-such-listing",
        "start": "2027-03-01T00:00:00Z",
        "end": "2027-03-02T00:00:00Z",
    },
    "request_viewing": {
        "listingId": "no-such-listing",
        "start": "2027-03-01T10:00:00Z",
        "requestKey": "fuzz-request-1",
        "note": "Hello",
    },
    "confirm_viewing": {"viewingId": "no-such-viewing"},
    "decline_viewing": {"viewingId": "no-such-viewing"},
    "cancel_viewing": {"viewingId": "no-such-viewing", "reason": "Busy."},
    "reschedule_viewing": {"viewingId": "no-such-viewing", "start": "2027-03-01T10:00:00Z"},
    "calendar_link": {"renew": True},
    "make_offer": {
        "listingId": "no-such-listing",
        "amount": 340_000_00,
        "currency": "GBP",
        "conditions": {"moveInDate": "2027-03-01", "termMonths": 12},
        "expiresAt": "2027-03-01T10:00:00Z",
        "message": "Hello",
    },
    "accept_offer": {"offerId": "no-such-offer"},
    "reject_offer": {"offerId": "no-such-offer", "reason": "Too low."},
    "counter_offer": {"offerId": "no-such-offer", "amount": 350_000_00},
    "withdraw_offer": {"offerId": "no-such-offer"},
    "erase_user": {"uid": "no-such-user", "reason": "Fuzzing."},
    # The admin console's: nothing they name exists (a found user's lookup is audited).
    "dismiss_report": {"reportId": "no-such-report"},
    "block_reported_user": {"reportId": "no-such-report", "reason": "Harassment."},
    "find_user": {"email": "nobody@example.com"},
    "disable_user": {"uid": "no-such-user", "disabled": True, "reason": "Fuzzing."},
    "delete_my_account": {"confirm": True},
    "export_my_data": {},
}
WRITES_WHEN_WELL_FORMED = {"calendar_link", "delete_my_account", "export_my_data"}
"""Callables whose well-formed calls write by design (the caller's calendar token, closing
the caller's account, an export): only their malformed variants run here (tests/viewings
and tests/privacy cover the calls themselves)."""
SIGNED_IN = {"role": ["admin", "agent"]}  # past every role check, to reach validation


def hostile_data(name: str) -> Iterator[Any]:
    """The well-formed request, then each field swapped for each hostile value."""
    request = WELL_FORMED[name]
    variants = [
        request,
        *({**request, field: value} for field in request for value in HOSTILE_IDS),
        {**request, "unexpected": "__name__"},
    ]
    for data in variants:
        if name not in WRITES_WHEN_WELL_FORMED or not _well_formed(name, data):
            yield data


def _well_formed(name: str, data: Any) -> bool:
    try:
        CALLABLES[name].__contract__.model.model_validate(data)
    except ValidationError:
        return False
    return True


def stored_documents(db: firestore.Client) -> list[str]:
    """Every document's path, rate-limit counters left out."""

    def walk(collections: Iterator[Any]) -> Iterator[str]:
        for collection in collections:
            if collection.id == RATE_LIMITS:
                continue
            for ref in collection.list_documents():
                yield ref.path
                yield from walk(ref.collections())

    return sorted(walk(db.collections()))


def answered_well(result: CallResult) -> bool:
    """A success, or a client error in the callable protocol's shape (never INTERNAL)."""
    if result.ok:
        return True
    return 400 <= result.status < 500 and result.error_status not in (None, "INTERNAL")


@pytest.fixture
def world(firestore_db: firestore.Client) -> Iterator[firestore.Client]:
    """A database with one of everything a callable might look up, to see it untouched."""
    firestore_db.document("listings/fuzz-home").set({"ownerId": "agent-1", "status": "active"})
    firestore_db.document("users/agent-1").set({"role": "agent", "displayName": "A"})
    before = stored_documents(firestore_db)
    yield firestore_db
    assert stored_documents(firestore_db) == before, "a refused call wrote"


def test_every_callable_is_fuzzed() -> None:
    assert set(CALLABLES) == set(WELL_FORMED)


@pytest.mark.parametrize("name", sorted(WELL_FORMED))
def test_malformed_bodies_are_invalid_argument_never_internal(
    world: firestore.Client, name: str
) -> None:
    token = mint_id_token("agent-1", claims=SIGNED_IN)
    bodies = [*RAW_BODIES, *(json.dumps({"data": value}).encode() for value in DATA_VALUES)]
    bad: list[tuple[bytes, int, Any]] = []
    for body in bodies:
        for headers, answers in (
            # Without a token, a well-formed body is refused for the caller first.
            ({}, ((400, "INVALID_ARGUMENT"), (401, "UNAUTHENTICATED"))),
            # With a good one, only the input can be at fault.
            ({"Authorization": f"Bearer {token}"}, ((400, "INVALID_ARGUMENT"),)),
        ):
            result = call_raw(CALLABLES[name], body, headers=headers)
            if (result.status, result.error_status) not in answers:
                bad.append((body[:60], result.status, result.body))
    assert bad == []


@pytest.mark.parametrize("name", sorted(WELL_FORMED))
def test_hostile_ids_and_wrong_types_are_refused_never_internal(
    world: firestore.Client, name: str
) -> None:
    token = mint_id_token("agent-1", claims=SIGNED_IN)
    headers = {"Authorization": f"Bearer {token}"}
    bad: list[tuple[Any, int, Any]] = []
    for data in hostile_data(name):
        result = call_raw(CALLABLES[name], json.dumps({"data": data}), headers=headers)
        if not answered_well(result):
            bad.append((data, result.status, result.body))
    assert bad == []


def test_reserved_ids_are_refused_at_validation(world: firestore.Client) -> None:
    token = mint_id_token("agent-1", claims=SIGNED_IN)
    for name in ("approve_listing", "reject_listing", "set_listing_status", "feature_listing"):
        data = {**WELL_FORMED[name], "listingId": "__name__"}
        result = call_raw(
            CALLABLES[name],
            json.dumps({"data": data}),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert result.error_status == "INVALID_ARGUMENT", name
        assert [d["issue"] for d in result.error_details] == ["document_id"], name


WEBHOOK_BODIES: list[bytes] = [
    b"",
    b"not json",
    b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"obj',
    b'{"id": "\xff\xfe"}',
    b'"a string"',
    b"42",
    b"[]",
    b'[{"id": "evt_1"}]',
    b"null",
    b"{}",
    b'{"id": 5, "type": ["x"], "data": "y"}',
    b'{"id": "__name__", "type": "payment_intent.succeeded", "data": {"object": []}}',
    b'{"id": "evt/../x", "type": "", "data": null}',
    b'{"id": "evt_1", "data": ' + DEEP + b"}",
    DEEP,
    b'{"id": "evt_1", "pad": ' + HUGE + b"}",
]


def test_the_webhook_answers_malformed_bodies_signed_or_not_without_a_500(
    world: firestore.Client,
) -> None:
    secret = os.environ["STRIPE_WEBHOOK_SECRET"]
    bad: list[tuple[bytes, str, int]] = []
    for body in WEBHOOK_BODIES:
        deliveries = {
            "unsigned": {},
            "forged": stripe_webhook(body, "whsec_not_ours").headers,
            "signed": stripe_webhook(body, secret).headers,
        }
        for how, signed_headers in deliveries.items():
            headers = {k: v for k, v in signed_headers.items() if k != "Content-Type"}
            result = call_raw(main.stripe_webhook, body, headers=headers)
            if not 200 <= result.status < 500:
                bad.append((body[:60], how, result.status))
    assert bad == []


@pytest.mark.e2e
def test_a_non_json_body_is_a_400_through_the_functions_emulator(
    firebase_stack: EmulatorStack,
) -> None:
    response = requests.post(
        firebase_stack.functions_url("approve_listing"),
        data=b"not json",
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert response.json()["error"]["details"][0]["issue"] == "body_json"
