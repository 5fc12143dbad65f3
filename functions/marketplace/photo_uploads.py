"""Photos from the phone to the page: upload slots, processing, order, removal.

1. ``request_upload``: the listing's agent (or any user, for their avatar) gets a slot: a
   fresh photo id, recorded in ``photoUploads/{subject}``, and a V4 signed ``PUT`` URL for
   ``uploads/{listings|avatars}/{id}/{photoId}`` in the default bucket (15 minutes, an image
   type, at most 15 MB, no overwrite). A listing holds at most 12 photos, counting slots
   still open: the 13th is refused here.
2. ``process_upload``, on each finished upload (at least once, in any order): the bytes
   of exactly that generation are checked and processed (:mod:`marketplace.photos`), the
   renditions written once each (``ifGenerationMatch=0``) to the public photos bucket
   under ``{listings|avatars}/{id}/{photoId}/``, the entry recorded on the listing (or the
   profile) with the slot closed in one transaction, and the upload deleted. A refused
   upload closes its slot with an issue the uploader can read, and is deleted.
3. ``arrange``: the agent's new order (a photo left out is removed).
4. ``remove_objects_of_*``: the objects of photos that left a listing or a profile, and
   everything under a listing or a user that is gone (run by triggers, so a crash between
   a commit and a delete is retried, never left behind).

Every step may run twice or out of order: the slot is the claim (no slot, nothing to do),
the generation pins the bytes (a replaced or deleted upload reads as gone), outputs are
written only if absent, and the record is one transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import secrets
import string
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from google.cloud import firestore
from pydantic import BaseModel, ConfigDict, Field, model_validator

from firekit import storage
from firekit.errors import FailedPrecondition, InvalidArgument, Refusal, ResourceExhausted
from firekit.ids import PlainId
from firekit.transactions import run_transaction
from marketplace import config, photos
from marketplace.listings import NO_SUCH_LISTING, NOT_LISTING_OWNER, listing_ref
from marketplace.models.listings import MAX_PHOTOS, ON_MARKET
from marketplace.models.photos import MAX_PHOTO_ISSUES, PHOTO_ID, PhotoProblem, PhotoTarget
from marketplace.profiles import account_ref, profile_ref

UPLOADS_PREFIX = "uploads/"
"""The only objects the processing trigger acts on (uploads live nowhere else)."""
MAX_UPLOAD_BYTES = 15 * 1024 * 1024
UPLOAD_LIFETIME = dt.timedelta(minutes=15)
SLOT_GRACE = dt.timedelta(hours=1)
"""A slot outlives its URL this long (an upload that began in time may end late); then a
new request sweeps it away."""
MAX_AVATAR_SLOTS = 3
MAX_ATTEMPTS = 5
"""Processing runs started on one upload before it is refused (a run that crashes every
time must not be redelivered for the platform's whole retry window)."""
CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic", "image/heif")
"""What a slot may declare; the bytes decide what the file is (magic numbers)."""
AVATAR_WIDTHS = (160, 640)
_FOLDERS: dict[str, str] = {"listing": "listings", "avatar": "avatars"}
_TARGETS = {folder: target for target, folder in _FOLDERS.items()}
_ID_ALPHABET = string.ascii_letters + string.digits
PHOTOS_COLLECTION = "photoUploads"

TOO_MANY_PHOTOS = Refusal(
    FailedPrecondition,
    "too_many_photos",
    f"A listing has at most {MAX_PHOTOS} photos, counting uploads under way.",
)
TOO_MANY_UPLOADS = Refusal(
    ResourceExhausted,
    "too_many_uploads",
    f"At most {MAX_AVATAR_SLOTS} avatar uploads may be under way; finish one first.",
)
PHOTOS_CLOSED = Refusal(
    FailedPrecondition,
    "photos_closed",
    "Photos change only while the listing is a draft, rejected, or on the market.",
)
UNKNOWN_PHOTOS = Refusal(
    InvalidArgument,
    "unknown_photos",
    "The order must name each photo of the listing at most once, and no other.",
)

_MESSAGES: dict[PhotoProblem, str] = {
    "not_an_image": "The file is not a JPEG, PNG, WebP or HEIC photo.",
    "too_many_pixels": "The photo has more than 50 megapixels.",
    "unreadable": "The photo could not be read; it may be damaged or cut short.",
    "too_large": "The file is larger than 15 MB.",
    "too_many_photos": f"The listing already has {MAX_PHOTOS} photos.",
    "gone": "The listing was deleted before the photo was ready.",
}


class PhotoUploadRequest(BaseModel):
    """A slot for one photo: of a listing (its agent) or the caller's own avatar."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    target: PhotoTarget
    listingId: PlainId | None = None
    """Required for a listing's photo; absent for an avatar."""
    contentType: Literal["image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"]

    @model_validator(mode="after")
    def _listing_named_for_a_listing(self) -> PhotoUploadRequest:
        if (self.target == "listing") != (self.listingId is not None):
            raise ValueError("listingId is required for a listing's photo, and only then")
        return self


class PhotoUploadSlot(BaseModel):
    """Where and how to upload: ``PUT`` the bytes to ``url`` with exactly ``headers``
    before ``expiresAt``; the photo then appears with id ``photoId``."""

    model_config = ConfigDict(defer_build=True)

    photoId: str
    url: str
    method: Literal["PUT"]
    headers: dict[str, str]
    expiresAt: str
    maxBytes: int


class ArrangeRequest(BaseModel):
    """A listing's photos in their new order; a photo left out is removed."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    listingId: PlainId
    order: Annotated[list[Annotated[str, Field(pattern=PHOTO_ID)]], Field(max_length=MAX_PHOTOS)]


class ArrangeResult(BaseModel):
    """What the listing holds now, and which photos went."""

    model_config = ConfigDict(defer_build=True)

    listingId: str
    order: list[str]
    removed: list[str]


# --- names ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class UploadName:
    """What an upload's object name says: whose photo it is."""

    target: PhotoTarget
    owner_id: str
    """The listing id, or the uid for an avatar."""
    photo_id: str

    @property
    def object_name(self) -> str:
        return f"{UPLOADS_PREFIX}{_FOLDERS[self.target]}/{self.owner_id}/{self.photo_id}"

    @property
    def subject(self) -> str:
        return subject(self.target, self.owner_id)

    @property
    def output_prefix(self) -> str:
        return f"{output_folder(self.target, self.owner_id)}{self.photo_id}/"

    @classmethod
    def parse(cls, name: str) -> UploadName | None:
        """The parts of ``uploads/{folder}/{id}/{photoId}``, None for any other name."""
        parts = name.split("/")
        if len(parts) != 4 or f"{parts[0]}/" != UPLOADS_PREFIX or parts[1] not in _TARGETS:
            return None
        owner_id, photo_id = parts[2], parts[3]
        if not owner_id or len(photo_id) != 20 or not photo_id.isalnum():
            return None
        target: PhotoTarget = "listing" if parts[1] == "listings" else "avatar"
        return cls(target, owner_id, photo_id)


def subject(target: PhotoTarget, owner_id: str) -> str:
    """The id of the slots document of a listing's photos or a user's avatar."""
    return f"{target}-{owner_id}"


def output_folder(target: PhotoTarget, owner_id: str) -> str:
    """Where the processed photos of a listing (or a user's avatars) live."""
    return f"{_FOLDERS[target]}/{owner_id}/"


def slots_ref(db: firestore.Client, subject_id: str) -> firestore.DocumentReference:
    return db.collection(PHOTOS_COLLECTION).document(subject_id)


def photos_bucket() -> str:
    """The public bucket processed photos are served from (see config.PHOTOS_BUCKET)."""
    return config.PHOTOS_BUCKET.value or f"{storage.client().project}-photos"


# --- 1. the upload slot ---------------------------------------------------------------


def request_upload(
    db: firestore.Client, *, uid: str, request: PhotoUploadRequest, now: dt.datetime | None = None
) -> PhotoUploadSlot:
    """Open a slot and sign its upload URL (signing happens after the commit: a slot
    without a URL expires harmlessly; a URL without a slot could not be processed)."""
    now = now or dt.datetime.now(dt.UTC)
    owner_id = request.listingId if request.target == "listing" else uid
    assert owner_id is not None  # the request model requires it for a listing
    name = UploadName(request.target, owner_id, _new_photo_id())
    expires_at = now + UPLOAD_LIFETIME

    def apply(transaction: firestore.Transaction) -> None:
        held = 0
        if request.target == "listing":
            held = _listing_photo_count(db, transaction, owner_id, uid)
        ref = slots_ref(db, name.subject)
        snapshot = ref.get(transaction=transaction)
        slots = dict((snapshot.to_dict() or {}).get("slots", {})) if snapshot.exists else {}
        live = {k: v for k, v in slots.items() if v["expiresAt"] > now - SLOT_GRACE}
        open_now = sum(1 for v in live.values() if v["expiresAt"] > now)
        if request.target == "listing" and held + open_now >= MAX_PHOTOS:
            raise TOO_MANY_PHOTOS(
                f"The listing has {held} photos and {open_now} uploads under way; "
                f"at most {MAX_PHOTOS} in all."
            )
        if request.target == "avatar" and open_now >= MAX_AVATAR_SLOTS:
            raise TOO_MANY_UPLOADS()
        live[name.photo_id] = {
            "uid": uid,
            "contentType": request.contentType,
            "expiresAt": expires_at,
            "attempts": 0,
        }
        transaction.set(ref, {"slots": live})

    run_transaction(db, apply, busy_message="The photos are being changed; try again.")
    signed = storage.signed_upload(
        storage.default_bucket_name(),
        name.object_name,
        content_type=request.contentType,
        max_bytes=MAX_UPLOAD_BYTES,
        lifetime=UPLOAD_LIFETIME,
    )
    return PhotoUploadSlot(
        photoId=name.photo_id,
        url=signed.url,
        method="PUT",
        headers=signed.headers,
        expiresAt=expires_at.isoformat().replace("+00:00", "Z"),
        maxBytes=MAX_UPLOAD_BYTES,
    )


def _listing_photo_count(
    db: firestore.Client, transaction: firestore.Transaction, listing_id: str, uid: str
) -> int:
    snapshot = listing_ref(db, listing_id).get(transaction=transaction)
    if not snapshot.exists:
        raise NO_SUCH_LISTING()
    listing = snapshot.to_dict() or {}
    if listing.get("ownerId") != uid:
        raise NOT_LISTING_OWNER("Only the listing's agent may add photos to it.")
    if listing.get("status") not in ON_MARKET:
        raise PHOTOS_CLOSED()
    return len(listing.get("photos") or [])


def _new_photo_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


# --- 2. processing --------------------------------------------------------------------


class Outcome(enum.StrEnum):
    """What one delivery of a finished upload did."""

    ADDED = "added"
    REFUSED = "refused"
    DONE_ALREADY = "done_already"  # a redelivery after the photo was recorded or refused
    STALE = "stale"  # that generation is gone or replaced: its successor has its own event
    UNEXPECTED = "unexpected"  # no slot: a stray, or one whose slot expired long ago


def process_upload(db: firestore.Client, upload: storage.FinishedUpload) -> Outcome:
    """Check, process and record one finished upload; idempotent (see the module)."""
    name = UploadName.parse(upload.name)
    if name is None:
        storage.delete(upload.bucket, upload.name, upload.generation)
        return Outcome.UNEXPECTED
    slot = _start_attempt(db, name)
    if slot is None:
        storage.delete(upload.bucket, upload.name, upload.generation)
        return Outcome.DONE_ALREADY if _recorded(db, name) else Outcome.UNEXPECTED
    if slot["attempts"] > MAX_ATTEMPTS:
        return _refuse(db, name, upload, "unreadable")
    if upload.size > MAX_UPLOAD_BYTES:
        return _refuse(db, name, upload, "too_large")
    data = storage.read(upload.bucket, upload.name, upload.generation)
    if data is None:
        return Outcome.STALE
    widths = photos.WIDTHS if name.target == "listing" else AVATAR_WIDTHS
    try:
        processed = photos.process(data, widths)
    except photos.PhotoRefused as refused:
        return _refuse(db, name, upload, refused.reason)
    del data  # up to 15 MB, no longer needed while the record is made
    entry = _write_outputs(name, processed)
    outcome = _record(db, name, entry)
    if outcome is not Outcome.ADDED and outcome is not Outcome.DONE_ALREADY:
        storage.delete_prefix(photos_bucket(), name.output_prefix)
    storage.delete(upload.bucket, upload.name, upload.generation)
    return outcome


def _start_attempt(db: firestore.Client, name: UploadName) -> dict[str, Any] | None:
    """The upload's slot with one more attempt counted; None if it has none."""
    ref = slots_ref(db, name.subject)

    def apply(transaction: firestore.Transaction) -> dict[str, Any] | None:
        snapshot = ref.get(transaction=transaction)
        slot = ((snapshot.to_dict() or {}).get("slots") or {}).get(name.photo_id)
        if slot is None:
            return None
        attempts = int(slot.get("attempts", 0)) + 1
        transaction.update(ref, {f"slots.{name.photo_id}.attempts": attempts})
        return {**slot, "attempts": attempts}

    return run_transaction(db, apply, busy_message="The photos are being changed.")


def _owner_ref(db: firestore.Client, name: UploadName) -> firestore.DocumentReference:
    """The document the photo is recorded on: the listing, or the uploader's profile."""
    if name.target == "listing":
        return listing_ref(db, name.owner_id)
    return profile_ref(db, name.owner_id)


def _recorded(db: firestore.Client, name: UploadName) -> bool:
    return _has(_owner_ref(db, name).get(), name)


def _write_outputs(name: UploadName, processed: photos.Processed) -> dict[str, Any]:
    """Write each rendition once (a rerun finds them there) and return the entry."""
    write_renditions(name.output_prefix, processed)
    return photo_entry(name.photo_id, name.output_prefix, processed, dt.datetime.now(dt.UTC))


def rendition_name(prefix: str, rendition: photos.Rendition) -> str:
    """Where a rendition lives: ``{prefix}{width}.webp`` or ``.jpg``."""
    return f"{prefix}{rendition.width}.{'jpg' if rendition.format == 'jpeg' else 'webp'}"


def write_renditions(prefix: str, processed: photos.Processed) -> int:
    """Write every rendition under ``prefix`` in the photos bucket, each only if absent
    (names never change meaning, so a year of caching is safe); how many were new."""
    bucket = photos_bucket()
    return sum(
        storage.write_once(
            bucket,
            rendition_name(prefix, rendition),
            rendition.data,
            content_type=f"image/{rendition.format}",
            cache_control=storage.IMMUTABLE,
        )
        for rendition in processed.renditions
    )


def photo_entry(
    photo_id: str, prefix: str, processed: photos.Processed, added_at: dt.datetime
) -> dict[str, Any]:
    """The entry a listing (or profile) records for renditions stored under ``prefix``."""
    bucket = photos_bucket()
    sizes: dict[int, dict[str, Any]] = {}
    for rendition in processed.renditions:
        size = sizes.setdefault(
            rendition.width, {"width": rendition.width, "height": rendition.height}
        )
        size[rendition.format] = storage.public_url(bucket, rendition_name(prefix, rendition))
    return {
        "id": photo_id,
        "width": processed.width,
        "height": processed.height,
        "placeholder": processed.placeholder,
        "sizes": [sizes[width] for width in sorted(sizes)],
        "addedAt": added_at,
    }


def _record(db: firestore.Client, name: UploadName, entry: Mapping[str, Any]) -> Outcome:
    """Add the photo and close its slot, in one transaction."""
    slots = slots_ref(db, name.subject)
    owner = (
        listing_ref(db, name.owner_id)
        if name.target == "listing"
        else profile_ref(db, name.owner_id)
    )

    def apply(transaction: firestore.Transaction) -> Outcome:
        slot_doc = slots.get(transaction=transaction)
        owner_doc = owner.get(transaction=transaction)
        if name.photo_id not in ((slot_doc.to_dict() or {}).get("slots") or {}):
            # Another delivery recorded (or refused) it first.
            return Outcome.DONE_ALREADY if _has(owner_doc, name) else Outcome.STALE
        transaction.update(slots, {f"slots.{name.photo_id}": firestore.DELETE_FIELD})
        if not owner_doc.exists:
            return Outcome.STALE  # the listing or the user went meanwhile
        data = owner_doc.to_dict() or {}
        if name.target == "avatar":
            transaction.update(owner, {"avatar": dict(entry)})
            transaction.set(account_ref(db, name.owner_id), {"avatarIssue": None}, merge=True)
            return Outcome.ADDED
        held = list(data.get("photos") or [])
        if len(held) >= MAX_PHOTOS:
            transaction.update(owner, {"photoIssues": _issues(data, name, "too_many_photos")})
            return Outcome.REFUSED
        transaction.update(owner, {"photos": [*held, dict(entry)]})
        return Outcome.ADDED

    return run_transaction(db, apply, busy_message="The photos are being changed.")


def _has(owner_doc: firestore.DocumentSnapshot[Any], name: UploadName) -> bool:
    data = owner_doc.to_dict() or {}
    if name.target == "avatar":
        return bool((data.get("avatar") or {}).get("id") == name.photo_id)
    return any(p.get("id") == name.photo_id for p in data.get("photos") or [])


def _refuse(
    db: firestore.Client, name: UploadName, upload: storage.FinishedUpload, reason: PhotoProblem
) -> Outcome:
    """Close the slot with an issue the uploader can read; then delete the upload."""
    slots = slots_ref(db, name.subject)

    def apply(transaction: firestore.Transaction) -> None:
        owner = listing_ref(db, name.owner_id)
        # Reads before writes; an avatar's issue needs none.
        owner_doc = owner.get(transaction=transaction) if name.target == "listing" else None
        transaction.update(slots, {f"slots.{name.photo_id}": firestore.DELETE_FIELD})
        if owner_doc is None:
            issue = _issue(name, reason)
            transaction.set(account_ref(db, name.owner_id), {"avatarIssue": issue}, merge=True)
        elif owner_doc.exists:
            transaction.update(
                owner, {"photoIssues": _issues(owner_doc.to_dict() or {}, name, reason)}
            )

    run_transaction(db, apply, busy_message="The photos are being changed.")
    storage.delete(upload.bucket, upload.name, upload.generation)
    return Outcome.REFUSED


def _issue(name: UploadName, reason: PhotoProblem) -> dict[str, Any]:
    return {
        "photoId": name.photo_id,
        "reason": reason,
        "message": _MESSAGES[reason],
        "at": dt.datetime.now(dt.UTC),
    }


def _issues(
    listing: Mapping[str, Any], name: UploadName, reason: PhotoProblem
) -> list[dict[str, Any]]:
    kept = [i for i in listing.get("photoIssues") or [] if i.get("photoId") != name.photo_id]
    return [*kept, _issue(name, reason)][-MAX_PHOTO_ISSUES:]


# --- 3. the agent's order -------------------------------------------------------------


def arrange(db: firestore.Client, *, uid: str, request: ArrangeRequest) -> ArrangeResult:
    """Put the listing's photos in ``request.order``; those left out are removed (their
    objects go with them, through the listing's photo trigger)."""

    def apply(transaction: firestore.Transaction) -> ArrangeResult:
        ref = listing_ref(db, request.listingId)
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            raise NO_SUCH_LISTING()
        listing = snapshot.to_dict() or {}
        if listing.get("ownerId") != uid:
            raise NOT_LISTING_OWNER("Only the listing's agent may arrange its photos.")
        if listing.get("status") not in ON_MARKET:
            raise PHOTOS_CLOSED()
        held = {p["id"]: p for p in listing.get("photos") or []}
        if len(set(request.order)) != len(request.order) or not set(request.order) <= set(held):
            unknown = sorted(set(request.order) - set(held))
            raise UNKNOWN_PHOTOS(unknown=unknown)
        removed = [pid for pid in held if pid not in request.order]
        transaction.update(
            ref,
            {
                "photos": [held[pid] for pid in request.order],
                "updatedAt": firestore.SERVER_TIMESTAMP,
            },
        )
        return ArrangeResult(
            listingId=request.listingId, order=list(request.order), removed=removed
        )

    return run_transaction(db, apply, busy_message="The listing is being changed; try again.")


# --- 4. objects that must go ----------------------------------------------------------


def removed_photo_ids(before: Sequence[Any] | None, after: Sequence[Any] | None) -> list[str]:
    """The ids in ``before`` that ``after`` no longer holds (either may be missing)."""
    kept = {p.get("id") for p in after or [] if isinstance(p, Mapping)}
    return [
        p["id"]
        for p in before or []
        if isinstance(p, Mapping) and isinstance(p.get("id"), str) and p["id"] not in kept
    ]


def remove_listing_photo_objects(listing_id: str, photo_ids: Sequence[str]) -> int:
    """Delete the renditions of photos that left the listing; how many objects went."""
    folder = output_folder("listing", listing_id)
    return sum(storage.delete_prefix(photos_bucket(), f"{folder}{pid}/") for pid in photo_ids)


def remove_everything_of_listing(db: firestore.Client, listing_id: str) -> int:
    """A deleted listing: every rendition, every upload under way, and its slots."""
    removed = storage.delete_prefix(photos_bucket(), output_folder("listing", listing_id))
    uploads = f"{UPLOADS_PREFIX}{_FOLDERS['listing']}/{listing_id}/"
    removed += storage.delete_prefix(storage.default_bucket_name(), uploads)
    slots_ref(db, subject("listing", listing_id)).delete()
    return removed


def remove_replaced_avatar(db: firestore.Client, uid: str, before: Mapping[str, Any] | None) -> int:
    """Delete the avatar the profile held before, unless it holds it still (events come
    late and out of order: only the stored profile says what is current)."""
    old = ((before or {}).get("avatar") or {}).get("id")
    if not isinstance(old, str):
        return 0
    current = ((profile_ref(db, uid).get().to_dict() or {}).get("avatar") or {}).get("id")
    if old == current:
        return 0
    return storage.delete_prefix(photos_bucket(), f"{output_folder('avatar', uid)}{old}/")


def remove_everything_of_user(db: firestore.Client, uid: str) -> int:
    """A deleted profile: every avatar, every avatar upload under way, and the slots."""
    removed = storage.delete_prefix(photos_bucket(), output_folder("avatar", uid))
    uploads = f"{UPLOADS_PREFIX}{_FOLDERS['avatar']}/{uid}/"
    removed += storage.delete_prefix(storage.default_bucket_name(), uploads)
    slots_ref(db, subject("avatar", uid)).delete()
    return removed
