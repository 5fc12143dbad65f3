"""The types a trigger handler sees: the typed change and where to make its effect."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from google.cloud import firestore
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


class EffectMode(enum.StrEnum):
    """How the handler's effect is made to happen once."""

    TRANSACTIONAL = "transactional"
    CLAIM = "claim"
    RECOMPUTE = "recompute"
    """The handler derives state from what is stored now (a count, a summary), so running
    it twice is running it once: no ledger record, no claim. It must read everything it
    writes from, in its own transactions; ``Effects.transaction`` is None."""


class EventInProgress(Exception):  # noqa: N818
    """Another attempt holds a live lease on this event.

    Raised only with ``retry=True``, so the platform redelivers later instead of this
    delivery silently dropping the event should that other attempt die.
    """


@dataclass(frozen=True)
class DocumentChange(Generic[M]):
    """One document write, typed: ``before``/``after`` are models or None."""

    before: M | None
    after: M | None
    before_data: Mapping[str, Any] | None
    after_data: Mapping[str, Any] | None
    changed_fields: frozenset[str]
    params: Mapping[str, str]
    event_id: str
    event_type: str
    document: str
    time: dt.datetime

    @property
    def kind(self) -> Literal["created", "updated", "deleted"]:
        """What happened to the document."""
        if self.before_data is None:
            return "created"
        return "deleted" if self.after_data is None else "updated"


@dataclass(frozen=True)
class Effects:
    """Where a handler makes its effect.

    Transactional mode: write through ``tx`` (and read through it before writing);
    the ledger record commits with your writes. Claim mode: ``transaction`` is None and
    you may call outside services; use :meth:`idempotency_key` for their idempotency keys.
    """

    db: firestore.Client
    function: str
    event_id: str
    transaction: firestore.Transaction | None = None

    @property
    def tx(self) -> firestore.Transaction:
        """The transaction of a transactional handler (an error in claim mode)."""
        if self.transaction is None:
            raise RuntimeError("No transaction: this trigger runs in claim mode.")
        return self.transaction

    def idempotency_key(self, *parts: str) -> str:
        """A key that is stable across redeliveries of this event, e.g. for Stripe."""
        return ":".join((self.function, self.event_id, *parts))


Handler = Callable[[DocumentChange[M], Effects], None]
