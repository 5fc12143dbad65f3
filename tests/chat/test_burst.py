"""A burst: 50 messages in 5 seconds into one conversation (ten times Firestore's sustained
write rate to one document), each trigger run as it arrives, concurrently."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

from google.cloud import firestore

from tests.chat.world import counter, deliver_event, open_conversation


def test_fifty_messages_in_five_seconds_end_exact(firestore_db: firestore.Client) -> None:
    talk = open_conversation(firestore_db)
    runs: list[Future[None]] = []
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as triggers:
        for i in range(50):
            sender = talk.buyer if i % 5 else talk.agent  # both sides, mostly the buyer
            event = talk.send(sender, f"burst {i}")
            runs.append(triggers.submit(deliver_event, event))
            time.sleep(max(0.0, started + (i + 1) * 0.1 - time.monotonic()))
        # No failed trigger: each run returned (a failure is raised for its redelivery).
        for run in runs:
            run.result()

    stored = talk.stored()
    shown = stored["lastMessage"]
    assert (shown["sentAt"], shown["messageId"]) == talk.newest()
    assert shown["text"] == "burst 49"
    for uid in (talk.buyer, talk.agent):
        assert stored["unread"][uid] == talk.truth(uid)
        assert counter(firestore_db, uid)["messages"] == talk.truth(uid)
    assert stored["unread"] == {talk.agent: 40, talk.buyer: 10}
