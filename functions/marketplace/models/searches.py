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
    """Search criteria; functions derive ``matchKeys`` so matching reads only matches."""

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
    matchKeys: list[str] = Field(default_factory=list)
    lastNotifiedAt: dt.datetime | None = None
