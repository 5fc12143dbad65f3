"""The seed: an account per role, and a marketplace that is complete, valid, consistent,
quick to load, and the same however often it is loaded."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from firebase_admin import auth

from firekit.docmodel import Document
from marketplace import alerts, favorites
from marketplace import listings as listings_domain
from marketplace.models import DOCUMENTS, Listing, SavedSearch
from marketplace.models.listings import PUBLIC_STATUSES, ListingStatus
from pytest_firebase.auth import AuthEmulator
from seed import marketplace
from seed.accounts import PEOPLE
from seed.deals import slot_id
from seed.documents import SeedDoc
from seed.load import load_all, load_users, seed_users

SEEDED = {
    "listings", "savedSearches", "favorites", "devices", "notifications", "conversations",
    "messages", "viewings", "viewingSlots", "offers", "favoriteMarks", "favoriteShards",
}  # fmt: skip
"""Collections the marketplace seed fills (profiles come with the accounts)."""
LEFT_FOR_LATER = {"customers", "subscriptions", "payments", "auditLog"}
LOAD_BUDGET_S = 15.0
NOW = dt.datetime(2026, 3, 14, 9, 30, tzinfo=dt.UTC)


def test_every_role_has_a_seeded_account_that_can_sign_in(
    auth_emulator: AuthEmulator, firestore_db: Any
) -> None:
    load_users()
    load_users()  # idempotent

    users = seed_users()
    assert {u.role.value for u in users} == {"buyer", "agent", "admin"}
    for user in users:
        signed_in = auth_emulator.sign_in(user.email, user.password)
        assert signed_in.claims["role"] == user.role.value
        assert firestore_db.document(f"users/{user.uid}").get().get("role") == user.role.value
    assert len(list(auth.list_users().iterate_all())) == len(users)


def _collection_id(model: type[Document]) -> str:
    return model.path.split("/")[-2]


def _read_back(db: Any) -> dict[str, list[dict[str, Any]]]:
    """Every stored document of every model, by collection id (collection-group reads)."""
    return {
        _collection_id(model): [
            s.to_dict() for s in db.collection_group(_collection_id(model)).stream()
        ]
        for model in (*DOCUMENTS, favorites.FavoriteMark, favorites.FavoriteShard)
    }


def test_the_marketplace_loads_in_seconds_and_reads_back_valid(
    auth_emulator: AuthEmulator, firestore_db: Any
) -> None:
    summary = load_all()

    assert summary.seconds < LOAD_BUDGET_S, summary.describe()
    stored = _read_back(firestore_db)
    for model in (*DOCUMENTS, favorites.FavoriteMark, favorites.FavoriteShard):
        for data in stored[_collection_id(model)]:
            model.model_validate(data)  # raises on the first invalid document
    expected = summary.counts()
    assert set(expected) == SEEDED
    assert {c: len(stored[c]) for c in SEEDED} == expected
    assert all(not stored[c] for c in LEFT_FOR_LATER)
    people = seed_users() + seed_users(PEOPLE)
    assert len(stored["users"]) == len(stored["private"]) == len(people) >= 30
    assert len(list(auth.list_users().iterate_all())) == len(people)
    for user in seed_users():  # the documented sign-in accounts still work
        assert auth_emulator.sign_in(user.email, user.password).claims["role"] == user.role.value

    listings = stored["listings"]
    assert len(listings) >= 250
    assert len({d["address"]["city"] for d in listings}) >= 6
    statuses = Counter(d["status"] for d in listings)
    assert set(statuses) == set(ListingStatus.__args__)  # type: ignore[attr-defined]
    assert statuses.most_common(1)[0][0] == "active"
    assert statuses["active"] > len(listings) / 2


def test_loading_again_overwrites_rather_than_duplicates(
    auth_emulator: AuthEmulator, firestore_db: Any
) -> None:
    first = load_all()
    once = {c: len(docs) for c, docs in _read_back(firestore_db).items()}
    # Later, as a long-running stack would be reseeded: times (and slot ids) move.
    load_all(now=first.now + dt.timedelta(days=1, hours=5))
    twice = {c: len(docs) for c, docs in _read_back(firestore_db).items()}

    assert twice == once
    assert len(list(auth.list_users().iterate_all())) == len(first.users)


# The rest checks the generator itself: pure, so no emulator is needed.


def _build() -> list[SeedDoc]:
    return marketplace.build(seed_users() + seed_users(PEOPLE), NOW)


def _by_collection(docs: list[SeedDoc]) -> dict[str, dict[str, SeedDoc]]:
    grouped: dict[str, dict[str, SeedDoc]] = defaultdict(dict)
    for doc in docs:
        grouped[doc.collection][doc.path] = doc
    return grouped


def test_the_seed_is_deterministic() -> None:
    first, second = _build(), _build()
    assert [(d.path, d.data) for d in first] == [(d.path, d.data) for d in second]


def test_only_times_move_with_now() -> None:
    # Whenever it is loaded, the seed has the same documents: a reload overwrites them.
    later = NOW + dt.timedelta(days=3, hours=7, minutes=13)
    people = seed_users() + seed_users(PEOPLE)
    first, second = marketplace.build(people, NOW), marketplace.build(people, later)
    assert Counter(d.collection for d in first) == Counter(d.collection for d in second)
    moving = {"viewingSlots"}  # their ids hold the slot's start
    assert [d.path for d in first if d.collection not in moving] == [
        d.path for d in second if d.collection not in moving
    ]


def test_listings_are_realistic_for_their_status_and_kind() -> None:
    listings = [d.data for d in _build() if d.collection == "listings"]
    for data in listings:
        created, updated = data["createdAt"], data["updatedAt"]
        assert created <= updated <= NOW
        published = data["status"] in (*PUBLIC_STATUSES, "archived")
        assert ("publishedAt" in data) is published
        if published:
            assert created <= data["reviewedAt"] == data["publishedAt"] <= updated
        assert ("rejectionReason" in data) is (data["status"] == "rejected")
        # What the submission trigger derives when it publishes, and only then.
        derived = listings_domain.derived_fields(Listing.model_validate(data))
        if data["status"] in PUBLIC_STATUSES:
            assert {k: data[k] for k in derived} == derived
        else:
            assert not {"geohash", "searchKeys"} & set(data)
        pounds = data["price"]["amount"] / 100
        assert (
            (50_000 <= pounds <= 5_000_000) if data["kind"] == "sale" else (400 <= pounds <= 10_000)
        )
        assert (data["address"]["country"] == "GB" and data["photos"]) or data["status"] == "draft"
    assert {d["kind"] for d in listings if d["status"] in ("sold", "under_offer")} == {"sale"}
    assert {d["kind"] for d in listings if d["status"] == "let"} == {"rent"}
    assert any(d.get("featuredUntil", NOW) > NOW for d in listings if d["status"] == "active")


def test_activity_agrees_with_the_listings() -> None:
    seeded = _by_collection(_build())
    listings = {p.split("/")[1]: d.data for p, d in seeded["listings"].items()}
    favourites = Counter(d.data["listingId"] for d in seeded["favorites"].values())
    for listing_id, data in listings.items():
        assert data["favoritesCount"] == favourites[listing_id]
    for fav in seeded["favorites"].values():
        assert listings[fav.data["listingId"]]["status"] in PUBLIC_STATUSES

    messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path, doc in sorted(seeded["messages"].items()):
        messages[path.split("/")[1]].append(doc.data)
    for path, doc in seeded["conversations"].items():
        cid, data = path.split("/")[1], doc.data
        listing = listings[data["listingId"]]
        assert cid == f"{data['listingId']}__{data['buyerId']}"
        assert data["participantIds"] == [data["buyerId"], data["agentId"]]
        assert listing["ownerId"] == data["agentId"] and listing["status"] in PUBLIC_STATUSES
        chat = messages[cid]
        assert len(chat) >= 2 and chat[-1]["createdAt"] == data["updatedAt"] <= NOW
        assert data["lastMessage"]["text"] == chat[-1]["text"][:200]
        assert data["lastMessage"]["senderId"] == chat[-1]["senderId"]
        assert data["unread"][chat[-1]["senderId"]] == 0

    locks = {p.split("/")[1]: d.data for p, d in seeded["viewingSlots"].items()}
    holding = {
        slot_id(v.data["listingId"], v.data["slotStart"]): p.split("/")[1]
        for p, v in seeded["viewings"].items()
        if v.data["status"] in ("requested", "confirmed", "completed")
    }
    assert {k: v["viewingId"] for k, v in locks.items()} == holding
    for offer in seeded["offers"].values():
        listing = listings[offer.data["listingId"]]
        assert listing["ownerId"] == offer.data["agentId"] and listing["kind"] == "sale"
    accepted = {
        o.data["listingId"] for o in seeded["offers"].values() if o.data["status"] == "accepted"
    }
    assert accepted == {i for i, d in listings.items() if d["status"] in ("under_offer", "sold")}


def test_buyers_have_searches_favourites_devices_and_an_inbox() -> None:
    seeded = _by_collection(_build())
    buyers = {u.uid for u in seed_users() + seed_users(PEOPLE) if u.role.value == "buyer"}
    assert len(buyers) >= 20
    searches = [d.data for d in seeded["savedSearches"].values()]
    per_owner = Counter(s["ownerId"] for s in searches)
    assert set(per_owner) == buyers and min(per_owner.values()) >= 2
    assert any(s["muted"] for s in searches) and any("near" in s for s in searches)
    for search in searches:  # as the search trigger derives them
        assert search["matchKeys"] == alerts.match_keys(SavedSearch.model_validate(search))
    for collection in ("favorites", "devices"):
        owners = {p.split("/")[1] for p in seeded[collection]}
        assert owners == buyers, collection
    for path, device in seeded["devices"].items():
        assert path.endswith("/" + device.data["token"])
        assert path.split("/")[1] == device.data["ownerId"]
    inbox = {p.split("/")[1] for p in seeded["notifications"]}
    assert {"seed-buyer", "seed-renter", "seed-agent"} <= inbox


def test_favourite_counters_agree_with_the_favourites() -> None:
    seeded = _by_collection(_build())
    fans: defaultdict[str, set[str]] = defaultdict(set)
    for path in seeded["favorites"]:
        fans[path.split("/")[3]].add(path.split("/")[1])
    marks: defaultdict[str, set[str]] = defaultdict(set)
    for path in seeded["favoriteMarks"]:
        marks[path.split("/")[1]].add(path.split("/")[3])
    shards = {p.split("/")[1]: d.data["count"] for p, d in seeded["favoriteShards"].items()}
    assert marks == fans
    assert shards == {listing: len(uids) for listing, uids in fans.items()}
    for path, doc in seeded["listings"].items():
        assert doc.data.get("favoritesCount", 0) == len(fans.get(path.split("/")[1], ()))


def test_submitting_a_seeded_draft_as_agent_notifies_the_sign_in_buyer() -> None:
    # What the README promises for the dev stack: agent@ (verified) submits one of their
    # London drafts, it publishes, and buyer@'s London search matches it.
    seeded = _by_collection(_build())
    search = SavedSearch.model_validate(
        seeded["savedSearches"]["savedSearches/seed-buyer-london"].data
    )
    drafts = [
        Listing.model_validate(d.data) for d in seeded["listings"].values()
        if d.data["ownerId"] == "seed-agent" and d.data["status"] == "draft"
    ]  # fmt: skip
    ready = [d for d in drafts if not listings_domain.problems(d) and alerts.matches(search, d)]
    assert ready
    assert next(u for u in seed_users() if u.uid == "seed-agent").verified


def test_every_seed_document_matches_its_models_path() -> None:
    models: dict[str, type[Document]] = {_collection_id(m): m for m in DOCUMENTS}
    models |= {"favoriteMarks": favorites.FavoriteMark, "favoriteShards": favorites.FavoriteShard}
    for doc in _build():
        assert doc.model is models[doc.collection], doc.path
    assert Listing in {d.model for d in _build()}
