"""``emailDigests/{digestId}``: one user's alerts of one day, mailed once the day is over.

Functions only (no rules match it, so clients can neither read nor write it); the
Trigger Email extension's ``mail`` documents are made from these by
``marketplace.alerts.send_due_digests``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from firekit.docmodel import Document
from marketplace.models.common import Uid


class EmailDigest(Document):
    """Items keyed by notification id, so a retried fan-out adds nothing twice."""

    path = "emailDigests/{digestId}"

    key: Uid
    to: Annotated[str, Field(max_length=320)]
    day: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    items: dict[str, Any] = Field(default_factory=dict)
