"""``listings/{listingId}``: a home for sale or to let, from draft to sold."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from firekit.docmodel import CallerUid, Client, Document, RequestTime, Transitions
from marketplace.models.common import CountryCode, DocRef, LatLng, Money, Uid, Value
from marketplace.models.photos import MAX_PHOTO_ISSUES, Photo, PhotoIssue

ListingStatus = Literal[
    "draft", "pending_review", "active", "under_offer", "sold", "let", "archived", "rejected"
]
PUBLIC_STATUSES = ("active", "under_offer", "sold", "let")
"""Statuses anyone (signed in or not) may read."""
PREPARING = ("draft", "rejected")
"""Before (re)submission: everything the agent wrote is still editable."""
ON_MARKET = (*PREPARING, "active", "under_offer")
"""Price, description and features stay editable while the home is on the market;
what identifies the home (address, kind, size) is fixed once it has been reviewed."""
ArchiveReason = Literal["agent_departed"]
"""Why the system (not the agent) archived a listing: its owner is no longer an agent."""
ListingKind = Literal["sale", "rent"]
PropertyType = Literal["house", "flat", "bungalow", "maisonette", "land", "commercial", "other"]
Feature = Literal[
    "garden",
    "parking",
    "garage",
    "balcony",
    "lift",
    "furnished",
    "pets_allowed",
    "step_free",
    "ev_charging",
    "solar",
    "fireplace",
    "pool",
    "new_build",
    "chain_free",
]
MAX_PHOTOS = 12
ReviewCheckName = Literal["data", "price", "photos", "address", "title", "duplicate"]
"""The submission review's checks (``data``: the stored listing fits the model at all)."""


class Address(Value):
    """A postal address."""

    line1: Annotated[str, Field(min_length=1, max_length=200)]
    line2: Annotated[str | None, Field(max_length=200)] = None
    city: Annotated[str, Field(min_length=1, max_length=100)]
    postcode: Annotated[str, Field(min_length=1, max_length=16)]
    country: CountryCode


class ReviewCheck(Value):
    """One check the submission review ran, whether it passed, and what it found."""

    check: ReviewCheckName
    passed: bool
    detail: Annotated[str, Field(max_length=500)]


class Listing(Document):
    """A listing. Agents write the description; functions own review, search and counters."""

    path = "listings/{listingId}"
    transitions = Transitions(
        field="status",
        initial=("draft",),
        moves={
            "draft": ("pending_review",),
            "pending_review": ("draft",),  # withdraw before a moderator looks at it
            "rejected": ("draft", "pending_review"),
        },
    )

    ownerId: Annotated[Uid, CallerUid()]
    status: Annotated[ListingStatus, Client()]
    kind: Annotated[ListingKind, Client(editable_when=PREPARING)]
    propertyType: Annotated[PropertyType, Client(editable_when=PREPARING)]
    title: Annotated[str, Field(min_length=5, max_length=120), Client(editable_when=ON_MARKET)]
    description: Annotated[str, Field(max_length=5000), Client(editable_when=ON_MARKET)] = ""
    price: Annotated[Money, Client(editable_when=ON_MARKET)]
    bedrooms: Annotated[int, Field(ge=0, le=50), Client(editable_when=PREPARING)]
    bathrooms: Annotated[int, Field(ge=0, le=50), Client(editable_when=PREPARING)]
    areaSqm: Annotated[int | None, Field(ge=1, le=100_000), Client(editable_when=PREPARING)] = None
    address: Annotated[Address, Client(editable_when=PREPARING)]
    location: Annotated[LatLng, Client(editable_when=PREPARING)]
    features: Annotated[list[Feature], Field(max_length=14), Client(editable_when=ON_MARKET)] = (
        Field(default_factory=list)
    )
    createdAt: Annotated[dt.datetime, RequestTime()]
    updatedAt: Annotated[dt.datetime, RequestTime(on_update=True)]

    # Written by functions only.
    photos: Annotated[list[Photo], Field(max_length=MAX_PHOTOS)] = Field(default_factory=list)
    """Processed uploads, in the agent's order (request_photo_upload, arrange_listing_photos)."""
    photoIssues: Annotated[list[PhotoIssue], Field(max_length=MAX_PHOTO_ISSUES)] = Field(
        default_factory=list
    )
    """Uploads refused, most recent last, so the agent sees why a photo did not appear."""
    geohash: Annotated[str, Field(max_length=12)] | None = None
    searchKeys: list[str] = Field(default_factory=list)
    favoritesCount: Annotated[int, Field(ge=0)] = 0
    publishedAt: dt.datetime | None = None
    featuredUntil: dt.datetime | None = None
    rejectionReason: Annotated[str, Field(max_length=500)] | None = None
    reviewedAt: dt.datetime | None = None
    acceptedOfferId: DocRef | None = None
    """The offer accepted (it put the listing under offer): one at a time, set by its
    acceptance, so two acceptances racing cannot both win."""
    archivedReason: ArchiveReason | None = None
    """Set only when the system archived the listing; an agent's own archiving leaves it unset."""
    reviewChecks: Annotated[list[ReviewCheck], Field(max_length=6)] = Field(default_factory=list)
    """The checks the last review ran (the submission trigger's, or an admin's approval),
    for the moderator: each check, passed or not, and what it found."""
