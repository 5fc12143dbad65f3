"""Test data for listings: unique ids, a listing that passes every check, reads back."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

CREATED = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
SUBMITTED = dt.datetime(2026, 1, 6, 9, 0, tzinfo=dt.UTC)
Event = Callable[..., Any]


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def listing(owner: str, **overrides: Any) -> dict[str, Any]:
    """A draft of ``owner``'s that the submission trigger would publish (untidy text)."""
    data: dict[str, Any] = {
        "ownerId": owner,
        "status": "draft",
        "kind": "sale",
        "propertyType": "flat",
        "title": "  Bright two bed flat   near the park ",
        "description": "  Light, quiet, close to the Tube.  ",
        "price": {"amount": 350_000_00, "currency": "GBP"},
        "bedrooms": 2,
        "bathrooms": 1,
        "areaSqm": 70,
        "address": {
            "line1": "12 High Street",
            "line2": None,
            "city": "  London ",
            "postcode": " sw1a  1aa",
            "country": "GB",
        },
        "location": {"lat": 51.5014, "lng": -0.1419},
        "photos": ["https://img.example.test/1.jpg"],
        "features": ["balcony"],
        "createdAt": CREATED,
        "updatedAt": CREATED,
    }
    data.update(overrides)
    return data


def submit(db: Any, firestore_event: Event, data: dict[str, Any], listing_id: str = "") -> Any:
    """Store ``data`` as submitted (``pending_review``) and return the submission event."""
    listing_id = listing_id or uid("home")
    before = {**data, "status": "draft"}
    after = {**data, "status": "pending_review", "updatedAt": SUBMITTED}
    db.document(f"listings/{listing_id}").set(after)
    return listing_id, firestore_event(
        f"listings/{listing_id}", before=before, after=after, kind="updated"
    )


def stored(db: Any, listing_id: str) -> dict[str, Any]:
    result: dict[str, Any] = db.document(f"listings/{listing_id}").get().to_dict()
    return result


def audit_entries(db: Any) -> list[dict[str, Any]]:
    return [doc.to_dict() for doc in db.collection("auditLog").stream()]
