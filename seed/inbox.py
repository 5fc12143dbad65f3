"""In-app notifications, each about something that happened in the rest of the seed.

Ids follow what a fan-out would use (``{kind}-{what it is about}``), so a re-run, like a
retried delivery, rewrites the same documents.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from marketplace.models import Notification
from seed.clock import DAY, between
from seed.documents import SeedDoc
from seed.listings import Home


@dataclass(frozen=True)
class _Note:
    """A notification before it is stored: who gets it and what it says."""

    recipient: str
    id: str
    kind: str
    home: Home
    title: str
    body: str
    link: str
    data: dict[str, str]
    at: dt.datetime


def price_text(home: Home) -> str:
    """The asking price as people read it: ``£425,000`` or ``£1,250 pcm``."""
    pounds = f"£{home.price // 100:,}"
    return pounds if home.kind == "sale" else f"{pounds} pcm"


def notifications(
    rng: random.Random,
    now: dt.datetime,
    names: dict[str, str],
    homes: list[Home],
    docs: list[SeedDoc],
) -> list[SeedDoc]:
    """Notifications for offers, viewings and saved-search matches (unread messages'
    are :func:`seed.chats.inbox`'s)."""
    by_id = {h.id: h for h in homes}
    notes: list[_Note] = []
    for doc in docs:
        doc_id, data = doc.path.rsplit("/", 1)[1], doc.data
        if doc.collection == "savedSearches":
            notes += _about_match(doc_id, data, homes)
        elif doc.collection in ABOUT:
            notes += ABOUT[doc.collection](names, doc_id, data, by_id[data["listingId"]])
    return [_stored(rng, now, note) for note in notes]


def _about_offer(
    names: dict[str, str], offer_id: str, data: dict[str, Any], home: Home
) -> list[_Note]:
    amount = f"£{data['amount']['amount'] // 100:,}"
    link, ref = f"/offers/{offer_id}", {"offerId": offer_id}
    # The ids the offer trigger gives the same notices (offer-{id}-{revision}), so the
    # trigger, run on the seeded offers, finds them told already.
    if data["status"] == "open":
        title = f"New offer on {home.title}"
        body = f"{names[data['buyerId']]} offered {amount} (asking {price_text(home)})."
        return [
            _Note(
                data["agentId"],
                f"offer-{offer_id}-{data['revision']}",
                "offer",
                home,
                title,
                body,
                link,
                ref,
                data["createdAt"],
            )
        ]
    if data["status"] == "accepted":
        body = f"Your offer of {amount} on {home.title} was accepted."
        return [
            _Note(
                data["buyerId"],
                f"offer-{offer_id}-{data['revision']}",
                "offer",
                home,
                "Your offer was accepted",
                body,
                link,
                ref,
                data["updatedAt"],
            )
        ]
    return []


def _about_viewing(
    names: dict[str, str], viewing_id: str, data: dict[str, Any], home: Home
) -> list[_Note]:
    when = data["slotStart"].strftime("%a %d %b at %H:%M")
    link, ref = f"/viewings/{viewing_id}", {"viewingId": viewing_id}
    if data["status"] == "requested":
        body = f"{names[data['requesterId']]} would like to view {home.title} on {when}."
        return [
            _Note(
                data["agentId"],
                f"viewing-{viewing_id}-{data['revision']}",
                "viewing",
                home,
                "Viewing requested",
                body,
                link,
                ref,
                data["createdAt"],
            )
        ]
    if data["status"] == "confirmed":
        body = f"See you at {home.title} on {when}."
        return [
            _Note(
                data["requesterId"],
                f"viewing-{viewing_id}-{data['revision']}",
                "viewing",
                home,
                "Viewing confirmed",
                body,
                link,
                ref,
                data["updatedAt"],
            )
        ]
    return []


ABOUT = {"offers": _about_offer, "viewings": _about_viewing}


def _about_match(search_id: str, data: dict[str, Any], homes: list[Home]) -> list[_Note]:
    """The newest active listing in the search's city and kind, published after it."""
    if data["muted"] or "city" not in data:
        return []
    matches = [h for h in homes if _matches(data, h)]
    if not matches:
        return []
    home = max(matches, key=lambda h: h.published or h.updated)
    assert home.published is not None
    return [
        _Note(
            data["ownerId"],
            f"match-{search_id}-{home.id}",
            "listing_match",
            home,
            f"New match for '{data['name']}'",
            f"{home.title}, {price_text(home)}",
            f"/listings/{home.id}",
            {"searchId": search_id},
            home.published,
        )
    ]


def _matches(search: dict[str, Any], home: Home) -> bool:
    """Would ``search`` (a city search) match ``home``, published after it was saved?"""
    facts = home.doc.data
    return (
        home.status == "active"
        and home.published is not None
        and home.published > search["createdAt"]
        and home.kind == search["kind"]
        and home.city.name == search["city"]
        and search.get("priceMin", 0) <= home.price <= search.get("priceMax", home.price)
        and facts["bedrooms"] >= search.get("bedroomsMin", 0)
        and (not search["propertyTypes"] or facts["propertyType"] in search["propertyTypes"])
    )


def _stored(rng: random.Random, now: dt.datetime, note: _Note) -> SeedDoc:
    data: dict[str, Any] = {
        "kind": note.kind,
        "title": note.title,
        "body": note.body,
        "listingId": note.home.id,
        "link": note.link,
        "data": note.data,
        "createdAt": note.at,
        "read": False,
    }
    # Older notifications have mostly been read.
    if note.at < now - 2 * DAY and rng.random() < 0.7:
        data.update(read=True, readAt=between(rng, note.at, now))
    return SeedDoc(f"users/{note.recipient}/notifications/{note.id}", Notification, data)
