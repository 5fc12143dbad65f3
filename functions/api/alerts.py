"""Saved-search alerts: the search index, the listing events that start a fan-out, the fan-out
worker on Cloud Tasks, and the daily email digest. See :mod:`marketplace.alerts`."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from firebase_functions import scheduler_fn
from pydantic import BaseModel, ConfigDict

from firekit import bootstrap, fanout, logs, observe
from firekit.events import AnyDocument, DocumentChange, Effects, document_trigger

# marketplace.alerts (the index, the delivery, the digests: with pygeohash, the shards,
# mail, push and the listing and search models) and firekit.push (firebase_admin.messaging)
# are imported inside the handlers: only this family's instances need them, and every
# other function's cold start imports this module for its decorators.

QUEUE_FUNCTION = "deliverAlerts"
"""Cloud Tasks queue ids allow only letters, digits and hyphens, and a task function's
queue is named after it: hence the one camelCase function name."""


# Retried: the account's list is what fan-outs push to, so a failed sync must not leave
# it stale (a rerun is harmless: it reads the devices as they are).
@document_trigger("users/{uid}/devices/{token}", model=AnyDocument, on="written", retry=True)
def on_device_written(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    """Keep the user's newest push tokens on their private account, where the alert
    fan-out finds them without a query per recipient."""
    from firekit import push  # lazy: see the imports
    from marketplace import alerts  # lazy: see the imports

    push.sync_tokens(effects.db, effects.tx, alerts.DEVICES, change.params["uid"])


class ListingAlertEvent(BaseModel):
    """What decides whether a listing change is an alert event: status and price."""

    model_config = ConfigDict(extra="ignore")

    status: str | None = None
    price: dict[str, Any] | None = None


# Retried: a search left out of the alert index would miss every alert until its next edit
# (a rerun is harmless: it reads the search as stored).
@document_trigger(
    "savedSearches/{searchId}",
    model=AnyDocument,
    on="written",
    owned_fields=("audience",),
    retry=True,
)
def on_saved_search_written(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    # Any document: a search that no longer fits the model must still leave the index.
    """Put the search in its audience of the alert index, as it is stored now."""
    from marketplace import alerts  # lazy: see the imports

    alerts.refresh_search_index(effects.db, effects.tx, change.params["searchId"])


@functools.cache
def alert_fanout() -> fanout.Fanout:
    """The fan-out of listing events, run chunk by chunk on the ``deliverAlerts`` queue."""
    from marketplace import alerts  # lazy: see the imports

    delivery = alerts.AlertDelivery()
    return fanout.Fanout(
        deliveries={kind: delivery for kind in alerts.EVENT_KINDS},
        enqueue=fanout.cloud_tasks_queue(QUEUE_FUNCTION),
    )


# Only status and price make an alert event: every other change (the favourites roll-up,
# paid features, an agent's edits) is skipped before any ledger work.
@document_trigger(
    "listings/{listingId}",
    model=ListingAlertEvent,
    on="updated",
    only_when_changed=("status", "price"),
    mode="claim",
    retry=True,
)
def on_listing_alerts(change: DocumentChange[ListingAlertEvent], effects: Effects) -> None:
    """Start the alert fan-out when a listing goes on the market or its price drops.

    The event's before/after say which event happened; the fan-out re-reads the listing
    for every chunk, so an event that no longer holds (delivered late) notifies nobody.
    """
    from marketplace import alerts  # lazy: see the imports

    before = change.before.model_dump() if change.before else None
    after = change.after.model_dump() if change.after else None
    listing_id = change.params["listingId"]
    for job, kind, params in alerts.events_of(listing_id, before, after, change.event_id):
        alert_fanout().start(job, kind, params)
        logs.info("alert fan-out started", job=job, alertKind=kind)


@fanout.task_function(alert_fanout, max_concurrent=20, max_per_second=50, timeout_sec=540)
def deliverAlerts() -> None:  # noqa: N802 (see QUEUE_FUNCTION)
    """One task of a listing alert (up to 50 chunks of 200 searches): inbox, digest, pushes."""


@scheduler_fn.on_schedule(schedule="every 60 minutes", timeout_sec=540)
def send_email_digests(event: scheduler_fn.ScheduledEvent) -> None:
    """Hourly: mail each user's digest of a finished day (UTC), once."""
    from marketplace import alerts  # lazy: see the imports

    sent = alerts.send_due_digests(bootstrap.db(), dt.datetime.now(dt.UTC).date())
    observe.annotate(sent=sent)
