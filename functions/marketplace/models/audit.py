"""``auditLog/{entryId}``: every admin action, written by functions only, never changed.

One shape for every action: who (``actorUid``), what (``action``), to which document
(``target``), the fields it changed as they were and as they became (``change.before`` and
``change.after``, the same keys on both sides), why when the admin said (``reason``), the
request that did it (``requestId``, the id its log line carries too) and when (``at``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field

from firekit.docmodel import Document
from marketplace.models.common import Uid, Value

AuditAction = Literal[
    "listing.approved",
    "listing.rejected",
    "listing.archived",
    "report.dismissed",
    "user.blocked",
    "user.disabled",
    "user.enabled",
    "user.erased",
    "user.looked_up",
    "user.role_changed",
]
"""Every action the log records (``listing.archived``: the system's, when an agent left)."""
MAX_AUDIT_REASON = 500


class AuditChange(Value):
    """The target's fields the action changed: as they were, and as they became.

    Both sides name the same fields (one absent before is ``None``); a field the action
    left as it was is not named. A lookup changes nothing: both sides are empty.
    """

    before: dict[str, Any]
    after: dict[str, Any]


class AuditEntry(Document):
    """Who did what to which document, and the fields it changed, before and after."""

    path = "auditLog/{entryId}"

    action: AuditAction
    actorUid: Uid
    """The admin; ``system`` for what no person did (an agent's listings archived when
    they left)."""
    target: Annotated[str, Field(min_length=1, max_length=300)]
    """The document acted on, ``users/{uid}``, ``listings/{listingId}`` or
    ``reports/{reportId}``."""
    change: AuditChange
    reason: Annotated[str, Field(max_length=MAX_AUDIT_REASON)] | None = None
    """What the admin gave as the reason (a rejection, a suspension, an erasure)."""
    requestId: Annotated[str, Field(min_length=1, max_length=128)]
    """The request that made the change: its log line carries the same ``request_id``."""
    at: dt.datetime
