"""Photos: upload slots and the agent's order (callables), processing each finished upload
(a Storage trigger) and removing what left (Firestore triggers). See
:mod:`marketplace.photo_uploads`."""

from __future__ import annotations

from firebase_functions import options

from firekit import bootstrap, logs
from firekit.callables import CallContext, callable_function
from firekit.errors import BUSY
from firekit.events import AnyDocument, DocumentChange, EffectMode, Effects, document_trigger
from firekit.ratelimit import RateLimit
from firekit.storage import FinishedUpload
from firekit.uploads import upload_trigger
from marketplace import photo_uploads as p
from marketplace.listings import NO_SUCH_LISTING, NOT_LISTING_OWNER

_UPLOADS = RateLimit(30, per_seconds=60)
_ARRANGE = RateLimit(60, per_seconds=60)


@callable_function(
    p.PhotoUploadRequest,
    rate_limit=_UPLOADS,
    refusals=(
        NO_SUCH_LISTING,
        NOT_LISTING_OWNER,
        p.PHOTOS_CLOSED,
        p.TOO_MANY_PHOTOS,
        p.TOO_MANY_UPLOADS,
        BUSY,
    ),
)
def request_photo_upload(call: CallContext, data: p.PhotoUploadRequest) -> p.PhotoUploadSlot:
    """A signed URL to upload one photo of the caller's listing, or their avatar."""
    return p.request_upload(bootstrap.db(), uid=call.uid, request=data)


@callable_function(
    p.ArrangeRequest,
    rate_limit=_ARRANGE,
    refusals=(NO_SUCH_LISTING, NOT_LISTING_OWNER, p.PHOTOS_CLOSED, p.UNKNOWN_PHOTOS, BUSY),
)
def arrange_listing_photos(call: CallContext, data: p.ArrangeRequest) -> p.ArrangeResult:
    """The listing's agent reorders its photos; the ones left out are removed."""
    return p.arrange(bootstrap.db(), uid=call.uid, request=data)


# 1 GiB: a 48-megapixel photo peaks near 130 MiB in processing (bench/photo_processing),
# on top of the interpreter and a 15 MB download; 256 MiB would fail on the largest.
@upload_trigger(prefix=p.UPLOADS_PREFIX, memory=options.MemoryOption.GB_1, timeout_sec=120)
def process_photo_upload(upload: FinishedUpload) -> str:
    """Check, orient, strip, resize and record one uploaded photo; delete the upload."""
    return p.process_upload(bootstrap.db(), upload).value


# Recompute: the ids that left are in the event, and deleting what is gone is a no-op,
# so a rerun or a late event does no harm; retried, so a failed delete is not left behind.
# Updates and deletions are separate triggers so that creating a document (every listing,
# every sign-up) invokes neither.
@document_trigger(
    "listings/{listingId}",
    model=AnyDocument,
    on="updated",
    only_when_changed=("photos",),
    mode=EffectMode.RECOMPUTE,
    retry=True,
)
def remove_listing_photos(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    """Delete the objects of photos taken off a listing."""
    listing_id = change.params["listingId"]
    before = (change.before_data or {}).get("photos")
    gone = p.removed_photo_ids(before, (change.after_data or {}).get("photos"))
    removed = p.remove_listing_photo_objects(listing_id, gone)
    logs.info("listing photos removed", listingId=listing_id, photos=gone, objects=removed)


@document_trigger(
    "listings/{listingId}", model=AnyDocument, on="deleted", mode=EffectMode.RECOMPUTE, retry=True
)
def remove_deleted_listing_photos(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    """Delete every object of a deleted listing: renditions, uploads under way, slots."""
    listing_id = change.params["listingId"]
    removed = p.remove_everything_of_listing(effects.db, listing_id)
    logs.info("deleted listing's photos removed", listingId=listing_id, objects=removed)


@document_trigger(
    "users/{uid}",
    model=AnyDocument,
    on="updated",
    only_when_changed=("avatar",),
    mode=EffectMode.RECOMPUTE,
    retry=True,
)
def remove_old_avatar(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    """Delete a replaced avatar's objects (unless the profile holds it again)."""
    uid = change.params["uid"]
    removed = p.remove_replaced_avatar(effects.db, uid, change.before_data)
    logs.info("old avatar removed", uid=uid, objects=removed)


@document_trigger(
    "users/{uid}", model=AnyDocument, on="deleted", mode=EffectMode.RECOMPUTE, retry=True
)
def remove_deleted_user_photos(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    """Delete every avatar object of a deleted profile, and its uploads under way."""
    uid = change.params["uid"]
    removed = p.remove_everything_of_user(effects.db, uid)
    logs.info("deleted user's photos removed", uid=uid, objects=removed)
