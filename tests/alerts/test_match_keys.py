"""Match keys: a listing's probe finds every search it matches, through exactly one key."""

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


@st.composite
def listings(draw: Any) -> Listing:
    city = draw(st.sampled_from(sorted(CITIES)))
    lat, lng = CITIES[city]
    kind = draw(st.sampled_from(KINDS))
    top = 3_000_000 if kind == "sale" else 6_000
    return Listing.model_validate(listing(
        "agent", kind=kind, propertyType=draw(st.sampled_from(TYPES)),
        bedrooms=draw(st.integers(0, 6)),
        price={"amount": draw(st.integers(1, top)) * 100, "currency": "GBP"},
        address={"line1": "1 A Road", "line2": None, "city": city, "postcode": "X1 1XX",
                 "country": "GB"},
        location={"lat": lat + draw(st.floats(-0.3, 0.3)), "lng": lng + draw(st.floats(-0.4, 0.4))},
    ))  # fmt: skip


@st.composite
def searches(draw: Any) -> SavedSearch:
    city = draw(st.sampled_from(sorted(CITIES)))
    lat, lng = CITIES[city]
    kind = draw(st.sampled_from(KINDS))
    top = 3_000_000 if kind == "sale" else 6_000
    low = draw(st.none() | st.integers(0, top))
    high = draw(st.none() | st.integers(low or 0, top))
    where = draw(st.sampled_from(("city", "near", "anywhere")))
    near = None
    if where == "near":
        near = {
            "lat": lat + draw(st.floats(-0.2, 0.2)), "lng": lng + draw(st.floats(-0.3, 0.3)),
            "radiusKm": draw(st.sampled_from((0.5, 1.0, 2.5, 2.6, 10.0, 20.0, 20.5, 50.0))),
        }  # fmt: skip
    return SavedSearch.model_validate(search(
        "buyer", kind=kind, city=city if where == "city" else None, near=near,
        propertyTypes=draw(st.lists(st.sampled_from(TYPES), max_size=2, unique=True)),
        priceMin=None if low is None else low * 100, priceMax=None if high is None else high * 100,
        bedroomsMin=draw(st.none() | st.integers(0, 5)), muted=draw(st.booleans()),
    ))  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(searches(), listings())
def test_a_matching_search_holds_exactly_one_of_the_listings_probe_keys(
    wanted: SavedSearch, home: Listing
) -> None:
    shared = set(alerts.match_keys(wanted)) & set(alerts.probe_keys(home))
    if alerts.matches(wanted, home):
        assert len(shared) == 1
    assert len(shared) <= 1  # so the query returns each candidate search once


@settings(max_examples=300, deadline=None)
@given(st.floats(-60, 60), st.floats(-179, 179), st.sampled_from((0.5, 2.5, 7.0, 20.0, 50.0)))
def test_the_covering_cells_hold_every_point_of_the_circle(
    lat: float, lng: float, radius: float
) -> None:
    precision = alerts.geo_precision(radius)
    cells = set(alerts.covering_cells(lat, lng, radius, precision) or ())
    for bearing in range(0, 360, 15):
        # A point on the circle's edge (just inside).
        d = radius * 0.999 / nearby.EARTH_RADIUS_KM
        b = math.radians(bearing)
        p1 = math.radians(lat)
        p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
        l2 = math.radians(lng) + math.atan2(
            math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
        )
        edge_lat, edge_lng = math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180
        cell = alerts.listings.geohash_of(edge_lat, edge_lng)[:precision]
        assert cell in cells, (bearing, cell)


@pytest.mark.parametrize("lat", [90.0, 89.99, -89.9, 85.0])
def test_a_search_around_a_pole_keeps_few_keys_and_still_matches(lat: float) -> None:
    polar = SavedSearch.model_validate(search(
        "b", city=None, priceMax=None, near={"lat": lat, "lng": 10.0, "radiusKm": 2.5},
    ))  # fmt: skip
    keys = alerts.match_keys(polar)  # at the pole: 73,728 keys before the cap
    assert 0 < len(keys) <= alerts.MAX_ANCHOR_CELLS * len(alerts.listings.PRICE_BANDS["sale"])
    home = Listing.model_validate(listing(
        "a", location={"lat": lat - 0.01 if lat > 0 else lat + 0.01, "lng": 10.0},
    ))  # fmt: skip
    assert alerts.matches(polar, home)  # 1.1 km away
    assert len(set(keys) & set(alerts.probe_keys(home))) == 1


def test_a_muted_search_has_no_keys_and_keys_stay_few() -> None:
    assert alerts.match_keys(SavedSearch.model_validate(search("b", muted=True))) == []
    widest = SavedSearch.model_validate(search(
        "b", city=None, priceMax=None, near={"lat": 51.5, "lng": -0.1, "radiusKm": 20.0},
    ))  # fmt: skip
    assert len(alerts.match_keys(widest)) <= 200
