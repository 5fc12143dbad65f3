"""Conversations, viewings (with the agents' hours and the viewings' granule locks) and
offers between buyers and agents.

Everything happens on public listings, after they were published and before ``now``:
a conversation's derived fields agree with its messages (:mod:`seed.chats`); a live
viewing holds its granules, as a booking would have left them; listings under offer or
sold have an accepted offer.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from itertools import count
from typing import Any

from marketplace import viewings
from marketplace.models import Availability, Offer, Viewing, ViewingHold, ViewingLock
from marketplace.models.viewings import WEEKDAYS
from seed import chats
from seed.buyers import Buyer
from seed.chats import SHOWCASE_AGENT, SHOWCASE_BUYERS
from seed.clock import DAY, HOUR, between
from seed.documents import SeedDoc
from seed.listings import Home

SLOT = dt.timedelta(minutes=30)
OFFER_NOTES = (
    "Mortgage agreed in principle; no chain.",
    "First-time buyer, deposit ready.",
    "Cash buyer, can move quickly.",
    None,
)


def _viewable(home: Home) -> bool:
    return home.status in ("active", "under_offer")


def _choose_homes(rng: random.Random, buyer: Buyer, homes: list[Home], n: int) -> list[Home]:
    """``n`` viewable listings for ``buyer``: their city and kind, the showcase agent's first."""
    pool = [h for h in homes if _viewable(h) and h.city == buyer.city and h.kind == buyer.kind]
    if buyer.uid in SHOWCASE_BUYERS:
        pool = [h for h in pool if h.owner == SHOWCASE_AGENT] or pool
    return rng.sample(pool, min(n, len(pool)))


def conversations(
    rng: random.Random, now: dt.datetime, buyers: list[Buyer], homes: list[Home]
) -> list[SeedDoc]:
    """Conversations (with their messages) between buyers and the agents of listings; the
    sign-in agent blocks one buyer and reports another (:func:`seed.chats.moderation`)."""
    docs: list[SeedDoc] = []
    for buyer in buyers:
        showcase = buyer.uid in SHOWCASE_BUYERS
        n = 4 if showcase else rng.choice((0, 1, 1, 2, 3))
        for i, home in enumerate(_choose_homes(rng, buyer, homes, n)):
            # The sign-in accounts' chats end unread, by turns for the agent and the buyer.
            unread_for = (home.owner if i % 2 == 0 else buyer.uid) if showcase else None
            docs += chats.conversation(rng, now, buyer.uid, home, unread_for=unread_for)
    return docs + chats.moderation(now, docs)


SEED_HOURS = dict.fromkeys(WEEKDAYS, "08:00-20:00")
"""Every seeded agent's viewing hours (London time): wide enough that every seeded slot,
09:00 to 17:30 UTC, falls inside them in winter and in summer."""


def viewing_hours(now: dt.datetime, homes: list[Home]) -> list[SeedDoc]:
    """Every agent's hours for all their listings, confirmed by hand; and the sign-in
    agent's first London listing on the market confirms requests at once (so a buyer sees
    both kinds straight away)."""
    hours = {
        "weekly": SEED_HOURS,
        "slotMinutes": 30,
        "timeZone": "Europe/London",
        "datesOff": [],
        "autoConfirm": False,
        "createdAt": now - 30 * DAY,
        "updatedAt": now - 30 * DAY,
    }
    agents = sorted({h.owner for h in homes})
    docs = [
        SeedDoc(
            viewings.AVAILABILITY.format(uid=a, scope=viewings.ALL_LISTINGS), Availability, hours
        )
        for a in agents
    ]
    instant = instant_listing(homes)
    if instant is not None:
        path = viewings.AVAILABILITY.format(uid=instant.owner, scope=instant.id)
        docs.append(SeedDoc(path, Availability, {**hours, "autoConfirm": True}))
    return docs


def instant_listing(homes: list[Home]) -> Home | None:
    """The sign-in agent's London listing whose viewings are confirmed at once."""
    found = [
        h
        for h in homes
        if h.owner == SHOWCASE_AGENT and h.city.name == "London" and h.status == "active"
    ]
    return found[0] if found else None


def viewings_of(
    rng: random.Random, now: dt.datetime, buyers: list[Buyer], homes: list[Home]
) -> list[SeedDoc]:
    """Past and upcoming viewings, each live one holding its granules in its agent's and
    its listing's diaries (and, while it waits, its requester's places), never two in one
    granule."""
    docs: list[SeedDoc] = []
    taken: set[str] = set()
    places: dict[str, int] = {}
    ids = count(1)
    for buyer in buyers:
        n = 2 if buyer.uid in SHOWCASE_BUYERS else rng.choice((0, 0, 1, 1, 2))
        for home in _choose_homes(rng, buyer, homes, n):
            start = _slot(rng, now, home)
            locks = viewings.lock_ids(home.owner, home.id, start, start + SLOT)
            if taken & set(locks):  # never double-book, even in seed data
                continue
            viewing_id = f"seed-viewing-{next(ids):03d}"
            viewing = _viewing(rng, now, buyer.uid, home, start)
            if viewing["status"] in viewings.ACTIVE:
                taken |= set(locks)
                viewing["locks"] = locks
                docs += [
                    SeedDoc(
                        f"{viewings.LOCKS}/{lock}",
                        ViewingLock,
                        viewings.lock_document(viewing_id, lock, viewing["createdAt"]),
                    )
                    for lock in locks
                ]
            if viewing["status"] == "requested":
                n_places = places[buyer.uid] = places.get(buyer.uid, -1) + 1
                viewing["holds"] = [
                    f"{buyer.uid}__{viewings.ALL_LISTINGS}__{n_places}",
                    f"{buyer.uid}__{home.id}__0",
                ]
                hold = {
                    "requesterId": buyer.uid,
                    "viewingId": viewing_id,
                    "createdAt": viewing["createdAt"],
                }
                docs += [
                    SeedDoc(f"{viewings.HOLDS}/{h}", ViewingHold, hold) for h in viewing["holds"]
                ]
            docs.append(SeedDoc(f"viewings/{viewing_id}", Viewing, viewing))
    return docs


def _slot(rng: random.Random, now: dt.datetime, home: Home) -> dt.datetime:
    """A half-hour slot in office hours: in the next fortnight, or past if it can be.

    Every draw happens whatever the outcome and the choice compares only with ``now``
    (not the time of day), so the seed's shape is the same whenever it is built.
    """
    assert home.published is not None
    ahead, back, slot = rng.randint(1, 14), rng.randint(1, 28), rng.randint(0, 16)
    in_past = rng.random()
    offset = -back if in_past < 0.5 and home.published < now - 31 * DAY else ahead
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day + offset * DAY + dt.timedelta(hours=9) + slot * SLOT


def _viewing(
    rng: random.Random, now: dt.datetime, buyer: str, home: Home, start: dt.datetime
) -> dict[str, Any]:
    assert home.published is not None
    if start > now:
        status = rng.choice(("requested", "confirmed", "confirmed"))
        # A request waits at most a day: a waiting one was made within the last 20 hours.
        recent = 20 * HOUR if status == "requested" else 7 * DAY
        created = between(rng, max(home.published, now - recent), now - HOUR)
        updated = created if status == "requested" else between(rng, created, now)
    else:
        status = rng.choice(("completed", "completed", "completed", "cancelled", "declined"))
        created = between(rng, max(home.published, start - 10 * DAY), start - 2 * HOUR)
        done = start + SLOT if status == "completed" else created
        updated = between(rng, done, min(now, start + 2 * DAY) if status == "completed" else start)
    requested = status == "requested"
    by = {"confirmed": home.owner, "declined": home.owner, "cancelled": buyer}.get(status, buyer)
    data: dict[str, Any] = {
        "listingId": home.id,
        "agentId": home.owner,
        "requesterId": buyer,
        "slotStart": start,
        "slotEnd": start + SLOT,
        "timeZone": "Europe/London",
        "status": status,
        "expiresAt": min(created + DAY, start) if requested else None,
        "locks": [],
        "holds": [],
        "requestKey": f"seed-{buyer}-{home.id}",
        "revision": 1 if requested else 2,
        "lastChange": {
            "kind": status,
            "by": None if status == "completed" else by,
            "at": updated,
        },
        "nextReminderAt": viewings.next_reminder(start, now) if status == "confirmed" else None,
        "createdAt": created,
        "updatedAt": updated,
    }
    if rng.random() < 0.3:
        data["note"] = rng.choice(
            ("I'll come with my partner.", "Running from work; may be 5 min late.")
        )
    return data


def offers(
    rng: random.Random, now: dt.datetime, buyers: list[Buyer], homes: list[Home]
) -> list[SeedDoc]:
    """Accepted offers behind every listing under offer or sold, and open ones elsewhere."""
    ids = (f"seed-offer-{n:03d}" for n in count(1))
    docs = []
    for home in homes:
        if home.status in ("under_offer", "sold"):
            docs += _settled(rng, ids, home, buyers)
    active = [h for h in homes if h.status == "active" and h.kind == "sale"]
    showcase = [h for h in active if h.owner == SHOWCASE_AGENT and h.city.name == "London"]
    for home in showcase[:2]:  # the sign-in buyer has offers of their own
        docs.append(_open_offer(rng, now, ids, buyer="seed-buyer", home=home, status="open"))
    for home in rng.sample(active, 20):
        status = rng.choice(("open", "countered", "open", "rejected", "withdrawn", "lapsed"))
        buyer = _buyer_for(rng, home, buyers)
        docs.append(_open_offer(rng, now, ids, buyer=buyer, home=home, status=status))
    return docs


def mark_accepted(homes: list[Home], docs: list[SeedDoc]) -> None:
    """Each listing under offer or sold names its accepted offer, as an acceptance does."""
    by_id = {h.id: h for h in homes}
    for doc in docs:
        if doc.model is Offer and doc.data["status"] == "accepted":
            by_id[doc.data["listingId"]].doc.data["acceptedOfferId"] = doc.path.split("/")[1]


def _buyer_for(rng: random.Random, home: Home, buyers: list[Buyer], but: str = "") -> str:
    """A buyer (not ``but``) looking to buy, from the listing's city when there is one."""
    keen = [b for b in buyers if b.kind == "sale" and b.uid != but]
    local = [b for b in keen if b.city == home.city]
    return rng.choice(local or keen).uid


def _amount(rng: random.Random, home: Home, low: float, high: float) -> dict[str, Any]:
    pounds = round(home.price / 100 * rng.uniform(low, high) / 1000) * 1000
    return {"amount": pounds * 100, "currency": "GBP"}


def _settled(
    rng: random.Random, ids: Iterator[str], home: Home, buyers: list[Buyer]
) -> list[SeedDoc]:
    """The accepted offer that took ``home`` off the market (and sometimes a losing one)."""
    assert home.published is not None
    created = between(rng, home.published + 3 * DAY, home.updated - DAY)
    winner = _buyer_for(rng, home, buyers)
    decided = between(rng, created, home.updated)
    accepted = {
        **_offer_fields(home, winner, _amount(rng, home, 0.94, 1.0), created, None),
        "status": "accepted",
        "updatedAt": decided,
        "decidedAt": decided,
        "revision": 2,
        "lastChange": {"move": "accept", "by": "agent", "at": decided, "reason": None},
    }
    docs = [SeedDoc(f"offers/{next(ids)}", Offer, accepted)]
    if rng.random() < 0.3:
        early = between(rng, home.published, created)
        docs.append(
            SeedDoc(
                f"offers/{next(ids)}",
                Offer,
                _answered(
                    _offer_fields(
                        home,
                        _buyer_for(rng, home, buyers, but=winner),
                        _amount(rng, home, 0.85, 0.92),
                        early,
                        None,
                    ),
                    "rejected",
                    between(rng, early, created),
                ),
            )
        )
    return docs


def _open_offer(
    rng: random.Random, now: dt.datetime, ids: Iterator[str], *, buyer: str, home: Home, status: str
) -> SeedDoc:
    assert home.published is not None
    created = between(rng, max(home.published, now - 30 * DAY), now - HOUR)
    amount = _amount(rng, home, 0.88, 0.98)
    answered = created if status == "open" else between(rng, created, now)
    note = rng.choice(OFFER_NOTES)
    data = _answered(_offer_fields(home, buyer, amount, created, note), status, answered)
    if status == "lapsed":  # it lapsed when its time was up
        data["expiresAt"] = data["lastChange"]["at"] = data["updatedAt"] = data["decidedAt"]
    elif status in ("open", "countered"):
        data["expiresAt"] = max(data["expiresAt"], now + DAY)  # still open, so not yet due
    return SeedDoc(f"offers/{next(ids)}", Offer, data)


MOVE_TO = {
    "countered": ("counter", "agent"),
    "rejected": ("reject", "agent"),
    "withdrawn": ("withdraw", "buyer"),
    "lapsed": ("lapse", "system"),
}
REJECTION = "The seller has accepted a higher offer elsewhere in the chain."


def _offer_fields(
    home: Home, buyer: str, amount: dict[str, Any], created: dt.datetime, note: str | None
) -> dict[str, Any]:
    """An open offer as make_offer records it (conditions read from the buyer's note)."""
    conditions = {
        "mortgageAgreedInPrinciple": note is not None and "Mortgage" in note,
        "cashBuyer": note is not None and "Cash" in note,
        "chainFree": note is not None and "no chain" in note,
    }
    return {
        "listingId": home.id,
        "buyerId": buyer,
        "agentId": home.owner,
        "kind": "sale",
        "amount": amount,
        "conditions": conditions,
        "message": note,
        "status": "open",
        "counterAmount": None,
        "expiresAt": created + 14 * DAY,
        "rejectionReason": None,
        "deposit": None,
        "revision": 1,
        "lastChange": {"move": "make", "by": "buyer", "at": created, "reason": None},
        "createdAt": created,
        "updatedAt": created,
        "decidedAt": None,
    }


def _answered(offer: dict[str, Any], status: str, at: dt.datetime) -> dict[str, Any]:
    """``offer`` moved to ``status`` at ``at`` (open: left as it is)."""
    if status == "open":
        return offer
    move, by = MOVE_TO[status]
    reason = REJECTION if status == "rejected" else None
    data = {
        **offer,
        "status": status,
        "revision": 2,
        "lastChange": {"move": move, "by": by, "at": at, "reason": reason},
        "updatedAt": at,
        "rejectionReason": reason,
        "decidedAt": None if status == "countered" else at,
    }
    if status == "countered":
        asked = offer["amount"]
        data["counterAmount"] = {**asked, "amount": asked["amount"] * 103 // 100}
    return data
