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
        "photos": [sample_photo()],
        "features": ["balcony"],
        "createdAt": CREATED,
        "updatedAt": CREATED,
    }
    data.update(overrides)
    return data


def sample_photo(photo_id: str = "SamplePhoto000000001") -> dict[str, Any]:
    """A processed photo entry as the photo function records it (renditions 320 and 1024)."""
    base = f"https://storage.googleapis.com/demo-marketplace-photos/listings/x/{photo_id}"
    return {
        "id": photo_id,
        "width": 1600,
        "height": 1200,
        "placeholder": "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
        "sizes": [
            {
                "width": w,
                "height": w * 3 // 4,
                "webp": f"{base}/{w}.webp",
                "jpeg": f"{base}/{w}.jpg",
            }
            for w in (320, 1024)
        ],
        "addedAt": CREATED,
    }


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
