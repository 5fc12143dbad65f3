"""The seed: an account per role, and a marketplace that is complete, valid, consistent,
quick to load, and the same however often it is loaded."""

from __future__ import annotations

import datetime as dt
import urllib.request
from collections import Counter, defaultdict
from typing import Any

import requests
import stripe
from firebase_admin import auth
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from firekit import push
from firekit.docmodel import Document
from marketplace import alerts, chat, favorites, viewings
from marketplace import listings as listings_domain
from marketplace.models import DOCUMENTS, Listing, SavedSearch
from marketplace.models.listings import PUBLIC_STATUSES, ListingStatus
from marketplace.payments import featured, plans
from pytest_firebase.auth import AuthEmulator
from seed import chats, marketplace, payments
from seed import photos as seed_photos
from seed.accounts import PEOPLE
from seed.documents import SeedDoc
from seed.load import load_all, load_users, seed_users

SEEDED = {
    "listings",
    "savedSearches",
    "favorites",
    "devices",
    "notifications",
    "conversations",
    "messages",
    "viewings",
    "viewingLocks",
    "viewingHolds",
    "availability",
    "offers",
    "favoriteMarks",
    "favoriteShards",
    "customers",
    "subscriptions",
    "payments",
    "limits",
    "counters",
    "reports",
}
"""Collections the seed fills (profiles come with the accounts; payments through
localstripe, for ``seed-agent``)."""
LEFT_FOR_LATER = {"auditLog"}
NOW = dt.datetime(2026, 3, 14, 9, 30, tzinfo=dt.UTC)


def test_every_role_has_a_seeded_account_that_can_sign_in(
    auth_emulator: AuthEmulator, firestore_db: firestore.Client
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


def test_the_marketplace_loads_and_reads_back_valid(
    auth_emulator: AuthEmulator, firestore_db: firestore.Client
) -> None:
    # How long it takes is make dev's first line (seed: ... (1.2 s)), not a test's
    # verdict: a timed assertion only measures how loaded the machine is.
    summary = load_all()

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
    # Every photo the listings show is stored, processed, and served at its URL.
    urls = {
        size[kind]
        for listing in stored["listings"]
        for photo in listing["photos"]
        for size in photo["sizes"]
        for kind in ("webp", "jpeg")
    }
    assert len(urls) == 4 * seed_photos.POOL_SIZE  # 320 and 960 wide, WebP and JPEG each
    for url in sorted(urls):
        answer = requests.get(url, timeout=10)
        assert answer.status_code == 200, url
        assert answer.headers["Content-Type"] == (
            "image/webp" if url.endswith("webp") else "image/jpeg"
        )
    for user in seed_users():  # the documented sign-in accounts still work
        assert auth_emulator.sign_in(user.email, user.password).claims["role"] == user.role.value
    # Each buyer's device tokens are on their account, as the devices trigger keeps them:
    # the trigger's own sync finds nothing to change.
    owners = {d["ownerId"] for d in stored["devices"]}
    assert len(owners) >= 20
    for owner in owners:
        sync = firestore.transactional(
            lambda tx, who=owner: push.sync_tokens(firestore_db, tx, alerts.DEVICES, who)
        )
        assert sync(firestore_db.transaction()) is None, owner
    # Each conversation's unread counts and each badge are what the chat functions'
    # recount finds (a read mark or a message would change nothing).
    for snapshot in firestore_db.collection("conversations").stream():
        data = snapshot.to_dict() or {}
        for uid, n in data["unread"].items():
            assert chat.unread_count(firestore_db, snapshot.id, data, uid) == n, snapshot.id
    for badge in firestore_db.collection_group("counters").stream():
        uid = badge.reference.parent.parent.id  # type: ignore[union-attr]
        kept = {k: (badge.to_dict() or {})[k] for k in ("messages", "conversations")}
        assert chat.refresh_counter(firestore_db, uid) == kept, uid
    # Each unmuted search is in its audience of the alert index, as the search trigger
    # leaves it.
    indexed = {
        key: shard.get("group")
        for shard in firestore_db.collection(alerts.SEARCH_INDEX.collection).stream()
        for key in (shard.to_dict() or {}).get("entries", {})
    }
    for data in stored["savedSearches"]:
        wanted = alerts.audience(SavedSearch.model_validate(data))
        assert data.get("audience") == wanted
    unmuted = [d for d in stored["savedSearches"] if not d["muted"]]
    assert sorted(indexed.values()) == sorted(d["audience"] for d in unmuted)

    listings = stored["listings"]
    assert len(listings) >= 250
    assert len({d["address"]["city"] for d in listings}) >= 6
    statuses = Counter(d["status"] for d in listings)
    assert set(statuses) == set(ListingStatus.__args__)  # type: ignore[attr-defined]
    assert statuses.most_common(1)[0][0] == "active"
    assert statuses["active"] > len(listings) / 2


def _empty_localstripe() -> stripe.StripeClient:
    """The seed's Stripe client, on an emptied localstripe (the webhook stays registered)."""
    api = payments.client()
    base = api._requestor.base_addresses["api"]  # type: ignore[attr-defined]
    request = urllib.request.Request(f"{base}/_config/data", method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return api


def test_loading_again_overwrites_and_the_plan_and_featured_listings_are_real_in_stripe(
    auth_emulator: AuthEmulator, firestore_db: firestore.Client
) -> None:
    # Two loads (each takes seconds, so one test makes both points): the second, as a
    # long-running stack would be reseeded, with times (and slot ids) moved, overwrites
    # rather than duplicates, and reuses what Stripe has.
    api = _empty_localstripe()
    first = load_all()
    once = {c: len(docs) for c, docs in _read_back(firestore_db).items()}
    summary = load_all(now=first.now + dt.timedelta(days=1, hours=5))
    twice = {c: len(docs) for c, docs in _read_back(firestore_db).items()}
    assert twice == once
    assert len(list(auth.list_users().iterate_all())) == len(first.users)
    uid = payments.PLAN_AGENT

    # One customer, one active subscription: Stripe, the mirror, profile and claim agree.
    customer_id = firestore_db.document(f"customers/{uid}").get().get("stripeCustomerId")
    assert firestore_db.document(f"_stripeCustomers/{customer_id}").get().get("uid") == uid
    account = firestore_db.document(f"users/{uid}/private/account").get()
    assert account.get("stripeCustomerId") == customer_id
    renter = firestore_db.document(f"customers/{payments.RENTER}").get().get("stripeCustomerId")
    listed_customers = api.v1.customers.list(params={"limit": 100}).data
    assert sorted(c.id for c in listed_customers) == sorted([customer_id, renter])
    [subscription] = api.v1.subscriptions.list(
        params={"customer": customer_id, "status": "all"}
    ).data
    assert subscription.status == "active"
    assert plans.subscription_plan(subscription.to_dict()) == plans.PLAN_ID
    mirror = firestore_db.collection(f"customers/{uid}/subscriptions").get()
    assert [(m.id, m.get("status"), m.get("plan")) for m in mirror] == [
        (subscription.id, "active", plans.PLAN_ID)
    ]
    assert firestore_db.document(f"users/{uid}").get().get("plan") == plans.PLAN
    claims = auth_emulator.sign_in("agent@homefront.test", "seed-agent-pass").claims
    assert (claims["role"], claims["plan"]) == ("agent", plans.PLAN)

    # The other agent: no plan, no customer, nothing featured.
    other = payments.NO_PLAN_AGENT
    assert not firestore_db.document(f"customers/{other}").get().exists
    assert firestore_db.document(f"users/{other}").get().to_dict().get("plan") is None
    assert "plan" not in auth_emulator.sign_in("agent2@homefront.test", "seed-agent-pass").claims

    # Each featured listing: a paid PaymentIntent at the server's price, its mirror and
    # link, and the window the webhook's handler opened, from when it was applied.
    wanted = dict(payments.featured_choices(summary.documents))
    listed = api.v1.payment_intents.list(params={"limit": 100}).data
    intents = {i.id: i.to_dict() for i in listed}
    bought = {p.id: p.to_dict() for p in firestore_db.collection(f"customers/{uid}/payments").get()}
    assert set(bought) == {
        i for i, pi in intents.items() if pi["metadata"].get("purpose") == featured.PURPOSE
    }
    assert {p["listingId"]: p["days"] for p in bought.values()} == wanted
    now = dt.datetime.now(dt.UTC)
    for intent_id, payment in bought.items():
        intent, listing_id = intents[intent_id], payment["listingId"]
        days = dt.timedelta(days=payment["days"])
        assert (intent["status"], payment["status"]) == ("succeeded", "succeeded")
        assert (intent["customer"], intent["metadata"]["listingId"]) == (customer_id, listing_id)
        price = featured.price(payment["days"])
        assert intent["amount"] == payment["amount"]["amount"] == price.amount
        link = firestore_db.document(f"{featured.PAYMENT_LINKS}/{intent_id}").get().to_dict()
        assert link == {"uid": uid, "purpose": featured.PURPOSE, "listingId": listing_id}
        listing = firestore_db.document(f"listings/{listing_id}").get().to_dict()
        windows = firestore_db.document(f"{featured.WINDOWS}/{listing_id}").get()
        window = windows.get("windows")[intent_id]
        assert listing["featuredUntil"] == window["until"] == window["from"] + days
        assert now < listing["featuredUntil"] <= now + days
    for snapshot in firestore_db.collection("listings").get():
        data = snapshot.to_dict()
        if data["ownerId"] in payments.SIGN_IN_AGENTS and snapshot.id not in wanted:
            assert data.get("featuredUntil") is None, snapshot.id

    # The renter's offer on the agent's London rental: one, open, its week's deposit held
    # on the card in localstripe (the same hold after the second load).
    rental = payments.deposit_listing(summary.documents)
    [offer] = [
        o.to_dict()
        for o in firestore_db.collection("offers")
        .where(filter=FieldFilter("buyerId", "==", payments.RENTER))
        .get()
        if o.get("listingId") == rental
    ]
    deposit = offer["deposit"]
    hold = intents[deposit["paymentIntentId"]]
    assert (offer["status"], deposit["state"], hold["status"]) == (
        "open",
        "held",
        "requires_capture",
    )
    assert deposit["amount"]["amount"] == hold["amount"] == offer["amount"]["amount"] * 12 // 52
    assert hold["metadata"]["purpose"] == "deposit" and hold["capture_method"] == "manual"

    # Every event about the customer went through the webhook's intake (the seed's call
    # or localstripe's delivery to the webhook, whichever came first); the payments for
    # the listings were applied by the handler, once each.
    ledger = {s.id: s.get("outcome") for s in firestore_db.collection("_webhookEvents").get()}
    listed = api.v1.events.list(params={"limit": 100}).auto_paging_iter()
    about = [
        e
        for e in (e.to_dict() for e in listed)
        if customer_id in (e["data"]["object"].get("customer"), e["data"]["object"]["id"])
    ]
    assert {e["type"] for e in about} >= {
        "customer.subscription.created",
        "invoice.payment_succeeded",
        "payment_intent.succeeded",
    }
    assert {f"stripe:{e['id']}" for e in about} <= set(ledger)
    paid = [ledger[f"stripe:{e['id']}"] for e in about if e["data"]["object"]["id"] in bought]
    assert paid == ["applied"] * len(bought)


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

    def fixed(doc: SeedDoc) -> bool:  # granule locks' ids hold their time, chat entries' a read
        return doc.collection != viewings.LOCKS and chats.INBOX_PREFIX not in doc.path

    assert [d.path for d in first if fixed(d)] == [d.path for d in second if fixed(d)]


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
    # The sign-in agents' featured listings are the ones they paid for (seed.payments).
    assert not [
        d for d in listings if d["ownerId"] in payments.SIGN_IN_AGENTS and "featuredUntil" in d
    ]


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
        thread = messages[cid]
        assert len(thread) >= 2 and thread[-1]["createdAt"] == data["updatedAt"] <= NOW
        assert data["lastMessage"]["text"] == thread[-1]["text"][:140]
        assert data["lastMessage"]["senderId"] == thread[-1]["senderId"]
        assert data["unread"][thread[-1]["senderId"]] == 0

    locks = {p.split("/")[1]: d.data["viewingId"] for p, d in seeded[viewings.LOCKS].items()}
    holds = {p.split("/")[1]: d.data["viewingId"] for p, d in seeded[viewings.HOLDS].items()}
    hours = {p for p in seeded["availability"]}
    for path, viewing in seeded["viewings"].items():
        vid, data = path.split("/")[1], viewing.data
        live = data["status"] in viewings.ACTIVE
        assert data["locks"] == (
            viewings.lock_ids(
                data["agentId"], data["listingId"], data["slotStart"], data["slotEnd"]
            )
            if live
            else []
        )
        assert all(locks[lock] == vid for lock in data["locks"])
        assert all(holds[hold] == vid for hold in data["holds"])
        assert (len(data["holds"]) == 2) == (data["status"] == "requested")
        if data["status"] == "requested":
            assert (
                NOW
                < data["expiresAt"]
                <= min(data["createdAt"] + dt.timedelta(days=1), data["slotStart"])
            )
        assert f"users/{data['agentId']}/availability/all" in hours
    assert set(locks.values()) | set(holds.values()) <= {
        p.split("/")[1] for p in seeded["viewings"]
    }
    for offer in seeded["offers"].values():
        listing = listings[offer.data["listingId"]]
        assert listing["ownerId"] == offer.data["agentId"] and listing["kind"] == "sale"
    accepted = {
        o.data["listingId"]: path.split("/")[1]
        for path, o in seeded["offers"].items()
        if o.data["status"] == "accepted"
    }
    assert set(accepted) == {
        i for i, d in listings.items() if d["status"] in ("under_offer", "sold")
    }
    # ...and each names it, as the acceptance does; nothing else names one.
    assert {i: d["acceptedOfferId"] for i, d in listings.items() if d.get("acceptedOfferId")} == (
        accepted
    )
    statuses = Counter(o.data["status"] for o in seeded["offers"].values())
    assert {"open", "countered", "accepted", "rejected"} <= set(statuses)


def test_chats_carry_what_the_chat_functions_derive() -> None:
    seeded = _by_collection(_build())
    messages: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for path, doc in sorted(seeded["messages"].items()):
        messages[path.split("/")[1]].append((path.split("/")[3], doc.data))
    badges: Counter[str] = Counter()
    streaks: set[str] = set()
    for path, doc in seeded["conversations"].items():
        cid, data = path.split("/")[1], doc.data
        # Every read receipt is a participant's, no later than now; the summary and the
        # exact counts follow from the messages and the receipts.
        assert set(data["lastReadAt"]) <= set(data["participantIds"])
        assert all(t <= NOW for t in data["lastReadAt"].values())
        summary = chats.derived(cid, data, messages[cid])
        assert {k: data[k] for k in summary} == summary
        assert data["lastMessage"]["messageId"] == messages[cid][-1][0]
        for uid, n in data["unread"].items():
            badges[uid] += n
            if n:
                streak = chat.inbox_id(cid, data["lastReadAt"].get(uid))
                streaks.add(f"users/{uid}/notifications/{streak}")
    counted = {p.split("/")[1]: d.data["messages"] for p, d in seeded["counters"].items()}
    assert counted == dict(badges)
    # The sign-in buyer and agent both have unread messages, each told once per streak.
    assert badges["seed-buyer"] > 0 and badges["seed-agent"] > 0
    told = {p for p in seeded["notifications"] if p.split("/")[3].startswith("chat-")}
    assert told == streaks
    for path in told:
        entry = seeded["notifications"][path].data
        assert entry["read"] is False
        assert entry["emailAfter"] == entry["createdAt"] + chat.EMAIL_AFTER
    # The sign-in agent has blocked one buyer and reported another's message.
    blocked = [d.data for d in seeded["conversations"].values() if d.data.get("blockedBy")]
    assert [list(b["blockedBy"]) for b in blocked] == [["seed-agent"]]
    assert blocked[0]["blockedBy"]["seed-agent"] > blocked[0]["updatedAt"]
    [report] = [d.data for d in seeded["reports"].values()]
    reported = seeded["conversations"][f"conversations/{report['conversationId']}"].data
    message = seeded["messages"][
        f"conversations/{report['conversationId']}/messages/{report['messageId']}"
    ].data
    assert report["reporterId"] == "seed-agent" == reported["agentId"]
    assert report["reportedUid"] == message["senderId"] == reported["buyerId"]
    assert (report["excerpt"], report["listingId"]) == (message["text"], reported["listingId"])


def test_buyers_have_searches_favourites_devices_and_an_inbox() -> None:
    seeded = _by_collection(_build())
    buyers = {u.uid for u in seed_users() + seed_users(PEOPLE) if u.role.value == "buyer"}
    assert len(buyers) >= 20
    searches = [d.data for d in seeded["savedSearches"].values()]
    per_owner = Counter(s["ownerId"] for s in searches)
    assert set(per_owner) == buyers and min(per_owner.values()) >= 2
    assert any(s["muted"] for s in searches) and any("near" in s for s in searches)
    for search in searches:  # every unmuted one has an audience in the alert index
        assert (alerts.audience(SavedSearch.model_validate(search)) is None) == search["muted"]
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
        Listing.model_validate(d.data)
        for d in seeded["listings"].values()
        if d.data["ownerId"] == "seed-agent" and d.data["status"] == "draft"
    ]
    ready = [d for d in drafts if not listings_domain.problems(d) and alerts.matches(search, d)]
    assert ready
    assert all(alerts.audience(search) in alerts.probe_audiences(d) for d in ready)
    assert next(u for u in seed_users() if u.uid == "seed-agent").verified


def test_every_seed_document_matches_its_models_path() -> None:
    models: dict[str, type[Document]] = {_collection_id(m): m for m in DOCUMENTS}
    models |= {"favoriteMarks": favorites.FavoriteMark, "favoriteShards": favorites.FavoriteShard}
    for doc in _build():
        assert doc.model is models[doc.collection], doc.path
    assert Listing in {d.model for d in _build()}
