"""Pages of a fan-out's recipients, read on from an opaque cursor.

A :class:`Source` says where a job's recipients are: its ``read`` gives them in a fixed
order, each with a *cursor*, a string the engine only keeps (in a task's payload, in a
chunk's record) and hands back to read on from just after it. What a cursor says is the
source's business: :func:`documents` (a query's documents, paged by id) uses the
document's path; :meth:`firekit.shards.ShardedIndex.walk`, a shard and a key in it.

:class:`Pages` reads a task's pages through one read while they follow each other (a
query per page would cost a query's overhead per 200 recipients) and opens another when
asked for a page from anywhere else (a chunk an earlier attempt committed has its own
cursor).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from firekit import wire

Read = Callable[[str | None, int], Iterator[tuple[str, Any]]]
"""``read(after, wanted)``: ``(cursor, recipient)`` pairs in order, from just after
``after`` (a cursor it gave; None: from the start). ``wanted`` is as many as the reader
may take (a query may stop there); closing the iterator ends the read."""


@dataclass(frozen=True)
class Source:
    """Where a chunk's recipients come from, and what the delivery found deciding it."""

    read: Read
    context: Any = None
    """Handed to :meth:`Delivery.prepare` for the same chunk (e.g. the listing just
    re-read to check that the job still applies), so it need not be read again."""


def documents(db: firestore.Client, query: firestore.Query) -> Read:
    """A query's documents, one recipient each, paged by document id (the cursor is the
    document's path); each page is a :class:`firekit.wire.Document`."""

    def read(after: str | None, wanted: int) -> Iterator[tuple[str, Any]]:
        ordered = query.order_by(FieldPath.document_id())
        if after is not None:
            ordered = ordered.start_after({FieldPath.document_id(): db.document(after)})
        found = wire.stream(ordered.limit(wanted))
        try:
            for snapshot in found:
                yield snapshot.reference.path, snapshot
        finally:
            close = getattr(found, "close", None)
            if close is not None:
                close()  # cancels the query

    return read


class Pages:
    """A source read from a cursor, a page of ``size`` at a time: holds one page and one
    recipient of the next (and whatever the source holds to read on)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: Iterator[tuple[str, Any]] | None = None
        self._at: str | None = None
        self._ahead: tuple[str, Any] | None = None

    def page(self, source: Source, after: str | None, left: int) -> tuple[list[Any], str | None]:
        """The ``size`` recipients after ``after``, and the cursor of the page after them
        (None: this is the last). ``left``: pages this task may still read."""
        if self._items is None or self._at != after:
            self.close()
            # Enough for every page the task may read, and one to tell whether more follow.
            self._items = source.read(after, self.size * left + 1)
        read = [self._ahead] if self._ahead is not None else []
        read += islice(self._items, self.size + 1 - len(read))
        self._ahead = read[self.size] if len(read) > self.size else None
        read = read[: self.size]
        self._at = read[-1][0] if self._ahead is not None else None
        if self._ahead is None:
            self.close()  # the last page: nothing more to read
        return [item for _, item in read], self._at

    def close(self) -> None:
        """End the open read, if any."""
        items, self._items, self._ahead = self._items, None, None
        close = getattr(items, "close", None)
        if close is not None:
            close()
