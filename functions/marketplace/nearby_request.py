"""What a search near a point takes: :class:`NearbyRequest`, the model ``search_near`` is
declared with. Apart from :mod:`marketplace.nearby` so that declaring the callable (every
instance's cold start) does not load the search itself (see ``bench/cold_start.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from marketplace.models.common import MAX_MINOR_UNITS, Currency
from marketplace.models.listings import ListingKind, PropertyType

MIN_RADIUS_KM = 0.1
MAX_RADIUS_KM = 50.0
"""Wider than any commute; a bigger area is a browse by city, not a search near a point."""

Sort = Literal["distance", "price_asc", "price_desc"]

Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
MinorUnits = Annotated[int, Field(ge=0, le=MAX_MINOR_UNITS)]


@dataclass(frozen=True)
class Position:
    """Where a page ends: the last result's sort value (km or minor units) and id."""

    value: float
    listing_id: str


class NearbyRequest(BaseModel):
    """A search near a point. Prices are minor units of ``currency``, which price
    filters and price sorts require (pence and cents do not compare)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    lat: Latitude
    lng: Longitude
    radiusKm: Annotated[float, Field(ge=MIN_RADIUS_KM, le=MAX_RADIUS_KM, allow_inf_nan=False)]
    kind: ListingKind | None = None
    propertyTypes: Annotated[list[PropertyType], Field(min_length=1, max_length=7)] | None = None
    currency: Currency | None = None
    priceMin: MinorUnits | None = None
    priceMax: MinorUnits | None = None
    bedroomsMin: Annotated[int, Field(ge=0, le=50)] | None = None
    sort: Sort = "distance"
    limit: Annotated[int, Field(ge=1, le=50)] = 20
    cursor: Annotated[str, Field(min_length=1, max_length=512)] | None = None

    _after: Position | None = PrivateAttr(default=None)

    @property
    def after(self) -> Position | None:
        """The decoded cursor: the page starts after this position."""
        return self._after

    @model_validator(mode="after")
    def _consistent(self) -> NearbyRequest:
        issues = _cross_field_issues(self)
        if self.cursor is not None and not issues:
            # The cursor's codec is the search's: it loads with the first search, not here.
            from marketplace.nearby import read_cursor

            self._after, issues = read_cursor(self, self.cursor)
        if issues:
            raise ValidationError.from_exception_data(
                "NearbyRequest",
                [
                    InitErrorDetails(
                        type=PydanticCustomError(issue, message), loc=(field,), input=None
                    )
                    for field, issue, message in issues
                ],
            )
        return self


def _cross_field_issues(request: NearbyRequest) -> list[tuple[str, str, str]]:
    issues = []
    priced = request.priceMin is not None or request.priceMax is not None
    if request.currency is None and (priced or request.sort != "distance"):
        issues.append(("currency", "missing", "Give a currency to filter or sort by price."))
    low, high = request.priceMin, request.priceMax
    if low is not None and high is not None and low > high:
        issues.append(("priceMax", "less_than_min", "priceMax must not be below priceMin."))
    types = request.propertyTypes or []
    if len(set(types)) != len(types):
        issues.append(("propertyTypes", "duplicates", "List each property type once."))
    return issues
