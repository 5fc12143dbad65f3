"""Near search over 10,000 listings: documents read per search against the number
returned, and p50/p95 latency, each against its floor.

The world: 10,000 active listings over the eight UK cities of the seed, in proportion
to each city's share, 70% clustered around a neighbourhood (σ 1.2 km) and the rest
spread over the city (σ 5 km), as homes are. The searches: every city centre and one
neighbourhood, at five radii, by distance; first pages of 20 (a price sort reads the
same documents and differs only in an in-memory sort).

Figures per search: documents read, matches (every listing within the radius), results
returned, range queries, latency. Baseline, in the same run: one plain indexed query
(the same ``NEAR`` index and projection, no geohash cover) reading exactly as many
documents as the search did, i.e. the floor for reading that many documents; the ratio
is the search's latency over it. The reads floor is the matches: read/match is how much
the cover over-reads.

The emulator answers a query by scanning the whole collection (an empty range query
costs ~10 ms at 1,000 listings and ~250 ms at 10,000), where Firestore reads an index.
So emulator latency grows with the number of range queries, and the run also reports
the cost of one empty range query (``emptyQueryMs``) to read its ratio against.

Run: ``python -m bench.near_search [--listings N] [--reps N]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import common
from firekit.errors import InvalidArgument
from marketplace import nearby, nearby_request, queries
from marketplace.listings import geohash_of
from seed.places import CITIES

NAME = "near_search"
LISTINGS = 10_000
RADII_KM = (0.5, 1.0, 2.0, 5.0, 10.0)
REPS = 3
KM_PER_DEGREE = 111.195


def _offset(lat: float, lng: float, km: float, bearing: float) -> tuple[float, float]:
    # A flat-Earth step is exact enough to place homes a few km from a centre.
    north, east = km * math.cos(bearing), km * math.sin(bearing)
    return (lat + north / KM_PER_DEGREE, lng + east / (KM_PER_DEGREE * math.cos(math.radians(lat))))


def build_world(count: int, rng: random.Random) -> dict[str, dict[str, Any]]:
    """``count`` active listings over the seed's cities, as described above."""
    weights = [city.listings for city in CITIES]
    world = {}
    for number in range(count):
        city = rng.choices(CITIES, weights)[0]
        if rng.random() < 0.7:
            hood = rng.choice(city.neighbourhoods)
            centre, sigma = (hood.lat, hood.lng), 1.2
        else:
            centre, sigma = (city.lat, city.lng), 5.0
        lat, lng = _offset(*centre, abs(rng.gauss(0, sigma)), rng.uniform(0, 2 * math.pi))
        kind = "rent" if rng.random() < 0.35 else "sale"
        typical = city.rent_2bed if kind == "rent" else city.sale_2bed
        world[f"bench-{number:05d}"] = _listing(rng, city.name, (lat, lng), kind, typical)
    return world


def _listing(
    rng: random.Random, city: str, where: tuple[float, float], kind: str, typical: int
) -> dict[str, Any]:
    lat, lng = where
    bedrooms = rng.choice((0, 1, 1, 2, 2, 2, 3, 3, 4, 5))
    pounds = round(typical * (0.6 + 0.2 * bedrooms) * rng.uniform(0.8, 1.25))
    return {
        "ownerId": f"agent-{rng.randrange(40)}",
        "status": "active",
        "kind": kind,
        "propertyType": rng.choice(("flat", "house", "maisonette", "bungalow")),
        "title": f"{bedrooms} bedroom home in {city}",
        "description": "A home with light, space and a short walk to the shops. " * 6,
        "price": {"amount": pounds * 100, "currency": "GBP"},
        "bedrooms": bedrooms,
        "bathrooms": max(1, bedrooms - 1),
        "areaSqm": 40 + 20 * bedrooms,
        "address": {
            "line1": "1 High Street",
            "line2": None,
            "city": city,
            "postcode": "AB1 2CD",
            "country": "GB",
        },
        "location": {"lat": lat, "lng": lng},
        "photos": [],  # results carry the first photo; its size is not what is measured
        "features": [],
        "geohash": geohash_of(lat, lng),
        "searchKeys": [],
        "favoritesCount": 0,
    }


def store(db: Any, world: dict[str, dict[str, Any]]) -> None:
    """Write the world in parallel batches of 500 (Firestore's batch limit)."""
    items = list(world.items())

    def commit(start: int) -> None:
        batch = db.batch()
        for listing_id, data in items[start : start + 500]:
            batch.set(db.document(f"listings/{listing_id}"), data)
        batch.commit()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(commit, range(0, len(items), 500)))


def search_points() -> list[tuple[str, float, float]]:
    """Every city centre and its first neighbourhood."""
    points = []
    for city in CITIES:
        hood = city.neighbourhoods[0]
        points += [
            (city.name, city.lat, city.lng),
            (f"{city.name}/{hood.name}", hood.lat, hood.lng),
        ]
    return points


@dataclass
class Measured:
    """One search configuration, measured."""

    radius_km: float
    refused: bool = False
    documents_read: int = 0
    matched: int = 0
    returned: int = 0
    range_queries: int = 0
    latencies_ms: tuple[float, ...] = ()
    baseline_ms: tuple[float, ...] = ()


def _timed(action: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = action()
    return result, (time.perf_counter() - started) * 1000


def measure(db: Any, request: nearby_request.NearbyRequest, reps: int) -> Measured:
    """Warm up once, then time ``reps`` searches and ``reps`` baseline queries."""
    outcome = Measured(request.radiusKm)
    try:
        found = nearby.search(db, request)
    except InvalidArgument:
        outcome.refused = True
        return outcome
    stats = found.stats
    outcome.documents_read, outcome.matched = stats.documents_read, stats.matched
    outcome.returned, outcome.range_queries = len(found.page.results), stats.queries
    outcome.latencies_ms = tuple(_timed(lambda: nearby.search(db, request))[1] for _ in range(reps))
    floor = queries.NEAR.build(
        db,
        equals={"status": "active"},
        ranges={"geohash": [(">=", "0"), ("<", "~")]},
        limit=max(1, stats.documents_read),
    ).select(nearby.RESULT_FIELDS)
    outcome.baseline_ms = tuple(_timed(lambda: list(floor.stream()))[1] for _ in range(reps))
    return outcome


def run(
    db: Any,
    *,
    listings: int = LISTINGS,
    reps: int = REPS,
    points: Sequence[tuple[str, float, float]] | None = None,
    radii: Sequence[float] = RADII_KM,
    seed: int = 1,
) -> dict[str, Any]:
    """Seed ``listings`` into an empty database, measure every search, summarise."""
    world = build_world(listings, random.Random(seed))
    _, seeded_ms = _timed(lambda: store(db, world))
    print(f"seeded {listings:,} listings in {seeded_ms / 1000:.1f} s")
    measured = [
        measure(db, nearby_request.NearbyRequest(lat=lat, lng=lng, radiusKm=radius), reps)
        for _, lat, lng in (points if points is not None else search_points())
        for radius in radii
    ]
    params = {
        "listings": listings,
        "reps": reps,
        "radiiKm": list(radii),
        "sort": "distance",
        "pageSize": 20,
        "maxReads": nearby.MAX_READS,
    }
    outcome = summarise(measured, params)
    outcome["baseline"]["emptyQueryMs"] = empty_query_ms(db, reps)
    return outcome


def empty_query_ms(db: Any, reps: int) -> dict[str, float]:
    """What the emulator takes to answer a range query that finds nothing."""
    nothing = queries.NEAR.build(
        db, equals={"status": "active"}, ranges={"geohash": [(">=", "zz"), ("<", "zz~")]}
    )
    list(nothing.stream())
    return _rounded(
        common.percentiles(
            [_timed(lambda: list(nothing.stream()))[1] for _ in range(max(reps, 5))], 50, 95
        )
    )


def summarise(measured: Sequence[Measured], params: dict[str, Any]) -> dict[str, Any]:
    """Figures, baseline and ratios over every search, plus one row per radius."""
    figures, baseline = _figures(measured)
    ratios = {
        "latencyP50": common.ratio(figures["latencyMs"]["p50"], baseline["latencyMs"]["p50"]),
        "latencyP95": common.ratio(figures["latencyMs"]["p95"], baseline["latencyMs"]["p95"]),
        "readsPerMatch": figures["readsPerMatch"],
        "readsPerReturned": figures["readsPerReturned"],
    }
    by_radius: dict[float, list[Measured]] = defaultdict(list)
    for outcome in measured:
        by_radius[outcome.radius_km].append(outcome)
    rows = [_row(radius, group) for radius, group in sorted(by_radius.items())]
    return {
        "figures": figures,
        "baseline": baseline,
        "ratios": ratios,
        "params": params,
        "rows": rows,
    }


def _figures(measured: Sequence[Measured]) -> tuple[dict[str, Any], dict[str, Any]]:
    done = [m for m in measured if not m.refused]
    reads = [m.documents_read for m in done]
    latencies = [ms for m in done for ms in m.latencies_ms]
    floor = [ms for m in done for ms in m.baseline_ms]
    matched, returned = sum(m.matched for m in done), sum(m.returned for m in done)
    figures = {
        "searches": len(measured),
        "refused": len(measured) - len(done),
        "documentsRead": {**_rounded(common.percentiles(reads, 50, 95)), "max": max(reads)},
        "matched": _rounded(common.percentiles([m.matched for m in done], 50, 95)),
        "returned": _rounded(common.percentiles([m.returned for m in done], 50, 95)),
        "rangeQueries": _rounded(common.percentiles([m.range_queries for m in done], 50, 95)),
        "readsPerMatch": common.ratio(sum(reads), matched),
        "readsPerReturned": common.ratio(sum(reads), returned),
        "latencyMs": _rounded(common.percentiles(latencies, 50, 95)),
    }
    baseline = {
        "what": "one NEAR query (same index, same projection) reading as many documents",
        "documentsRead": figures["documentsRead"],
        "latencyMs": _rounded(common.percentiles(floor, 50, 95)),
    }
    return figures, baseline


def _row(radius: float, group: Sequence[Measured]) -> dict[str, Any]:
    done = [m for m in group if not m.refused]
    row: dict[str, Any] = {
        "radiusKm": radius,
        "searches": len(group),
        "refused": len(group) - len(done),
    }
    if not done:
        return row
    latency = common.percentiles([ms for m in done for ms in m.latencies_ms], 50, 95)
    floor = common.percentiles([ms for m in done for ms in m.baseline_ms], 50, 95)
    reads = sum(m.documents_read for m in done)
    return row | {
        "readsP50": common.percentiles([m.documents_read for m in done], 50)["p50"],
        "matchedP50": common.percentiles([m.matched for m in done], 50)["p50"],
        "returnedP50": common.percentiles([m.returned for m in done], 50)["p50"],
        "readPerMatch": common.ratio(reads, sum(m.matched for m in done)),
        "queriesP50": common.percentiles([m.range_queries for m in done], 50)["p50"],
        "ms p50": round(latency["p50"], 1),
        "ms p95": round(latency["p95"], 1),
        "floor p50": round(floor["p50"], 1),
        "floor p95": round(floor["p95"], 1),
        "x floor p50": common.ratio(latency["p50"], floor["p50"]),
    }


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 1) for key, value in values.items()}


COLUMNS = (
    "radiusKm",
    "searches",
    "refused",
    "readsP50",
    "matchedP50",
    "returnedP50",
    "readPerMatch",
    "queriesP50",
    "ms p50",
    "ms p95",
    "floor p50",
    "floor p95",
    "x floor p50",
)


def write(outcome: dict[str, Any], directory: Path = common.RESULTS) -> Path:
    """The outcome of :func:`run` as ``<directory>/near_search.json``."""
    return common.write_outcome(NAME, outcome, directory)


def main() -> None:
    """Start or reuse the emulators, run the benchmark, write and print its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=LISTINGS)
    parser.add_argument("--reps", type=int, default=REPS)
    args = parser.parse_args()
    with common.emulators() as stack, common.triggers_paused(stack):
        outcome = run(common.firestore_client(stack), listings=args.listings, reps=args.reps)
    path = common.report(NAME, outcome, COLUMNS)
    figures, ratios = outcome["figures"], outcome["ratios"]
    print(
        f"\nall searches: reads p50 {figures['documentsRead']['p50']:.0f}, "
        f"read/match {ratios['readsPerMatch']}, read/returned {ratios['readsPerReturned']}, "
        f"latency p50 {figures['latencyMs']['p50']} ms = {ratios['latencyP50']} x floor, "
        f"p95 {figures['latencyMs']['p95']} ms = {ratios['latencyP95']} x floor"
    )
    empty = outcome["baseline"]["emptyQueryMs"]["p50"]
    print(f"the emulator's empty range query: p50 {empty} ms (it scans the collection)")
    print(f"written to {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
