"""Conversations and their messages, with everything the chat functions derive from them.

The seed stores what :mod:`marketplace.chat` would have left after every message and read
mark had run (so the chat triggers, which run on the seed's writes in ``make dev``, find
nothing to change): each participant's read receipt (``lastReadAt``: one has read
everything before one's own reply; some recipients have read the latest messages too),
the newest message as the preview and ``updatedAt``, each participant's exact ``unread``
count, the badge counter (``users/{uid}/counters/unread``) and one inbox entry per unread
streak (``chat-{cid}-{streak}``, its email still pending).
``tests/test_seed.py`` checks the loaded seed against the functions' own recount.

The sign-in buyers' conversations with the sign-in agent all end unread, alternately for
the agent and for the buyer, so both badges show something. Of the sign-in agent's other
conversations, the agent has blocked one buyer and reported another's message.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from marketplace import chat
from marketplace.models import Conversation, Message, Notification, Report, UnreadCounter
from seed.clock import DAY, HOUR, between, seconds
from seed.documents import SeedDoc
from seed.listings import Home

SHOWCASE_AGENT = "seed-agent"
"""The agent whose listings the sign-in buyers talk about (see ``buyers.assign_buyers``)."""
SHOWCASE_BUYERS = ("seed-buyer", "seed-renter")
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
INBOX_PREFIX = "chat-seed-"
"""The seeded chats' inbox entries (their ids hold the recipient's last read, which moves
with ``now``: a reload prunes the old ones)."""
REPORT_NOTE = "Keeps asking for my personal number and won't take no for an answer."


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


def conversation(
    rng: random.Random,
    now: dt.datetime,
    buyer: str,
    home: Home,
    *,
    unread_for: str | None = None,
) -> list[SeedDoc]:
    """A conversation about ``home`` with its messages and read receipts; ``unread_for``:
    it ends with the other's messages that this participant has not read yet."""
    cid = f"{home.id}__{buyer}"
    times = _message_times(rng, now, home, rng.randint(2, 7))
    senders = [buyer]
    for _ in times[1:]:
        previous = senders[-1]
        other = home.owner if previous == buyer else buyer
        senders.append(other if rng.random() < 0.8 else previous)
    if unread_for is not None:
        senders[-1] = home.owner if unread_for == buyer else buyer
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
    read_at = {s: t for s, t in zip(senders, times, strict=True)}  # read up to one's reply
    recipient = home.owner if senders[-1] == buyer else buyer
    caught_up = rng.random() < 0.5 if unread_for is None else False
    if caught_up:  # else the recipient has not opened it since
        read_at[recipient] = between(rng, times[-1], now)
    data = {
        "listingId": home.id,
        "buyerId": buyer,
        "agentId": home.owner,
        "participantIds": [buyer, home.owner],
        "createdAt": times[0],
        "updatedAt": times[0],
        "lastReadAt": read_at,
    }
    data |= derived(cid, data, [(m.path.rsplit("/", 1)[1], m.data) for m in messages])
    return [SeedDoc(f"conversations/{cid}", Conversation, data), *messages]


def derived(
    cid: str, data: Mapping[str, Any], messages: Iterable[tuple[str, Mapping[str, Any]]]
) -> dict[str, Any]:
    """What :func:`marketplace.chat.summarize` keeps on a conversation, from its messages
    (``(id, data)`` pairs) and read receipts: the preview, ``updatedAt``, ``unread``."""
    ordered = sorted(messages, key=lambda m: (m[1]["createdAt"], m[0]))
    if not ordered:
        return {}
    last_id, last = ordered[-1]
    reads = data.get("lastReadAt") or {}
    unread = {
        uid: sum(
            1
            for _, m in ordered
            if m["senderId"] != uid and (uid not in reads or m["createdAt"] > reads[uid])
        )
        for uid in data["participantIds"]
    }
    return {
        "updatedAt": last["createdAt"],
        "lastMessage": {
            "messageId": last_id,
            "text": chat.preview(last["text"]),
            "senderId": last["senderId"],
            "sentAt": last["createdAt"],
        },
        "unread": unread,
    }


def moderation(now: dt.datetime, docs: list[SeedDoc]) -> list[SeedDoc]:
    """The sign-in agent blocks the buyer of one of its other conversations (in place)
    and reports the latest message of another buyer's: the report, as the report
    trigger completes it."""
    theirs = [
        d
        for d in docs
        if d.collection == "conversations"
        and d.data["agentId"] == SHOWCASE_AGENT
        and d.data["buyerId"] not in SHOWCASE_BUYERS
    ]
    if len(theirs) < 2:
        return []
    blocked, reported = theirs[0], theirs[1]
    blocked.data["blockedBy"] = {SHOWCASE_AGENT: between_last(blocked, now)}
    cid = reported.path.split("/")[1]
    said = [
        d
        for d in docs
        if d.path.startswith(f"conversations/{cid}/messages/")
        and d.data["senderId"] == reported.data["buyerId"]
    ]
    message = max(said, key=lambda d: d.data["createdAt"])
    report = {
        "reporterId": SHOWCASE_AGENT,
        "conversationId": cid,
        "messageId": message.path.rsplit("/", 1)[1],
        "reason": "harassment",
        "note": REPORT_NOTE,
        "createdAt": between_last(reported, now),
        "status": "open",
        "reportedUid": reported.data["buyerId"],
        "listingId": reported.data["listingId"],
        "excerpt": message.data["text"],
    }
    return [SeedDoc(f"reports/seed-report-{cid}", Report, report)]


def between_last(conversation: SeedDoc, now: dt.datetime) -> dt.datetime:
    """Halfway between the conversation's newest message and ``now``."""
    last: dt.datetime = conversation.data["updatedAt"]
    return seconds(last + (now - last) / 2)


def counters(now: dt.datetime, docs: Iterable[SeedDoc]) -> list[SeedDoc]:
    """Each participant's badge: unread messages over their conversations, and how many
    conversations have any (what :func:`marketplace.chat.refresh_counter` writes)."""
    messages: defaultdict[str, int] = defaultdict(int)
    conversations: defaultdict[str, int] = defaultdict(int)
    for doc in docs:
        if doc.collection != "conversations":
            continue
        for uid, n in doc.data["unread"].items():
            messages[uid] += n
            conversations[uid] += int(n > 0)
    return [
        SeedDoc(
            f"users/{uid}/counters/unread",
            UnreadCounter,
            {"messages": messages[uid], "conversations": conversations[uid], "updatedAt": now},
        )
        for uid in sorted(messages)
    ]


def inbox(names: Mapping[str, str], docs: Iterable[SeedDoc]) -> list[SeedDoc]:
    """One inbox entry per unread streak, as :func:`marketplace.chat.notify_recipient`
    leaves it: about the streak's first message, unread, its email digest still pending."""
    by_conversation: defaultdict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    talks: list[tuple[str, dict[str, Any]]] = []
    for doc in docs:
        parts = doc.path.split("/")
        if doc.collection == "messages":
            by_conversation[parts[1]].append((parts[3], doc.data))
        elif doc.collection == "conversations":
            talks.append((parts[1], doc.data))
    entries: list[SeedDoc] = []
    for cid, data in talks:
        for uid in data["participantIds"]:
            if data["unread"][uid]:  # told before any block, which came after
                entries.append(_streak_entry(names, cid, data, uid, by_conversation[cid]))
    return entries


def _streak_entry(
    names: Mapping[str, str],
    cid: str,
    data: Mapping[str, Any],
    uid: str,
    messages: list[tuple[str, dict[str, Any]]],
) -> SeedDoc:
    read = data.get("lastReadAt", {}).get(uid)
    first_id, first = min(
        (
            (i, m)
            for i, m in messages
            if m["senderId"] != uid and (read is None or m["createdAt"] > read)
        ),
        key=lambda m: (m[1]["createdAt"], m[0]),
    )
    sender = first["senderId"]
    entry = {
        "kind": "message",
        "title": f"New message from {names[sender]}"[:120],
        "body": chat.preview(first["text"]),
        "link": f"/conversations/{cid}",
        "data": {"conversationId": cid, "messageId": first_id, "senderId": sender},
        "createdAt": first["createdAt"],
        "read": False,
        "emailAfter": first["createdAt"] + chat.EMAIL_AFTER,
    }
    return SeedDoc(f"users/{uid}/notifications/{chat.inbox_id(cid, read)}", Notification, entry)
