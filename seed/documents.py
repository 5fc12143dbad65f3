"""Seed documents: each checked against its model before anything is written.

A :class:`SeedDoc` is a path, the model the path belongs to, and the data exactly as it
is stored (tz-aware datetimes, nested maps as dicts). :func:`write_all` validates the
whole set first, so a bad generator never leaves half a seed behind, then writes it in
batches through the admin client. Paths are deterministic, so a second run overwrites.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from google.cloud import firestore

from firekit.docmodel import Document

BATCH_LIMIT = 500
"""Firestore's most writes in one batch."""


@dataclass(frozen=True)
class SeedDoc:
    """One document to seed: where it goes, what it is, what it holds."""

    path: str
    model: type[Document]
    data: dict[str, Any]

    @property
    def collection(self) -> str:
        """The id of the collection the document sits in, e.g. ``messages``."""
        return self.path.split("/")[-2]


@cache
def _path_pattern(model: type[Document]) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", model.path) + "$")


def check(doc: SeedDoc) -> None:
    """Raise ``ValueError`` unless ``doc`` sits where its model lives and validates."""
    if not _path_pattern(doc.model).match(doc.path):
        raise ValueError(f"{doc.path} is not a {doc.model.__name__} path ({doc.model.path})")
    try:
        doc.model.model_validate(doc.data)
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        raise ValueError(f"{doc.path}: {err}") from err


def write_all(db: firestore.Client, docs: Sequence[SeedDoc]) -> None:
    """Validate every document, then write them all in batches (overwriting)."""
    paths = [d.path for d in docs]
    if len(set(paths)) != len(paths):
        raise ValueError("two seed documents share a path")
    for doc in docs:
        check(doc)
    for start in range(0, len(docs), BATCH_LIMIT):
        batch = db.batch()
        for doc in docs[start : start + BATCH_LIMIT]:
            batch.set(db.document(doc.path), doc.data)
        batch.commit()


def counts(docs: Iterable[SeedDoc]) -> dict[str, int]:
    """How many documents each collection id gets, largest first."""
    return dict(Counter(d.collection for d in docs).most_common())


def prune(db: firestore.Client, docs: Sequence[SeedDoc], collection: str, prefix: str) -> int:
    """Delete documents of every ``collection`` (a collection group: top-level or under
    any parent) with ids starting ``prefix`` that ``docs`` no longer has; how many went.

    For documents whose ids embed a time (a slot lock's id holds its start, a chat inbox
    entry's the recipient's last read), since seed times move with ``now``: a later run
    would otherwise leave yesterday's behind.
    """
    keep = {d.path for d in docs if d.collection == collection}
    stale = [
        snapshot.reference
        for snapshot in db.collection_group(collection).select([]).stream()
        if snapshot.id.startswith(prefix) and snapshot.reference.path not in keep
    ]
    for start in range(0, len(stale), BATCH_LIMIT):
        batch = db.batch()
        for ref in stale[start : start + BATCH_LIMIT]:
            batch.delete(ref)
        batch.commit()
    return len(stale)
