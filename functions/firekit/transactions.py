"""Run a Firestore transaction; contention that outlasts every attempt is ``Aborted``
(:data:`~firekit.errors.BUSY`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

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
    """Run ``apply`` in a transaction, retried up to ``attempts`` times on contention.

    The library retries a commit refused as ``Aborted`` (and reports exhausted retries as
    a ValueError caused by it), but not a *read* refused so: a read that waited too long
    for another transaction's lock (``Transaction lock timeout``: the emulator, and
    production under contention) raises ``Aborted`` out of ``apply``. That attempt is run
    again here, from the start, on a new transaction. Either way, contention that outlasts
    every attempt reaches callers (and clients) as a retryable ``ABORTED`` (reason
    ``busy``) with ``busy_message``, never as INTERNAL.
    """
    transactional = firestore.transactional(apply)
    lost: Exception | None = None
    for _ in range(attempts):
        try:
            result: T = transactional(db.transaction(max_attempts=attempts))
        except ValueError as exc:
            if isinstance(exc.__cause__, gexc.Aborted):  # lost every commit to contention
                raise BUSY(busy_message) from exc
            raise
        except gexc.Aborted as exc:  # a read lost to contention: the library rolled back
            lost = exc
            continue
        return result
    raise BUSY(busy_message) from lost
