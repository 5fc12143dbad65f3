"""A chat world for in-process tests: conversations between fresh users, messages written
as a client writes them (server-timestamped), and the events each write sends."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cloudevents.http import CloudEvent
from google.api_core.exceptions import Aborted
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from api.chat import on_conversation_read, summarize_conversation
from marketplace import chat
from pytest_firebase.events import deliver, firestore_event


def new_uid(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:10]}"


def written(write: Callable[[], Any], attempts: int = 8) -> Any:
    """A client's write, retried on ABORTED as the client SDKs do (the emulator aborts a
    write to a document a trigger's transaction holds a lock on when it waits too long)."""
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except Aborted:
            if attempt == attempts:
                raise
    return None


@dataclass
class Conversation:
    """One conversation between a buyer and an agent, and the events its writes sent."""

    db: firestore.Client
    id: str
    buyer: str
    agent: str
    pending: list[CloudEvent] = field(default_factory=list)
    marks: dict[str, dt.datetime] = field(default_factory=dict)
    """The read marks this world wrote, as stored."""

    @property
    def ref(self) -> firestore.DocumentReference:
        return chat.conversation_ref(self.db, self.id)

    def other(self, uid: str) -> str:
        return self.agent if uid == self.buyer else self.buyer

    def send(self, sender: str, text: str = "Hello") -> CloudEvent:
        """Write a message as its sender's client does; returns its creation event."""
        ref = self.ref.collection("messages").document()
        data = {"senderId": sender, "text": text, "createdAt": firestore.SERVER_TIMESTAMP}
        written(lambda: ref.set(data))
        # Read back: the emulator stores a server timestamp in milliseconds, not as the
        # write's (microsecond) update time; the event carries what is stored.
        stored = ref.get().to_dict() or {}
        event = firestore_event(ref.path, after=stored, kind="created")
        self.pending.append(event)
        return event

    def mark_read(self, reader: str) -> CloudEvent:
        """Set the reader's ``lastReadAt`` to the request time; returns the update event."""
        key = FieldPath("lastReadAt", reader).to_api_repr()
        written(lambda: self.ref.update({key: firestore.SERVER_TIMESTAMP}))
        stamped = (self.ref.get().to_dict() or {})["lastReadAt"]
        # The handler reacts to the read marks alone (and reads the rest as stored): the
        # event carries the marks before (as this world wrote them) and after.
        before = {"lastReadAt": dict(self.marks)} if self.marks else {}
        self.marks[reader] = stamped[reader]
        after = {"lastReadAt": dict(self.marks)}
        event = firestore_event(self.ref.path, before=before, after=after, kind="updated")
        self.pending.append(event)
        return event

    def deliver_pending(self) -> None:
        for event in self.pending:
            deliver_event(event)
        self.pending.clear()

    def truth(self, reader: str) -> int:
        """The unread count recomputed from the messages, in Python."""
        since = chat.read_at(self.stored(), reader)
        other = self.other(reader)
        return sum(
            1
            for sender, sent_at in self.messages()
            if sender == other and (since is None or sent_at > since)
        )

    def messages(self) -> list[tuple[str, dt.datetime]]:
        return [
            (m.get("senderId"), m.get("createdAt"))
            for m in self.ref.collection("messages").stream()
        ]

    def stored(self) -> dict[str, Any]:
        return self.ref.get().to_dict() or {}

    def newest(self) -> tuple[dt.datetime, str]:
        messages = [(m.get("createdAt"), m.id) for m in self.ref.collection("messages").stream()]
        return max(messages)


def deliver_event(event: CloudEvent) -> None:
    """Deliver to the function that subscribes to the event's document."""
    document = str(event["document"])
    function = summarize_conversation if "/messages/" in document else on_conversation_read
    deliver(function, event)


def open_conversation(
    db: firestore.Client, buyer: str | None = None, agent: str | None = None
) -> Conversation:
    buyer, agent = buyer or new_uid("buyer"), agent or new_uid("agent")
    listing = f"listing-{uuid.uuid4().hex[:10]}"
    conversation_id = f"{listing}__{buyer}"
    now = firestore.SERVER_TIMESTAMP
    db.collection("conversations").document(conversation_id).set(
        {
            "listingId": listing,
            "buyerId": buyer,
            "agentId": agent,
            "participantIds": [buyer, agent],
            "createdAt": now,
            "updatedAt": now,
        }
    )
    return Conversation(db, conversation_id, buyer, agent)


def counter(db: firestore.Client, uid: str) -> dict[str, Any]:
    return chat.counter_ref(db, uid).get().to_dict() or {}


def counter_truth(conversations: list[Conversation], uid: str) -> tuple[int, int]:
    """(messages, conversations) unread by ``uid`` over the given conversations."""
    counts = [c.truth(uid) for c in conversations if uid in (c.buyer, c.agent)]
    return sum(counts), sum(1 for n in counts if n)
