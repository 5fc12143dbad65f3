"""``users/{uid}/limits/usage``: what a user holds and has created lately, against the caps.

Clients write it, in the same batch as each document a cap counts; its rules are rendered
from ``marketplace.limits`` by ``rules/caps.py`` rather than from write markers, because
what a write may do depends on the one before (a list grows only to the cap, an id leaves
it only once its document is gone, a count grows by one inside its window).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field

from firekit.docmodel import Document
from marketplace.models.common import Value


class Holding(Value):
    """The ids of the documents of one collection a user holds (``marketplace.limits.Held``)."""

    ids: list[str] = Field(default_factory=list)
    released: str | None = None
    """The id the latest write took out of ``ids``; its document no longer existed."""


class Window(Value):
    """Creations in the current window (``marketplace.limits.Rate``)."""

    start: dt.datetime
    count: Annotated[int, Field(ge=1)]
    at: dt.datetime
    """When the creation counted last was written (its batch's request time)."""
    last: str
    """What was counted last: its document id (a message: ``{conversationId}/{messageId}``)."""


class Usage(Document):
    """The one usage document of a user: a field per cap, absent until first used."""

    path = "users/{uid}/limits/{doc}"

    savedSearches: Holding | None = None
    devices: Holding | None = None
    favorites: Holding | None = None
    availability: Holding | None = None
    listings: Window | None = None
    conversations: Window | None = None
    messages: Window | None = None
    reports: Window | None = None
