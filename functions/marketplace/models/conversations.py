"""``conversations/{id}`` between a buyer and a listing's agent, and their messages."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field

from firekit.docmodel import CallerUid, Client, Document, OwnEntry, RequestTime
from marketplace.models.common import DocRef, Uid, Value

MAX_MESSAGE = 2000
MAX_PREVIEW = 140
"""A conversation's ``lastMessage.text``: the first this many characters of the message."""


class MessagePreview(Value):
    """The newest message, for conversation lists (functions keep it)."""

    messageId: DocRef
    text: Annotated[str, Field(max_length=MAX_PREVIEW)]
    senderId: Uid
    sentAt: dt.datetime


class Conversation(Document):
    """A buyer opens it about a listing, with id ``{listingId}__{buyerId}`` (one per pair).

    Functions keep the preview, the unread counts and ``updatedAt`` (the newest message's
    time, which conversation lists order by). A participant writes only its own entries of
    ``lastReadAt`` (its read receipt) and ``blockedBy`` (set: block; delete: unblock).
    """

    path = "conversations/{conversationId}"

    listingId: Annotated[DocRef, Client(update=False)]
    buyerId: Annotated[Uid, CallerUid()]
    agentId: Annotated[Uid, Client(update=False)]
    participantIds: Annotated[list[Uid], Field(min_length=2, max_length=2), Client(update=False)]
    createdAt: Annotated[dt.datetime, RequestTime()]
    updatedAt: Annotated[dt.datetime, RequestTime()]
    """The request time at create; then functions move it to the newest message's time."""
    lastReadAt: Annotated[dict[Uid, dt.datetime], OwnEntry()] = Field(default_factory=dict)
    """When each participant last read the conversation (``serverTimestamp()``)."""
    blockedBy: Annotated[dict[Uid, dt.datetime], OwnEntry(removable=True)] = Field(
        default_factory=dict
    )
    """Who has blocked the other participant, since when; the rules then refuse the other's
    messages."""

    # Written by functions only.
    lastMessage: MessagePreview | None = None
    unread: dict[Uid, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    """Per participant: the other participant's messages newer than its ``lastReadAt``."""


class Message(Document):
    """``conversations/{id}/messages/{messageId}``: immutable once sent."""

    path = "conversations/{conversationId}/messages/{messageId}"

    senderId: Annotated[Uid, CallerUid()]
    text: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE), Client(update=False)]
    createdAt: Annotated[dt.datetime, RequestTime()]
