"""Audiences: a listing's probe finds every search it matches, in the one audience it is in."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace import alerts, nearby
from marketplace.models import Listing, SavedSearch

from .world import listing, search

CITIES = {"London": (51.5072, -0.1276), "Leeds": (53.8008, -1.5491), "Bath": (51.3781, -2.3597)}
KINDS = ("sale", "rent")
TYPES = ("flat", "house", "maisonette", "bungalow")


def place_and_kind(draw: Any) -> tuple[str, float, float, str, int]:
    """A city, its centre, a kind and the highest price (major units) drawn for it."""
    city = draw(st.sampled_from(sorted(CITIES)))
    lat, lng = CITIES[city]
    kind = draw(st.sampled_from(KINDS))
    return city, lat, lng, kind, 3_000_000 if kind == "sale" else 6_000


@st.composite
def listings(draw: Any) -> Listing:
    city, lat, lng, kind, top = place_and_kind(draw)
    return Listing.model_validate(
        listing(
            "agent",
            kind=kind,
            propertyType=draw(st.sampled_from(TYPES)),
            bedrooms=draw(st.integers(0, 6)),
            price={"amount": draw(st.integers(1, top)) * 100, "currency": "GBP"},
            address={
                "line1": "1 A Road",
                "line2": None,
                "city": city,
                "postcode": "X1 1XX",
                "country": "GB",
            },
            location={
                "lat": lat + draw(st.floats(-0.3, 0.3)),
                "lng": lng + draw(st.floats(-0.4, 0.4)),
            },
        )
    )


@st.composite
def searches(draw: Any) -> SavedSearch:
    city, lat, lng, kind, top = place_and_kind(draw)
    low = draw(st.none() | st.integers(0, top))
    high = draw(st.none() | st.integers(low or 0, top))
    where = draw(st.sampled_from(("city", "near", "anywhere")))
    near = None
    if where == "near":
        near = {
            "lat": lat + draw(st.floats(-0.2, 0.2)),
            "lng": lng + draw(st.floats(-0.3, 0.3)),
            "radiusKm": draw(st.sampled_from((0.5, 1.0, 2.5, 2.6, 10.0, 20.0, 20.5, 50.0))),
        }
    return SavedSearch.model_validate(
        search(
            "buyer",
            kind=kind,
            city=city if where == "city" else None,
            near=near,
            propertyTypes=draw(st.lists(st.sampled_from(TYPES), max_size=2, unique=True)),
            priceMin=None if low is None else low * 100,
            priceMax=None if high is None else high * 100,
            bedroomsMin=draw(st.none() | st.integers(0, 5)),
            muted=draw(st.booleans()),
        )
    )


@settings(max_examples=600, deadline=None)
@given(searches(), listings())
def test_a_matching_search_is_in_one_of_the_audiences_the_listing_probes(
    wanted: SavedSearch, home: Listing
) -> None:
    probed = alerts.probe_audiences(home)
    assert len(probed) == len(set(probed)) <= 29  # one ``in`` query takes up to 30
    if alerts.matches(wanted, home):
        assert alerts.audience(wanted) in probed


def edge_point(lat: float, lng: float, radius: float, bearing: float) -> tuple[float, float]:
    """A point just inside the circle's edge, at ``bearing`` degrees from its centre."""
    d = radius * 0.999 / nearby.EARTH_RADIUS_KM
    b = math.radians(bearing)
    p1 = math.radians(lat)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = math.radians(lng) + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    return math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180


@settings(max_examples=300, deadline=None)
@given(
    st.floats(-89.9, 89.9),
    st.floats(-180, 180) | st.sampled_from((-179.999, 179.999)),  # across the antimeridian
    st.sampled_from((0.5, 2.5, 4.0, 7.0, 20.0, 35.0, 50.0)),
)
def test_every_point_of_a_circle_probes_the_searchs_audience(
    lat: float, lng: float, radius: float
) -> None:
    near = SavedSearch.model_validate(
        search(
            "b",
            city=None,
            priceMax=None,
            near={"lat": lat, "lng": lng, "radiusKm": radius},
        )
    )
    wanted = alerts.audience(near)
    for bearing in range(0, 360, 15):
        edge_lat, edge_lng = edge_point(lat, lng, radius, bearing)
        home = Listing.model_validate(listing("a", location={"lat": edge_lat, "lng": edge_lng}))
        assert alerts.matches(near, home)
        assert wanted in alerts.probe_audiences(home), (bearing, wanted)


def test_a_search_is_anchored_as_finely_as_its_radius_allows() -> None:
    def anchor(radius: float, lat: float = 51.5) -> str:
        return alerts.near_anchor(lat, -0.12, radius).split(":")[0]

    assert [anchor(r) for r in (0.5, 2.5, 4.0, 10.0, 19.0, 50.0)] == [
        "gh5",
        "gh5",
        "gh4",
        "gh4",
        "gh4",
        "gh3",
    ]  # gh5 cells are 3 km wide in London, gh4 24 km
    assert anchor(50.0, lat=80.0) == "*"  # gh3 cells are 27 km wide there


@pytest.mark.parametrize("lat", [90.0, 89.99, -89.9, 85.0])
def test_a_search_around_a_pole_still_finds_its_listings(lat: float) -> None:
    polar = SavedSearch.model_validate(
        search(
            "b",
            city=None,
            priceMax=None,
            near={"lat": lat, "lng": 10.0, "radiusKm": 2.5},
        )
    )
    home = Listing.model_validate(
        listing(
            "a",
            location={"lat": lat - 0.01 if lat > 0 else lat + 0.01, "lng": 10.0},
        )
    )
    assert alerts.matches(polar, home)  # 1.1 km away
    assert alerts.audience(polar) in alerts.probe_audiences(home)


def test_a_muted_search_is_in_no_audience_and_others_in_exactly_one() -> None:
    assert alerts.audience(SavedSearch.model_validate(search("b", muted=True))) is None
    assert alerts.audience(SavedSearch.model_validate(search("b"))) == "sale|GBP|city:london"
    anywhere = SavedSearch.model_validate(search("b", city=None, kind="rent"))
    assert alerts.audience(anywhere) == "rent|GBP|*"
