"""Listings: the submission and departure triggers, the admins' review calls and the
agents' status calls."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from firekit import bootstrap, logs
from firekit.callables import CallContext, callable_function
from firekit.errors import BUSY
from firekit.events import AnyDocument, DocumentChange, EffectMode, Effects, document_trigger
from firekit.ratelimit import RateLimit
from marketplace import listings
from marketplace.roles import Role


class ListingEvent(BaseModel):
    """What the trigger needs from the event's copy: only whether it is a submission.

    Deliberately lenient: a listing that no longer fits the strict model must still reach
    the handler, which rejects it with a reason instead of leaving it queued for ever.
    """

    model_config = ConfigDict(extra="ignore", defer_build=True)

    status: str


# Only a status change can be a submission: edits, the favourites roll-up and paid
# features are skipped before any ledger work, and so is the review's own write.
@document_trigger(
    "listings/{listingId}",
    model=ListingEvent,
    on="updated",
    owned_fields=listings.OWNED_FIELDS,
    only_when_changed=("status",),
)
def on_listing_updated(change: DocumentChange[ListingEvent], effects: Effects) -> None:
    """Review a submitted listing: publish it, queue it for an admin, or reject it."""
    # Only an event into pending_review can need a review. The event's copy decides
    # nothing else: the listing is read again in the effect's transaction, since events
    # arrive out of order and the listing may have moved on since.
    if change.after is None or change.after.status != "pending_review":
        return
    listing_id = change.params["listingId"]
    outcome = listings.review_submission(effects.db, effects.tx, listing_id)
    logs.info(
        "listing reviewed",
        function="on_listing_updated",
        listingId=listing_id,
        outcome=outcome.value,
    )


# Claim mode: the sweep spans many transactions (a page each), which no single effect
# transaction can hold. Retry on: a failed sweep must be redelivered, not dropped, and a
# rerun is harmless (it archives only what is not archived yet). 540 s, the platform's
# maximum, is tens of thousands of listings; an attempt that times out is redelivered once
# its lease runs out and carries on from where it stopped. A profile update that leaves
# `role` alone cannot be a departure: skipped before the claim (2 reads and 2 writes).
@document_trigger(
    "users/{uid}",
    model=AnyDocument,
    on="written",
    only_when_changed=("role",),
    mode=EffectMode.CLAIM,
    retry=True,
    timeout_sec=540,
)
def on_agent_profile_changed(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    """An agent was demoted or deleted: archive their listings, unless they are one again.

    Nothing in the event's copy is trusted beyond the cue (the raw role before and after);
    a profile that fails the strict model must still let its agent's listings go.
    """
    if not listings.is_departure(change.before_data, change.after_data):
        return
    uid = change.params["uid"]
    sweep = listings.archive_departed_owners_listings(effects.db, uid)
    logs.info(
        "departed agent's listings swept",
        function="on_agent_profile_changed",
        uid=uid,
        archived=sweep.archived,
        ownerIsAgent=sweep.owner_is_agent,
    )


# Claim mode, retried: a push is a side effect outside Firestore, and the agent must hear
# of every decision whichever path made it (the submission trigger's publish or rejection,
# an admin's approval or rejection): each stamps reviewedAt. The inbox entry's id names the
# decision, so a rerun after a failure tells once (a push left pending is sent then).
@document_trigger(
    "listings/{listingId}",
    model=AnyDocument,
    on="updated",
    only_when_changed=("reviewedAt",),
    mode=EffectMode.CLAIM,
    retry=True,
)
def on_listing_reviewed(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    """Tell the agent their listing is live, or needs changes (with the reason)."""
    listing_id = change.params["listingId"]
    outcome = listings.tell_review(effects.db, listing_id, change.after_data or {})
    logs.info(
        "listing review told",
        function="on_listing_reviewed",
        listingId=listing_id,
        told=outcome.told if outcome else False,
        pushed=outcome.pushed if outcome else 0,
    )


_ADMIN_LIMIT = RateLimit(120, per_seconds=60)
_AGENT_LIMIT = RateLimit(60, per_seconds=60)


@callable_function(
    listings.ListingRequest,
    roles={Role.ADMIN.value},
    rate_limit=_ADMIN_LIMIT,
    refusals=(
        listings.NO_SUCH_LISTING,
        listings.TRANSITION_NOT_ALLOWED,
        listings.AGENT_DEPARTED,
        listings.NOT_PUBLISHABLE,
        BUSY,
    ),
)
def approve_listing(call: CallContext, data: listings.ListingRequest) -> listings.TransitionResult:
    """Admin only: publish a listing waiting for review."""
    return listings.approve(bootstrap.db(), actor_uid=call.uid, listing_id=data.listingId)


@callable_function(
    listings.RejectRequest,
    roles={Role.ADMIN.value},
    rate_limit=_ADMIN_LIMIT,
    refusals=(listings.NO_SUCH_LISTING, listings.TRANSITION_NOT_ALLOWED, BUSY),
)
def reject_listing(call: CallContext, data: listings.RejectRequest) -> listings.TransitionResult:
    """Admin only: reject a listing waiting for review, with a reason for its agent."""
    return listings.reject(
        bootstrap.db(), actor_uid=call.uid, listing_id=data.listingId, reason=data.reason
    )


@callable_function(
    listings.SetStatusRequest,
    roles={Role.AGENT.value},
    rate_limit=_AGENT_LIMIT,
    refusals=(
        listings.NO_SUCH_LISTING,
        listings.NOT_LISTING_OWNER,
        listings.NO_LONGER_AGENT,
        listings.TRANSITION_NOT_ALLOWED,
        listings.STATUS_NOT_FOR_KIND,
        BUSY,
    ),
)
def set_listing_status(
    call: CallContext, data: listings.SetStatusRequest
) -> listings.TransitionResult:
    """The listing's agent: under offer, sold, let, archived, or back on the market."""
    return listings.set_status(
        bootstrap.db(), owner_uid=call.uid, listing_id=data.listingId, status=data.status
    )
