"""Search near a point: active listings within a radius, filtered, sorted, in pages.

How a search reads, and why so little:

1. **Cover.** The circle is covered with geohash cells (``pygeohash``), keeping only the
   cells whose nearest point lies within the radius (exact spherical geometry, so no cell
   that can hold a match is dropped and none that cannot is read). Cells consecutive in
   geohash order merge into one range ``[first, successor(last))``. The precision is the
   one with the lowest planned cost: the cover's area times a dense city's listing
   density (:data:`PLANNING_DENSITY`) plus a fixed cost per range query
   (:data:`QUERY_COST`); coarse cells waste reads, fine cells multiply queries.
2. **Read.** One ``NEAR`` query (``status == active``, ``geohash`` in the range, the
   declared index) per range, in parallel, projected to the fields a result shows. The
   whole search may read at most ``max_reads`` documents (:data:`MAX_READS`): each query
   gets a share of the budget as its limit, and ranges that fill their share continue
   (``start_after``) with a share of what is left, so a search reads at most
   ``max_reads + 1`` documents (the one more proves the area too dense).
3. **Refuse beyond it.** If the cover holds more than the budget, the search is refused
   (``INVALID_ARGUMENT`` on ``radiusKm``: search a smaller radius). Paging through ranges
   instead was rejected: geohash order is neither distance nor price order, so no page of
   a distance or price sort is correct until every candidate has been seen.
4. **Filter exactly, sort, page.** Haversine distance ≤ radius and the filters, in
   memory; sort by distance or price, ties broken by listing id; the cursor is the last
   result's sort key and id, so pages never repeat or skip a listing (keyset paging).
   A distance cursor also drops the cells lying wholly inside it: they hold only
   listings earlier pages already returned.

The cursor is opaque to clients but not secret: it names a position in a public result
set, so forging one gains nothing. It carries a checksum (tampering and truncation are
refused) and a fingerprint of the search (a cursor is refused for any other search).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pygeohash
from google.cloud import firestore
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
)

from firekit import logs
from firekit.errors import InvalidArgument
from marketplace import queries
from marketplace.listings import GEOHASH_PRECISION
from marketplace.models.common import MAX_MINOR_UNITS, LatLng, Money
from marketplace.models.listings import ListingKind, PropertyType
from marketplace.models.photos import Photo, PhotoSize
from marketplace.nearby_request import NearbyRequest, Position, Sort

EARTH_RADIUS_KM = 6371.0088
"""The mean Earth radius (IUGG)."""
MAX_READS = 2_000
"""Documents one search may read: about a dense city's 5 km circle (at 30 listings a
km²), around a tenth of a US cent of reads, and a bound on the function's time and memory."""
MAX_RANGES = 30
"""Range queries one search may run in parallel (a precision needing more is not used)."""
PLANNING_DENSITY = 30.0
"""Active listings per km² the cover is planned for: central London at the scale we
design for (200k active listings). Sparser places waste fewer reads, never more."""
QUERY_COST = 10.0
"""What one more range query costs, in documents read: its round trip and its minimum
charge of one read, even when it finds nothing."""
MAX_ENUMERATED_CELLS = 2_500
"""Cells enumerated at one precision before finer precisions are not even considered."""
MAX_PARALLEL = 16
"""Range queries in flight at once (threads; the client multiplexes them on one channel)."""
_SLACK_KM = 1e-6
"""A millimetre: absorbs floating-point noise in the cover's geometry; never a whole cell."""

RESULT_FIELDS = (
    "title",
    "price",
    "address.city",
    "location",
    "bedrooms",
    "kind",
    "propertyType",
    "photos",
    "geohash",
)
"""The projection a range query reads: what a result shows, plus the order-by field."""
_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
_AFTER_EVERY_GEOHASH = "~"
"""Sorts after every geohash (``~`` follows the base-32 digits and letters)."""


# --- the response ---------------------------------------------------------------------


class ResultPhoto(BaseModel):
    """A listing's first photo, as a result shows it."""

    model_config = ConfigDict(defer_build=True)

    id: str
    width: int
    height: int
    placeholder: str
    sizes: list[PhotoSize]


class NearbyListing(BaseModel):
    """One result: what a map pin or a list row shows."""

    model_config = ConfigDict(defer_build=True)

    id: str
    title: str
    price: Money
    city: str
    location: LatLng
    distanceKm: float
    """Rounded to the metre."""
    bedrooms: int
    kind: ListingKind
    propertyType: PropertyType
    photo: ResultPhoto | None
    """The first photo (its renditions and placeholder), if any."""


class NearbyPage(BaseModel):
    """One page of results; ``nextCursor`` is null on the last page."""

    model_config = ConfigDict(defer_build=True)

    results: list[NearbyListing]
    nextCursor: str | None


@dataclass(frozen=True)
class CellRange:
    """Consecutive geohash cells: ``start <= geohash < end``."""

    start: str
    end: str
    cells: int


@dataclass(frozen=True)
class Cover:
    """The cells that can hold a match, at one precision, and their merged ranges."""

    precision: int
    cells: tuple[str, ...]
    ranges: tuple[CellRange, ...]


@dataclass(frozen=True)
class SearchStats:
    """What one search cost: for tests, the benchmark and the log, not for clients."""

    cover: Cover
    queries: int
    empty_queries: int
    documents_read: int
    matched: int
    """Listings read that lie within the radius and pass the filters, before the cursor
    is applied (on a first page: every match of the search)."""

    @property
    def billed_reads(self) -> int:
        """Firestore's charge: each document, and one read for a query that found none."""
        return self.documents_read + self.empty_queries


@dataclass(frozen=True)
class NearbySearch:
    """A page for the caller and what it cost."""

    page: NearbyPage
    stats: SearchStats


# --- the search -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Match:
    listing: NearbyListing
    distance_km: float


class _City(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    city: str


class _Stored(BaseModel):
    """The projection read back: lenient about extra fields, strict about the rest."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    title: str
    price: Money
    address: _City
    location: LatLng
    bedrooms: int
    kind: ListingKind
    propertyType: PropertyType
    photos: list[Photo] = Field(default_factory=list)


def search(
    db: firestore.Client, request: NearbyRequest, *, max_reads: int = MAX_READS
) -> NearbySearch:
    """One page of active listings within ``request.radiusKm`` of the point.

    Raises ``InvalidArgument`` (on ``radiusKm``) when more than ``max_reads`` active
    listings lie in the cells covering the circle.
    """
    after = request.after
    inner = after.value if after is not None and request.sort == "distance" else None
    cover = cover_circle(request.lat, request.lng, request.radiusKm, skip_within_km=inner)
    read = _read_ranges(db, cover.ranges, budget=max_reads + 1)
    if len(read.documents) > max_reads:
        raise _too_many_listings(max_reads)
    matches = sorted(_matches(read.documents, request), key=lambda m: _order(request.sort, m))
    stats = SearchStats(cover, read.queries, read.empty, len(read.documents), len(matches))
    if after is not None:
        start = (_signed(request.sort, after.value), after.listing_id)
        matches = [m for m in matches if _order(request.sort, m) > start]
    shown = matches[: request.limit]
    next_cursor = None
    if len(matches) > request.limit:
        last = shown[-1]
        next_cursor = encode_cursor(request, _sort_value(request.sort, last), last.listing.id)
    page = NearbyPage(results=[m.listing for m in shown], nextCursor=next_cursor)
    return NearbySearch(page, stats)


def _too_many_listings(max_reads: int) -> InvalidArgument:
    message = f"More than {max_reads:,} listings lie in this area: search a smaller radius."
    return InvalidArgument(
        "Too many listings to search at once.",
        [{"field": "radiusKm", "issue": "too_many_listings", "message": message}],
    )


def _sort_value(sort: Sort, match: _Match) -> float:
    return match.distance_km if sort == "distance" else match.listing.price.amount


def _signed(sort: Sort, value: float) -> float:
    return -value if sort == "price_desc" else value


def _order(sort: Sort, match: _Match) -> tuple[float, str]:
    return (_signed(sort, _sort_value(sort, match)), match.listing.id)


def _matches(documents: Iterable[Any], request: NearbyRequest) -> Iterable[_Match]:
    for snapshot in documents:
        try:
            stored = _Stored.model_validate(snapshot.to_dict())
        except ValidationError:
            # Functions wrote it, so this is a bug elsewhere; one bad listing must not
            # break every search around it.
            logs.warning("listing unfit for search results", listingId=snapshot.id)
            continue
        where = stored.location
        distance = distance_km(request.lat, request.lng, where.lat, where.lng)
        if distance <= request.radiusKm and _passes(stored, request):
            yield _Match(_result(snapshot.id, stored, distance), distance)


def _passes(stored: _Stored, request: NearbyRequest) -> bool:
    price = stored.price
    return (
        (request.kind is None or stored.kind == request.kind)
        and (request.propertyTypes is None or stored.propertyType in request.propertyTypes)
        and (request.bedroomsMin is None or stored.bedrooms >= request.bedroomsMin)
        and (request.currency is None or price.currency == request.currency)
        and (request.priceMin is None or price.amount >= request.priceMin)
        and (request.priceMax is None or price.amount <= request.priceMax)
    )


def _result(listing_id: str, stored: _Stored, distance: float) -> NearbyListing:
    return NearbyListing(
        id=listing_id,
        title=stored.title,
        price=stored.price,
        city=stored.address.city,
        location=stored.location,
        distanceKm=round(distance, 3),
        bedrooms=stored.bedrooms,
        kind=stored.kind,
        propertyType=stored.propertyType,
        photo=ResultPhoto.model_validate(stored.photos[0].model_dump()) if stored.photos else None,
    )


# --- reading the ranges within a budget -----------------------------------------------


@dataclass(frozen=True)
class _Read:
    documents: list[Any]
    queries: int
    empty: int


def _read_ranges(db: firestore.Client, ranges: Sequence[CellRange], budget: int) -> _Read:
    """Every active listing in ``ranges``, or stop once ``budget`` documents are read.

    Each round gives every unfinished range a share of what is left of the budget (in
    proportion to its cells) as its query's limit, so the sum of limits, and with it the
    documents read, never exceeds the budget. A range that fills its share continues
    from its last document in the next round. Usually one round does it.
    """
    unfinished: dict[int, Any] = dict.fromkeys(range(len(ranges)))  # range -> last doc
    by_id: dict[str, Any] = {}
    read = queries_run = empty = 0
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(ranges)))) as pool:
        while unfinished and read < budget:
            shares = _shares(budget - read, [ranges[i].cells for i in unfinished])
            jobs = {
                i: (share, pool.submit(_fetch, db, ranges[i], last, share))
                for (i, last), share in zip(unfinished.items(), shares, strict=True)
                if share > 0
            }
            for i, (share, job) in jobs.items():
                got = job.result()
                queries_run, empty, read = queries_run + 1, empty + (not got), read + len(got)
                # A listing moved between ranges mid-search must not be shown twice.
                by_id.update((snapshot.id, snapshot) for snapshot in got)
                if len(got) < share:
                    del unfinished[i]
                else:
                    unfinished[i] = got[-1]
    return _Read(list(by_id.values()), queries_run, empty)


def _fetch(db: firestore.Client, cells: CellRange, after: Any, limit: int) -> list[Any]:
    query = queries.NEAR.build(
        db,
        equals={"status": "active"},
        ranges={"geohash": [(">=", cells.start), ("<", cells.end)]},
        limit=limit,
    ).select(RESULT_FIELDS)
    if after is not None:
        query = query.start_after(after)
    return list(query.stream())


def _shares(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` split into integers in proportion to ``weights``, each at least 1 while
    there is enough to go round, summing to at most ``total``."""
    if total < len(weights):
        return [1] * total + [0] * (len(weights) - total)
    spare, whole = total - len(weights), sum(weights)
    return [1 + spare * weight // whole for weight in weights]


# --- the cover: geohash cells that can hold a match -----------------------------------


def distance_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine), in km."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi, half_dlng = (phi2 - phi1) / 2, math.radians(lng2 - lng1) / 2
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlng) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def cover_circle(
    lat: float, lng: float, radius_km: float, *, skip_within_km: float | None = None
) -> Cover:
    """The cheapest cover (see the module's docstring) of the circle around a point.

    ``skip_within_km`` leaves out cells lying wholly within that distance of the point.
    """
    boxes = bounding_boxes(lat, lng, radius_km)
    best: Cover | None = None
    best_cost = math.inf
    for precision in range(1, GEOHASH_PRECISION + 1):
        if cells_in_boxes(boxes, precision) > MAX_ENUMERATED_CELLS:
            break
        cells = sorted(
            {
                cell
                for box in boxes
                for cell in pygeohash.geohashes_in_box(box, precision)
                if _may_hold(lat, lng, radius_km, skip_within_km, cell)
            }
        )
        ranges = _merge(cells)
        if len(ranges) > MAX_RANGES:
            break  # finer precisions only need more
        area = sum(_area_km2(pygeohash.get_bounding_box(cell)) for cell in cells)
        cost = PLANNING_DENSITY * area + QUERY_COST * len(ranges)
        if cost < best_cost:
            best, best_cost = Cover(precision, tuple(cells), tuple(ranges)), cost
    assert best is not None  # precision 1 always qualifies: 32 cells at most
    return best


def bounding_boxes(lat: float, lng: float, radius_km: float) -> list[pygeohash.BoundingBox]:
    """Latitude/longitude boxes holding the circle: one, two across the antimeridian,
    or a whole band of latitude around a pole."""
    angle = radius_km / EARTH_RADIUS_KM
    dlat = math.degrees(angle) * (1 + 1e-6)
    south, north = lat - dlat, lat + dlat
    if south <= -90 or north >= 90:  # the circle holds a pole: every longitude
        return [pygeohash.BoundingBox(max(south, -90), -180, min(north, 90), 180)]
    # The widest longitude a spherical cap reaches (at a latitude poleward of its centre).
    dlng = math.degrees(math.asin(math.sin(angle) / math.cos(math.radians(lat)))) * (1 + 1e-6)
    west, east = lng - dlng, lng + dlng
    if west < -180:
        return [
            pygeohash.BoundingBox(south, west + 360, north, 180),
            pygeohash.BoundingBox(south, -180, north, east),
        ]
    if east > 180:
        return [
            pygeohash.BoundingBox(south, west, north, 180),
            pygeohash.BoundingBox(south, -180, north, east - 360),
        ]
    return [pygeohash.BoundingBox(south, west, north, east)]


def cells_in_boxes(boxes: Sequence[pygeohash.BoundingBox], precision: int) -> int:
    """At most how many geohash cells of ``precision`` the boxes touch."""
    # Geohash bits alternate longitude and latitude, longitude first.
    lat_step = 180 / 2 ** (5 * precision // 2)
    lng_step = 360 / 2 ** ((5 * precision + 1) // 2)
    return sum(
        (math.ceil((box.max_lat - box.min_lat) / lat_step) + 2)
        * (math.ceil((box.max_lon - box.min_lon) / lng_step) + 2)
        for box in boxes
    )


def _may_hold(
    lat: float, lng: float, radius_km: float, skip_within_km: float | None, cell: str
) -> bool:
    box = pygeohash.get_bounding_box(cell)
    if _nearest_km(lat, lng, box) > radius_km + _SLACK_KM:
        return False
    return skip_within_km is None or not _wholly_within(lat, lng, box, skip_within_km)


def _nearest_km(lat: float, lng: float, box: pygeohash.BoundingBox) -> float:
    """Exact distance from the point to the nearest point of a latitude/longitude box."""
    gap = _longitude_gap(lng, box.min_lon, box.max_lon)
    if gap == 0:  # the point's meridian crosses the box: straight north or south
        return distance_km(lat, 0, min(max(lat, box.min_lat), box.max_lat), 0)
    # At every latitude, the nearest longitude is the box's nearer edge: the answer lies
    # on that edge's meridian arc, at its corners or at the foot of the perpendicular.
    corners = min(distance_km(lat, 0, box.min_lat, gap), distance_km(lat, 0, box.max_lat, gap))
    if gap < 90:
        foot = math.degrees(math.atan(math.tan(math.radians(lat)) / math.cos(math.radians(gap))))
        if box.min_lat <= foot <= box.max_lat:
            return distance_km(lat, 0, foot, gap)
    return corners


def _wholly_within(lat: float, lng: float, box: pygeohash.BoundingBox, km: float) -> bool:
    # For a small box away from the poles its farthest point is a corner; for any other
    # box, say no (it is then simply read).
    if box.max_lat - box.min_lat > 1 or box.max_lon - box.min_lon > 1 or abs(lat) > 89:
        return False
    corners = ((a, b) for a in (box.min_lat, box.max_lat) for b in (box.min_lon, box.max_lon))
    return all(distance_km(lat, lng, a, b) < km - _SLACK_KM for a, b in corners)


def _longitude_gap(lng: float, west: float, east: float) -> float:
    """Degrees from ``lng`` to the nearest longitude in ``[west, east]``, either way
    round the globe."""
    if west <= lng <= east:
        return 0.0
    return min((west - lng) % 360, (lng - east) % 360)


def _area_km2(box: pygeohash.BoundingBox) -> float:
    band = math.sin(math.radians(box.max_lat)) - math.sin(math.radians(box.min_lat))
    return EARTH_RADIUS_KM**2 * math.radians(box.max_lon - box.min_lon) * band


def _merge(cells: Sequence[str]) -> list[CellRange]:
    """Sorted cells as ranges of consecutive cells."""
    ranges: list[CellRange] = []
    for cell in cells:
        if ranges and ranges[-1].end == cell:
            last = ranges[-1]
            ranges[-1] = CellRange(last.start, _successor(cell), last.cells + 1)
        else:
            ranges.append(CellRange(cell, _successor(cell), 1))
    return ranges


def _successor(cell: str) -> str:
    """The next cell of the same precision in geohash order (``~`` after the last)."""
    digits = cell.rstrip(_BASE32[-1])
    if not digits:
        return _AFTER_EVERY_GEOHASH
    carried = len(cell) - len(digits)
    bumped = _BASE32[_BASE32.index(digits[-1]) + 1]
    return digits[:-1] + bumped + _BASE32[0] * carried


# --- the cursor -----------------------------------------------------------------------


class _CursorError(Exception):
    def __init__(self, issue: str, message: str) -> None:
        super().__init__(message)
        self.issue, self.message = issue, message


class _CursorBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)

    v: Literal[1]
    f: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    s: Sort
    k: StrictInt | StrictFloat
    id: Annotated[str, Field(min_length=1, max_length=128)]


_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_CHECK_BYTES = 12


def _malformed() -> _CursorError:
    return _CursorError("cursor_malformed", "Not a cursor this search returned.")


def encode_cursor(request: NearbyRequest, value: float, listing_id: str) -> str:
    """The cursor of the page after ``(value, listing_id)`` for this search."""
    body = {"v": 1, "f": _fingerprint(request), "s": request.sort, "k": value, "id": listing_id}
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(raw)}.{_b64(_check(raw))}"


def decode_cursor(request: NearbyRequest, cursor: str) -> Position:
    """The position a cursor names, if it is intact and was made for this search."""
    raw_body, dot, raw_check = cursor.partition(".")
    raw = _unb64(raw_body)
    if not dot or _unb64(raw_check) != _check(raw):
        raise _malformed()
    try:
        body = _CursorBody.model_validate_json(raw)
    except ValidationError:
        raise _malformed() from None
    if body.f != _fingerprint(request) or body.s != request.sort:
        raise _CursorError(
            "cursor_mismatch", "This cursor belongs to another search: start without one."
        )
    if request.sort == "distance":
        valid = 0 <= body.k <= request.radiusKm
    else:
        valid = isinstance(body.k, int) and 0 <= body.k <= MAX_MINOR_UNITS
    if not valid:
        raise _malformed()
    return Position(body.k, body.id)


def read_cursor(
    request: NearbyRequest, cursor: str
) -> tuple[Position | None, list[tuple[str, str, str]]]:
    """The position ``cursor`` names for this search, or the issue (field, kind, message)
    that refuses it: what :class:`NearbyRequest`'s validation reports."""
    try:
        return decode_cursor(request, cursor), []
    except _CursorError as bad:
        return None, [("cursor", bad.issue, bad.message)]


def _fingerprint(request: NearbyRequest) -> str:
    """What makes two requests the same search (the page size may change)."""
    what = request.model_dump(mode="json", exclude={"cursor", "limit"})
    what["propertyTypes"] = sorted(request.propertyTypes or [])
    raw = json.dumps(what, separators=(",", ":"), sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _check(raw: bytes) -> bytes:
    return hashlib.sha256(b"homefront.nearby.v1:" + raw).digest()[:_CHECK_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text):
        raise _malformed()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _malformed() from None
    if _b64(raw) != text:  # one encoding per cursor: no unused trailing bits
        raise _malformed()
    return raw
