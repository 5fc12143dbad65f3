"""What seeded buyers keep: saved searches, favourites and the devices they sign in on.

Saved searches are written as a client writes them, then put in the alert index by the
search trigger's own code (the seed is written with triggers off). Favourites point only at
public listings; each listing's ``favoritesCount`` is tallied from them, and the
counter's marks and shard are written too, so a later favourite counts on from there.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import string
from collections import Counter
from dataclasses import dataclass
from typing import Any

from firekit import push
from firekit.transactions import run_transaction
from marketplace import alerts, favorites, limits
from marketplace.models import Device, Favorite, SavedSearch, Usage
from seed.clock import DAY, between, days_ago
from seed.documents import SeedDoc
from seed.listings import Home
from seed.places import CITIES, City, city_named

PROPERTY_TYPES = ("flat", "house", "maisonette", "bungalow")
TOKEN_ALPHABET = string.ascii_letters + string.digits + "-_"


@dataclass(frozen=True)
class Buyer:
    """A seeded buyer (or renter) and what they are looking for."""

    uid: str
    name: str
    city: City
    kind: str


def assign_buyers(rng: random.Random, people: list[tuple[str, str]]) -> list[Buyer]:
    """Give each ``(uid, name)`` a home city and whether they buy or rent.

    The two accounts people sign in as look in London, where ``seed-agent`` works, so
    signing in as either shows conversations, viewings and offers straight away.
    """
    fixed = {"seed-buyer": ("London", "sale"), "seed-renter": ("London", "rent")}
    buyers = []
    for index, (uid, name) in enumerate(people):
        city, kind = fixed.get(uid, (CITIES[index % len(CITIES)].name, ""))
        kind = kind or ("rent" if rng.random() < 0.35 else "sale")
        buyers.append(Buyer(uid, name, city_named(city), kind))
    return buyers


def saved_searches(rng: random.Random, now: dt.datetime, buyer: Buyer) -> list[SeedDoc]:
    """Two to four searches, mostly in the buyer's city, some muted, some near a spot."""
    docs = []
    for number in range(1, rng.randint(2, 4) + 1):
        city = buyer.city if number == 1 or rng.random() < 0.7 else rng.choice(CITIES)
        kind = buyer.kind if rng.random() < 0.85 else ("sale" if buyer.kind == "rent" else "rent")
        created = days_ago(rng, now, 1, 120)
        data = {
            "ownerId": buyer.uid,
            "kind": kind,
            "currency": "GBP",
            "channels": {"inApp": True, "push": rng.random() < 0.7, "email": rng.random() < 0.4},
            "muted": rng.random() < 0.2,
            "createdAt": created,
            "updatedAt": between(rng, created, now),
            **_criteria(rng, city, kind),
        }
        docs.append(SeedDoc(f"savedSearches/{buyer.uid}-{number}", SavedSearch, data))
    if buyer.uid in WATCHING_LONDON:
        created = now - 7 * DAY  # not drawn from rng: the rest of the seed stays as it was
        kind = WATCHING_LONDON[buyer.uid]
        name = "Homes to buy in London" if kind == "sale" else "Homes to rent in London"
        docs.append(
            SeedDoc(
                f"savedSearches/{buyer.uid}-london",
                SavedSearch,
                {
                    "ownerId": buyer.uid,
                    "name": name,
                    "kind": kind,
                    "city": "London",
                    "currency": "GBP",
                    "propertyTypes": [],
                    "channels": {"inApp": True, "push": True, "email": True},
                    "muted": False,
                    "createdAt": created,
                    "updatedAt": created,
                },
            )
        )
    return docs


WATCHING_LONDON = {"seed-buyer": "sale", "seed-renter": "rent"}
"""The sign-in buyers each watch all of London, with every channel on: publishing any
seeded London draft of theirs kind (as agent@) visibly notifies them in the dev stack."""


def _criteria(rng: random.Random, city: City, kind: str) -> dict[str, Any]:
    """What is searched for (and a name that says it, as the app suggests one)."""
    types = sorted(rng.sample(PROPERTY_TYPES, rng.choice((0, 0, 1, 2))))
    typical = city.sale_2bed if kind == "sale" else city.rent_2bed
    step = 25_000 if kind == "sale" else 100
    bedrooms = rng.choice((None, 1, 2, 2, 3))
    criteria: dict[str, Any] = {"propertyTypes": types}
    if bedrooms is not None:
        criteria["bedroomsMin"] = bedrooms
    if rng.random() < 0.5:
        criteria["priceMin"] = round(typical * rng.uniform(0.4, 0.8) / step) * step * 100
    criteria["priceMax"] = round(typical * rng.uniform(1.0, 1.8) / step) * step * 100
    if rng.random() < 0.3:  # around a spot instead of a whole city
        hood = rng.choice(city.neighbourhoods)
        criteria["near"] = {
            "lat": hood.lat,
            "lng": hood.lng,
            "radiusKm": rng.choice((1.0, 2.0, 3.0, 5.0)),
        }
        place = f"near {hood.name}"
    else:
        criteria["city"] = city.name
        place = f"in {city.name}"
    homes = " or ".join(f"{t}s" for t in types) if types else "homes"
    beds = f"{bedrooms}+ bed {homes}" if bedrooms else homes.capitalize()
    criteria["name"] = f"{beds} {'to buy' if kind == 'sale' else 'to rent'} {place}"
    return criteria


def favourites(
    rng: random.Random, now: dt.datetime, buyer: Buyer, homes: list[Home]
) -> list[SeedDoc]:
    """Three to nine public listings, mostly of the buyer's city and kind."""
    mine = [h for h in homes if h.public and h.city == buyer.city and h.kind == buyer.kind]
    others = [h for h in homes if h.public and h not in mine]
    picks = rng.sample(mine, min(len(mine), rng.randint(3, 8))) + rng.sample(others, 1)
    docs = []
    for home in picks:
        assert home.published is not None  # public listings were published
        created = between(rng, home.published, now)
        docs.append(
            SeedDoc(
                f"users/{buyer.uid}/favorites/{home.id}",
                Favorite,
                {"listingId": home.id, "createdAt": created},
            )
        )
    return docs


def tally_favourites(homes: list[Home], favs: list[SeedDoc], now: dt.datetime) -> list[SeedDoc]:
    """Set every listing's ``favoritesCount`` to the number of favourites it has, and
    return the counter's marks and shards that say those favourites are counted."""
    tally = Counter(str(f.data["listingId"]) for f in favs)
    for home in homes:
        home.doc.data["favoritesCount"] = tally[home.id]
    fans: dict[str, list[str]] = {}
    for fav in favs:
        fans.setdefault(str(fav.data["listingId"]), []).append(fav.path.split("/")[1])
    counters = []
    for listing_id, uids in sorted(fans.items()):
        for path, data in favorites.counter_documents(listing_id, uids, now).items():
            model = (
                favorites.FavoriteShard if "/favoriteShards/" in path else favorites.FavoriteMark
            )
            counters.append(SeedDoc(path, model, data))
    return counters


def devices(rng: random.Random, now: dt.datetime, buyer: Buyer) -> list[SeedDoc]:
    """One or two devices with fake FCM registration tokens (the id is the token)."""
    docs = []
    for _ in range(rng.choice((1, 1, 2))):
        token = _fcm_token(rng)
        platform = rng.choice(("ios", "android", "web"))
        created = days_ago(rng, now, 3, 200)
        data = {
            "token": token,
            "ownerId": buyer.uid,
            "platform": platform,
            "appVersion": rng.choice(("2.4.0", "2.4.1", "2.5.0")),
            "locale": "en-GB",
            "createdAt": created,
            "updatedAt": between(rng, created, now - DAY),
        }
        docs.append(SeedDoc(f"users/{buyer.uid}/devices/{token}", Device, data))
    return docs


def _fcm_token(rng: random.Random) -> str:
    # The shape of real registration tokens: an instance id, ':APA91b', then ~134 chars.
    def chunk(n: int) -> str:
        return "".join(rng.choice(TOKEN_ALPHABET) for _ in range(n))

    return f"{chunk(22)}:APA91b{chunk(134)}"


def usage_documents(docs: list[SeedDoc]) -> list[SeedDoc]:
    """Each user's usage document listing the ids they hold, as the app's own batches
    would have left it (the caps count what it lists). Rate windows are left out: the
    seeded conversations and messages were written before any window still open."""
    held: dict[str, dict[str, list[str]]] = {}
    for doc in docs:
        cap = limits.capped(doc.path)
        if isinstance(cap, limits.Held):
            uid = str(doc.data["ownerId"]) if doc.model is SavedSearch else doc.path.split("/")[1]
            held.setdefault(uid, {}).setdefault(cap.key, []).append(doc.path.rsplit("/", 1)[1])
    return [
        SeedDoc(limits.USAGE.format(uid=uid), Usage, limits.usage_document(ids))
        for uid, ids in sorted(held.items())
    ]


def keep_push_tokens(db: Any, docs: list[SeedDoc]) -> None:
    """Put each seeded user's newest device tokens on their private account with the
    devices trigger's own sync (the seed writes with triggers off)."""
    for owner in sorted({str(d.data["ownerId"]) for d in docs if d.model is Device}):
        run_transaction(db, functools.partial(_sync, db, owner), busy_message="seed: busy")


def _sync(db: Any, uid: str, transaction: Any) -> list[str] | None:
    return push.sync_tokens(db, transaction, alerts.DEVICES, uid)


def index_searches(db: Any, docs: list[SeedDoc]) -> None:
    """Put each seeded saved search in the alert index with the search trigger's own
    code (the seed writes with triggers off)."""
    for doc in docs:
        if doc.model is SavedSearch:
            search_id = doc.path.split("/")[-1]
            index = functools.partial(_index, db, search_id)
            run_transaction(db, index, busy_message="seed: busy")


def _index(db: Any, search_id: str, transaction: Any) -> str | None:
    return alerts.refresh_search_index(db, transaction, search_id)
