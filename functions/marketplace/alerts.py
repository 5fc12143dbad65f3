"""Saved-search alerts: a subscriber index, and telling every matching user about a listing once.

**Matching reads a few documents, not one per subscriber.** Each unmuted saved search is
in exactly one *audience* of the alert index (:data:`SEARCH_INDEX`, a
:class:`firekit.shards.ShardedIndex`), named ``<kind>|<currency>|<anchor>``, where the
anchor is where it looks:

- ``city:<city>`` for a search in a city, ``*`` for anywhere;
- for a search near a point, ``gh<p>:<cell>``: the geohash cell of its centre at the
  finest precision (5, 4 or 3: cells of about 4.9, 39 x 20 and 156 km) whose cell and
  its eight neighbours hold its whole circle; ``*`` where none does (near a pole).

The index entry is what matching and delivery need of the search (owner, criteria,
channels: :class:`SearchEntry`), kept by the search trigger, which records the audience
on the search (``audience``) in the same transaction. A listing probes at most 29
audiences (its city, ``*``, and at each precision its cell and the eight around it: a
circle that holds the listing is anchored in one of them) with one ``in`` query over the
index's shards, and :func:`matches` checks the exact criteria in memory (price,
bedrooms, property types, distance). A fan-out to 10,000 searches reads a few dozen
shard documents; what it reads grows with the searches in the listing's audiences, by
one shard per few hundred. Muted searches are in no audience.

**Once per user per listing event.** The events are ``new_listing`` (a listing became
active) and ``price_drop`` (an active listing's price fell). Each runs as one fan-out job
(:mod:`firekit.fanout`) whose id names the listing and event, and each user gets:

- an inbox document ``users/{uid}/notifications/<event id>``: deterministic, and its
  existence is what says "this user was told", so a second matching search of the same
  user, a retried chunk or a repeated job never tells them again;
- a push to each device (if any matching search asks for push, the user has not turned
  push off, and it is not their quiet hours: then the inbox alone carries it);
- a line in their daily email digest (if a matching search asks for email and the user
  has not turned email off): the inbox document is marked for it, and each user's day
  goes out as one Trigger Email document (several past 200 alerts).

Nobody is told about their own listing. A job re-reads the listing for every chunk and
stops when the event no longer holds (the listing left the market; its price moved
again, in which case the newer drop's job tells them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pygeohash
from google.cloud import firestore
from pydantic import ValidationError

from firekit import fanout, logs, mail, push, shards, wire
from firekit.notify import Reach
from marketplace import listings, nearby, notify, queries
from marketplace.models.listings import Listing
from marketplace.models.searches import SavedSearch, SearchEntry

SEARCHES = "savedSearches"
EventKind = Literal["new_listing", "price_drop"]
EVENT_KINDS: tuple[EventKind, ...] = ("new_listing", "price_drop")
GEO_PRECISIONS = (5, 4, 3)
"""Geohash precisions a search near a point is anchored at, finest first."""
SEARCH_INDEX = shards.ShardedIndex("_searchIndex")
"""The alert index: saved searches by audience (server only: the rules deny clients)."""
DEVICES = notify.DEVICES
"""Devices under their user; their tokens kept on the private account the fan-out reads."""
CURRENCY_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


# --- audiences ------------------------------------------------------------------------


def _city(name: str) -> str:
    return listings.collapse(name).casefold()


def _steps(precision: int) -> tuple[float, float]:
    """A geohash cell's height and width in degrees (bits alternate, longitude first)."""
    return 180 / 2 ** (5 * precision // 2), 360 / 2 ** ((5 * precision + 1) // 2)


def near_anchor(lat: float, lng: float, radius_km: float) -> str:
    """The anchor of a search near a point: its centre's cell at the finest precision
    whose 3 x 3 block of cells holds the circle, or ``*`` (the exact distance check in
    :func:`matches` does the rest)."""
    angle = radius_km / nearby.EARTH_RADIUS_KM
    dlat = math.degrees(angle) * 1.001
    if abs(lat) + dlat >= 90:
        return "*"  # the circle holds a pole
    reach = math.sin(angle) / math.cos(math.radians(lat))
    # The widest longitude a spherical cap reaches (at a latitude poleward of its centre).
    dlng = math.degrees(math.asin(reach)) * 1.001 if reach < 1 else math.inf
    for precision in GEO_PRECISIONS:
        height, width = _steps(precision)
        if dlat <= height and dlng <= width:
            return f"gh{precision}:{pygeohash.encode(lat, lng, precision)}"
    return "*"


def audience(search: SavedSearch) -> str | None:
    """The audience of the index a search is in (None while muted)."""
    if search.muted:
        return None
    if search.near is not None:
        anchor = near_anchor(search.near.lat, search.near.lng, search.near.radiusKm)
    elif search.city is not None:
        anchor = f"city:{_city(search.city)}"
    else:
        anchor = "*"
    return f"{search.kind}|{search.currency}|{anchor}"


def _block(cell: str) -> list[str]:
    """A cell and the (up to) eight around it."""
    column = [cell]
    vertical: tuple[Literal["top", "bottom"], ...] = ("top", "bottom")
    for direction in vertical:
        with contextlib.suppress(ValueError):  # no cells beyond a pole
            column.append(pygeohash.get_adjacent(cell, direction))
    block = list(column)
    for each in column:
        sideways: tuple[Literal["right", "left"], ...] = ("right", "left")
        for side in sideways:  # wraps around the antimeridian
            block.append(pygeohash.get_adjacent(each, side))
    return list(dict.fromkeys(block))


def probe_audiences(listing: Listing) -> list[str]:
    """The audiences whose searches a listing may match (at most 29)."""
    prefix = f"{listing.kind}|{listing.price.currency}"
    cell = listings.geohash_of(listing.location.lat, listing.location.lng)
    anchors = [f"city:{_city(listing.address.city)}", "*"]
    for precision in GEO_PRECISIONS:
        anchors += [f"gh{precision}:{c}" for c in _block(cell[:precision])]
    return [f"{prefix}|{anchor}" for anchor in dict.fromkeys(anchors)]


def entry_of(search: SavedSearch) -> dict[str, Any]:
    """The search as its index entry keeps it."""
    fields = set(SearchEntry.model_fields)
    return SearchEntry.model_validate(search.model_dump(include=fields)).model_dump(mode="json")


def matches(search: SavedSearch | SearchEntry, listing: Listing) -> bool:
    """Does the listing meet every criterion of the search (exactly)?"""
    price = listing.price
    if isinstance(search, SavedSearch) and search.muted:
        return False
    if search.kind != listing.kind or search.currency != price.currency:
        return False
    if search.city is not None and _city(search.city) != _city(listing.address.city):
        return False
    if search.propertyTypes and listing.propertyType not in search.propertyTypes:
        return False
    if search.priceMin is not None and price.amount < search.priceMin:
        return False
    if search.priceMax is not None and price.amount > search.priceMax:
        return False
    if search.bedroomsMin is not None and listing.bedrooms < search.bedroomsMin:
        return False
    if search.near is not None:
        where = listing.location
        away = nearby.distance_km(search.near.lat, search.near.lng, where.lat, where.lng)
        if away > search.near.radiusKm:
            return False
    return True


def refresh_search_index(
    db: firestore.Client, transaction: firestore.Transaction, search_id: str
) -> str | None:
    """Put the search in its audience as it is stored now (in none if it is gone, muted
    or no longer fits the model), and record the audience on it; returns the audience.

    Reads the search as stored, and the index keeps its own record of where each search
    is, so whatever order the events come in (a deletion, a search created again under
    the same id), the index ends as the latest state says.
    """
    if len(search_id.encode()) > shards.MAX_KEY_BYTES:
        logs.error("saved search id too long to index", searchId=search_id[:80])
        return None
    ref = db.collection(SEARCHES).document(search_id)
    snapshot = ref.get(transaction=transaction)
    data = (snapshot.to_dict() or {}) if snapshot.exists else None
    group: str | None = None
    entry: dict[str, Any] | None = None
    if data is not None:
        try:
            search = SavedSearch.model_validate(data)
            group, entry = audience(search), entry_of(search)
        except ValidationError:
            pass  # in no audience
    if group is not None and data is not None and data.get("audience") != group:
        # About to enter the audience: split its next shard first if it is full (in a
        # transaction of its own). A search staying where it is adds nothing.
        SEARCH_INDEX.make_room(db, group)
    SEARCH_INDEX.update(db, transaction, search_id, group=group, entry=entry)
    if data is not None and data.get("audience") != group:
        transaction.update(ref, {"audience": group})
    return group


def index_documents(
    searches: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    slot_of: Callable[[str], int] = lambda _key: shards.new_slot(),
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(path, data)`` of the index holding ``searches`` (``(id, data)`` as stored, with
    their ``audience``), for loading a new index in bulk: benchmarks (``slot_of``: see
    :meth:`firekit.shards.ShardedIndex.bulk`)."""
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for search_id, data in searches:
        search = SavedSearch.model_validate(data)
        group = audience(search)
        if group is not None:
            groups.setdefault(group, []).append((search_id, entry_of(search)))
    for group, entries in groups.items():
        yield from SEARCH_INDEX.bulk(group, entries, slot_of=slot_of)


# --- the events -----------------------------------------------------------------------


def notification_id(listing_id: str, kind: EventKind, amount: int | None = None) -> str:
    """The inbox document id of one listing event: once per user, ever."""
    return f"{kind}-{listing_id}" if amount is None else f"{kind}-{listing_id}-{amount}"


def alert_job(notification: str, event_id: str) -> str:
    """The fan-out job id: the notification, plus the change that started it.

    Each change (the listing going active again after an offer fell through) runs its
    own job, so searches saved since the last one are read; the inbox documents still
    tell each user at most once. Redeliveries of one change carry the same event id.
    """
    return f"{notification}-{re.sub(r'[^A-Za-z0-9]', '', event_id)[:16]}"


def events_of(
    listing_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    event_id: str,
) -> list[tuple[str, EventKind, dict[str, Any]]]:
    """The alert jobs a listing change starts: ``(job, kind, params)``."""
    if after is None or after.get("status") != "active":
        return []
    before = before or {}
    if before.get("status") != "active":
        note = notification_id(listing_id, "new_listing")
        params: dict[str, Any] = {"listingId": listing_id, "notificationId": note}
        return [(alert_job(note, event_id), "new_listing", params)]
    old, new = before.get("price") or {}, after.get("price") or {}
    if (
        old.get("currency") == new.get("currency")
        and isinstance(old.get("amount"), int)
        and isinstance(new.get("amount"), int)
        and new["amount"] < old["amount"]
    ):
        amount = int(new["amount"])
        note = notification_id(listing_id, "price_drop", amount)
        params = {"listingId": listing_id, "amount": amount, "notificationId": note}
        return [(alert_job(note, event_id), "price_drop", params)]
    return []


# --- delivery -------------------------------------------------------------------------


def money(amount_minor: int, currency: str) -> str:
    """``£350,000`` (pence dropped when whole)."""
    symbol = CURRENCY_SYMBOLS.get(currency, currency + " ")
    major, minor = divmod(amount_minor, 100)
    return f"{symbol}{major:,}" + (f".{minor:02d}" if minor else "")


def message_of(kind: str, listing: Listing) -> tuple[str, str]:
    """The notification's title and body."""
    price = money(listing.price.amount, listing.price.currency)
    per = " a month" if listing.kind == "rent" else ""
    where = listings.collapse(listing.address.city)
    if kind == "price_drop":
        return "Price drop on a home you searched for", f"{listing.title}: now {price}{per}"
    return "New home matching your search", f"{listing.title} in {where}, {price}{per}"


@dataclass(slots=True)  # one per recipient of a page: no __dict__ each
class _Recipient:
    """A user on the page: their matching searches, and the channels those ask for."""

    uid: str
    in_app: bool = False
    push: bool = False
    email: bool = False
    searches: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Alert:
    """One listing event's alert, as each recipient of a page gets it."""

    id: str
    """The inbox document's id (:func:`notification_id`)."""
    event: str
    listing_id: str
    title: str
    body: str
    at: dt.datetime

    @property
    def link(self) -> str:
        return f"/listings/{self.listing_id}"

    @property
    def shared(self) -> dict[str, Any]:
        """What every push of the page says (kept once in the chunk's record)."""
        data = {"listingId": self.listing_id, "notificationId": self.id, "kind": self.event}
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "data": data | {"link": self.link},
        }

    def record(self, recipient: _Recipient, channels: set[str]) -> dict[str, Any]:
        """A new inbox document: the record of the alert and of how it was told."""
        return {
            "kind": "listing_match" if self.event == "new_listing" else "price_drop",
            "title": self.title,
            "body": self.body,
            "listingId": self.listing_id,
            "link": self.link,
            "data": {
                "searchIds": recipient.searches[:10],
                "event": self.event,
                "channels": sorted(channels | {"inApp"}),
            },
            # In-app is every alert's record; a user who wants none in-app still finds
            # it in their history, but it never badges as unread.
            "createdAt": firestore.SERVER_TIMESTAMP,
            "read": not recipient.in_app,
        }


# --- channels: how a recipient is told, besides the inbox record every one gets ----------


@dataclass(frozen=True)
class Channel:
    """A way of telling a user of an alert, beyond its inbox document.

    A new channel is a new entry in :data:`CHANNELS`: who wants it, and what it adds to
    the inbox document (written in the chunk's batch) or to the side effects performed
    after the commit (pushes: :meth:`AlertDelivery.act`).
    """

    name: str
    wants: Callable[[_Recipient, Reach, dt.datetime], bool]
    """Does the user want it now (their searches, their settings, the hour)?"""
    inbox_fields: Callable[[Reach, dt.datetime], dict[str, Any]] | None = None
    pending: Callable[[_Recipient, Reach], dict[str, Any]] | None = None


def _wants_push(recipient: _Recipient, reach: Reach, now: dt.datetime) -> bool:
    # In their quiet hours, the inbox carries it alone.
    return recipient.push and reach.wants_push(now)


def _push_to(recipient: _Recipient, reach: Reach) -> dict[str, Any]:
    tokens = list(reach.tokens) if reach.tokens is not None else None
    return {"uid": recipient.uid, "tokens": tokens}


def _wants_email(recipient: _Recipient, reach: Reach, now: dt.datetime) -> bool:
    return recipient.email and reach.email is not None


def _digest_item(reach: Reach, now: dt.datetime) -> dict[str, Any]:
    # The inbox document is also the user's item in the day's digest (firekit.mail).
    return notify.USERS.digest_fields(reach, now)


CHANNELS = (
    Channel("push", _wants_push, pending=_push_to),
    Channel("email", _wants_email, inbox_fields=_digest_item),
)


def _tell(
    prepared: fanout.Prepared,
    alert: _Alert,
    inbox: firestore.DocumentReference,
    recipient: _Recipient,
    *,
    account: Reach,
    told: set[str] | None,
    optimistic: bool,
) -> None:
    """Add one recipient to the page: their inbox document (a new one, or the channels
    not served yet added to the one they have) and their side effects."""
    served = told or set()
    channels = [
        c for c in CHANNELS if c.name not in served and c.wants(recipient, account, alert.at)
    ]
    if told is not None and not channels:
        return  # told before, on every channel they ask for
    fields: dict[str, Any] = {}
    for channel in channels:
        fields |= channel.inbox_fields(account, alert.at) if channel.inbox_fields else {}
        if channel.pending is not None:
            prepared.pending.append(channel.pending(recipient, account))
    names = {c.name for c in channels}
    if told is not None:
        prepared.writes.append((inbox, {"data": {"channels": sorted(told | names)}} | fields))
    else:
        note = alert.record(recipient, names) | fields
        (prepared.creates if optimistic else prepared.writes).append((inbox, note))
    prepared.recipients += 1


# --- the delivery -------------------------------------------------------------------------


@dataclass
class AlertDelivery:
    """The fan-out of one listing event to the owners of matching saved searches."""

    transport: Callable[[firestore.Client], push.PushTransport] = push.default_transport
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    def _listing(self, db: firestore.Client, task: fanout.Task) -> Listing | None:
        """The listing as stored now, if the job's event still holds."""
        listing_id = str(task.params.get("listingId", ""))
        snapshot = listings.listing_ref(db, listing_id).get() if listing_id else None
        if snapshot is None or not snapshot.exists:
            return None
        try:
            listing = Listing.model_validate(snapshot.to_dict() or {})
        except ValidationError:
            return None
        if listing.status != "active":
            return None
        if task.kind == "price_drop" and listing.price.amount != task.params.get("amount"):
            return None
        return listing

    def source(self, db: firestore.Client, task: fanout.Task) -> fanout.Source | None:
        """The entries of the audiences the listing probes, if the event holds; the
        listing as read goes to :meth:`prepare`."""
        listing = self._listing(db, task)
        if listing is None:
            return None
        audiences = probe_audiences(listing)

        def read(after: str | None, _wanted: int) -> Iterator[tuple[str, shards.Entry]]:
            return SEARCH_INDEX.walk(db, audiences, after)  # whole shards: no limit

        return fanout.Source(read, context=listing)

    def prepare(
        self,
        db: firestore.Client,
        task: fanout.Task,
        page: Sequence[shards.Entry],
        *,
        context: Any,
        optimistic: bool,
    ) -> fanout.Prepared:
        """Inbox documents and digest items for the page's recipients; pushes pending.

        The inbox document is every recipient's record (``data.channels`` says how they
        were told): a user told by an earlier chunk or job gets only the channels not
        served yet (a second search of theirs may ask for push where the first did not).
        Optimistically, nobody was told: the inbox documents are created unread.
        """
        listing: Listing = context
        title, body = message_of(task.kind, listing)
        note_id = str(task.params.get("notificationId") or task.job)
        alert = _Alert(note_id, task.kind, str(task.params["listingId"]), title, body, self.clock())
        recipients = self._recipients(listing, page)
        inboxes = {uid: db.document(f"users/{uid}/notifications/{note_id}") for uid in recipients}
        told = {} if optimistic else _served(db, list(inboxes.values()))
        accounts = notify.USERS.reaches(db, recipients)
        prepared = fanout.Prepared(shared=alert.shared)
        for uid, recipient in recipients.items():
            _tell(
                prepared,
                alert,
                inboxes[uid],
                recipient,
                account=accounts[uid],
                told=told.get(uid),
                optimistic=optimistic,
            )
        return prepared

    def act(
        self,
        db: firestore.Client,
        task: fanout.Task,
        pending: Sequence[dict[str, Any]],
        *,
        shared: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        """Push the shared message to every device of each pending recipient."""
        pushes = [
            push.Push(
                uid=p["uid"],
                collapse_id=shared["id"],
                title=shared["title"],
                body=shared["body"],
                data=shared["data"],
                tokens=tuple(p["tokens"]) if p.get("tokens") is not None else None,
            )
            for p in pending
        ]
        report = push.send_pushes(db, self.transport(db), DEVICES, pushes)
        logs.info(
            "alert pushes",
            job=task.job,
            sent=report.sent,
            failed=report.failed,
            removedTokens=report.removed_tokens,
            withoutDevices=report.users_without_devices,
            retry=len(report.retry),
        )
        return [p for p in pending if p["uid"] in report.retry]

    # -- helpers ------------------------------------------------------------------------

    def _recipients(self, listing: Listing, page: Iterable[shards.Entry]) -> dict[str, _Recipient]:
        """The page's matching searches, one entry per owner (channels combined)."""
        found: dict[str, _Recipient] = {}
        for item in page:
            try:
                search = SearchEntry.model_validate(item.value)
            except ValidationError:
                continue  # no longer fits the model: the search trigger takes it out
            if search.ownerId == listing.ownerId or not matches(search, listing):
                continue
            recipient = found.setdefault(search.ownerId, _Recipient(search.ownerId))
            recipient.in_app |= search.channels.inApp
            recipient.push |= search.channels.push
            recipient.email |= search.channels.email
            recipient.searches.append(item.key)
        return found


def _served(
    db: firestore.Client, inboxes: list[firestore.DocumentReference]
) -> dict[str, set[str]]:
    """The users told before (their inbox document exists): the channels they were told on."""
    served: dict[str, set[str]] = {}
    for snapshot in wire.get_all(db, inboxes):
        owner = snapshot.reference.parent.parent
        if snapshot.exists and owner is not None:
            channels = ((snapshot.to_dict() or {}).get("data") or {}).get("channels") or []
            served[owner.id] = set(channels) | {"inApp"}
    return served


# --- the daily email digest -----------------------------------------------------------


def send_due_digests(
    db: firestore.Client, today: dt.date, *, page: int = 200, budget_s: float = 480.0
) -> int:
    """Mail every user's digest of each day before ``today`` (their inbox documents still
    marked for it, of every kind: :func:`marketplace.notify.render_digest`), within a time
    budget (under the scheduler's timeout; what is left goes out on the next run)."""

    def due(limit: int) -> firestore.Query:
        before: list[tuple[queries.RangeOp, Any]] = [("<", today.isoformat())]
        return queries.DIGEST_ITEMS_DUE.build(db, ranges={mail.DIGEST_DAY: before}, limit=limit)

    def of_day(collection: firestore.CollectionReference, day: str) -> firestore.Query:
        owner = collection.parent
        uid = owner.id if owner is not None else ""
        return queries.DIGEST_ITEMS_OF_DAY.build(
            db, path={"uid": uid}, equals={mail.DIGEST_DAY: day}
        )

    return mail.send_digests(db, due, of_day, notify.render_digest, page=page, budget_s=budget_s)
