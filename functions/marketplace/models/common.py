"""Value types shared by the marketplace's documents."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from firekit.ownership import Personal

Uid = Annotated[str, Field(min_length=1, max_length=128), Personal("uid")]
"""A user's id: personal data wherever it is stored (the ownership map must name it)."""
DocRef = Annotated[str, Field(min_length=1, max_length=128)]
HTTPS_URL = r"^https://[^\s]+$"
HttpsUrl = Annotated[str, Field(max_length=2048, pattern=HTTPS_URL)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
"""ISO 3166-1 alpha-2."""
Currency = Literal["GBP", "EUR", "USD", "CHF", "SEK", "NOK", "DKK", "PLN", "CAD", "AUD"]
"""The ISO 4217 currencies the marketplace trades in."""
MAX_MINOR_UNITS = 100_000_000_000  # a billion in major units: above any real property


class Value(BaseModel):
    """A nested map inside a document: strict types, no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid", defer_build=True)


class Money(Value):
    """An amount in minor units (pence, cents) and its ISO currency."""

    amount: Annotated[int, Field(ge=0, le=MAX_MINOR_UNITS)]
    currency: Currency


class LatLng(Value):
    """A point on Earth, in degrees."""

    lat: Annotated[float, Field(ge=-90, le=90)]
    lng: Annotated[float, Field(ge=-180, le=180)]
