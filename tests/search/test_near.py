"""Search near a point: exactly the brute-force answer, read from the cells that can match.

The cover's geometry is checked without Firestore (every point within the radius lies in
one of its ranges; every cell it reads reaches into the circle). The search itself runs
against the Firestore emulator on a seeded world of listings, in both hemispheres, on
geohash cell edges and corners, astride the antimeridian and on the equator and the
prime meridian, and every answer, page by page, is compared with a scan of every listing.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pygeohash
import pytest
from google.cloud import firestore
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from api.search import search_near
from firekit.errors import InvalidArgument
from marketplace import nearby, nearby_request
from marketplace.listings import geohash_of
from marketplace.models.listings import Listing
from pytest_firebase.auth import AuthEmulator
from pytest_firebase.callables import CallResult
from tests.listings.factories import listing as submitted_listing
from tests.listings.factories import sample_photo

Call = Callable[..., CallResult]
World = dict[str, dict[str, Any]]
NOW = dt.datetime(2026, 2, 2, 9, 0, tzinfo=dt.UTC)
TYPES = ("house", "flat", "bungalow", "maisonette", "land", "commercial", "other")
NOT_ACTIVE = ("draft", "pending_review", "under_offer", "sold", "let", "archived", "rejected")
# Name: (lat, lng, currency). Null Island is the corner of four top-level geohash cells;
# the Fiji point lies 1 km west of the antimeridian.
CENTRES = {
    "london": (51.5074, -0.1278, "GBP"),
    "sydney": (-33.8688, 151.2093, "AUD"),
    "null-island": (0.0, 0.0, "USD"),
    "fiji": (-16.8, 179.99, "USD"),
}


# --- test data ------------------------------------------------------------------------


def new_id(prefix: str = "home") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def listing(lat: float, lng: float, **overrides: Any) -> dict[str, Any]:
    """An active listing at a point, as the submission trigger leaves it."""
    data = submitted_listing(
        "agent-1",
        status="active",
        title="Two bedroom flat for sale",
        address={
            "line1": "1 High Street",
            "line2": None,
            "city": "Somewhere",
            "postcode": "AB1 2CD",
            "country": "GB",
        },
        location={"lat": lat, "lng": lng},
        photos=[sample_photo("NearPhoto00000000001"), sample_photo("NearPhoto00000000002")],
        publishedAt=NOW,
    )
    data.update(overrides)
    data["geohash"] = geohash_of(data["location"]["lat"], data["location"]["lng"])
    Listing.model_validate(data)  # the world is made of listings that fit the model
    return data


def store(db: Any, world: World) -> None:
    items = list(world.items())
    for start in range(0, len(items), 400):
        batch = db.batch()
        for listing_id, data in items[start : start + 400]:
            batch.set(db.document(f"listings/{listing_id}"), data)
        batch.commit()


def destination(lat: float, lng: float, km: float, bearing: float) -> tuple[float, float]:
    """The point ``km`` from a point along an initial bearing (degrees), on the sphere."""
    angle, phi, theta = km / nearby.EARTH_RADIUS_KM, math.radians(lat), math.radians(bearing)
    phi2 = math.asin(
        math.sin(phi) * math.cos(angle) + math.cos(phi) * math.sin(angle) * math.cos(theta)
    )
    lam = math.radians(lng) + math.atan2(
        math.sin(theta) * math.sin(angle) * math.cos(phi),
        math.cos(angle) - math.sin(phi) * math.sin(phi2),
    )
    return math.degrees(phi2), (math.degrees(lam) + 540) % 360 - 180


def scatter(
    rng: random.Random,
    lat: float,
    lng: float,
    km: tuple[float, float],
    count: int,
    bearing: float = -1,
) -> World:
    """``count`` listings between ``km[0]`` and ``km[1]`` from a point, all around it or
    towards one bearing."""
    return {
        new_id(): listing(
            *destination(
                lat, lng, rng.uniform(*km), bearing if bearing >= 0 else rng.uniform(0, 360)
            )
        )
        for _ in range(count)
    }


def random_listing(rng: random.Random, lat: float, lng: float, currency: str) -> dict[str, Any]:
    kind = rng.choice(("sale", "rent"))
    major = rng.randrange(60_000, 2_000_000, 5_000) if kind == "sale" else rng.randrange(400, 6_000)
    return listing(
        lat,
        lng,
        status="active" if rng.random() < 0.8 else rng.choice(NOT_ACTIVE),
        kind=kind,
        propertyType=rng.choice(TYPES),
        bedrooms=rng.randint(0, 6),
        price={"amount": major * 100, "currency": currency if rng.random() < 0.9 else "EUR"},
        photos=[] if rng.random() < 0.15 else [sample_photo()],
    )


def cell_edges(lat: float, lng: float, precision: int) -> Iterator[tuple[float, float]]:
    """The corners and edge midpoints of the geohash cell holding a point."""
    box = pygeohash.get_bounding_box(pygeohash.encode(lat, lng, precision))
    mid_lat, mid_lng = (box.min_lat + box.max_lat) / 2, (box.min_lon + box.max_lon) / 2
    for a in (box.min_lat, mid_lat, box.max_lat):
        for b in (box.min_lon, mid_lng, box.max_lon):
            if (a, b) != (mid_lat, mid_lng):
                yield a, b


def build_world(seed: int = 4) -> World:
    """About 700 listings around the centres: dense near them, sparse out to 45 km."""
    rng, world = random.Random(seed), {}
    for name, (lat, lng, currency) in CENTRES.items():
        for number in range(150):
            km = rng.uniform(0, 3) if rng.random() < 0.6 else rng.uniform(3, 45)
            where = destination(lat, lng, km, rng.uniform(0, 360))
            world[f"{name}-{number:03d}"] = random_listing(rng, *where, currency)
        for precision in (5, 6):
            for number, where in enumerate(cell_edges(lat, lng, precision)):
                world[f"{name}-edge{precision}-{number}"] = random_listing(rng, *where, currency)
    # Exactly on the equator, the prime meridian and the antimeridian (from both sides).
    for number, (lat, lng) in enumerate(
        [
            (0.0, 0.01),
            (0.01, 0.0),
            (0.0, -0.01),
            (-0.01, 0.0),
            (-16.8, 180.0),
            (-16.8, -180.0),
            (-16.81, -179.995),
            (-16.79, 179.995),
        ]
    ):
        world[f"line-{number}"] = random_listing(rng, lat, lng, "USD")
    # Eight homes in one building: one geohash, one distance, one price.
    for number in range(8):
        world[f"tower-{number}"] = listing(51.5101, -0.1340)
    return world


# --- the brute-force answer -----------------------------------------------------------


def sort_key(request: dict[str, Any], listing_id: str, data: dict[str, Any]) -> tuple[Any, str]:
    if request.get("sort", "distance") == "distance":
        where = data["location"]
        return (
            nearby.distance_km(request["lat"], request["lng"], where["lat"], where["lng"]),
            listing_id,
        )
    amount = data["price"]["amount"]
    return (amount if request["sort"] == "price_asc" else -amount, listing_id)


def passes(request: dict[str, Any], data: dict[str, Any]) -> bool:
    where, price = data["location"], data["price"]
    checks = [
        data["status"] == "active",
        nearby.distance_km(request["lat"], request["lng"], where["lat"], where["lng"])
        <= request["radiusKm"],
        request.get("kind") in (None, data["kind"]),
        data["propertyType"] in request.get("propertyTypes", TYPES),
        data["bedrooms"] >= request.get("bedroomsMin", 0),
        request.get("currency") in (None, price["currency"]),
        price["amount"] >= request.get("priceMin", 0),
        price["amount"] <= request.get("priceMax", math.inf),
    ]
    return all(checks)


def brute_force(world: World, request: dict[str, Any]) -> list[str]:
    matching = [(sort_key(request, i, d), i) for i, d in world.items() if passes(request, d)]
    return [listing_id for _, listing_id in sorted(matching)]


def in_cover(world: World, cover: nearby.Cover) -> int:
    """Active listings whose geohash lies in one of the cover's cells."""
    return sum(
        1
        for data in world.values()
        if data["status"] == "active" and data["geohash"].startswith(cover.cells)
    )


def all_pages(db: Any, request: dict[str, Any]) -> list[nearby.NearbySearch]:
    pages, cursor = [], None
    for _ in range(200):
        found = nearby.search(
            db, nearby_request.NearbyRequest.model_validate({**request, "cursor": cursor})
        )
        pages.append(found)
        cursor = found.page.nextCursor
        if cursor is None:
            return pages
    raise AssertionError("pagination did not end")


def random_request(rng: random.Random) -> dict[str, Any]:
    name = rng.choice(list(CENTRES))
    lat, lng, currency = CENTRES[name]
    lat, lng = destination(lat, lng, rng.uniform(0, 3), rng.uniform(0, 360))
    request: dict[str, Any] = {
        "lat": lat,
        "lng": lng,
        "radiusKm": round(math.exp(rng.uniform(math.log(0.1), math.log(50))), 3),
        "sort": rng.choice(("distance", "price_asc", "price_desc")),
        "limit": rng.randint(4, 50),
    }
    optional = {
        "kind": rng.choice(("sale", "rent")),
        "propertyTypes": rng.sample(TYPES, rng.randint(1, 4)),
        "bedroomsMin": rng.randint(0, 4),
        "priceMin": rng.randrange(0, 500_000_00, 100),
        "priceMax": rng.randrange(500_000_00, 2_000_000_00, 100),
    }
    request.update({k: v for k, v in optional.items() if rng.random() < 0.3})
    if request["sort"] != "distance" or "priceMin" in request or "priceMax" in request:
        request["currency"] = currency
    return request


# --- the cover, without Firestore -----------------------------------------------------

latitudes = st.floats(-89.999, 89.999)
longitudes = st.floats(-180, 180)
radii = st.floats(nearby_request.MIN_RADIUS_KM, nearby_request.MAX_RADIUS_KM)
fractions = st.one_of(st.floats(0.999, 1), st.floats(0, 1))
"""Of the radius: half of the points on the circle's edge, where a cover would fail."""


def test_distance_is_the_great_circle_distance() -> None:
    # London to Paris, and a quarter of a meridian.
    assert nearby.distance_km(51.5074, -0.1278, 48.8566, 2.3522) == pytest.approx(343.6, abs=0.5)
    assert nearby.distance_km(0, 0, 90, 0) == pytest.approx(math.pi * nearby.EARTH_RADIUS_KM / 2)
    assert nearby.distance_km(-16.8, 179.99, -16.8, -179.99) == pytest.approx(2.13, abs=0.01)


@settings(max_examples=400, deadline=None)
@given(latitudes, longitudes, radii, fractions, st.floats(0, 360))
def test_every_point_within_the_radius_lies_in_the_cover(
    lat: float, lng: float, radius: float, fraction: float, bearing: float
) -> None:
    point = destination(lat, lng, radius * fraction, bearing)
    assume(nearby.distance_km(lat, lng, *point) <= radius)

    cover = nearby.cover_circle(lat, lng, radius)

    geohash = geohash_of(*point)
    assert any(r.start <= geohash < r.end for r in cover.ranges)
    assert len(cover.ranges) <= nearby.MAX_RANGES


@settings(max_examples=60, deadline=None)
@given(latitudes, longitudes, radii)
def test_every_cell_read_reaches_into_the_circle(lat: float, lng: float, radius: float) -> None:
    cover = nearby.cover_circle(lat, lng, radius)

    for cell in cover.cells:
        box = pygeohash.get_bounding_box(cell)
        steps = [i / 24 for i in range(25)]
        nearest = min(
            nearby.distance_km(
                lat,
                lng,
                box.min_lat + (box.max_lat - box.min_lat) * a,
                box.min_lon + (box.max_lon - box.min_lon) * b,
            )
            for a in steps
            for b in steps
        )
        # Sampled on a 24 x 24 grid: the nearest sample may lie a grid step further out.
        step = nearby.distance_km(box.min_lat, box.min_lon, box.max_lat, box.max_lon) / 24
        assert nearest <= radius + step


@settings(max_examples=150, deadline=None)
@given(latitudes, longitudes, radii, st.floats(0, 1), fractions, st.floats(0, 360))
def test_a_distance_cursor_only_drops_cells_inside_it(
    lat: float, lng: float, radius: float, inner: float, fraction: float, bearing: float
) -> None:
    skip = radius * inner
    point = destination(lat, lng, skip + (radius - skip) * fraction, bearing)
    distance = nearby.distance_km(lat, lng, *point)
    assume(skip <= distance <= radius)

    cover = nearby.cover_circle(lat, lng, radius, skip_within_km=skip)

    geohash = geohash_of(*point)
    assert any(r.start <= geohash < r.end for r in cover.ranges)


def test_ranges_are_consecutive_cells_merged() -> None:
    cover = nearby.cover_circle(51.5074, -0.1278, 3)

    assert cover.precision == 6
    assert sum(r.cells for r in cover.ranges) == len(cover.cells)
    assert len(cover.ranges) < len(cover.cells) / 3
    for cell_range in cover.ranges:
        inside = [c for c in cover.cells if cell_range.start <= c < cell_range.end]
        assert len(inside) == cell_range.cells
    assert nearby.cover_circle(89.999, 10, 20).cells  # a circle around the pole


# --- the search against Firestore -----------------------------------------------------


@pytest.fixture
def world(firestore_db: firestore.Client) -> World:
    built = build_world()
    store(firestore_db, built)
    return built


def test_every_search_equals_a_brute_force_scan_page_by_page(
    firestore_db: firestore.Client, world: World
) -> None:
    rng = random.Random(11)
    sorts_seen, nonempty, compared = set(), 0, 0
    for _ in range(45):
        request = random_request(rng)
        expected = brute_force(world, request)

        pages = all_pages(firestore_db, request)

        got = [r.id for found in pages for r in found.page.results]
        assert got == expected, request
        sizes = [len(found.page.results) for found in pages]
        assert all(size == request["limit"] for size in sizes[:-1])
        assert 0 < sizes[-1] <= request["limit"] or sizes == [0]
        first = pages[0].stats
        assert first.matched == len(expected)
        assert first.documents_read == in_cover(world, first.cover)
        sorts_seen.add(request["sort"])
        nonempty, compared = nonempty + bool(expected), compared + len(expected)
    assert sorts_seen == {"distance", "price_asc", "price_desc"}
    assert nonempty >= 30 and compared >= 1000  # not a comparison of empty lists


@pytest.mark.parametrize("name", list(CENTRES))
@pytest.mark.parametrize("sort", ["distance", "price_asc", "price_desc"])
def test_every_sort_pages_through_every_match_around_each_centre(
    firestore_db: firestore.Client, world: World, name: str, sort: str
) -> None:
    lat, lng, currency = CENTRES[name]
    request = {"lat": lat, "lng": lng, "radiusKm": 12.5, "sort": sort, "limit": 7}
    if sort != "distance":
        request["currency"] = currency

    pages = all_pages(firestore_db, request)

    got = [r.id for found in pages for r in found.page.results]
    assert got == brute_force(world, request)
    assert len(got) == len(set(got)) > 20
    values = [
        r.distanceKm if sort == "distance" else r.price.amount
        for found in pages
        for r in found.page.results
    ]
    assert values == sorted(values, reverse=sort == "price_desc")


def test_results_across_the_antimeridian_come_from_both_sides(
    firestore_db: firestore.Client, world: World
) -> None:
    request = {"lat": -16.8, "lng": 179.999, "radiusKm": 5.0, "limit": 50}

    found = nearby.search(firestore_db, nearby_request.NearbyRequest.model_validate(request))

    longitudes = [r.location.lng for r in found.page.results]
    assert min(longitudes) < -179.9 and max(longitudes) > 179.9
    assert [r.id for r in found.page.results] == brute_force(world, request)[:50]


def test_a_small_search_reads_a_small_part_of_the_collection(
    firestore_db: firestore.Client, world: World
) -> None:
    request = {"lat": 51.5074, "lng": -0.1278, "radiusKm": 1.0}

    stats = nearby.search(firestore_db, nearby_request.NearbyRequest.model_validate(request)).stats

    assert stats.documents_read == in_cover(world, stats.cover)
    assert stats.matched <= stats.documents_read < len(world) / 10
    assert stats.queries == len(stats.cover.ranges)


def test_ties_page_by_listing_id_without_gaps_or_repeats(
    firestore_db: firestore.Client, world: World
) -> None:
    tower = {"lat": 51.5101, "lng": -0.1340, "radiusKm": 0.1, "limit": 3}
    for sort in ("distance", "price_asc", "price_desc"):
        request = {**tower, "sort": sort, "currency": "GBP"}

        pages = all_pages(firestore_db, request)

        got = [r.id for found in pages for r in found.page.results]
        assert got == brute_force(world, request)
        assert [i for i in got if i.startswith("tower-")] == [f"tower-{n}" for n in range(8)]


def test_a_distance_cursor_reads_less_than_the_first_page(firestore_db: firestore.Client) -> None:
    rng = random.Random(5)
    centre = (51.5074, -0.1278)
    world = scatter(rng, *centre, (0, 4), 400)
    store(firestore_db, world)
    request = {"lat": centre[0], "lng": centre[1], "radiusKm": 4.0, "limit": 50}

    pages = all_pages(firestore_db, request)

    assert [r.id for found in pages for r in found.page.results] == brute_force(world, request)
    reads = [found.stats.documents_read for found in pages]
    assert reads[0] == in_cover(world, pages[0].stats.cover)
    assert reads[-1] < reads[0]  # later pages leave out the cells wholly inside the cursor


def test_only_active_listings_are_found(firestore_db: firestore.Client) -> None:
    here = {new_id(status): listing(51.5, -0.12, status=status) for status in NOT_ACTIVE}
    active = new_id("active")
    store(firestore_db, {**here, active: listing(51.5, -0.12)})

    found = nearby.search(
        firestore_db, nearby_request.NearbyRequest(lat=51.5, lng=-0.12, radiusKm=0.5)
    )

    assert [r.id for r in found.page.results] == [active]
    assert found.stats.documents_read == 1  # the index serves active listings only


def test_each_filter_narrows_the_results(firestore_db: firestore.Client) -> None:
    homes = {
        "rent-flat-1": listing(
            51.5, -0.12, kind="rent", bedrooms=1, price={"amount": 1_500_00, "currency": "GBP"}
        ),
        "sale-house-4": listing(
            51.5,
            -0.12,
            propertyType="house",
            bedrooms=4,
            price={"amount": 900_000_00, "currency": "GBP"},
        ),
        "sale-flat-2": listing(51.5, -0.12),
        "sale-flat-eur": listing(51.5, -0.12, price={"amount": 400_000_00, "currency": "EUR"}),
    }
    store(firestore_db, homes)
    here = {"lat": 51.5, "lng": -0.12, "radiusKm": 1.0, "sort": "price_asc"}
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"currency": "GBP"}, ["rent-flat-1", "sale-flat-2", "sale-house-4"]),
        ({"currency": "GBP", "kind": "sale"}, ["sale-flat-2", "sale-house-4"]),
        ({"currency": "EUR"}, ["sale-flat-eur"]),
        ({"currency": "GBP", "propertyTypes": ["house", "land"]}, ["sale-house-4"]),
        ({"currency": "GBP", "bedroomsMin": 2}, ["sale-flat-2", "sale-house-4"]),
        (
            {"currency": "GBP", "priceMin": 1_500_00, "priceMax": 350_000_00},
            ["rent-flat-1", "sale-flat-2"],
        ),
        ({"currency": "GBP", "priceMin": 350_000_01}, ["sale-house-4"]),
    ]
    for filters, expected in cases:
        found = nearby.search(
            firestore_db, nearby_request.NearbyRequest.model_validate(here | filters)
        )
        assert [r.id for r in found.page.results] == expected, filters


def test_a_dense_area_is_read_within_the_budget_over_several_rounds(
    firestore_db: firestore.Client,
) -> None:
    rng = random.Random(8)
    # Everything in one corner of the circle: that range fills its share of the budget.
    world = scatter(rng, 51.5, -0.12, (1.5, 1.9), 60, bearing=45)
    store(firestore_db, world)
    request = nearby_request.NearbyRequest(lat=51.5, lng=-0.12, radiusKm=2.0, limit=50)

    found = nearby.search(firestore_db, request, max_reads=60)

    assert found.stats.documents_read == 60
    assert found.stats.queries > len(found.stats.cover.ranges)  # it continued in rounds
    assert found.stats.matched == 60

    with pytest.raises(InvalidArgument) as refused:
        nearby.search(firestore_db, request, max_reads=59)
    assert refused.value.details[0]["field"] == "radiusKm"
    assert refused.value.details[0]["issue"] == "too_many_listings"


# --- the callable ---------------------------------------------------------------------


def test_a_signed_in_user_of_any_role_searches(
    firestore_db: firestore.Client, call_function: Call
) -> None:
    home = listing(51.5, -0.12, title="Garden flat near the common", bedrooms=3, photos=[])
    store(firestore_db, {"home-1": home})
    request = {"lat": 51.501, "lng": -0.12, "radiusKm": 1}

    for claims in ({"role": "buyer"}, {"role": "agent"}, {"role": "admin"}, {}):
        result = call_function(search_near, request, uid=new_id("user"), claims=claims)

        assert result.data == {
            "results": [
                {
                    "id": "home-1",
                    "title": "Garden flat near the common",
                    "price": {"amount": 350_000_00, "currency": "GBP"},
                    "city": "Somewhere",
                    "location": {"lat": 51.5, "lng": -0.12},
                    "distanceKm": round(nearby.distance_km(51.501, -0.12, 51.5, -0.12), 3),
                    "bedrooms": 3,
                    "kind": "sale",
                    "propertyType": "flat",
                    "photo": None,
                }
            ],
            "nextCursor": None,
        }


def test_anonymous_callers_are_refused(call_function: Call) -> None:
    result = call_function(search_near, {"lat": 51.5, "lng": -0.12, "radiusKm": 1})

    assert (result.error_status, result.error_details) == (
        "UNAUTHENTICATED",
        {"reason": "signed_out"},
    )


def first_cursor(call_function: Call, request: dict[str, Any]) -> str:
    result = call_function(search_near, request, uid="searcher")
    cursor: str = result.data["nextCursor"]
    return cursor


def tampered(cursor: str) -> str:
    body, _, check = cursor.partition(".")
    flipped = body[:5] + ("A" if body[5] != "A" else "B") + body[6:]
    return f"{flipped}.{check}"


HERE = {"lat": 51.5, "lng": -0.12, "radiusKm": 2.0, "limit": 1}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lat": 90.5}, "lat"),
        ({"lng": -181}, "lng"),
        ({"lat": "51.5"}, "lat"),
        ({"lng": True}, "lng"),
        ({"radiusKm": 0.05}, "radiusKm"),
        ({"radiusKm": 50.1}, "radiusKm"),
        ({"limit": 0}, "limit"),
        ({"limit": 51}, "limit"),
        ({"sort": "nearest"}, "sort"),
        ({"kind": "lease"}, "kind"),
        ({"propertyTypes": []}, "propertyTypes"),
        ({"propertyTypes": ["flat", "flat"]}, "propertyTypes"),
        ({"propertyTypes": ["castle"]}, "propertyTypes.0"),
        ({"bedroomsMin": -1}, "bedroomsMin"),
        ({"priceMin": 100}, "currency"),
        ({"sort": "price_asc"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "GBP", "priceMin": 10, "priceMax": 5}, "priceMax"),
        ({"currency": "GBP", "priceMax": 1.5}, "priceMax"),
        ({"near": "me"}, "near"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": "x" * 600}, "cursor"),
    ],
)
def test_bad_requests_name_the_field(
    firestore_db: firestore.Client, call_function: Call, change: dict[str, Any], field: str
) -> None:
    result = call_function(search_near, HERE | change, uid="searcher")

    assert result.error_status == "INVALID_ARGUMENT"
    assert field in [issue["field"] for issue in result.error_details]


@pytest.mark.parametrize(
    ("spoil", "issue"),
    [
        (tampered, "cursor_malformed"),
        (lambda c: c[:-2], "cursor_malformed"),  # truncated
        (lambda c: c.replace(".", ""), "cursor_malformed"),
        (lambda c: c + "=", "cursor_malformed"),
        (lambda c: c.partition(".")[0] + ".AAAAAAAAAAAAAAAA", "cursor_malformed"),
    ],
)
def test_a_tampered_cursor_is_refused(
    firestore_db: firestore.Client, call_function: Call, spoil: Callable[[str], str], issue: str
) -> None:
    store(firestore_db, {new_id(): listing(51.5, -0.12 + n / 1000) for n in range(3)})
    cursor = first_cursor(call_function, HERE)

    result = call_function(search_near, HERE | {"cursor": spoil(cursor)}, uid="searcher")

    assert result.error_status == "INVALID_ARGUMENT"
    assert result.error_details == [
        {"field": "cursor", "issue": issue, "message": "Not a cursor this search returned."}
    ]
    assert call_function(search_near, HERE | {"cursor": cursor}, uid="searcher").ok


@pytest.mark.parametrize(
    "other", [{"radiusKm": 2.5}, {"lat": 51.6}, {"kind": "rent"}, {"sort": "price_asc"}]
)
def test_a_cursor_of_another_search_is_refused(
    firestore_db: firestore.Client, call_function: Call, other: dict[str, Any]
) -> None:
    store(firestore_db, {new_id(): listing(51.5, -0.12 + n / 1000) for n in range(3)})
    cursor = first_cursor(call_function, HERE)

    priced = {"currency": "GBP"} if "sort" in other else {}
    result = call_function(search_near, HERE | other | priced | {"cursor": cursor}, uid="s")

    assert result.error_status == "INVALID_ARGUMENT"
    assert [(i["field"], i["issue"]) for i in result.error_details] == [
        ("cursor", "cursor_mismatch")
    ]
    # The page size is not part of the search: a client may change it between pages.
    assert call_function(search_near, HERE | {"limit": 2, "cursor": cursor}, uid="s").ok


def test_more_listings_than_the_budget_are_refused_with_a_reason(
    firestore_db: firestore.Client, call_function: Call
) -> None:
    rng = random.Random(3)
    crowd = scatter(rng, 51.5, -0.12, (0, 0.9), nearby.MAX_READS + 1)
    # A quieter place 5 km north, out of reach of the crowded circle's cells.
    store(firestore_db, crowd | scatter(rng, 51.545, -0.12, (0, 0.9), 25))

    refused = call_function(search_near, {"lat": 51.5, "lng": -0.12, "radiusKm": 1}, uid="u")
    allowed = call_function(search_near, {"lat": 51.545, "lng": -0.12, "radiusKm": 1}, uid="u")

    assert refused.error_status == "INVALID_ARGUMENT"
    assert refused.error_details == [
        {
            "field": "radiusKm",
            "issue": "too_many_listings",
            "message": "More than 2,000 listings lie in this area: search a smaller radius.",
        }
    ]
    assert allowed.ok and len(allowed.data["results"]) == 20


@pytest.mark.e2e
def test_search_near_end_to_end(
    auth_emulator: AuthEmulator, firestore_db: firestore.Client, call_emulated: Call
) -> None:
    store(firestore_db, {"near": listing(51.5, -0.12), "far": listing(51.6, -0.12)})
    user = auth_emulator.sign_up(f"{new_id('searcher')}@example.com", "correct-horse-1")
    request = {"lat": 51.5, "lng": -0.1201, "radiusKm": 15, "limit": 1}

    first = call_emulated("search_near", request, user.id_token)
    second = call_emulated(
        "search_near", request | {"cursor": first.data["nextCursor"]}, user.id_token
    )
    anonymous = call_emulated("search_near", request)

    assert [r["id"] for r in first.data["results"]] == ["near"]
    assert first.data["results"][0]["distanceKm"] == pytest.approx(0.007, abs=0.001)
    assert [r["id"] for r in second.data["results"]] == ["far"]
    assert second.data["nextCursor"] is None
    assert anonymous.status == 401 and anonymous.error_status == "UNAUTHENTICATED"
    assert anonymous.error_details == {"reason": "signed_out"}
