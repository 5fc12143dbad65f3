"""What one user may write: a cap per user on every collection a client creates in.

Declared once here; ``rules/caps.py`` renders the rules that hold them into
``firestore.rules``, so the caps and the rules cannot drift. Every cap is held by the rules
*before* the write (no function runs for a refused write), exactly, with one lookup of the
user's usage document ``users/{uid}/limits/usage`` (:class:`~marketplace.models.Usage`),
which the client updates in the same batch as the document it creates.

Two kinds of cap:

- :class:`Held`, documents a user keeps at once (saved searches, devices, favourites,
  an agent's viewing hours).
  The usage document lists the ids held, at most ``cap`` of them. A client may create such
  a document only if its id is in that list once the batch is applied (``getAfter``), and
  may take an id out of the list only once its document is gone (``existsAfter`` on the id
  it names as ``released``). So at most ``cap`` documents exist, in any order of writes;
  a document a function deleted (a device whose token FCM dropped) frees its slot when
  the client releases it.
- :class:`Rate`, creations per window (listings per day, conversations opened per day,
  messages per minute, reports per day) of documents a client never deletes. The usage
  document keeps the window (``start``, ``count``) and the creation it counted last
  (``last`` at ``at``); a creation must be the one counted by its own batch
  (``at == request.time``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

USAGE = "users/{uid}/limits/usage"
"""The one usage document per user; only its owner writes it (besides functions)."""


@dataclass(frozen=True)
class Held:
    """At most ``cap`` documents of ``path`` (with ``{uid}`` and ``{id}``) held at once."""

    key: str
    """The usage document's field holding the ids."""
    path: str
    cap: int


@dataclass(frozen=True)
class Rate:
    """At most ``cap`` creations of ``path`` per ``window``, counted in the usage field ``key``.

    A window opens with the first creation after the previous one closed and lasts
    ``window``; so in the worst case ``2 * cap`` creations fall within one ``window`` of
    each other, across a boundary.
    """

    key: str
    path: str
    cap: int
    window: dt.timedelta


SAVED_SEARCHES = Held("savedSearches", "savedSearches/{id}", 20)
DEVICES = Held("devices", "users/{uid}/devices/{id}", 10)
FAVORITES = Held("favorites", "users/{uid}/favorites/{id}", 500)
AVAILABILITY = Held("availability", "users/{uid}/availability/{id}", 200)
LISTINGS = Rate("listings", "listings/{id}", 50, dt.timedelta(days=1))
CONVERSATIONS = Rate("conversations", "conversations/{id}", 20, dt.timedelta(days=1))
MESSAGES = Rate(
    "messages", "conversations/{conversationId}/messages/{id}", 30, dt.timedelta(minutes=1)
)
REPORTS = Rate("reports", "reports/{id}", 20, dt.timedelta(days=1))

HELD: tuple[Held, ...] = (SAVED_SEARCHES, DEVICES, FAVORITES, AVAILABILITY)
RATES: tuple[Rate, ...] = (LISTINGS, CONVERSATIONS, MESSAGES, REPORTS)


def capped(path: str) -> Held | Rate | None:
    """The cap a client's create at ``path`` counts against (None: uncapped)."""
    parts = path.strip("/").split("/")
    caps: tuple[Held | Rate, ...] = (*HELD, *RATES)
    for cap in caps:
        pattern = cap.path.split("/")
        if len(pattern) == len(parts) and all(
            p.startswith("{") or p == part for p, part in zip(pattern, parts, strict=True)
        ):
            return cap
    return None


def message_key(conversation_id: str, message_id: str) -> str:
    """What a message's creation is counted as: message ids are unique per conversation."""
    return f"{conversation_id}/{message_id}"


def usage_document(held: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """A usage document listing the ids held, by key (for functions and the seed)."""
    known = {h.key for h in HELD}
    unknown = set(held) - known
    if unknown:
        raise ValueError(f"not held collections: {sorted(unknown)}")
    return {key: {"ids": sorted(set(ids))} for key, ids in held.items()}
