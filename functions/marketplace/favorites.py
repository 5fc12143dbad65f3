"""Favourites: an exact, hot-listing-proof ``favoritesCount``.

A user favourites a listing by creating ``users/{uid}/favorites/{listingId}`` and
unfavourites it by deleting that document. The listing's count must stay exact under
duplicate, reordered and concurrent events, and for a listing favourited far more than
once a second (Firestore sustains about one write a second on one document).

**Where the count lives.** ``listings/{id}/favoriteShards/{0..SHARDS-1}`` each hold a
partial ``count``; the exact count of a listing is ``sum(shards)`` (:func:`exact_count`).
A favourite event increments one shard, picked at random per attempt, with
``firestore.Increment`` (a blind write: the shard is never read, so events do not
serialise on it), spreading a hot listing's writes over ``SHARDS`` documents.

**Why every event ends exact: reconcile, never replay.** The effect does not apply the
event's delta ("created: +1"). It reads, in its own transaction, whether the favourite
exists *now* and whether ``listings/{id}/favoriteMarks/{uid}`` exists (the mark says "this
favourite is counted"), and only when the two differ does it create or delete the mark and
move a shard by +1 or -1, in that same transaction (:func:`reconcile`). Hence:

* invariant: ``sum(shards) == number of marks``, always (they only change together);
* a duplicate delivery (also stopped earlier by the core's idempotency ledger, which
  commits in the same transaction) finds mark and favourite agreeing: no change;
* out of order: a delete delivered before its create sees the favourite gone and no
  mark: nothing; the late create then sees the same: nothing. Count 0, as it should be.
  Delta-applying would have gone -1 then +1 (right only by luck) or, with a guard on
  negatives, +1: wrong;
* concurrency: the transaction reads the favourite and the mark, so a concurrent write
  to either makes Firestore retry it; every favourite write is followed by its own event,
  whose reconcile runs after that write and so sees the final state. Once the last
  event is handled, mark == favourite for every user, so ``sum(shards)`` is exact.

This needs every favourite write's event handled at least once, so the trigger runs with
``retry=True``: a failed attempt (e.g. transaction contention) is redelivered. An event
given up after the ledger's ``max_attempts`` would leave that one favourite miscounted
until it is next written (logged as an ``error`` event line).

The per-favourite mark document is touched only by events of that one user and listing,
so nothing hot is locked: the listing's existence is checked with a plain read outside
the transaction, and shards are only written blindly.

**Missing listings.** A favourite of a listing that does not exist (never did, or was
deleted) changes nothing: no mark, no shard. A mark whose listing is gone is left alone
too; deleting a listing's subcollections belongs to listing deletion. Since that check is
not part of the transaction, a listing deleted at the same instant may still get a mark
and a shard under its (deleted) path: nothing reads them, and listing deletion sweeps
them. (A listing created after a favourite of its id is not counted until the favourite
is written again; listing ids are generated, so that does not happen in practice.)

**``listings/{id}.favoritesCount``: a roll-up that converges.** Writing the listing on every
event would bring back the hot document, so the field is a roll-up of the shards: every
shard write stamps the shard's ``updatedAt``; :func:`roll_up_changed` (run every minute by
a scheduled function) finds the shards changed since its last run (a collection-group
query on ``favoriteShards.updatedAt``, from a watermark with ``ROLLUP_OVERLAP`` of slack for
clock skew) and, per listing, sums its shards and writes the total in one transaction
(:func:`roll_up_listing`), so a slow roll-up can never overwrite a newer total with an
older one. ``favoritesCount`` is therefore at most about a minute behind and equal to
``sum(shards)`` once events stop; code that needs the exact figure calls
:func:`exact_count`. The roll-up writes only ``favoritesCount`` (never ``updatedAt``), at
most once per listing per run, and only when it changed.

Index: the roll-up's query needs a collection-group single-field index on
``favoriteShards.updatedAt`` (ascending). Clients never read or write shards, marks or
the roll-up state (the rules' catch-all denies them; marks would reveal who favourited).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from typing import Annotated, Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from pydantic import Field

from firekit.docmodel import Document
from firekit.transactions import run_transaction

LISTINGS = "listings"
USERS = "users"
FAVORITES = "favorites"
SHARDS_COLLECTION = "favoriteShards"
MARKS_COLLECTION = "favoriteMarks"
SHARDS = 16
"""Shards per listing: about 16 sustained favourite toggles a second per listing."""
COUNT_FIELD = "favoritesCount"
ROLLUP_STATE = "_favoriteRollup/state"
"""The roll-up's watermark (function-only, like the core's ``_eventLedger``)."""
ROLLUP_OVERLAP = dt.timedelta(minutes=2)
"""How far before the last run's start the next run looks (clock skew, slow commits)."""


class FavoriteMark(Document):
    """``listings/{listingId}/favoriteMarks/{uid}``: this user's favourite is counted."""

    path = "listings/{listingId}/favoriteMarks/{uid}"

    uid: Annotated[str, Field(min_length=1)]
    countedAt: dt.datetime


class FavoriteShard(Document):
    """``listings/{listingId}/favoriteShards/{shard}``: part of a listing's favourite count."""

    path = "listings/{listingId}/favoriteShards/{shard}"

    listingId: Annotated[str, Field(min_length=1)]
    count: int
    updatedAt: dt.datetime


def listing_ref(db: firestore.Client, listing_id: str) -> firestore.DocumentReference:
    """The listing document."""
    return db.collection(LISTINGS).document(listing_id)


def favorite_ref(db: firestore.Client, uid: str, listing_id: str) -> firestore.DocumentReference:
    """A user's favourite of a listing."""
    return db.collection(f"{USERS}/{uid}/{FAVORITES}").document(listing_id)


def mark_ref(db: firestore.Client, listing_id: str, uid: str) -> firestore.DocumentReference:
    """The mark saying ``uid``'s favourite of the listing is counted."""
    return db.collection(f"{LISTINGS}/{listing_id}/{MARKS_COLLECTION}").document(uid)


def shard_refs(db: firestore.Client, listing_id: str) -> list[firestore.DocumentReference]:
    """Every counter shard of a listing (most may not exist yet)."""
    shards = db.collection(f"{LISTINGS}/{listing_id}/{SHARDS_COLLECTION}")
    return [shards.document(str(n)) for n in range(SHARDS)]


def reconcile(
    db: firestore.Client, transaction: firestore.Transaction, uid: str, listing_id: str
) -> int:
    """Make the mark (and the count) agree with whether the favourite exists now.

    Returns the change made to the count: +1, -1 or 0. Reads and writes only through
    ``transaction``, so it is safe for Firestore to retry it.
    """
    listing, favorite, mark = (
        listing_ref(db, listing_id),
        favorite_ref(db, uid, listing_id),
        mark_ref(db, listing_id, uid),
    )
    # Read outside the transaction on purpose: a hot listing's document would otherwise be
    # locked by every favourite event, stalling its agent's edits and the roll-up. The
    # count's invariant does not depend on it (see the module docstring).
    if not listing.get().exists:
        return 0
    # All reads before any write, as transactions require.
    favorited = favorite.get(transaction=transaction).exists
    counted = mark.get(transaction=transaction).exists
    if favorited == counted:
        return 0
    delta = 1 if favorited else -1
    if favorited:
        transaction.create(mark, {"uid": uid, "countedAt": firestore.SERVER_TIMESTAMP})
    else:
        transaction.delete(mark)
    shard = shard_refs(db, listing_id)[random.randrange(SHARDS)]  # spreading load, not security
    transaction.set(
        shard,
        {
            "listingId": listing_id,
            "count": firestore.Increment(delta),
            "updatedAt": firestore.SERVER_TIMESTAMP,
        },
        merge=True,
    )
    return delta


def forget_in(
    db: firestore.Client, batch: firestore.WriteBatch, uid: str, listing_ids: Iterable[str]
) -> int:
    """Delete the user's favourites of ``listing_ids`` and take each counted one off its
    listing's count, all in ``batch``; returns how many were counted. For an account being
    erased: its owner can no longer write, so no tap races this; a mark created meanwhile
    by a late trigger is left for :func:`reconcile` (found by its ``uid``)."""
    wanted = list(listing_ids)
    marks = db.get_all([mark_ref(db, lid, uid) for lid in wanted])
    counted = [
        m.reference.parent.parent.id for m in marks if m.exists and m.reference.parent.parent
    ]
    for listing_id in wanted:
        batch.delete(favorite_ref(db, uid, listing_id))
    for listing_id in counted:
        batch.delete(mark_ref(db, listing_id, uid))
        shard = shard_refs(db, listing_id)[random.randrange(SHARDS)]  # spreading load only
        change = {"listingId": listing_id, "count": firestore.Increment(-1)}
        batch.set(shard, change | {"updatedAt": firestore.SERVER_TIMESTAMP}, merge=True)
    return len(counted)


def _sum(snapshots: Iterable[firestore.DocumentSnapshot[Any]]) -> int:
    return sum(int((s.to_dict() or {}).get("count", 0)) for s in snapshots if s.exists)


def exact_count(db: firestore.Client, listing_id: str) -> int:
    """The exact number of counted favourites of a listing: the sum of its shards."""
    return _sum(db.get_all(shard_refs(db, listing_id)))


def _roll_up(
    transaction: firestore.Transaction, db: firestore.Client, listing_id: str
) -> int | None:
    listing = listing_ref(db, listing_id).get(transaction=transaction)
    total = _sum(db.get_all(shard_refs(db, listing_id), transaction=transaction))
    if not listing.exists:
        return None
    if (listing.to_dict() or {}).get(COUNT_FIELD) != total:
        transaction.update(listing.reference, {COUNT_FIELD: total})
    return total


def roll_up_listing(db: firestore.Client, listing_id: str) -> int | None:
    """Set ``favoritesCount`` to the sum of the shards; the total, or None if no listing."""
    return run_transaction(
        db,
        lambda transaction: _roll_up(transaction, db, listing_id),
        busy_message="The favourites count is being updated; try again.",
    )


def changed_listings(db: firestore.Client, since: dt.datetime) -> set[str]:
    """Ids of the listings with a shard written at or after ``since``."""
    query = db.collection_group(SHARDS_COLLECTION).where(
        filter=FieldFilter("updatedAt", ">=", since)
    )
    ids: set[str] = set()
    for shard in query.stream():
        parent = shard.reference.parent.parent
        if parent is not None:
            ids.add(parent.id)
    return ids


def roll_up_changed(db: firestore.Client, now: dt.datetime | None = None) -> dict[str, int]:
    """Roll up every listing whose shards changed since the last run; ``{id: total}``.

    Safe to run concurrently or repeatedly: each roll-up recomputes the total from the
    shards in a transaction. The watermark moves only after every listing is done, so a
    failed run is simply covered again by the next.
    """
    started = now or dt.datetime.now(dt.UTC)
    state = db.document(ROLLUP_STATE)
    previous: Any = (state.get().to_dict() or {}).get("since")
    since = (
        previous - ROLLUP_OVERLAP
        if isinstance(previous, dt.datetime)
        else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    )
    totals: dict[str, int] = {}
    for listing_id in sorted(changed_listings(db, since)):
        total = roll_up_listing(db, listing_id)
        if total is not None:
            totals[listing_id] = total
    state.set({"since": started, "updatedAt": firestore.SERVER_TIMESTAMP}, merge=True)
    return totals


def counter_documents(
    listing_id: str, uids: Iterable[str], at: dt.datetime
) -> dict[str, dict[str, Any]]:
    """The marks and shard that count ``uids``' favourites of a listing, by document path.

    For loaders that write favourites directly (the seed): without these, the trigger
    would see those favourites as uncounted and a later roll-up would drop them from
    ``favoritesCount``. Write them together with the favourites, before any event runs.
    """
    counted = sorted(set(uids))
    base = f"{LISTINGS}/{listing_id}"
    documents: dict[str, dict[str, Any]] = {
        f"{base}/{MARKS_COLLECTION}/{uid}": {"uid": uid, "countedAt": at} for uid in counted
    }
    if counted:
        documents[f"{base}/{SHARDS_COLLECTION}/0"] = {
            "listingId": listing_id,
            "count": len(counted),
            "updatedAt": at,
        }
    return documents
