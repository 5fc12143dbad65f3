"""``savedSearches/{searchId}``: a user's criteria, matched against new listings."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field

from firekit.docmodel import CallerUid, Client, Document, RequestTime
from marketplace.models.common import MAX_MINOR_UNITS, Currency, Uid, Value
from marketplace.models.listings import ListingKind, PropertyType


class Near(Value):
    """Within ``radiusKm`` of a point."""

    lat: Annotated[float, Field(ge=-90, le=90)]
    lng: Annotated[float, Field(ge=-180, le=180)]
    radiusKm: Annotated[float, Field(ge=0.5, le=50)]


class Channels(Value):
    """How the owner wants to hear about matches."""

    inApp: bool
    push: bool
    email: bool


Price = Annotated[int | None, Field(ge=0, le=MAX_MINOR_UNITS)]


class SavedSearch(Document):
    """Search criteria; functions put it in its ``audience`` of the alert index."""

    path = "savedSearches/{searchId}"

    ownerId: Annotated[Uid, CallerUid()]
    name: Annotated[str, Field(min_length=1, max_length=60), Client()]
    kind: Annotated[ListingKind, Client()]
    city: Annotated[str | None, Field(min_length=1, max_length=100), Client()] = None
    propertyTypes: Annotated[list[PropertyType], Field(max_length=7), Client()] = Field(
        default_factory=list
    )
    currency: Annotated[Currency, Client()]
    priceMin: Annotated[Price, Client()] = None
    priceMax: Annotated[Price, Client()] = None
    bedroomsMin: Annotated[int | None, Field(ge=0, le=50), Client()] = None
    near: Annotated[Near | None, Client()] = None
    channels: Annotated[Channels, Client()]
    muted: Annotated[bool, Client()] = False
    createdAt: Annotated[dt.datetime, RequestTime()]
    updatedAt: Annotated[dt.datetime, RequestTime(on_update=True)]

    # Written by functions only.
    audience: str | None = None
    """Where the alert index holds it (``marketplace.alerts``); None: nowhere (muted)."""
    lastNotifiedAt: dt.datetime | None = None


class SearchEntry(Value):
    """A saved search as the alert index keeps it: what matching and delivery need."""

    ownerId: Uid
    kind: ListingKind
    city: str | None = None
    propertyTypes: list[PropertyType] = Field(default_factory=list)
    currency: Currency
    priceMin: Price = None
    priceMax: Price = None
    bedroomsMin: int | None = None
    near: Near | None = None
    channels: Channels
