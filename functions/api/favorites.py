"""Favourites: the trigger that counts them and the roll-up onto the listing.

See :mod:`marketplace.favorites` for why the count is exact in any event order.
"""

from __future__ import annotations

from firebase_functions import scheduler_fn

from firekit import bootstrap, observe
from firekit.events import DocumentChange, Effects, document_trigger
from marketplace import favorites
from marketplace.models.users import Favorite


# Retry on: the count is exact only if every favourite write's event is handled at least
# once, so a transient failure (e.g. transaction contention) must be redelivered, not
# dropped. Redeliveries are harmless: the ledger and the reconcile both stop a repeat.
@document_trigger("users/{uid}/favorites/{listingId}", model=Favorite, on="written", retry=True)
def on_favorite_written(change: DocumentChange[Favorite], effects: Effects) -> None:
    """Count or uncount a favourite, from whether it exists now (not from the event)."""
    favorites.reconcile(effects.db, effects.tx, change.params["uid"], change.params["listingId"])


@scheduler_fn.on_schedule(schedule="every 1 minutes", timeout_sec=300)
def roll_up_favorites(event: scheduler_fn.ScheduledEvent) -> None:
    """Every minute: copy the sum of each changed listing's shards into ``favoritesCount``."""
    totals = favorites.roll_up_changed(bootstrap.db())
    observe.annotate(listings=len(totals))
