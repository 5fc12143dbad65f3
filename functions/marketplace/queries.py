"""Every query the clients and the functions make, declared as data.

Firestore serves a query only from an index, and which composite indexes exist is
decided ahead of time in ``firestore.indexes.json``; the emulator checks none of it, so a
query nobody declared fails first in production. Declaring each query here, with the
exact field names of the models, lets ``tests/test_indexes.py`` derive the index each one
needs and hold ``firestore.indexes.json`` to exactly that set, and lets functions build
the query from its declaration (:meth:`Query.build`) so code and index cannot drift.

Clients' queries are listed too: the rules must be able to prove each one allowed from its
own filters (``ownerId == uid``, ``status == 'active'``), which is why they look as they do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from firekit.docmodel import Document
from marketplace.favorites import FavoriteShard
from marketplace.models import (
    AuditEntry,
    CalendarFeed,
    Conversation,
    Device,
    Favorite,
    Listing,
    Message,
    Notification,
    Offer,
    Report,
    SavedSearch,
    Subscription,
    Viewing,
    ViewingHold,
)

Direction = Literal["asc", "desc"]
RangeOp = Literal["<", "<=", ">", ">="]
RANGE_OPS: tuple[RangeOp, ...] = ("<", "<=", ">", ">=")


@dataclass(frozen=True)
class Order:
    """One order-by: a field and its direction."""

    field: str
    direction: Direction = "asc"


@dataclass(frozen=True)
class Query:
    """A query's shape: what it filters on and how it sorts (values come at run time).

    ``ranges`` are the fields with inequality filters; they must lead ``order`` (Firestore
    sorts by them first anyway, and saying so keeps the needed index explicit).
    """

    name: str
    model: type[Document]
    who: str
    """Who makes the query, and why."""
    equals: tuple[str, ...] = ()
    contains: str | None = None
    """The one field with an ``array-contains`` filter, if any."""
    contains_any: bool = False
    """``contains`` is matched with ``array-contains-any`` (a list of up to 30 values)."""
    members: tuple[str, ...] = ()
    """The ``equals`` fields matched with ``in`` (a list of up to 30 values); Firestore
    indexes an ``in`` exactly like an equality."""
    ranges: tuple[str, ...] = ()
    order: tuple[Order, ...] = ()
    group: bool = False
    """A collection-group query (every collection with this id, whatever its parent)."""
    page: int | None = None
    """The most documents one run may ask for: the rules refuse a larger (or no) limit."""

    def __post_init__(self) -> None:
        ordered = tuple(o.field for o in self.order)
        if ordered[: len(self.ranges)] != self.ranges:
            raise ValueError(f"{self.name}: range fields must lead the order-by")
        if set(ordered) & set(self.equals):
            raise ValueError(f"{self.name}: ordering by an equality field does nothing")
        if not set(self.members) <= set(self.equals):
            raise ValueError(f"{self.name}: ``in`` fields must be declared in equals")
        if self.contains_any and self.contains is None:
            raise ValueError(f"{self.name}: array-contains-any needs the contains field")

    @property
    def collection(self) -> str:
        """The collection id the query reads, e.g. ``notifications``."""
        return self.model.path.split("/")[-2]

    @property
    def parent(self) -> str:
        """The collection path pattern, e.g. ``users/{uid}/notifications``."""
        return self.model.path.rsplit("/", 1)[0]

    def fields(self) -> tuple[str, ...]:
        """Every field the query filters or sorts on."""
        named = (*self.equals, *([self.contains] if self.contains else []), *self.ranges)
        return tuple(dict.fromkeys((*named, *(o.field for o in self.order))))

    def build(
        self,
        db: firestore.Client,
        *,
        path: Mapping[str, str] | None = None,
        equals: Mapping[str, Any] | None = None,
        contains: Any = None,
        ranges: Mapping[str, Sequence[tuple[RangeOp, Any]]] | None = None,
        limit: int | None = None,
    ) -> firestore.Query:
        """The query with these values: exactly the declared filters, nothing more.

        ``path`` fills the parent's placeholders (``{"uid": ...}``) unless ``group``.
        """
        if self.page is not None and (limit is None or not 0 < limit <= self.page):
            raise ValueError(f"{self.name}: pages of 1 to {self.page} documents")
        equals, ranges = dict(equals or {}), dict(ranges or {})
        if set(equals) != set(self.equals) or set(ranges) != set(self.ranges):
            raise ValueError(f"{self.name}: give values for exactly the declared filters")
        if (contains is None) != (self.contains is None):
            raise ValueError(f"{self.name}: array-contains value missing or undeclared")
        query: Any = (
            db.collection_group(self.collection)
            if self.group
            else db.collection(self.parent.format(**(path or {})))
        )
        for name, value in equals.items():
            op = "in" if name in self.members else "=="
            query = query.where(filter=FieldFilter(name, op, value))
        if self.contains is not None:
            op = "array_contains_any" if self.contains_any else "array_contains"
            query = query.where(filter=FieldFilter(self.contains, op, contains))
        for name, bounds in ranges.items():
            for op, value in bounds:
                if op not in RANGE_OPS:
                    raise ValueError(f"{self.name}: {op!r} is not a range operator")
                query = query.where(filter=FieldFilter(name, op, value))
        for order in self.order:
            direction = "DESCENDING" if order.direction == "desc" else "ASCENDING"
            query = query.order_by(order.field, direction=direction)
        result: firestore.Query = query.limit(limit) if limit is not None else query
        return result


DESC: Direction = "desc"
PUBLIC_BROWSE = ("status", "address.city", "kind")
"""A public browse: active listings of one city, for sale or to rent."""

BROWSE_BY_PRICE = Query(
    "browse_by_price",
    Listing,
    "anyone browsing a city, price low to high, within a range",
    equals=PUBLIC_BROWSE,
    ranges=("price.amount",),
    order=(Order("price.amount"),),
)
BROWSE_BY_PRICE_DESC = Query(
    "browse_by_price_desc",
    Listing,
    "anyone browsing a city, price high to low",
    equals=PUBLIC_BROWSE,
    ranges=("price.amount",),
    order=(Order("price.amount", DESC),),
)
BROWSE_BY_BEDROOMS = Query(
    "browse_by_bedrooms",
    Listing,
    "anyone browsing a city with a minimum of bedrooms",
    equals=PUBLIC_BROWSE,
    ranges=("bedrooms",),
    order=(Order("bedrooms"),),
)
BROWSE_NEWEST = Query(
    "browse_newest",
    Listing,
    "anyone browsing a city, newest first",
    equals=PUBLIC_BROWSE,
    order=(Order("publishedAt", DESC),),
)
FAVOURITE_SHARDS_CHANGED = Query(
    "favourite_shards_changed",
    FavoriteShard,
    "functions: the favourites roll-up",
    ranges=("updatedAt",),
    order=(Order("updatedAt"),),
    group=True,
)
DUPLICATE_ADDRESS = Query(
    "duplicate_address",
    Listing,
    "functions: listings at one postcode (duplicate check)",
    equals=("address.postcode",),
)
FEATURED = Query(
    "featured",
    Listing,
    "the home screen: active listings whose paid boost still runs",
    equals=("status",),
    ranges=("featuredUntil",),
    order=(Order("featuredUntil"),),
)
NEAR = Query(
    "near",
    Listing,
    "the map: one query per geohash cell range around a point",
    equals=("status",),
    ranges=("geohash",),
    order=(Order("geohash"),),
)
AGENT_LISTINGS = Query(
    "agent_listings",
    Listing,
    "an agent's own listings, last changed first",
    equals=("ownerId",),
    order=(Order("updatedAt", DESC),),
)
AGENT_LISTINGS_BY_STATUS = Query(
    "agent_listings_by_status",
    Listing,
    "an agent's own listings in one status",
    equals=("ownerId", "status"),
    order=(Order("updatedAt", DESC),),
)
MODERATION_QUEUE = Query(
    "moderation_queue",
    Listing,
    "admins (the console): listings waiting for review, oldest first, a page at a time "
    "(limit page + 1, startAfter the last one's snapshot) and a count() of the same filter",
    equals=("status",),
    order=(Order("createdAt"),),
)
OPEN_REPORTS = Query(
    "open_reports",
    Report,
    "admins (the console): reports still open, oldest first",
    equals=("status",),
    order=(Order("createdAt"),),
)
AUDIT_PAGE = 100
"""The most audit entries one read may ask for (the rules hold a client's list to it)."""
AUDIT_LOG = Query(
    "audit_log",
    AuditEntry,
    "admins (the console): the audit log, newest first, listened to live",
    order=(Order("at", DESC),),
    page=AUDIT_PAGE,
)
AUDIT_BY_ACTOR = Query(
    "audit_by_actor",
    AuditEntry,
    "admins (the console): one admin's actions, newest first",
    equals=("actorUid",),
    order=(Order("at", DESC),),
    page=AUDIT_PAGE,
)
AUDIT_BY_ACTION = Query(
    "audit_by_action",
    AuditEntry,
    "admins (the console): one kind of action, newest first",
    equals=("action",),
    order=(Order("at", DESC),),
    page=AUDIT_PAGE,
)
AUDIT_OF_TARGET = Query(
    "audit_of_target",
    AuditEntry,
    "admins (the console), and find_user's recent entries: what was done to one "
    "document (users/{uid}, listings/{listingId}, reports/{reportId}), newest first",
    equals=("target",),
    order=(Order("at", DESC),),
    page=AUDIT_PAGE,
)
INBOX = Query(
    "inbox",
    Notification,
    "a user's notifications, newest first (listened to live)",
    order=(Order("createdAt", DESC),),
)
INBOX_UNREAD = Query(
    "inbox_unread",
    Notification,
    "a user's unread notifications (the badge), newest first",
    equals=("read",),
    order=(Order("createdAt", DESC),),
)
FAVOURITES = Query(
    "favourites",
    Favorite,
    "a user's saved listings, newest first",
    order=(Order("createdAt", DESC),),
)
FAVOURITED_BY = Query(
    "favourited_by",
    Favorite,
    "functions: who saved a listing (price-drop fan-out)",
    equals=("listingId",),
    group=True,
)
MY_SAVED_SEARCHES = Query(
    "my_saved_searches",
    SavedSearch,
    "a user's saved searches, newest first",
    equals=("ownerId",),
    order=(Order("createdAt", DESC),),
)
DIGEST_ITEMS_DUE = Query(
    "digest_items_due",
    Notification,
    "functions: inbox documents still to mail in the digest of a day that is over",
    ranges=("emailDay",),
    order=(Order("emailDay"),),
    group=True,
)
DIGEST_ITEMS_OF_DAY = Query(
    "digest_items_of_day",
    Notification,
    "functions: one user's inbox documents still to mail in one day's digest",
    equals=("emailDay",),
)
USER_DEVICES = Query(
    "user_devices",
    Device,
    "functions: a user's newest devices, whose tokens the private account keeps",
    order=(Order("updatedAt", DESC),),
)
MY_CONVERSATIONS = Query(
    "my_conversations",
    Conversation,
    "a buyer's or agent's chats, latest message first (pages of at most 50)",
    contains="participantIds",
    order=(Order("updatedAt", DESC),),
    page=50,
)
CHAT_EMAIL_DUE = Query(
    "chat_email_due",
    Notification,
    "functions (hourly): unread chat inbox entries whose time to join the digest has come",
    ranges=("emailAfter",),
    order=(Order("emailAfter"),),
    group=True,
)
MESSAGES = Query(
    "messages",
    Message,
    "the participants: one conversation's messages, oldest first",
    order=(Order("createdAt"),),
)
BUYER_OFFERS = Query(
    "buyer_offers",
    Offer,
    "a buyer's offers, newest first",
    equals=("buyerId",),
    order=(Order("createdAt", DESC),),
)
AGENT_OFFERS = Query(
    "agent_offers",
    Offer,
    "an agent's offers received, newest first",
    equals=("agentId",),
    order=(Order("createdAt", DESC),),
)
LISTING_OFFERS = Query(
    "listing_offers",
    Offer,
    "an agent: the offers on one of their listings, newest first",
    equals=("agentId", "listingId"),
    order=(Order("createdAt", DESC),),
)
OPEN_OFFERS = Query(
    "open_offers",
    Offer,
    "functions: offers still open on a listing (rejected once another is accepted)",
    equals=("listingId", "status"),
)
OFFERS_TO_LAPSE = Query(
    "offers_to_lapse",
    Offer,
    "functions (the offer clock): open or countered offers whose time is up",
    equals=("status",),
    ranges=("expiresAt",),
    order=(Order("expiresAt"),),
)
HOLDS_ENDING = Query(
    "holds_ending",
    Offer,
    "functions (the offer clock): deposits Stripe holds whose hold ends soon",
    equals=("deposit.state",),
    ranges=("deposit.captureBefore",),
    order=(Order("deposit.captureBefore"),),
)
HOLDS_TO_CHECK = Query(
    "holds_to_check",
    Offer,
    "functions (the offer clock): held deposits whose charge was not yet asked when the "
    "hold really ends",
    equals=("deposit.state", "deposit.captureBeforeChecked"),
)
DEPOSITS_ASKED = Query(
    "deposits_asked",
    Offer,
    "functions (the offer clock): deposits still waiting on what Stripe was asked "
    "(an authorisation not reported, a capture or release not done)",
    equals=("deposit.asked", "deposit.state"),
    members=("deposit.state",),
    ranges=("deposit.askedAt",),
    order=(Order("deposit.askedAt"),),
)
BUYER_VIEWINGS = Query(
    "buyer_viewings",
    Viewing,
    "a buyer's viewings from a date on, soonest first",
    equals=("requesterId",),
    ranges=("slotStart",),
    order=(Order("slotStart"),),
)
AGENT_VIEWINGS = Query(
    "agent_viewings",
    Viewing,
    "an agent's diary of viewings from a date on",
    equals=("agentId",),
    ranges=("slotStart",),
    order=(Order("slotStart"),),
)
VIEWINGS_TO_LAPSE = Query(
    "viewings_to_lapse",
    Viewing,
    "functions (the viewing clock): waiting requests whose time is up",
    equals=("status",),
    ranges=("expiresAt",),
    order=(Order("expiresAt"),),
)
VIEWINGS_TO_COMPLETE = Query(
    "viewings_to_complete",
    Viewing,
    "functions (the viewing clock): confirmed viewings that have ended",
    equals=("status",),
    ranges=("slotEnd",),
    order=(Order("slotEnd"),),
)
VIEWINGS_TO_REMIND = Query(
    "viewings_to_remind",
    Viewing,
    "functions (the viewing clock): confirmed viewings whose reminder is due",
    equals=("status",),
    ranges=("nextReminderAt",),
    order=(Order("nextReminderAt"),),
)
PLACES_HELD = Query(
    "places_held",
    ViewingHold,
    "functions: the places a buyer's waiting viewing requests hold (at most 20)",
    equals=("requesterId",),
)
CALENDAR_FEED_OF = Query(
    "calendar_feed_of",
    CalendarFeed,
    "functions: a user's calendar token",
    equals=("uid",),
)
PLAN_SUBSCRIPTIONS = Query(
    "plan_subscriptions",
    Subscription,
    "functions: a user's subscriptions that grant a plan",
    equals=("status",),
    members=("status",),
)

QUERIES: tuple[Query, ...] = (
    BROWSE_BY_PRICE,
    BROWSE_BY_PRICE_DESC,
    BROWSE_BY_BEDROOMS,
    BROWSE_NEWEST,
    FEATURED,
    NEAR,
    AGENT_LISTINGS,
    AGENT_LISTINGS_BY_STATUS,
    MODERATION_QUEUE,
    OPEN_REPORTS,
    AUDIT_LOG,
    AUDIT_BY_ACTOR,
    AUDIT_BY_ACTION,
    AUDIT_OF_TARGET,
    INBOX,
    INBOX_UNREAD,
    FAVOURITES,
    FAVOURITED_BY,
    MY_SAVED_SEARCHES,
    USER_DEVICES,
    DIGEST_ITEMS_DUE,
    DIGEST_ITEMS_OF_DAY,
    CHAT_EMAIL_DUE,
    MY_CONVERSATIONS,
    MESSAGES,
    BUYER_OFFERS,
    AGENT_OFFERS,
    LISTING_OFFERS,
    OPEN_OFFERS,
    OFFERS_TO_LAPSE,
    HOLDS_ENDING,
    HOLDS_TO_CHECK,
    DEPOSITS_ASKED,
    BUYER_VIEWINGS,
    AGENT_VIEWINGS,
    VIEWINGS_TO_LAPSE,
    VIEWINGS_TO_COMPLETE,
    VIEWINGS_TO_REMIND,
    PLACES_HELD,
    CALENDAR_FEED_OF,
    DUPLICATE_ADDRESS,
    FAVOURITE_SHARDS_CHANGED,
    PLAN_SUBSCRIPTIONS,
)
"""Every query made against the marketplace's documents."""

UNINDEXED: tuple[tuple[str, str], ...] = (("_searchIndex", "entries"),)
"""``(collection, field)`` exempt from Firestore's automatic indexes: no query filters on
them, and a shard of the alert index holds hundreds of entries whose indexes would cost
writes and near Firestore's 40,000 index entries per document."""
