"""Run a Firestore transaction, or write one document only if it is unchanged since it
was read; contention that outlasts every attempt is ``Aborted`` (:data:`~firekit.errors.BUSY`)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore

from firekit.errors import BUSY

T = TypeVar("T")
DEFAULT_ATTEMPTS = 10


def run_transaction(
    db: firestore.Client,
    apply: Callable[[firestore.Transaction], T],
    *,
    busy_message: str,
    attempts: int = DEFAULT_ATTEMPTS,
) -> T:
    """Run ``apply`` in a transaction, retried by the client library up to ``attempts``.

    The library reports exhausted retries as a ValueError caused by ``Aborted``; callers
    (and clients) should see a retryable ``ABORTED`` (reason ``busy``) with
    ``busy_message``, not INTERNAL.
    """
    transactional = firestore.transactional(apply)
    try:
        result: T = transactional(db.transaction(max_attempts=attempts))
    except ValueError as exc:
        if isinstance(exc.__cause__, gexc.Aborted):  # lost every attempt to contention
            raise BUSY(busy_message) from exc
        raise
    return result


Decision = dict[str, Any] | None
"""What to write to the document (field paths to values), or None: nothing."""


def write_if_unchanged(
    ref: firestore.DocumentReference,
    decide: Callable[[firestore.DocumentSnapshot[Any]], Decision],
    *,
    busy_message: str,
    attempts: int = DEFAULT_ATTEMPTS,
) -> tuple[firestore.DocumentSnapshot[Any], Decision]:
    """Read ``ref``, ``decide`` what to write, and write it only if the document is still
    the version read (created only if it still does not exist); otherwise read and decide
    again. Returns the snapshot decided on and what was written.

    The optimistic twin of :func:`run_transaction`, for one document whose new value is
    derived from other reads ``decide`` makes *after* reading it (a ``count()``, a
    ``sum()``): a transaction would hold a lock on the document across those reads, and
    two of them deriving at once would wait on each other's lock (the emulator resolves
    that by timing one out after about 2 s). Here nobody waits: the later writer fails its
    precondition and derives again from fresher reads.
    """
    for attempt in range(attempts):
        snapshot = ref.get()
        fields = decide(snapshot)
        if fields is None:
            return snapshot, None
        try:
            if snapshot.exists:
                option = firestore.Client.write_option(last_update_time=snapshot.update_time)
                ref.update(fields, option=option)
            else:
                ref.create(fields)
        except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.NotFound):
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # out of step with the rival
            continue
        return snapshot, fields
    raise BUSY(busy_message)
