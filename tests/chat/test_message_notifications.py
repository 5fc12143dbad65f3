"""Telling the recipient of a message: the streak's inbox entry, throttled pushes (never to
the sender, none once read, dead tokens pruned, once under redelivery), email after 12 h."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from api.chat import notify_new_message
from marketplace import chat
from pytest_firebase.events import deliver, firestore_event, redelivery
from tests.chat.world import Conversation, open_conversation


def with_devices(db: firestore.Client, uid: str, *tokens: str, email: bool = False) -> None:
    """An account with push tokens kept (as the devices trigger keeps them) and devices."""
    account: dict[str, Any] = {"pushTokens": list(tokens), "email": f"{uid}@example.com"}
    account["notifications"] = {"push": True, "email": email}
    db.document(f"users/{uid}/private/account").set(account)
    db.document(f"users/{uid}").set({"displayName": f"Name {uid[-4:]}", "role": "buyer"})
    for token in tokens:
        db.document(f"users/{uid}/devices/{token}").set(
            {"token": token, "ownerId": uid, "platform": "web", "appVersion": "1",
             "createdAt": firestore.SERVER_TIMESTAMP, "updatedAt": firestore.SERVER_TIMESTAMP}
        )  # fmt: skip


def message_at(talk: Conversation, sender: str, at: dt.datetime, text: str = "Hi") -> Any:
    """A message stored with a given time (the throttle reads message time), and its event."""
    ref = talk.ref.collection("messages").document()
    data = {"senderId": sender, "text": text, "createdAt": at}
    ref.set(data)
    return firestore_event(ref.path, after=data, kind="created")


def pushed_to(db: firestore.Client, token: str) -> list[dict[str, Any]]:
    found = db.collection("_pushOutbox").where(filter=FieldFilter("token", "==", token))
    return [s.to_dict() or {} for s in found.stream()]


def token() -> str:
    return f"tok-{uuid.uuid4().hex}"


def inbox(db: firestore.Client, uid: str) -> dict[str, dict[str, Any]]:
    return {s.id: s.to_dict() or {} for s in db.collection(f"users/{uid}/notifications").stream()}


T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def test_the_recipient_is_pushed_once_and_the_sender_never(firestore_db: firestore.Client) -> None:
    talk = open_conversation(firestore_db)
    phone, shared, senders = token(), token(), token()
    with_devices(firestore_db, talk.agent, phone, shared)
    with_devices(firestore_db, talk.buyer, senders, shared)  # one tablet, two accounts

    event = message_at(talk, talk.buyer, T0, "Can I view it on Saturday?")
    for copy in (event, redelivery(event), redelivery(event)):
        deliver(notify_new_message, copy)

    [push] = pushed_to(firestore_db, phone)
    assert push["body"] == "Can I view it on Saturday?"
    assert push["data"]["conversationId"] == talk.id
    assert pushed_to(firestore_db, shared) == []
    assert pushed_to(firestore_db, senders) == []
    entries = inbox(firestore_db, talk.agent)
    assert list(entries) == [chat.inbox_id(talk.id, None)]
    assert entries[chat.inbox_id(talk.id, None)]["kind"] == "message"


def test_at_most_one_push_per_thirty_seconds_of_messages(firestore_db: firestore.Client) -> None:
    talk = open_conversation(firestore_db)
    phone = token()
    with_devices(firestore_db, talk.agent, phone)
    times = [T0, T0 + dt.timedelta(seconds=10), T0 + dt.timedelta(seconds=29),
             T0 + dt.timedelta(seconds=31), T0 + dt.timedelta(seconds=45)]  # fmt: skip
    events = [message_at(talk, talk.buyer, at, f"m{i}") for i, at in enumerate(times)]
    # Out of order: the newest first. An older message never pushes after a newer one.
    for event in [events[1], events[0], events[3], events[2], events[4]]:
        deliver(notify_new_message, event)

    bodies = sorted(p["body"] for p in pushed_to(firestore_db, phone))
    assert bodies == ["m1", "m4"]  # m3 (31 s) is 21 s after the pushed m1 (10 s)
    # All the unread messages are one streak: one inbox entry.
    assert list(inbox(firestore_db, talk.agent)) == [chat.inbox_id(talk.id, None)]


def test_no_push_or_entry_once_read_and_a_new_streak_after(firestore_db: firestore.Client) -> None:
    talk = open_conversation(firestore_db)
    phone = token()
    with_devices(firestore_db, talk.agent, phone)
    first = talk.send(talk.buyer, "first")
    deliver(notify_new_message, first)
    talk.deliver_pending()
    read = talk.mark_read(talk.agent)
    talk.deliver_pending()  # the read trigger marks the streak's entry read
    [entry] = inbox(firestore_db, talk.agent).values()
    assert entry["read"] is True

    late = message_at(talk, talk.buyer, T0, "sent before the read, delivered after")
    deliver(notify_new_message, late)
    assert len(pushed_to(firestore_db, phone)) == 1
    assert len(inbox(firestore_db, talk.agent)) == 1

    after = talk.send(talk.buyer, "a new streak")
    deliver(notify_new_message, after)
    read_at = chat.read_at(talk.stored(), talk.agent)
    assert read is not None and read_at is not None
    assert set(inbox(firestore_db, talk.agent)) == {
        chat.inbox_id(talk.id, None),
        chat.inbox_id(talk.id, read_at),
    }


def test_dead_tokens_are_pruned(firestore_db: firestore.Client) -> None:
    talk = open_conversation(firestore_db)
    live, dead = token(), f"expired-{uuid.uuid4().hex}"
    with_devices(firestore_db, talk.agent, live, dead)
    deliver(notify_new_message, message_at(talk, talk.buyer, T0))

    assert len(pushed_to(firestore_db, live)) == 1
    assert not firestore_db.document(f"users/{talk.agent}/devices/{dead}").get().exists


def test_a_blocked_sender_tells_nobody(firestore_db: firestore.Client) -> None:
    talk = open_conversation(firestore_db)
    phone = token()
    with_devices(firestore_db, talk.agent, phone)
    talk.ref.update({f"blockedBy.`{talk.agent}`": firestore.SERVER_TIMESTAMP})
    deliver(notify_new_message, message_at(talk, talk.buyer, T0))

    assert pushed_to(firestore_db, phone) == []
    assert inbox(firestore_db, talk.agent) == {}


def test_unread_for_twelve_hours_joins_the_email_digest(firestore_db: firestore.Client) -> None:
    unread, read = open_conversation(firestore_db), open_conversation(firestore_db)
    for talk in (unread, read):
        with_devices(firestore_db, talk.agent, token(), email=True)
        deliver(notify_new_message, message_at(talk, talk.buyer, T0))
    [entry] = inbox(firestore_db, unread.agent).values()
    assert entry["emailAfter"] == T0 + chat.EMAIL_AFTER
    assert "emailDay" not in entry  # not before 12 hours
    read.mark_read(read.agent)
    read.deliver_pending()

    chat.queue_unread_emails(firestore_db, T0 + dt.timedelta(hours=11))
    assert "emailDay" not in next(iter(inbox(firestore_db, unread.agent).values()))
    chat.queue_unread_emails(firestore_db, T0 + dt.timedelta(hours=13))

    [joined] = inbox(firestore_db, unread.agent).values()
    assert joined["emailDay"] == (T0 + dt.timedelta(hours=13)).date().isoformat()
    assert joined["emailTo"] == f"{unread.agent}@example.com"
    assert "emailAfter" not in joined
    [done] = inbox(firestore_db, read.agent).values()
    assert "emailDay" not in done and "emailAfter" not in done
