"""``reports/{reportId}``: a participant reports a conversation or one of its messages.

The moderation queue: only admins read it. The reporter writes what and why; a function
adds who is reported, the listing and the reported message's text (kept as evidence,
should the message or the conversation go). An admin closes it through a callable:
``dismiss_report`` (``dismissed``) or ``block_reported_user`` (``actioned``), audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from firekit.docmodel import CallerUid, Client, Document, RequestTime
from marketplace.models.common import DocRef, Uid
from marketplace.models.conversations import MAX_MESSAGE

MAX_REPORT_NOTE = 1000
ReportReason = Literal["spam", "harassment", "scam", "inappropriate", "other"]
ReportStatus = Literal["open", "dismissed", "actioned"]
ConversationRef = Annotated[str, Field(min_length=1, max_length=258)]
"""A conversation id, ``{listingId}__{buyerId}``: two ids of up to 128 and the ``__``."""


class Report(Document):
    """A participant's report; created with an automatic id, read by admins only."""

    path = "reports/{reportId}"

    reporterId: Annotated[Uid, CallerUid()]
    conversationId: Annotated[ConversationRef, Client(update=False)]
    messageId: Annotated[DocRef | None, Client(update=False)] = None
    """The reported message, in that conversation (None: the conversation as a whole)."""
    reason: Annotated[ReportReason, Client(update=False)]
    note: Annotated[str, Field(max_length=MAX_REPORT_NOTE), Client(update=False)] = ""
    createdAt: Annotated[dt.datetime, RequestTime()]

    # Written by functions only.
    status: ReportStatus = "open"
    reportedUid: Uid | None = None
    """The other participant (the sender of the reported message, if one is named)."""
    listingId: DocRef | None = None
    excerpt: Annotated[str, Field(max_length=MAX_MESSAGE)] | None = None
    """The reported message's text when the report was made."""
    resolvedAt: dt.datetime | None = None
    """When an admin dismissed it or acted on it (who: the audit log)."""
