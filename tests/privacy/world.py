"""A user with something in every place the ownership map declares, each carrying canary
strings, beside the other users they deal with; and scans of the whole Firestore
database, every Storage object and localstripe for what is left of them.

Documents are written as the functions write them (through the domain's own code where
a flow makes them: offers, favourites, saved searches, the Stripe customer, rate limits),
and directly where a whole flow would only slow the test down (conversations, viewings,
notifications), in the shapes the models declare.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import stripe
from firebase_admin import auth
from google.cloud import firestore

from firekit import ratelimit, storage
from firekit.ownership import Delete, Entry
from firekit.transactions import run_transaction
from marketplace import alerts, chat, favorites, offers, photo_uploads
from marketplace.ownership import MAP
from marketplace.payments import customers
from tests.listings.factories import listing, uid
from tests.offers.test_offers import offer_request

SOON = dt.timedelta(days=3)


@dataclass
class World:
    """The user (``uid``) to erase, the others, and every canary planted, by what it is."""

    uid: str
    email: str
    phone: str
    name: str
    agent: str
    """An agent whose listing the user favourited, offered on and chatted about."""
    buyer: str
    """A buyer who chatted with the user, the agent, about the user's listing."""
    their_listing: str
    agents_listing: str
    buyer_conversation: str
    agent_conversation: str
    customer_id: str
    canaries: dict[str, str] = field(default_factory=dict)
    """What each canary is in: "message", "listing", "report", ... -> the canary."""

    def needles(self) -> dict[str, str]:
        """Everything of the user a scan must not find: the canary -> what it is."""
        found = {self.uid: "uid", self.email: "email", self.phone: "phone", self.name: "name"}
        return found | {canary: what for what, canary in self.canaries.items()}


def _canary(world: World, what: str) -> str:
    world.canaries[what] = f"cny{uuid.uuid4().hex[:12]}"
    return world.canaries[what]


def build(db: firestore.Client, api: stripe.StripeClient, now: dt.datetime) -> World:
    """Plant the user and their dealings; returns where everything is."""
    user, agent, buyer = uid("leaver"), uid("agent"), uid("buyer")
    tag = uuid.uuid4().hex[:8]
    world = World(
        uid=user,
        email=f"leaver.{tag}@example.test",
        phone=f"+4477009{int(tag, 16) % 100000:05d}",
        name=f"Lena Leaver{tag}",
        agent=agent,
        buyer=buyer,
        their_listing=uid("theirs"),
        agents_listing=uid("home"),
        buyer_conversation="",
        agent_conversation="",
        customer_id="",
    )
    auth.create_user(uid=user, email=world.email, phone_number=world.phone, display_name=world.name)
    _profile(db, world, now)
    _listings(db, world, now)
    _favourite_and_search(db, world, now)
    _offers(db, world)
    _viewings(db, world, now)
    _conversations(db, world, now)
    _records(db, world, now)
    _payments(db, api, world)
    _internal(db, world, now)
    _objects(world)
    return world


def _profile(db: firestore.Client, w: World, now: dt.datetime) -> None:
    db.document(f"users/{w.uid}").set(
        {
            "displayName": w.name,
            "searchName": w.name.casefold(),
            "bio": f"About me {_canary(w, 'bio')}",
            "role": "agent",
            "verified": True,
            "createdAt": now,
        }
    )
    db.document(f"users/{w.uid}/private/account").set(
        {"email": w.email, "phone": w.phone, "createdAt": now}
    )
    for other in (w.agent, w.buyer):
        db.document(f"users/{other}").set({"displayName": f"Other {other}", "role": "agent"})
        db.document(f"users/{other}/private/account").set({"email": f"{other}@example.test"})
    token = f"tok-{_canary(w, 'push token')}"
    db.document(f"users/{w.uid}/devices/{token}").set(
        {
            "token": token,
            "ownerId": w.uid,
            "platform": "ios",
            "appVersion": "1.0",
            "locale": "en-GB",
            "createdAt": now,
            "updatedAt": now,
        }
    )
    db.document(f"users/{w.uid}/notifications/welcome").set(
        {
            "kind": "system",
            "title": "Welcome",
            "body": f"Hello {_canary(w, 'notification')}",
            "data": {},
            "createdAt": now,
            "read": False,
            "emailTo": w.email,
        }
    )
    db.document(f"users/{w.uid}/counters/unread").set({"messages": 1, "conversations": 1})
    db.document(f"users/{w.uid}/limits/usage").set({"devices": {"n": 1, "ids": [token]}})
    db.document(f"users/{w.uid}/availability/{w.their_listing}").set(
        {"weekly": {}, "slotMinutes": 30, "timeZone": "Europe/London", "createdAt": now}
    )
    db.document(f"users/{w.uid}/exports/2026-01-01").set({"state": "ready", "createdAt": now})
    db.document(f"calendarFeeds/{_canary(w, 'calendar token')}").set(
        {"uid": w.uid, "createdAt": now}
    )
    db.document(f"photoUploads/avatar-{w.uid}").set(
        {"slots": {"p1": {"uid": w.uid, "createdAt": now}}}
    )


def _listings(db: firestore.Client, w: World, now: dt.datetime) -> None:
    mine = listing(w.uid, status="active")
    mine["description"] = f"My flat {_canary(w, 'listing description')}"
    mine["photos"] = [{"id": "p1", "caption": "x"}]
    db.document(f"listings/{w.their_listing}").set(mine)
    db.document(f"listings/{w.agents_listing}").set(listing(w.agent, status="active"))


def _favourite_and_search(db: firestore.Client, w: World, now: dt.datetime) -> None:
    db.document(f"users/{w.uid}/favorites/{w.agents_listing}").set(
        {"listingId": w.agents_listing, "createdAt": now}
    )
    run_transaction(
        db,
        lambda t: favorites.reconcile(db, t, w.uid, w.agents_listing),
        busy_message="busy",
    )
    search = db.collection("savedSearches").document(uid("search"))
    search.set(
        {
            "ownerId": w.uid,
            "name": f"Near work {_canary(w, 'search name')}",
            "kind": "sale",
            "city": "London",
            "channels": {"push": True, "email": True},
            "createdAt": now,
            "updatedAt": now,
        }
    )
    run_transaction(
        db, lambda t: alerts.refresh_search_index(db, t, search.id), busy_message="busy"
    )


def _offers(db: firestore.Client, w: World) -> None:
    made = offers.MakeOfferRequest.model_validate(
        offer_request(w.agents_listing, message=f"Please {_canary(w, 'offer message')}")
    )
    offers.make(db, buyer_uid=w.uid, email_verified=True, request=made, stripe_api=_no_stripe)
    theirs = offers.MakeOfferRequest.model_validate(offer_request(w.their_listing))
    offers.make(db, buyer_uid=w.buyer, email_verified=True, request=theirs, stripe_api=_no_stripe)


def _no_stripe() -> stripe.StripeClient:
    raise AssertionError("a sale offer needs no deposit")


def _viewings(db: firestore.Client, w: World, now: dt.datetime) -> None:
    start = (now + SOON).replace(minute=0, second=0, microsecond=0)
    for viewing_id, requester, agent, listing_id in (
        (uid("viewing"), w.uid, w.agent, w.agents_listing),
        (uid("viewing"), w.buyer, w.uid, w.their_listing),
    ):
        lock = f"agent__{agent}__{int(start.timestamp())}"
        hold = f"{requester}__{listing_id}__0"
        db.document(f"viewingLocks/{lock}").set(
            {"viewingId": viewing_id, "start": start, "createdAt": now}
        )
        db.document(f"viewingHolds/{hold}").set(
            {"requesterId": requester, "viewingId": viewing_id, "createdAt": now}
        )
        db.document(f"viewings/{viewing_id}").set(
            {
                "listingId": listing_id,
                "agentId": agent,
                "requesterId": requester,
                "slotStart": start,
                "slotEnd": start + dt.timedelta(minutes=30),
                "timeZone": "Europe/London",
                "status": "requested",
                "note": f"Ring twice {_canary(w, 'viewing note')}" if requester == w.uid else "Hi",
                "locks": [lock],
                "holds": [hold],
                "requestKey": uuid.uuid4().hex,
                "revision": 1,
                "lastChange": {"kind": "requested", "by": requester, "at": now},
                "createdAt": now,
                "updatedAt": now,
            }
        )


def _conversations(db: firestore.Client, w: World, now: dt.datetime) -> None:
    said = _canary(w, "message")
    for conversation_id, buyer, agent, listing_id in (
        (f"{w.agents_listing}__{w.uid}", w.uid, w.agent, w.agents_listing),
        (f"{w.their_listing}__{w.buyer}", w.buyer, w.uid, w.their_listing),
    ):
        ref = db.document(f"conversations/{conversation_id}")
        messages = [(buyer, f"Is it free? {said}"), (agent, "Yes."), (w.uid, f"Great {said}")]
        last_id = ""
        for n, (sender, text) in enumerate(messages):
            last_id = f"m{n}"
            ref.collection("messages").document(last_id).set(
                {"senderId": sender, "text": text, "createdAt": now + dt.timedelta(seconds=n)}
            )
        other = agent if buyer == w.uid else buyer
        ref.set(
            {
                "listingId": listing_id,
                "buyerId": buyer,
                "agentId": agent,
                "participantIds": [buyer, agent],
                "createdAt": now,
                "updatedAt": now,
                "lastReadAt": {w.uid: now},
                "blockedBy": {},
                "lastMessage": {
                    "messageId": last_id,
                    "text": f"Great {said}",
                    "senderId": w.uid,
                    "sentAt": now,
                },
                "unread": {other: 1, w.uid: 0},
            }
        )
        inbox = chat.inbox_id(conversation_id, None)
        db.document(f"users/{other}/notifications/{inbox}").set(
            {
                "kind": "message",
                "title": f"New message from {w.name}",
                "body": f"Great {said}",
                "link": f"/conversations/{conversation_id}",
                "data": {
                    "conversationId": conversation_id,
                    "messageId": last_id,
                    "senderId": w.uid,
                },
                "createdAt": now,
                "read": False,
            }
        )
        db.document(f"users/{other}/counters/unread").set({"messages": 1, "conversations": 1})
        db.document(f"{chat.PUSH_STATE}/{conversation_id}__{other}").set({"lastPushAt": now})
        if buyer == w.uid:
            w.buyer_conversation = conversation_id
        else:
            w.agent_conversation = conversation_id


def _records(db: firestore.Client, w: World, now: dt.datetime) -> None:
    db.collection("reports").document().set(
        {
            "reporterId": w.uid,
            "conversationId": w.agent_conversation,
            "reason": "spam",
            "note": f"Rude {_canary(w, 'report note')}",
            "createdAt": now,
            "status": "open",
            "reportedUid": w.buyer,
        }
    )
    db.collection("reports").document().set(
        {
            "reporterId": w.agent,
            "conversationId": w.buyer_conversation,
            "reason": "spam",
            "note": "",
            "createdAt": now,
            "status": "open",
            "reportedUid": w.uid,
        }
    )
    db.collection("auditLog").document().set(
        {
            "action": "user.role_changed",
            "actorUid": w.agent,
            "target": f"users/{w.uid}",
            "change": {"before": {"role": "buyer"}, "after": {"role": "agent"}},
            "reason": None,
            "requestId": "world-request",
            "at": now,
        }
    )


def _payments(db: firestore.Client, api: stripe.StripeClient, w: World) -> None:
    w.customer_id = customers.ensure_customer(db, api, w.uid, w.email)
    intent = api.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "gbp",
            "customer": w.customer_id,
            "metadata": {"uid": w.uid, "purpose": "featured", "listingId": w.their_listing},
        }
    )
    pi = str(intent.id)
    db.document(f"customers/{w.uid}/payments/{pi}").set({"status": "succeeded", "amount": 1000})
    db.document(f"customers/{w.uid}/subscriptions/sub_x").set({"status": "active", "plan": "p"})
    db.document(f"_stripePayments/{pi}").set({"uid": w.uid, "purpose": "featured"})


def _internal(db: firestore.Client, w: World, now: dt.datetime) -> None:
    ratelimit.consume(db, "make_offer", w.uid, ratelimit.RateLimit(10, per_seconds=60))
    db.document(f"mail/digest-{w.uid}_2026-12-01-a").set({"to": [w.email], "message": {}})
    db.document(f"{customers.LOCKS}/plan-{w.uid}").set({"token": "t", "until": now})


def _objects(w: World) -> None:
    photos, default = photo_uploads.photos_bucket(), storage.default_bucket_name()
    for bucket, name in (
        (photos, f"avatars/{w.uid}/p1/320.webp"),
        (default, f"uploads/avatars/{w.uid}/p2"),
        (photos, f"listings/{w.their_listing}/p1/320.webp"),
        (default, f"exports/{w.uid}/old.zip"),
    ):
        storage.bucket(bucket).blob(name).upload_from_string(b"\xff\xd8 a photo")


# --- scans --------------------------------------------------------------------------------


def entry_of(path: str) -> Entry | None:
    """The map's entry whose pattern ``path`` matches."""
    for entry in MAP.entries:
        if entry.where == "firestore" and re.fullmatch(_pattern(entry.path), path):
            return entry
    return None


def _pattern(path: str) -> str:
    return re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path))


def firestore_hits(db: firestore.Client, needles: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(document path, what) for every needle in a document's path or content."""

    def walk(collections: Iterator[Any]) -> Iterator[firestore.DocumentReference]:
        for collection in collections:
            for ref in collection.list_documents():
                yield ref
                yield from walk(ref.collections())

    for ref in walk(db.collections()):
        snapshot = ref.get()
        text = (
            ref.path
            + " "
            + (json.dumps(snapshot.to_dict(), default=str) if snapshot.exists else "")
        )
        folded = text.casefold()
        for needle, what in needles.items():
            if needle.casefold() in folded:
                yield ref.path, what


def storage_hits(needles: dict[str, str]) -> Iterator[tuple[str, str]]:
    for bucket in (photo_uploads.photos_bucket(), storage.default_bucket_name()):
        for blob in storage.client().list_blobs(bucket):
            for needle, what in needles.items():
                if needle in blob.name:
                    yield f"gs://{bucket}/{blob.name}", what


STRIPE_LISTS = ("customers", "payment_intents", "subscriptions", "charges", "payment_methods")


def stripe_hits(base: str, needles: dict[str, str]) -> Iterator[tuple[str, str]]:
    """localstripe's objects but its events (Stripe's own log, kept: see the map)."""
    import urllib.request

    for kind in STRIPE_LISTS:
        request = urllib.request.Request(
            f"{base}/v1/{kind}?limit=100", headers={"Authorization": "Bearer sk_test_x"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read().decode()
        except OSError:
            continue
        for needle, what in needles.items():
            if needle in text:
                yield f"stripe:{kind}", what


def is_deleted(entry: Entry | None) -> bool:
    return entry is not None and isinstance(entry.erase, Delete)
