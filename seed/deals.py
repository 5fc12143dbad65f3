"""Conversations, viewings (with their slot locks) and offers between buyers and agents.

Everything happens on public listings, after they were published and before ``now``:
a conversation's ``lastMessage`` and ``unread`` agree with its messages; a viewing's slot
lock exists while the slot is taken; listings under offer or sold have an accepted offer.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from itertools import count
from typing import Any

from marketplace.models import Conversation, Message, Offer, Viewing, ViewingSlot
from seed.buyers import Buyer
from seed.clock import DAY, HOUR, between, seconds
from seed.documents import SeedDoc
from seed.listings import Home

SHOWCASE_AGENT = "seed-agent"
"""The agent whose listings the sign-in buyers talk about (see ``buyers.assign_buyers``)."""
SHOWCASE_BUYERS = ("seed-buyer", "seed-renter")
SLOT = dt.timedelta(minutes=30)
BUYER_LINES = (
    "Hi, is this still available?",
    "Could I come and see it this weekend?",
    "Is there any flexibility on the price?",
    "How old is the boiler, and when was it last serviced?",
    "Are the neighbours quiet? I work from home a lot.",
    "Great, thank you. Saturday morning would suit me best.",
    "What are the council tax band and the energy rating?",
    "Thanks for the quick reply!",
)
AGENT_LINES = (
    "Yes, it's still available, and there's been a lot of interest.",
    "Of course. I have Saturday at 11:00 or 11:30; which suits you?",
    "The seller is open to sensible offers.",
    "The boiler was replaced three years ago and is serviced every year.",
    "It's council tax band C and the EPC rating is C.",
    "I've booked you in; you'll get a confirmation in the app.",
    "Happy to help. Let me know if you have any other questions.",
)
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
    """Conversations (with their messages) between buyers and the agents of listings."""
    docs: list[SeedDoc] = []
    for buyer in buyers:
        n = 4 if buyer.uid in SHOWCASE_BUYERS else rng.choice((0, 1, 1, 2, 3))
        for home in _choose_homes(rng, buyer, homes, n):
            docs += _conversation(rng, now, buyer.uid, home)
    return docs


def _message_times(rng: random.Random, now: dt.datetime, home: Home, n: int) -> list[dt.datetime]:
    assert home.published is not None
    start = between(rng, max(home.published, now - 30 * DAY), now - 6 * HOUR)
    gaps = [rng.uniform(300, 20 * 3600) for _ in range(n - 1)]
    room = (now - start).total_seconds() * 0.95
    scale = min(1.0, room / sum(gaps)) if gaps else 1.0  # squeeze a long chat before now
    times, t = [start], start
    for gap in gaps:
        t = seconds(t + dt.timedelta(seconds=gap * scale))
        times.append(t)
    return times


def _conversation(rng: random.Random, now: dt.datetime, buyer: str, home: Home) -> list[SeedDoc]:
    cid = f"{home.id}__{buyer}"
    times = _message_times(rng, now, home, rng.randint(2, 7))
    senders = [buyer]
    for _ in times[1:]:
        previous = senders[-1]
        other = home.owner if previous == buyer else buyer
        senders.append(other if rng.random() < 0.8 else previous)
    lines = {buyer: iter(BUYER_LINES), home.owner: iter(AGENT_LINES)}
    texts = [next(lines[s]) for s in senders]
    messages = [
        SeedDoc(
            f"conversations/{cid}/messages/msg-{i:02d}",
            Message,
            {"senderId": s, "text": text, "createdAt": t},
        )
        for i, (s, text, t) in enumerate(zip(senders, texts, times, strict=True), start=1)
    ]
    recipient = home.owner if senders[-1] == buyer else buyer
    unread = {buyer: 0, home.owner: 0}
    if rng.random() < 0.5:  # else the recipient has read them already
        unread[recipient] = _trailing_run(senders)
    data = {
        "listingId": home.id,
        "buyerId": buyer,
        "agentId": home.owner,
        "participantIds": [buyer, home.owner],
        "createdAt": times[0],
        "updatedAt": times[-1],
        "lastMessage": {"text": texts[-1][:200], "senderId": senders[-1], "sentAt": times[-1]},
        "unread": unread,
    }
    return [SeedDoc(f"conversations/{cid}", Conversation, data), *messages]


def _trailing_run(senders: list[str]) -> int:
    """How many messages at the end came from the last sender, back to back."""
    run = 0
    for sender in reversed(senders):
        if sender != senders[-1]:
            break
        run += 1
    return run


def slot_id(listing_id: str, start: dt.datetime) -> str:
    """The id of a slot lock: ``{listingId}__{slotStart}`` with the start in ISO UTC."""
    return f"{listing_id}__{start.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def viewings(
    rng: random.Random, now: dt.datetime, buyers: list[Buyer], homes: list[Home]
) -> list[SeedDoc]:
    """Past and upcoming viewings, and a slot lock for each that still holds its slot."""
    docs: list[SeedDoc] = []
    taken: set[str] = set()
    ids = count(1)
    for buyer in buyers:
        n = 2 if buyer.uid in SHOWCASE_BUYERS else rng.choice((0, 0, 1, 1, 2))
        for home in _choose_homes(rng, buyer, homes, n):
            start = _slot(rng, now, home)
            lock = slot_id(home.id, start)
            if lock in taken:  # never double-book, even in seed data
                continue
            viewing_id = f"seed-viewing-{next(ids):03d}"
            viewing = _viewing(rng, now, buyer.uid, home, start)
            docs.append(SeedDoc(f"viewings/{viewing_id}", Viewing, viewing))
            if viewing["status"] in ("requested", "confirmed", "completed"):
                taken.add(lock)
                lock_data = {
                    "listingId": home.id,
                    "slotStart": start,
                    "viewingId": viewing_id,
                    "createdAt": viewing["createdAt"],
                }
                docs.append(SeedDoc(f"viewingSlots/{lock}", ViewingSlot, lock_data))
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
        created = between(rng, max(home.published, now - 7 * DAY), now - HOUR)
        updated = created if status == "requested" else between(rng, created, now)
    else:
        status = rng.choice(("completed", "completed", "completed", "cancelled", "declined"))
        created = between(rng, max(home.published, start - 10 * DAY), start - 2 * HOUR)
        done = start + SLOT if status == "completed" else created
        updated = between(rng, done, min(now, start + 2 * DAY) if status == "completed" else start)
    data = {
        "listingId": home.id,
        "agentId": home.owner,
        "requesterId": buyer,
        "slotStart": start,
        "slotEnd": start + SLOT,
        "status": status,
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
        docs.append(_open_offer(rng, now, ids, buyer="seed-buyer", home=home, status="submitted"))
    for home in rng.sample(active, 20):
        status = rng.choice(
            ("submitted", "submitted", "submitted", "declined", "withdrawn", "expired")
        )
        buyer = _buyer_for(rng, home, buyers)
        docs.append(_open_offer(rng, now, ids, buyer=buyer, home=home, status=status))
    return docs


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
    accepted = {
        "listingId": home.id,
        "buyerId": winner,
        "agentId": home.owner,
        "amount": _amount(rng, home, 0.94, 1.0),
        "status": "accepted",
        "createdAt": created,
        "updatedAt": between(rng, created, home.updated),
    }
    docs = [SeedDoc(f"offers/{next(ids)}", Offer, accepted)]
    if rng.random() < 0.3:
        early = between(rng, home.published, created)
        docs.append(
            SeedDoc(
                f"offers/{next(ids)}",
                Offer,
                {
                    **accepted,
                    "buyerId": _buyer_for(rng, home, buyers, but=winner),
                    "amount": _amount(rng, home, 0.85, 0.92),
                    "status": "declined",
                    "createdAt": early,
                    "updatedAt": between(rng, early, created),
                },
            )
        )
    return docs


def _open_offer(
    rng: random.Random, now: dt.datetime, ids: Iterator[str], *, buyer: str, home: Home, status: str
) -> SeedDoc:
    assert home.published is not None
    created = between(rng, max(home.published, now - 30 * DAY), now - HOUR)
    data = {
        "listingId": home.id,
        "buyerId": buyer,
        "agentId": home.owner,
        "amount": _amount(rng, home, 0.88, 0.98),
        "status": status,
        "createdAt": created,
        "updatedAt": created if status == "submitted" else between(rng, created, now),
    }
    note = rng.choice(OFFER_NOTES)
    if note:
        data["message"] = note
    return SeedDoc(f"offers/{next(ids)}", Offer, data)
