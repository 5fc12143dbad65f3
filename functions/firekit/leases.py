"""One lease: a lock document created only if absent, owned by a token, with an expiry.

Whoever needs "one at a time" (one Stripe customer per user, one plan subscription per
user, one delivery of a webhook event at a time) names a lock document with a
deterministic id and takes it here:

* **Taking** is ``create()``: the document exists or it does not, so among any number of
  racing callers exactly one wins, at once, and the others learn it at once. A lease
  whose holder died (``until`` is past) is taken over by an ``update`` with a
  precondition on the lapsed document's update time: of two callers taking over the same
  lapsed lease, the second one's precondition fails.
* **Renewing** and **releasing** carry a precondition on the update time of the holder's
  own last write, so they act only while the document is still the one the holder wrote:
  a holder whose lease lapsed and was taken over can neither extend nor delete the new
  owner's lease (its ``renew`` raises :class:`LeaseLost`, its ``release`` does nothing).
* The document carries ``token`` (who holds it, for a reader), ``until`` (the expiry) and
  ``expiresAt`` (for a Firestore TTL policy, which removes leases left by dead holders).
* A holder may write the lock document in its own transaction or batch, on
  :meth:`Lease.unchanged`'s precondition: the webhook ledger turns its lease into the
  event's lasting record (``until`` as far ahead as the record lives) in the transaction
  that applies the event, so the record is its own lock and no release follows.

Why create-only and not a read-then-write transaction: on the Firestore emulator, 20
racing read-then-create transactions on one document never let two win, but in a third
of rounds nobody won (all aborted together after about 10 s; firebase-tools #6758,
#8300), while 20 racing ``create()`` calls gave exactly one winner every time, in 0.1 s.
Waiters poll with plain reads (:func:`wait_while_held`), which never contend with the
holder's own writes.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from firekit.errors import BUSY

POLL_S = 0.2
"""How often a waiter reads the lock document."""


class LeaseLost(Exception):  # noqa: N818 - a state, like the SDK's NotFound
    """The lease lapsed and is no longer ours (taken over, or removed)."""


class Lease:
    """A lease this caller holds; release it (or leave a ``with`` block) when done."""

    def __init__(
        self, ref: firestore.DocumentReference, token: str, until: dt.datetime, written: Any
    ) -> None:
        self.ref = ref
        self.token = token
        self.until = until
        self._written = written  # update time of our last write: the precondition

    def renew(self, ttl: dt.timedelta) -> None:
        """Extend the lease to ``ttl`` from now; :class:`LeaseLost` if it is not ours."""
        until = now() + ttl
        try:
            result = self.ref.update(
                _fields(self.token, until), option=_unchanged_since(self._written)
            )
        except (gexc.FailedPrecondition, gexc.NotFound) as exc:
            raise LeaseLost(f"lease {self.ref.path} is no longer ours") from exc
        self.until, self._written = until, result.update_time

    def unchanged(self) -> Any:
        """A write option for the holder's own write (in its transaction or batch): the
        write applies only while the lock document is as this holder last wrote it, and
        its commit fails with ``FailedPrecondition`` once the lease was taken over."""
        return _unchanged_since(self._written)

    def release(self) -> bool:
        """Delete the lock document if it is still as we wrote it; whether it was."""
        try:
            self.ref.delete(option=_unchanged_since(self._written))
        except (gexc.FailedPrecondition, gexc.NotFound):
            return False  # lapsed and taken over (or removed): theirs now, left alone
        return True

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()


def try_acquire(ref: firestore.DocumentReference, ttl: dt.timedelta) -> Lease | None:
    """Take the lease at ``ref`` for ``ttl`` if it is free or lapsed; None if it is held."""
    taken = try_acquire_or_read(ref, ttl)
    return taken if isinstance(taken, Lease) else None


def try_acquire_or_read(
    ref: firestore.DocumentReference, ttl: dt.timedelta
) -> Lease | firestore.DocumentSnapshot[Any]:
    """:func:`try_acquire`, but when the lease is held, the lock document as it was read
    (missing if released meanwhile: try again), so a caller whose lock document says more
    than who holds it (a finished record) needs no second read."""
    token = uuid.uuid4().hex
    until = now() + ttl
    try:
        return Lease(ref, token, until, ref.create(_fields(token, until)).update_time)
    except gexc.AlreadyExists:
        pass
    current = ref.get()
    if not current.exists or _held_until(current.to_dict()) > now():
        return current
    try:
        result = ref.update(_fields(token, until), option=_unchanged_since(current.update_time))
    except (gexc.FailedPrecondition, gexc.NotFound):
        return current  # another caller took it over (or it was removed) first
    return Lease(ref, token, until, result.update_time)


def acquire(
    ref: firestore.DocumentReference,
    ttl: dt.timedelta,
    *,
    wait: dt.timedelta,
    busy_message: str,
) -> Lease:
    """Take the lease, waiting up to ``wait`` for its holder; after that ``Aborted``
    (:data:`~firekit.errors.BUSY`, with ``busy_message``)."""
    deadline = time.monotonic() + wait.total_seconds()
    while (held := try_acquire(ref, ttl)) is None:
        if not wait_while_held(ref, deadline=deadline):
            raise BUSY(busy_message)
    return held


def wait_while_held(
    ref: firestore.DocumentReference,
    *,
    deadline: float,
    done: Callable[[], bool] | None = None,
) -> bool:
    """Poll with plain reads until the lease at ``ref`` is free (released or lapsed) or
    ``done()`` says the holder's work is visible; False if ``deadline`` (a
    ``time.monotonic()`` value) came first."""
    while time.monotonic() < deadline:
        time.sleep(POLL_S)
        if done is not None and done():
            return True
        current = ref.get()
        if not current.exists or _held_until(current.to_dict()) <= now():
            return True
    return False


def _fields(token: str, until: dt.datetime) -> dict[str, Any]:
    return {"token": token, "until": until, "expiresAt": until}


_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


def _held_until(data: dict[str, Any] | None) -> dt.datetime:
    until = (data or {}).get("until")
    # A lock document without a readable expiry holds nothing: it may be taken over.
    return until if isinstance(until, dt.datetime) else _NEVER


def _unchanged_since(update_time: Any) -> Any:
    return firestore.Client.write_option(last_update_time=update_time)


def now() -> dt.datetime:
    """The time leases and ledgers compare their expiries to (UTC, aware)."""
    return dt.datetime.now(dt.UTC)
