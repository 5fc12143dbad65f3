"""``conversations/{id}`` between a buyer and a listing's agent, and their messages."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field

from firekit.docmodel import CallerUid, Client, Document, RequestTime
from marketplace.models.common import DocRef, Uid, Value

MAX_MESSAGE = 2000


class MessagePreview(Value):
    """The last message, for conversation lists."""

    text: Annotated[str, Field(max_length=200)]
    senderId: Uid
    sentAt: dt.datetime


class Conversation(Document):
    """A buyer opens it about a listing, with id ``{listingId}__{buyerId}`` (one per pair).

    Functions keep the preview and the unread counters.
    """

    path = "conversations/{conversationId}"

    listingId: Annotated[DocRef, Client(update=False)]
    buyerId: Annotated[Uid, CallerUid()]
    agentId: Annotated[Uid, Client(update=False)]
    participantIds: Annotated[list[Uid], Field(min_length=2, max_length=2), Client(update=False)]
    createdAt: Annotated[dt.datetime, RequestTime()]
    updatedAt: Annotated[dt.datetime, RequestTime()]

    # Written by functions only.
    lastMessage: MessagePreview | None = None
    unread: dict[str, int] = Field(default_factory=dict)


class Message(Document):
    """``conversations/{id}/messages/{messageId}``: immutable once sent."""

    path = "conversations/{conversationId}/messages/{messageId}"

    senderId: Annotated[Uid, CallerUid()]
    text: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE), Client(update=False)]
    createdAt: Annotated[dt.datetime, RequestTime()]
