"""Saved-search alerts: match keys, and telling every matching user about a listing once.

**Matching reads only the matches.** Each saved search carries ``matchKeys``, derived by
a function from its criteria, of the form ``<kind>|<currency>|<anchor>|<price band>``:

- the anchor is where it looks: ``city:<city>``, or for a search near a point the
  geohash cells covering its circle (``gh5:`` up to 2.5 km, ``gh4:`` up to 20 km,
  ``gh3:`` beyond; coarser, or ``*``, where that takes more than 64 cells, as around a
  pole), or ``*`` for anywhere;
- one key per price band (``listings.PRICE_BANDS``) its price range overlaps.

A listing probes with five keys (its city, ``*``, and its own gh3/gh4/gh5 cells, each
with its kind, currency and band) in one ``array-contains-any`` query over unmuted
searches. A search matches through exactly one of them, so the query returns each
candidate once, and a candidate already agrees on kind, currency, place (to the
covering cell) and price band; :func:`matches` then checks the exact criteria in
memory (price, bedrooms, property types, distance). Reads grow with the searches that
(nearly) match, not with how many searches exist. Muted searches have no keys at all.

**Once per user per listing event.** The events are ``new_listing`` (a listing became
active) and ``price_drop`` (an active listing's price fell). Each runs as one fan-out job
(:mod:`firekit.fanout`) whose id names the listing and event, and each user gets:

- an inbox document ``users/{uid}/notifications/<event id>``: deterministic, and its
  existence is what says "this user was told", so a second matching search of the same
  user, a retried chunk or a repeated job never tells them again;
- a push to each device (if any matching search asks for push, the user has not turned
  push off, and it is not their quiet hours: then the inbox alone carries it);
- an item in their daily email digest (if a matching search asks for email and the user
  has not turned email off), sent as one Trigger Email document per user per day.

Nobody is told about their own listing. A job re-reads the listing for every chunk and
stops when the event no longer holds (the listing left the market; its price moved
again, in which case the newer drop's job tells them).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pygeohash
from google.cloud import firestore
from pydantic import ValidationError

from firekit import fanout, logs, mail, push, wire
from marketplace import listings, nearby, queries
from marketplace.models.listings import Listing
from marketplace.models.searches import SavedSearch
from marketplace.models.users import NotificationSettings, QuietHours
from marketplace.profiles import account_ref

SEARCHES = "savedSearches"
DIGESTS = "emailDigests"
EventKind = Literal["new_listing", "price_drop"]
EVENT_KINDS: tuple[EventKind, ...] = ("new_listing", "price_drop")
GEO_LEVELS: tuple[tuple[float, int], ...] = ((2.5, 5), (20.0, 4), (50.0, 3))
"""(largest radius in km, geohash precision): cells of about 4.9, 39 x 20 and 156 km."""
MAX_ANCHOR_CELLS = 64
"""The most cells a search's anchors may hold at one level (a few dozen; one near a pole
would take thousands, past Firestore's 40,000 index entries with its price bands)."""
DEVICES = push.Devices(collection="users/{uid}/devices", holder="users/{uid}/private/account")
"""Devices under their user; their tokens kept on the private account the fan-out reads."""
CURRENCY_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


# --- match keys -----------------------------------------------------------------------


def _city(name: str) -> str:
    return listings.collapse(name).casefold()


def geo_precision(radius_km: float) -> int:
    """The geohash precision whose cells suit a circle of this radius."""
    for largest, precision in GEO_LEVELS:
        if radius_km <= largest:
            return precision
    return GEO_LEVELS[-1][1]


def covering_cells(lat: float, lng: float, radius_km: float, precision: int) -> list[str] | None:
    """Every geohash cell at ``precision`` that the circle's bounding boxes touch, or None
    if that would be more than :data:`MAX_ANCHOR_CELLS` (a circle around a pole)."""
    boxes = nearby.bounding_boxes(lat, lng, radius_km)
    if nearby.cells_in_boxes(boxes, precision) > MAX_ANCHOR_CELLS:
        return None
    return sorted({str(c) for box in boxes for c in pygeohash.geohashes_in_box(box, precision)})


def near_anchors(lat: float, lng: float, radius_km: float) -> list[str]:
    """The anchors of a search near a point: the covering cells at the finest level that
    suits the radius and stays under :data:`MAX_ANCHOR_CELLS` cells, else ``*``
    (anywhere: the exact distance check does the rest)."""
    finest = geo_precision(radius_km)
    for _, precision in GEO_LEVELS:
        if precision > finest:
            continue
        cells = covering_cells(lat, lng, radius_km, precision)
        if cells is not None:
            return [f"gh{precision}:{cell}" for cell in cells]
    return ["*"]


def bands_between(kind: str, low_minor: int | None, high_minor: int | None) -> list[str]:
    """The price bands (as ``listings.price_band`` names them) a price range overlaps."""
    edges = listings.PRICE_BANDS[kind]
    low = (low_minor or 0) // 100
    high = math.inf if high_minor is None else high_minor / 100
    names = []
    for index, edge in enumerate(edges):
        top = edges[index + 1] if index + 1 < len(edges) else math.inf
        if edge <= high and top > low:
            names.append(listings.price_band(kind, edge))
    return names


def match_keys(search: SavedSearch) -> list[str]:
    """The keys a listing's probe finds this search by (none while muted)."""
    if search.muted:
        return []
    if search.near is not None:
        anchors = near_anchors(search.near.lat, search.near.lng, search.near.radiusKm)
    elif search.city is not None:
        anchors = [f"city:{_city(search.city)}"]
    else:
        anchors = ["*"]
    bands = bands_between(search.kind, search.priceMin, search.priceMax)
    prefix = f"{search.kind}|{search.currency}"
    return [f"{prefix}|{anchor}|{band}" for anchor in anchors for band in bands]


def probe_keys(listing: Listing) -> list[str]:
    """The keys a listing looks for searches with: one per kind of anchor."""
    band = listings.price_band(listing.kind, listing.price.amount // 100)
    prefix = f"{listing.kind}|{listing.price.currency}"
    cell = listings.geohash_of(listing.location.lat, listing.location.lng)
    anchors = [f"city:{_city(listing.address.city)}", "*"]
    anchors += [f"gh{precision}:{cell[:precision]}" for _, precision in GEO_LEVELS]
    return [f"{prefix}|{anchor}|{band}" for anchor in anchors]


def matches(search: SavedSearch, listing: Listing) -> bool:
    """Does the listing meet every criterion of the search (exactly)?"""
    price = listing.price
    if search.muted or search.kind != listing.kind or search.currency != price.currency:
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


def refresh_match_keys(
    db: firestore.Client, transaction: firestore.Transaction, search_id: str
) -> list[str] | None:
    """Derive the stored search's keys now; write them if they changed (None: no write).

    Reads the search as stored, so whatever order the events come in, the keys end as
    those of its latest criteria. A search that no longer fits the model matches nothing.
    """
    ref = db.collection(SEARCHES).document(search_id)
    snapshot = ref.get(transaction=transaction)
    if not snapshot.exists:
        return None
    data = snapshot.to_dict() or {}
    try:
        keys = match_keys(SavedSearch.model_validate(data))
    except ValidationError:
        keys = []
    if data.get("matchKeys") == keys:
        return None
    transaction.update(ref, {"matchKeys": keys})
    return keys


def searches_matching(db: firestore.Client, listing: Listing) -> firestore.Query:
    """The query of the saved searches a listing may match: unmuted, holding any of its
    probe keys."""
    return queries.SEARCHES_MATCHING.build(
        db, equals={"muted": False}, contains=probe_keys(listing)
    )


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


def in_quiet_hours(quiet: QuietHours | None, now: dt.datetime) -> bool:
    """Is ``now`` inside the user's quiet hours (which may span midnight)?"""
    if quiet is None:
        return False
    try:
        zone = ZoneInfo(quiet.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")  # an unknown zone: the hours as UTC beat pushing at 3 am
    local = now.astimezone(zone).strftime("%H:%M")
    if quiet.start == quiet.end:
        return False
    if quiet.start < quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end


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


@dataclass
class _Recipient:
    uid: str
    in_app: bool = False
    push: bool = False
    email: bool = False
    searches: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Account:
    """What the private account says about how to reach its user."""

    prefs: NotificationSettings | None = None
    email: str | None = None
    tokens: tuple[str, ...] | None = None
    """Push tokens as the devices trigger keeps them; None: never synced (read them)."""


_NO_ACCOUNT = _Account()


@dataclass
class AlertDelivery:
    """The fan-out of one listing event to the owners of matching saved searches."""

    transport: Callable[[firestore.Client], push.PushTransport] = push.default_transport
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    def _listing(self, db: firestore.Client, task: fanout.ChunkTask) -> Listing | None:
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

    def source(self, db: firestore.Client, task: fanout.ChunkTask) -> fanout.Source | None:
        """Unmuted searches holding any of the listing's probe keys, if the event holds;
        the listing as read goes to :meth:`prepare`."""
        listing = self._listing(db, task)
        if listing is None:
            return None
        return fanout.Source(searches_matching(db, listing), context=listing)

    def prepare(
        self,
        db: firestore.Client,
        task: fanout.ChunkTask,
        page: Sequence[wire.Snapshot],
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
        recipients = self._recipients(listing, page)
        note_id = str(task.params.get("notificationId") or task.job)
        inboxes = {uid: db.document(f"users/{uid}/notifications/{note_id}") for uid in recipients}
        served: dict[str, set[str]] = {}
        for snapshot in wire.get_all(db, list(inboxes.values())) if not optimistic else []:
            if snapshot.exists:
                owner = snapshot.reference.parent.parent
                channels = ((snapshot.to_dict() or {}).get("data") or {}).get("channels") or []
                if owner is not None:
                    served[owner.id] = set(channels) | {"inApp"}
        accounts = self._accounts(db, list(recipients))
        title, body = message_of(task.kind, listing)
        now = self.clock()
        listing_id = str(task.params["listingId"])
        link = f"/listings/{listing_id}"
        kind = "listing_match" if task.kind == "new_listing" else "price_drop"
        prepared = fanout.Prepared(shared={
            "id": note_id, "title": title, "body": body,
            "data": {"listingId": listing_id, "notificationId": note_id, "kind": task.kind,
                     "link": link},
        })  # fmt: skip
        for recipient in recipients.values():
            already = served.get(recipient.uid)
            account = accounts.get(recipient.uid, _NO_ACCOUNT)
            prefs = account.prefs
            wants_push = recipient.push and (prefs is None or prefs.push)
            if wants_push and in_quiet_hours(prefs.quietHours if prefs else None, now):
                wants_push = False  # the inbox carries it alone
            wants_email = recipient.email and (prefs is None or prefs.email) and bool(account.email)
            new = {"push"} if wants_push else set()
            new |= {"email"} if wants_email else set()
            if already is not None:
                new -= already
                if not new:
                    continue  # told before, on every channel they ask for
                channels = sorted(already | new)
                prepared.writes.append((inboxes[recipient.uid], {"data": {"channels": channels}}))
            else:
                note = {
                    "kind": kind, "title": title, "body": body, "listingId": listing_id,
                    "link": link,
                    "data": {"searchIds": recipient.searches[:10], "event": task.kind,
                             "channels": sorted(new | {"inApp"})},
                    # In-app is every alert's record; a user who wants none in-app still
                    # finds it in their history, but it never badges as unread.
                    "createdAt": firestore.SERVER_TIMESTAMP, "read": not recipient.in_app,
                }  # fmt: skip
                (prepared.creates if optimistic else prepared.writes).append(
                    (inboxes[recipient.uid], note)
                )
            if "push" in new:
                tokens = list(account.tokens) if account.tokens is not None else None
                prepared.pending.append({"uid": recipient.uid, "tokens": tokens})
            if "email" in new and account.email:
                day = now.date()
                ref = db.collection(DIGESTS).document(mail.digest_id(recipient.uid, day))
                item = {"title": title, "body": body, "link": link, "at": now}
                prepared.writes.append(
                    (ref, mail.digest_entry(account.email, recipient.uid, day, note_id, item))
                )
            prepared.recipients += 1
        return prepared

    def act(
        self,
        db: firestore.Client,
        task: fanout.ChunkTask,
        pending: Sequence[dict[str, Any]],
        *,
        shared: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        """Push the shared message to every device of each pending recipient."""
        pushes = [
            push.Push(uid=p["uid"], collapse_id=shared["id"], title=shared["title"],
                      body=shared["body"], data=shared["data"],
                      tokens=tuple(p["tokens"]) if p.get("tokens") is not None else None)
            for p in pending
        ]  # fmt: skip
        report = push.send_pushes(db, self.transport(db), DEVICES, pushes)
        logs.info(
            "alert pushes", job=task.job, sent=report.sent, failed=report.failed,
            removedTokens=report.removed_tokens, withoutDevices=report.users_without_devices,
            retry=len(report.retry),
        )  # fmt: skip
        return [p for p in pending if p["uid"] in report.retry]

    # -- helpers ------------------------------------------------------------------------

    def _recipients(self, listing: Listing, page: Iterable[wire.Snapshot]) -> dict[str, _Recipient]:
        """The page's matching searches, one entry per owner (channels combined)."""
        found: dict[str, _Recipient] = {}
        for snapshot in page:
            try:
                search = SavedSearch.model_validate(snapshot.to_dict() or {})
            except ValidationError:
                continue  # the search trigger gives such a search no keys; it is stale here
            if search.ownerId == listing.ownerId or not matches(search, listing):
                continue
            recipient = found.setdefault(search.ownerId, _Recipient(search.ownerId))
            recipient.in_app |= search.channels.inApp
            recipient.push |= search.channels.push
            recipient.email |= search.channels.email
            recipient.searches.append(snapshot.id)
        return found

    def _accounts(self, db: firestore.Client, uids: list[str]) -> dict[str, _Account]:
        """Each user's notification settings, email address and push tokens."""
        found: dict[str, _Account] = {}
        if not uids:
            return found
        for snapshot in wire.get_all(db, [account_ref(db, uid) for uid in uids]):
            if not snapshot.exists:
                continue
            data = snapshot.to_dict() or {}
            uid = snapshot.reference.parent.parent.id
            try:
                prefs = (
                    NotificationSettings.model_validate(data["notifications"])
                    if data.get("notifications")
                    else None
                )
            except ValidationError:
                prefs = None
            email = data.get("email")
            email = email if isinstance(email, str) and "@" in email else None
            found[uid] = _Account(prefs, email, push.tokens_in(DEVICES, data))
        return found


# --- the daily email digest -----------------------------------------------------------


def render_digest(digest: Mapping[str, Any]) -> mail.Rendered:
    """One user's day of alerts as an email, newest first."""
    items = sorted(
        (dict(item) for item in (digest.get("items") or {}).values()),
        key=lambda item: str(item.get("at", "")),
        reverse=True,
    )
    shown = items[: mail.MAX_ITEMS_SHOWN]
    count = len(items)
    subject = f"{count} new home{'s' if count != 1 else ''} for your saved searches"
    rows = [(str(i.get("title", "")), str(i.get("body", "")), i.get("link")) for i in shown]
    intro = f"Here is what matched your saved searches on {digest.get('day')}."
    return mail.render_list(subject, intro, rows, count - len(shown))


def send_due_digests(
    db: firestore.Client, today: dt.date, *, page: int = 200, budget_s: float = 480.0
) -> int:
    """Mail every digest of a day before ``today``, page by page within a time budget
    (under the scheduler's timeout; what is left goes out on the next run)."""
    started, sent = time.monotonic(), 0
    while time.monotonic() - started < budget_s:
        query = queries.DIGESTS_DUE.build(
            db, ranges={"day": [("<", today.isoformat())]}, limit=page
        )
        due = list(query.stream())
        for snapshot in due:
            if mail.send_digest(db, snapshot.reference, render_digest):
                sent += 1
        if len(due) < page:
            break
    return sent
