"""Seeded listings: homes over every city and every status, with plausible details.

Each status has a timeline that makes sense for it (a draft was never reviewed, a sold
home was published weeks before it sold, a rejected one carries the moderator's reason),
and sale and rent are priced from the city's levels (rent is monthly). The search fields
a function derives (``geohash``, ``searchKeys``) are added by ``seed.marketplace``.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from typing import Any, get_args

from marketplace.listings import checks, duplicate_check
from marketplace.models import Listing
from marketplace.models.listings import PUBLIC_STATUSES, Feature
from seed import photos
from seed.clock import DAY, HOUR, between, days_ago
from seed.documents import SeedDoc
from seed.places import CITIES, INWARD_LETTERS, City, Neighbourhood

STATUS_COUNTS = {
    "active": 180,
    "draft": 20,
    "pending_review": 20,
    "under_offer": 20,
    "sold": 15,
    "let": 15,
    "archived": 15,
    "rejected": 15,
}
"""How many listings of each status (sums to the cities' listings)."""
KIND_BY_STATUS = {"under_offer": "sale", "sold": "sale", "let": "rent"}
"""Statuses only one kind reaches (a rental is let, never sold)."""
REJECTION_REASONS = (
    "The photos show a different property from the address given.",
    "The rent looks weekly: please give the monthly rent.",
    "The description contains a phone number; buyers contact you through the app.",
    "The floor area does not fit the number of bedrooms: please check it.",
    "This duplicates a listing you already have on the market.",
)
STYLES = {  # property type -> (title words, weight, bedroom choices)
    "flat": (("flat", "apartment"), 45, (0, 1, 1, 2, 2, 2, 3)),
    "house": (
        ("terraced house", "semi-detached house", "end of terrace house", "detached house"),
        36,
        (2, 3, 3, 3, 4, 4, 5),
    ),
    "maisonette": (("maisonette",), 11, (1, 2, 2, 3)),
    "bungalow": (("bungalow", "detached bungalow"), 8, (2, 2, 3, 3, 4)),
}
SIZE_FACTOR = {0: 0.55, 1: 0.75, 2: 1.0, 3: 1.3, 4: 1.7, 5: 2.2}
TYPE_FACTOR = {"flat": 0.92, "maisonette": 0.95, "bungalow": 1.1, "house": 1.15}
FEATURE_POOLS = {
    "flat": ("balcony", "lift", "parking", "step_free", "ev_charging", "new_build"),
    "maisonette": ("garden", "balcony", "parking", "new_build"),
    "house": ("garden", "parking", "garage", "fireplace", "solar", "ev_charging", "new_build"),
    "bungalow": ("garden", "parking", "garage", "step_free", "solar"),
}
KIND_FEATURES = {"sale": ("chain_free",), "rent": ("furnished", "pets_allowed")}
FEATURE_ORDER: tuple[str, ...] = get_args(Feature)


@dataclass(frozen=True)
class Home:
    """A seeded listing, with what the other generators need to refer to it."""

    doc: SeedDoc
    id: str
    city: City
    hood: Neighbourhood
    owner: str
    kind: str
    status: str
    price: int
    """In pence (a month's rent for rentals)."""
    title: str
    published: dt.datetime | None
    updated: dt.datetime

    @property
    def public(self) -> bool:
        """Anyone may see it (it has been published)."""
        return self.status in PUBLIC_STATUSES


def build_homes(rng: random.Random, now: dt.datetime) -> list[Home]:
    """Every seeded listing, city by city, with the statuses of :data:`STATUS_COUNTS`."""
    statuses = [s for s, n in STATUS_COUNTS.items() for _ in range(n)]
    rng.shuffle(statuses)
    homes = []
    for city in CITIES:
        for number in range(1, city.listings + 1):
            homes.append(
                _home(rng, now, city, f"seed-{city.name.lower()}-{number:03d}", statuses.pop())
            )
    return homes


@dataclass(frozen=True)
class _Facts:
    """What kind of home it is, drawn before anything that depends on it."""

    kind: str
    ptype: str
    style: str
    bedrooms: int
    features: list[str]


def _facts(rng: random.Random, status: str) -> _Facts:
    kind = KIND_BY_STATUS.get(status) or ("rent" if rng.random() < 0.35 else "sale")
    ptype = rng.choices(list(STYLES), weights=[s[1] for s in STYLES.values()])[0]
    styles, _, bedrooms = STYLES[ptype]
    return _Facts(
        kind, ptype, rng.choice(styles), rng.choice(bedrooms), _features(rng, ptype, kind)
    )


def _home(rng: random.Random, now: dt.datetime, city: City, home_id: str, status: str) -> Home:
    facts = _facts(rng, status)
    hood = rng.choice(city.neighbourhoods)
    street = rng.choice(hood.streets)
    title = _title(facts, hood.name)
    price = _price(rng, city, facts)
    data: dict[str, Any] = {
        "ownerId": rng.choice(city.agents),
        "status": status,
        "kind": facts.kind,
        "propertyType": facts.ptype,
        "title": title,
        "description": _description(rng, facts, street, hood.name),
        "price": {"amount": price, "currency": "GBP"},
        "bedrooms": facts.bedrooms,
        "bathrooms": _bathrooms(rng, facts.bedrooms),
        "areaSqm": _area(rng, facts),
        "address": _address(rng, facts, street, hood, city),
        "location": _scatter(rng, hood.lat, hood.lng, radius_km=0.9),
        "photos": _photos(rng, status),
        "features": facts.features,
        "favoritesCount": 0,  # tallied once the favourites exist
        **_timeline(rng, now, status),
    }
    if status == "pending_review":  # queued by the review, which records what it checked
        found = [*checks(Listing.model_validate(data)), duplicate_check(False)]
        data["reviewChecks"] = [check.model_dump() for check in found]
    return Home(
        doc=SeedDoc(f"listings/{home_id}", Listing, data),
        id=home_id,
        city=city,
        hood=hood,
        owner=data["ownerId"],
        kind=facts.kind,
        status=status,
        price=price,
        title=title,
        published=data.get("publishedAt"),
        updated=data["updatedAt"],
    )


def _title(facts: _Facts, hood: str) -> str:
    what = (
        f"Studio {facts.style}" if not facts.bedrooms else f"{facts.bedrooms} bedroom {facts.style}"
    )
    return f"{what} {'for sale' if facts.kind == 'sale' else 'to rent'} in {hood}"


def _features(rng: random.Random, ptype: str, kind: str) -> list[str]:
    pool = FEATURE_POOLS[ptype] + KIND_FEATURES[kind]
    chosen = set(rng.sample(pool, rng.randint(1, min(4, len(pool)))))
    return [f for f in FEATURE_ORDER if f in chosen]


def _price(rng: random.Random, city: City, facts: _Facts) -> int:
    """Pence: the city's level scaled by size and type (rent per month)."""
    factor = SIZE_FACTOR[facts.bedrooms] * TYPE_FACTOR[facts.ptype] * rng.uniform(0.82, 1.22)
    if facts.style.startswith("detached"):
        factor *= 1.25
    if facts.kind == "rent":
        pounds = round(city.rent_2bed * math.sqrt(factor) / 25) * 25  # rents vary less
    else:
        step = 5_000 if city.sale_2bed * factor >= 250_000 else 2_500
        pounds = round(city.sale_2bed * factor / step) * step
    return pounds * 100


def _bathrooms(rng: random.Random, bedrooms: int) -> int:
    if bedrooms <= 2:
        return 1
    return rng.choice((1, 2, 2)) if bedrooms < 5 else rng.choice((2, 3))


def _area(rng: random.Random, facts: _Facts) -> int:
    base, per_room = (30, 21) if facts.ptype in ("flat", "maisonette") else (45, 24)
    return round((base + per_room * facts.bedrooms) * rng.uniform(0.88, 1.15))


def _address(
    rng: random.Random, facts: _Facts, street: str, hood: Neighbourhood, city: City
) -> dict[str, Any]:
    line1 = f"{rng.randint(1, 240)} {street}"
    if facts.ptype in ("flat", "maisonette"):
        line1 = f"Flat {rng.randint(1, 24)}, {line1}"
    inward = f"{rng.randint(1, 9)}{rng.choice(INWARD_LETTERS)}{rng.choice(INWARD_LETTERS)}"
    return {
        "line1": line1,
        "line2": hood.name,
        "city": city.name,
        "postcode": f"{hood.district} {inward}",
        "country": "GB",
    }


def _scatter(rng: random.Random, lat: float, lng: float, radius_km: float) -> dict[str, float]:
    """A point uniformly within ``radius_km`` of ``(lat, lng)``."""
    distance = radius_km * math.sqrt(rng.random())
    bearing = rng.uniform(0, 2 * math.pi)
    dlat = distance * math.cos(bearing) / 111.32
    dlng = distance * math.sin(bearing) / (111.32 * math.cos(math.radians(lat)))
    return {"lat": round(lat + dlat, 6), "lng": round(lng + dlng, 6)}


def _photos(rng: random.Random, status: str) -> list[dict[str, Any]]:
    # Entries of the generated pool (seed.photos), processed and stored like uploads.
    count = rng.randint(0, 3) if status == "draft" else rng.randint(3, 6)
    return photos.choose(rng, count)


def _timeline(rng: random.Random, now: dt.datetime, status: str) -> dict[str, Any]:
    """Timestamps (and review outcome) consistent with how the listing got to ``status``."""
    if status == "draft":
        created = days_ago(rng, now, 1, 45)
        return {"createdAt": created, "updatedAt": between(rng, created, now)}
    if status == "pending_review":
        created = days_ago(rng, now, 2, 30)
        return {"createdAt": created, "updatedAt": between(rng, max(created, now - 3 * DAY), now)}
    window = {"active": (3, 150), "rejected": (4, 60)}.get(status, (45, 400))
    created = days_ago(rng, now, *window)
    reviewed = between(rng, created + 2 * HOUR, created + 3 * DAY)
    if status == "rejected":
        return {
            "createdAt": created,
            "updatedAt": reviewed,
            "reviewedAt": reviewed,
            "rejectionReason": rng.choice(REJECTION_REASONS),
        }
    stamps = {"createdAt": created, "reviewedAt": reviewed, "publishedAt": reviewed}
    if status == "active":
        stamps["updatedAt"] = between(rng, reviewed, now)
        luck = rng.random()
        if luck < 0.12:  # featured now (a paid boost)
            stamps["featuredUntil"] = between(rng, now + DAY, now + 14 * DAY)
        elif luck < 0.17:  # featured once, expired since
            stamps["featuredUntil"] = between(rng, reviewed, now)
    else:  # moved on (offer accepted, sold, let or withdrawn) weeks after publication
        stamps["updatedAt"] = between(rng, reviewed + 14 * DAY, now - HOUR)
    return stamps


def _description(rng: random.Random, facts: _Facts, street: str, hood: str) -> str:
    """Estate-agent prose from the home's facts: opener, features, area, next step."""
    size = "studio" if not facts.bedrooms else f"{facts.bedrooms}-bedroom"
    parts = [f"A {rng.choice(ADJECTIVES)} {size} {facts.style} on {street}, {hood}."]
    parts += [FEATURE_LINES[f] for f in facts.features]
    parts.append(rng.choice(AREA_LINES).format(hood=hood))
    parts.append(rng.choice(NEXT_STEPS[facts.kind]))
    return " ".join(parts)


ADJECTIVES = ("bright", "well-presented", "spacious", "characterful", "recently refurbished")
AREA_LINES = (
    "{hood} has independent shops, cafés and good transport links within a short walk.",
    "Schools, parks and the high street are close by, and {hood} is well connected.",
    "The station is around ten minutes on foot.",
)
NEXT_STEPS = {
    "sale": ("Viewing is highly recommended.", "Early viewing advised."),
    "rent": (
        "Available now. Holding deposit one week's rent; tenancy deposit five weeks' rent.",
        "Available from the start of next month on a twelve-month tenancy.",
    ),
}
FEATURE_LINES = {
    "garden": "The rear garden is mostly laid to lawn with a paved terrace.",
    "parking": "There is off-street parking for one car.",
    "garage": "A single garage sits to the side.",
    "balcony": "A private balcony catches the evening sun.",
    "lift": "The building has a lift and a secure entry system.",
    "furnished": "Offered furnished.",
    "pets_allowed": "Pets considered.",
    "step_free": "Step-free access throughout.",
    "ev_charging": "There is an EV charging point.",
    "solar": "Solar panels keep running costs down.",
    "fireplace": "The front reception keeps its original fireplace.",
    "pool": "Residents share a heated pool.",
    "new_build": "Completed recently, with the remainder of a ten-year warranty.",
    "chain_free": "Offered with no onward chain.",
}
