"""Fan-out cost growth: documents read (and written) to publish one listing with 1,000,
10,000 and 50,000 saved searches of which the same 100 match. Goal: reads grow with the
matches, not with the saved searches (reads at 50,000 / reads at 1,000 ≈ 1).

The listing: a two-bed London flat for sale at £350,000 (``bench.fanout_world``). At
every scale the population holds, drawn from fixed seeds so the candidates are the same
documents at every scale:

- **100 matching searches**, one buyer each (profile, account with an email, one device):
  London searches of varied bounds, searches near a point within their radius of the
  home, and searches anywhere; every one checked with ``alerts.matches``.
- **40 near misses**, the searches the index cannot tell apart from matches: they are in
  one of the audiences the listing probes (kind, currency, anchor) and fail the exact
  check, 10 for each reason: ``bedroomsMin`` above 2, property types without flats, a
  price bound that excludes £350,000, a circle anchored in a cell around the home's
  whose radius does not reach it. Each is checked to be in a probed audience and not to
  match.
- **the rest**, drawn like the seed's searches (cities weighted as the seed's listings,
  65% sale, seed-like price bounds around each city's typical price, 30% around a
  neighbourhood): 20% muted (muted searches are in no audience; how many would otherwise
  match is reported), the others redrawn until they are in none of the probed
  audiences, i.e. other cities, other kinds, other places. (A London sale search at
  another price is in the listing's audience: a candidate, read as part of its shard.)
  Their owners' accounts and devices are not written (nothing reads them); only the
  searches and the alert index are.

Per scale: an emptied database, the population written, then the listing's
``new_listing`` job run in process with every RPC metered (``bench.fanout_world``):
documents returned by queries and gets (transactions included), gets of absent documents
(the inbox existence checks and the chunk record), queries that returned nothing, and
documents written. The candidates are the entries of the index shards the source query
read. The baseline is the smallest scale.

Run: ``python -m bench.fanout_cost [--scales 1000,10000,50000]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import common
from bench import fanout_world as world
from marketplace import alerts
from marketplace.models import SavedSearch
from marketplace.models.listings import Listing
from seed.places import CITIES, City

NAME = "fanout_cost"
SCALES = (1_000, 10_000, 50_000)
MATCHES = 100
NEAR_MISS_REASONS = ("bedrooms", "propertyType", "price", "distance")
NEAR_MISSES_EACH = 10
MUTED_SHARE = 0.2
KM_PER_DEGREE = 111.195
HOME = Listing.model_validate(world.listing())
PROBE = set(alerts.probe_audiences(HOME))
PROPERTY_TYPES = ("flat", "house", "maisonette", "bungalow")


def _offset(lat: float, lng: float, km: float, bearing: float) -> dict[str, float]:
    north, east = km * math.cos(bearing), km * math.sin(bearing)
    return {
        "lat": lat + north / KM_PER_DEGREE,
        "lng": lng + east / (KM_PER_DEGREE * math.cos(math.radians(lat))),
    }


def _near_home(rng: random.Random, km: float, radius: float) -> dict[str, Any]:
    where = HOME.location
    point = _offset(where.lat, where.lng, km, rng.uniform(0, 2 * math.pi))
    return {"city": None, "near": point | {"radiusKm": radius}}


def _channels(rng: random.Random) -> dict[str, bool]:
    return {"inApp": True, "push": rng.random() < 0.7, "email": rng.random() < 0.4}


def _candidate(data: dict[str, Any]) -> bool:
    return data["audience"] in PROBE


def _matches(data: dict[str, Any]) -> bool:
    return alerts.matches(SavedSearch.model_validate(data), HOME)


def matching(rng: random.Random, uid: str) -> dict[str, Any]:
    """A search of ``uid``'s that matches the listing: in London, near it, or anywhere."""
    while True:
        style = rng.random()
        criteria: dict[str, Any] = {
            "propertyTypes": rng.choice(([], ["flat"], ["flat", "house"], ["flat", "maisonette"])),
            "priceMin": rng.choice((None, 250_000_00, 300_000_00)),
            "priceMax": rng.choice((375_000_00, 400_000_00, 450_000_00, 500_000_00, None)),
            "bedroomsMin": rng.choice((None, 1, 2)),
            "channels": _channels(rng),
        }
        if 0.6 <= style < 0.85:
            radius = rng.choice((1.0, 2.0, 3.0, 5.0))
            criteria |= _near_home(rng, rng.uniform(0, 0.8 * radius), radius)
        elif style >= 0.85:
            criteria |= {"city": None}
        data = world.search(uid, **criteria)
        if _candidate(data) and _matches(data):
            return data


def near_miss(rng: random.Random, uid: str, reason: str) -> dict[str, Any]:
    """A search in an audience the listing probes that fails the exact check."""
    while True:
        criteria: dict[str, Any] = {"channels": _channels(rng)}
        if reason == "bedrooms":
            criteria["bedroomsMin"] = rng.choice((3, 4))
        elif reason == "propertyType":
            criteria["propertyTypes"] = rng.choice(
                (["house"], ["bungalow"], ["house", "maisonette"])
            )
        elif reason == "price":
            bound = rng.choice(
                (
                    ("priceMax", 325_000_00),
                    ("priceMax", 340_000_00),
                    ("priceMin", 360_000_00),
                    ("priceMin", 375_000_00),
                )
            )
            criteria[bound[0]] = bound[1]
        else:
            radius = rng.choice((0.5, 1.0, 2.0))
            criteria |= _near_home(rng, radius + rng.uniform(0.3, 2.5), radius)
        data = world.search(uid, **criteria)
        if _candidate(data) and not _matches(data):
            return data


def _criteria(rng: random.Random, city: City, kind: str) -> dict[str, Any]:
    """What a buyer searches for in ``city`` (as the seed draws it)."""
    typical = city.sale_2bed if kind == "sale" else city.rent_2bed
    step = 25_000 if kind == "sale" else 100
    criteria: dict[str, Any] = {
        "kind": kind,
        "propertyTypes": sorted(rng.sample(PROPERTY_TYPES, rng.choice((0, 0, 1, 2)))),
        "bedroomsMin": rng.choice((None, 1, 2, 2, 3)),
        "priceMin": None,
        "priceMax": round(typical * rng.uniform(1.0, 1.8) / step) * step * 100,
        "city": city.name,
        "name": f"Homes in {city.name}",
    }
    if rng.random() < 0.5:
        criteria["priceMin"] = round(typical * rng.uniform(0.4, 0.8) / step) * step * 100
    if rng.random() < 0.3:
        hood = rng.choice(city.neighbourhoods)
        radius = rng.choice((1.0, 2.0, 3.0, 5.0))
        criteria |= {"city": None, "near": {"lat": hood.lat, "lng": hood.lng, "radiusKm": radius}}
    return criteria


@dataclass
class Population:
    """The saved searches of one scale, and what they are made of."""

    total: int
    seed: int = 1
    composition: Counter[str] = field(default_factory=Counter)

    @property
    def recipients(self) -> list[str]:
        """The uids of the matching buyers."""
        return [world.recipient_uid(n) for n in range(MATCHES)]

    def docs(self) -> Iterator[world.Doc]:
        """Everything to write: listing, matching buyers, near misses, the rest (lazily)."""
        yield from world.the_listing()
        rng = random.Random(self.seed)
        for uid in self.recipients:
            yield from world.buyer(uid, matching(rng, uid))
            self.composition["matching"] += 1
        rng = random.Random(self.seed + 1)
        for number in range(NEAR_MISSES_EACH * len(NEAR_MISS_REASONS)):
            reason = NEAR_MISS_REASONS[number % len(NEAR_MISS_REASONS)]
            uid = f"near-{number:06d}"
            yield from world.buyer(uid, near_miss(rng, uid, reason))
            self.composition[f"nearMiss.{reason}"] += 1
        rng = random.Random(self.seed + 2)
        rest = self.total - MATCHES - NEAR_MISSES_EACH * len(NEAR_MISS_REASONS)
        for number in range(rest):
            owner = f"other-{number // 3:06d}"
            yield f"savedSearches/{owner}-{number % 3}", self._other(rng, owner)

    def _other(self, rng: random.Random, owner: str) -> dict[str, Any]:
        weights = [city.listings for city in CITIES]
        muted = rng.random() < MUTED_SHARE
        while True:
            city = rng.choices(CITIES, weights)[0]
            kind = "rent" if rng.random() < 0.35 else "sale"
            criteria = _criteria(rng, city, kind) | {"channels": _channels(rng), "muted": muted}
            data = world.search(owner, **criteria)
            if muted:
                unmuted = data | {"muted": False}
                self.composition["muted"] += 1
                self.composition["mutedWouldMatch"] += _matches(unmuted)
                return data
            if not _candidate(data):
                where = "London" if city.name == "London" else "otherCity"
                self.composition[f"other.{where}.{kind}"] += 1
                return data
            self.composition["redrawnCandidates"] += 1


def measure(db: Any, total: int, *, seed: int = 1) -> dict[str, Any]:
    """One scale: an emptied database, its population, one metered publish."""
    world.reset(db)
    population = Population(total, seed)
    written = world.write_all(db, population.docs())
    with world.metered(db) as meter:
        job = world.run_job(db)
    inboxes = world.inbox_counts(db)
    told_right = set(inboxes) == set(population.recipients) and set(inboxes.values()) == {1}
    steps = meter.steps
    source = steps.get(world.SOURCE_STEP, world.Step())
    candidates = sum(1 for _ in alerts.SEARCH_INDEX.walk(db, sorted(PROBE)))
    totals = meter.total()
    print(
        f"  {total:,} searches: {totals.read} documents read, {totals.written} written, "
        f"{candidates} candidates in {source.read} index shards, {job.recipients} told "
        f"({job.seconds:.1f} s)"
    )
    return {
        "searches": total,
        "documentsSeeded": written,
        "candidatesRead": candidates,
        "indexShardsRead": source.read,
        "matching": MATCHES,
        "told": job.recipients,
        "toldExactlyTheMatchingOnce": told_right,
        "documentsRead": totals.read,
        "missingLookups": totals.missing,
        "emptyQueries": totals.empty,
        "billedReads": totals.read + totals.empty,
        "readPlusMissing": totals.read + totals.missing,
        "documentsWritten": totals.written,
        "rpcs": totals.calls,
        "chunks": job.chunks,
        "pushes": job.pushes,
        "seconds": round(job.seconds, 2),
        "composition": dict(sorted(population.composition.items())),
        "steps": meter.as_dict(),
    }


def run(db: Any, *, scales: Sequence[int] = SCALES, seed: int = 1) -> dict[str, Any]:
    """Measure every scale; the smallest is the baseline."""
    rows = [measure(db, total, seed=seed) for total in sorted(scales)]
    first, last = rows[0], rows[-1]
    keys = ("documentsRead", "billedReads", "readPlusMissing", "documentsWritten")
    figures = {
        "byScale": {
            str(row["searches"]): {k: row[k] for k in (*keys, "candidatesRead", "indexShardsRead")}
            for row in rows
        },
        "allToldExactlyTheMatchingOnce": all(row["toldExactlyTheMatchingOnce"] for row in rows),
        "steps": {str(row["searches"]): row.pop("steps") for row in rows},
        "composition": {str(row["searches"]): row.pop("composition") for row in rows},
    }
    baseline = {"searches": first["searches"]} | {k: first[k] for k in keys}
    ratios = {
        f"{k}{last['searches']}Over{first['searches']}": common.ratio(last[k], first[k])
        for k in keys
    } | {"goal": "≈ 1"}
    params = {
        "scales": sorted(scales),
        "matching": MATCHES,
        "nearMisses": NEAR_MISSES_EACH * len(NEAR_MISS_REASONS),
        "nearMissReasons": {reason: NEAR_MISSES_EACH for reason in NEAR_MISS_REASONS},
        "mutedShareOfTheRest": MUTED_SHARE,
        "seed": seed,
        "code": world.code_state(),
        "listing": "2-bed London flat for sale at £350,000",
        "probeAudiences": sorted(PROBE),
        "pushTransport": "in memory",
        "counted": "every RPC of the fan-out job through the client's GAPIC stub: documents "
        "returned by queries and gets (transactions included), gets of absent documents, "
        "queries returning nothing (billed one read each), documents written per commit",
    }
    return {
        "figures": figures,
        "baseline": baseline,
        "ratios": ratios,
        "params": params,
        "rows": rows,
    }


COLUMNS = (
    "searches",
    "candidatesRead",
    "indexShardsRead",
    "told",
    "documentsRead",
    "missingLookups",
    "emptyQueries",
    "billedReads",
    "documentsWritten",
    "rpcs",
    "seconds",
)


def write(outcome: dict[str, Any], directory: Path = common.RESULTS) -> Path:
    """The outcome of :func:`run` as ``<directory>/fanout_cost.json``."""
    return common.write_outcome(NAME, outcome, directory)


def main() -> None:
    """Start or reuse the emulators, run the benchmark, write and print its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default=",".join(str(s) for s in SCALES))
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    with common.emulators() as stack, common.triggers_paused(stack):
        outcome = run(common.firestore_client(stack), scales=scales)
    path = common.report(NAME, outcome, COLUMNS)
    print(f"\nratios (largest / smallest scale): {outcome['ratios']}")
    print(f"written to {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
