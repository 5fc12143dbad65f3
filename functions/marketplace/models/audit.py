"""``auditLog/{entryId}``: every admin action, written by functions only."""

from __future__ import annotations

import datetime as dt
from typing import Any

from firekit.docmodel import Document
from marketplace.models.common import Uid


class AuditEntry(Document):
    """Who did what to which document, with the before/after values."""

    path = "auditLog/{entryId}"

    action: str
    actorUid: Uid
    target: str
    change: dict[str, Any]
    at: dt.datetime
