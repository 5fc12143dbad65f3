"""Conversation summaries and unread counts: exact, whatever the order of events."""

from __future__ import annotations

import random

from google.cloud import firestore

from marketplace import chat
from pytest_firebase.events import redelivery
from tests.chat.world import counter, counter_truth, deliver_event, open_conversation


def test_a_message_moves_the_summary_and_counts_for_the_recipient(
    firestore_db: firestore.Client,
) -> None:
    talk = open_conversation(firestore_db)
    deliver_event(talk.send(talk.buyer, "Is the garden south-facing? " + "x" * 200))

    stored = talk.stored()
    assert stored["lastMessage"]["senderId"] == talk.buyer
    assert stored["lastMessage"]["text"] == ("Is the garden south-facing? " + "x" * 200)[:140]
    assert stored["updatedAt"] == stored["lastMessage"]["sentAt"]
    assert stored["unread"] == {talk.agent: 1}
    assert counter(firestore_db, talk.agent)["messages"] == 1
    assert counter(firestore_db, talk.agent)["conversations"] == 1
    # The sender's count never rises on their own message.
    assert counter(firestore_db, talk.buyer).get("messages", 0) == 0


def test_reading_zeroes_one_conversation_and_no_other(firestore_db: firestore.Client) -> None:
    first = open_conversation(firestore_db)
    second = open_conversation(firestore_db, buyer=first.buyer)
    for talk in (first, second):
        talk.send(talk.agent)
        talk.send(talk.agent)
        talk.deliver_pending()
    assert counter(firestore_db, first.buyer)["messages"] == 4

    deliver_event(first.mark_read(first.buyer))

    assert first.stored()["unread"][first.buyer] == 0
    assert second.stored()["unread"][first.buyer] == 2
    assert counter(firestore_db, first.buyer)["messages"] == 2
    assert counter(firestore_db, first.buyer)["conversations"] == 1


def test_duplicated_and_shuffled_events_end_exact(firestore_db: firestore.Client) -> None:
    talk = open_conversation(firestore_db)
    for i in range(6):
        talk.send(talk.buyer if i % 3 else talk.agent, f"message {i}")
    talk.mark_read(talk.agent)
    talk.send(talk.buyer, "after the read")
    events = talk.pending + [redelivery(e) for e in talk.pending[:4]]
    random.Random(7).shuffle(events)
    for event in events:
        deliver_event(event)

    stored = talk.stored()
    for uid in (talk.buyer, talk.agent):
        assert stored["unread"].get(uid, 0) == talk.truth(uid)
        assert counter(firestore_db, uid).get("messages", 0) == counter_truth([talk], uid)[0]
    assert (stored["lastMessage"]["sentAt"], stored["lastMessage"]["messageId"]) == talk.newest()


def test_the_counter_has_no_cap(firestore_db: firestore.Client) -> None:
    talk = open_conversation(firestore_db)
    batch = firestore_db.batch()
    for i in range(300):
        ref = talk.ref.collection("messages").document(f"m{i:04d}")
        batch.set(
            ref, {"senderId": talk.agent, "text": "hi", "createdAt": firestore.SERVER_TIMESTAMP}
        )
    batch.commit()
    deliver_event(talk.send(talk.agent, "the last"))

    assert talk.stored()["unread"][talk.buyer] == 301
    assert counter(firestore_db, talk.buyer)["messages"] == 301
    assert chat.unread_count(firestore_db, talk.id, talk.stored(), talk.buyer) == 301
