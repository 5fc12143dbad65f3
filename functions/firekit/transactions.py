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
