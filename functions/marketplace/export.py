"""A user's data, in one archive they can download: ``export_my_data`` (issue 18).

1. :func:`start` records today's export, ``users/{uid}/exports/{YYYY-MM-DD}`` (UTC), with
   ``create()``: a second one the same day, even one racing the first, is refused
   (:data:`EXPORT_TODAY`). The export's id is fresh per export (a task is named after it,
   and task names are unique across users), kept on the record.
2. :func:`build` writes one zip, ``exports/{uid}/{exportId}.zip`` in the private default
   bucket, streamed entry by entry and each Firestore source read in pages, so memory stays
   flat however many documents the user has. What goes in is what the ownership map
   (:data:`marketplace.ownership.MAP`) marks ``export``: a JSON file per Firestore entry,
   the Auth record, and the user's photos (avatars and their listings' photos) as files.
   Then a signed link valid for 7 days, the record marked ``ready``, and one inbox entry
   (id ``export-{exportId}``) that carries the link in ``data.url`` (a V4 URL is about
   800 characters; ``link`` holds 512).

**Only the caller's data.** Records the user shares with someone (conversations, offers,
viewings, inbox entries quoting a message) go in without the other person's words: a
conversation keeps its facts, the user's own read state and their own messages; an offer
or a viewing loses the free text the other side wrote. ``manifest.json`` and
``README.txt`` in the archive say what each file is, what was withheld and what is not
exported at all.

**Again is harmless.** A rerun of :func:`build` (a redelivered task) rewrites the same
object and updates the record; the inbox entry is created once. A closed account (being
erased) gets nothing: :func:`build` checks before and after writing, and deletes an
archive it wrote meanwhile.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import shutil
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from firebase_admin import auth
from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from pydantic import BaseModel

from firekit import logs, ownership, storage
from firekit.ownership import Entry
from marketplace.notify import Notice, notify
from marketplace.ownership import EXPORTS, MAP
from marketplace.photo_uploads import output_folder, photos_bucket
from marketplace.privacy import EXPORT_TODAY
from marketplace.profiles import profile_ref

LINK_LIFETIME = dt.timedelta(days=7)
"""How long the download link works (the longest a V4 signed URL may)."""
FOLDER = "exports/"
"""Archives live under ``exports/{uid}/`` in the default bucket (never under ``uploads/``,
which the photo trigger watches)."""
PAGE = 300
"""Documents read per query page."""
_MESSAGES = "conversations/{conversationId}/messages/{messageId}"


class ExportResult(BaseModel):
    """What :func:`build` made: the archive, its link, and how many records each file holds."""

    exportId: str
    objectName: str
    url: str
    expiresAt: dt.datetime
    counts: dict[str, int]
    """Per file of the archive: the documents (or records) in it; ``photos/``: the photos."""


def export_ref(db: firestore.Client, uid: str, day: str) -> firestore.DocumentReference:
    """The record of the user's export of ``day`` (``YYYY-MM-DD``, UTC)."""
    ref: firestore.DocumentReference = profile_ref(db, uid).collection(EXPORTS).document(day)
    return ref


def start(db: firestore.Client, uid: str, now: dt.datetime) -> str:
    """Record today's export (state ``queued``) and return its id; refuses a second one
    the same UTC day with :data:`EXPORT_TODAY` (``create`` decides a race)."""
    day = now.astimezone(dt.UTC).date().isoformat()
    export_id = uuid.uuid4().hex
    record = {"exportId": export_id, "state": "queued", "createdAt": now}
    try:
        export_ref(db, uid, day).create(record)
    except gexc.AlreadyExists:
        raise EXPORT_TODAY() from None
    return export_id


def build(db: firestore.Client, uid: str, export_id: str, now: dt.datetime) -> ExportResult | None:
    """Write the archive, sign a link to it for :data:`LINK_LIFETIME` (``expiresAt``:
    ``now`` + that), mark the record ``ready`` and tell the user once. None, doing
    nothing, when the export's record is gone or the account is closed (an erasure removes
    both: nothing to retry). A push FCM could not take raises
    :class:`firekit.notify.PushUnavailableError`: run it again (the archive is rewritten,
    the pending push sent)."""
    record = _record(db, uid, export_id)
    if record is None or ownership.is_closed(db, uid):
        return None
    bucket, object_name = storage.default_bucket_name(), f"{FOLDER}{uid}/{export_id}.zip"
    with storage.open_write(bucket, object_name, content_type="application/zip") as out:
        counts = write_archive(out, db, uid, export_id, now)
    if ownership.is_closed(db, uid):  # closed while it was written: keep none of it
        storage.delete(bucket, object_name)
        return None
    day = record.id
    url = storage.signed_download(
        bucket, object_name, LINK_LIFETIME, download_as=f"homefront-data-{day}.zip"
    )
    result = ExportResult(
        exportId=export_id,
        objectName=object_name,
        url=url,
        expiresAt=now + LINK_LIFETIME,
        counts=counts,
    )
    record.update(
        {"state": "ready", "objectName": object_name, "url": url, "expiresAt": result.expiresAt}
    )
    notify(db, ready_notice(uid, result))
    logs.info("data exported", exportId=export_id, files=len(counts), photos=counts["photos/"])
    return result


def sweep_expired(now: dt.datetime) -> int:
    """Delete archives whose link has expired (a day's grace); how many went. Deployed, a
    bucket lifecycle rule on ``exports/`` may do the same: this keeps the promise anywhere."""
    cutoff = now - LINK_LIFETIME - dt.timedelta(days=1)
    bucket = storage.default_bucket_name()
    removed = 0
    for blob in storage.client().list_blobs(bucket, prefix=FOLDER):
        if blob.time_created is not None and blob.time_created < cutoff:
            removed += int(storage.delete(bucket, str(blob.name)))
    return removed


def ready_notice(uid: str, result: ExportResult) -> Notice:
    """The inbox entry that brings the link (its own, deterministic id: told once)."""
    until = result.expiresAt.astimezone(dt.UTC)
    return Notice(
        uid=uid,
        id=f"export-{result.exportId}",
        kind="system",
        title="Your data is ready to download",
        body=f"Your Homefront data archive can be downloaded until {until:%d %B %Y, %H:%M} UTC.",
        link=f"/account/exports/{result.exportId}",
        data={"exportId": result.exportId, "url": result.url, "expiresAt": until.isoformat()},
    )


def _record(db: firestore.Client, uid: str, export_id: str) -> firestore.DocumentReference | None:
    exports = profile_ref(db, uid).collection(EXPORTS)
    query = exports.where(filter=FieldFilter("exportId", "==", export_id)).limit(1)
    found: list[firestore.DocumentReference] = [s.reference for s in query.stream()]
    return found[0] if found else None


# --- the archive ---------------------------------------------------------------------


def write_archive(
    out: io.BufferedIOBase, db: firestore.Client, uid: str, export_id: str, now: dt.datetime
) -> dict[str, int]:
    """Write the zip of the user's data into ``out`` (which need not seek); how many
    records each file holds (``photos/``: how many photos)."""
    counts: dict[str, int] = {}
    files: list[dict[str, Any]] = []
    with zipfile.ZipFile(out, "w") as archive:
        for entry in MAP.entries:
            if not entry.export:
                continue
            if entry.where == "firestore":
                name = file_name(entry, uid)
                counts[name] = _write_json(archive, name, now, _documents_of(entry, db, uid))
                files.append({"file": name, "what": f"{entry.path} ({entry.owned_by})"})
            elif entry.where == "auth":
                counts["auth/user.json"] = _write_json(archive, "auth/user.json", now, _auth(uid))
                files.append({"file": "auth/user.json", "what": "your sign-in account"})
            elif entry.where == "storage":
                folders = _PHOTO_FOLDERS[entry.path](db, uid)
                counts["photos/"] = counts.get("photos/", 0) + _copy_photos(archive, folders, now)
            else:
                raise LookupError(f"no exporter for {entry.where} entry {entry.path}")
        counts.setdefault("photos/", 0)
        for file in files:
            file["records"] = counts[file["file"]]
        about = _manifest(uid, export_id, now, files, counts["photos/"])
        _write_about(archive, about, now)
    return counts


def file_name(entry: Entry, uid: str) -> str:
    """An entry's file: its path pattern without the documents' own id, ``/`` as ``__``,
    the uid filled in: ``users/{uid}/favorites/{listingId}`` is
    ``firestore/users__<uid>__favorites.json``, ``users/{uid}`` ``firestore/users__<uid>.json``."""
    parts = entry.path.split("/")
    if parts[-1].startswith("{") and parts[-1] != "{uid}":
        parts = parts[:-1]
    named = "__".join(parts).replace("{uid}", uid).replace("{", "").replace("}", "")
    return f"firestore/{named}.json"


def _info(name: str, now: dt.datetime, *, compress: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=now.astimezone(dt.UTC).timetuple()[:6])
    # Photos are JPEG and WebP, compressed already: deflating them again gains nothing.
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    return info


def _write_json(
    archive: zipfile.ZipFile, name: str, now: dt.datetime, records: Iterable[Any]
) -> int:
    """A JSON list written one record at a time; how many."""
    count = 0
    with archive.open(_info(name, now, compress=True), "w") as file:
        file.write(b"[")
        for record in records:
            text = json.dumps(record, default=_json_value, ensure_ascii=False, sort_keys=True)
            file.write(("\n" if count == 0 else ",\n").encode() + text.encode())
            count += 1
        file.write(b"\n]\n")
    return count


def _json_value(value: Any) -> Any:
    """What JSON cannot hold, as text a person can read (timestamps as ISO 8601)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, firestore.GeoPoint):
        return {"latitude": value.latitude, "longitude": value.longitude}
    if isinstance(value, firestore.DocumentReference):
        return value.path
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


# --- Firestore -------------------------------------------------------------------------


def _documents_of(entry: Entry, db: firestore.Client, uid: str) -> Iterator[dict[str, Any]]:
    """Each of the user's documents at the entry, as ``{"path", "data"}``, with what is
    not theirs taken out."""
    find = entry.find or _FINDERS.get(entry.path)
    if find is None:
        raise LookupError(f"the map says to export {entry.path} but names no way to find it")
    withhold = _WITHHOLD.get(entry.path, _as_is)
    for source in find(db, uid):
        for snapshot in _pages(source):
            data = withhold(uid, snapshot.to_dict() or {})
            yield {"path": snapshot.reference.path, "data": data}


def _pages(source: Any) -> Iterator[Any]:
    """The documents of a document reference, a collection or a query, :data:`PAGE` at
    a time (in id order, so each page starts after the last one's end)."""
    if isinstance(source, firestore.DocumentReference):
        snapshot = source.get()
        if snapshot.exists:
            yield snapshot
        return
    query = source.order_by("__name__").limit(PAGE)
    last = None
    while True:
        page = list((query if last is None else query.start_after(last)).stream())
        yield from page
        if len(page) < PAGE:
            return
        last = page[-1]


def _own_messages(db: firestore.Client, uid: str) -> Iterator[Any]:
    # The user's own messages, conversation by conversation (the map's conversations);
    # the other participant's stay out (see the module).
    for source in _finder("conversations/{conversationId}")(db, uid):
        for conversation in _pages(source.select([])):
            messages = conversation.reference.collection("messages")
            yield messages.where(filter=FieldFilter("senderId", "==", uid))


def _finder(path: str) -> Callable[[firestore.Client, str], Iterable[Any]]:
    [entry] = MAP.at(path)
    assert entry.find is not None, path
    return entry.find


_FINDERS: dict[str, Callable[[firestore.Client, str], Iterable[Any]]] = {
    _MESSAGES: _own_messages,
}
"""Ways to find an exported entry's documents that the map itself does not name."""


# --- what is not the user's: the other side's words, read state and counts -------------

Withhold = Callable[[str, dict[str, Any]], dict[str, Any]]


def _as_is(uid: str, data: dict[str, Any]) -> dict[str, Any]:
    return data


def _conversation(uid: str, data: dict[str, Any]) -> dict[str, Any]:
    """Its facts, and of the per-participant maps only the user's own entry; the preview
    only if the user wrote it."""
    kept = dict(data)
    for per_participant in ("lastReadAt", "blockedBy", "unread"):
        own = (data.get(per_participant) or {}).get(uid)
        kept[per_participant] = {} if own is None else {uid: own}
    if (data.get("lastMessage") or {}).get("senderId") != uid:
        kept.pop("lastMessage", None)
    return kept


def _offer(uid: str, data: dict[str, Any]) -> dict[str, Any]:
    """Without the free text the other side wrote: the buyer's message, the agent's
    reason for rejecting, the reason of the other side's last move."""
    side = "buyer" if data.get("buyerId") == uid else "agent"
    kept = dict(data)
    kept.pop("message" if side == "agent" else "rejectionReason", None)
    change = data.get("lastChange")
    if isinstance(change, Mapping) and change.get("by") not in (side, "system"):
        kept["lastChange"] = {k: v for k, v in change.items() if k != "reason"}
    return kept


def _viewing(uid: str, data: dict[str, Any]) -> dict[str, Any]:
    """Without the requester's note (to an agent) or the other side's reason for a change."""
    kept = dict(data)
    if data.get("requesterId") != uid:
        kept.pop("note", None)
    change = data.get("lastChange")
    if isinstance(change, Mapping) and change.get("by") not in (uid, None):
        kept["lastChange"] = {k: v for k, v in change.items() if k != "reason"}
    return kept


QUOTING_KINDS = frozenset({"message", "offer", "viewing"})
"""Inbox entries whose body may quote another user (a message's preview, a reason)."""


def _inbox_entry(uid: str, data: dict[str, Any]) -> dict[str, Any]:
    if data.get("kind") in QUOTING_KINDS:
        return {k: v for k, v in data.items() if k != "body"}
    return data


_WITHHOLD: dict[str, Withhold] = {
    "conversations/{conversationId}": _conversation,
    "offers/{offerId}": _offer,
    "viewings/{viewingId}": _viewing,
    "users/{uid}/notifications/{notificationId}": _inbox_entry,
}
WITHHELD = (
    "Conversations: the other participant's messages, their read receipts and unread "
    "counts, and the latest-message preview when they wrote it (your own messages are in "
    "the messages file).",
    "Offers and viewings: the free text the other side wrote (a buyer's message or a "
    "requester's note to you, an agent's reasons).",
    "Inbox entries about messages, offers and viewings: their body, which may quote "
    "another user (the title, the kind and the time are there).",
)


# --- Auth and photos -------------------------------------------------------------------


def _auth(uid: str) -> Iterator[dict[str, Any]]:
    """The user's Auth record, as one record (none if they have no account there)."""
    try:
        user = auth.get_user(uid)
    except auth.UserNotFoundError:
        return
    meta = user.user_metadata

    def at(ms: int | None) -> str | None:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat() if ms else None

    yield {
        "uid": user.uid,
        "email": user.email,
        "emailVerified": user.email_verified,
        "phoneNumber": user.phone_number,
        "displayName": user.display_name,
        "photoURL": user.photo_url,
        "disabled": user.disabled,
        "createdAt": at(meta.creation_timestamp),
        "lastSignInAt": at(meta.last_sign_in_timestamp),
        "providers": [
            {"providerId": p.provider_id, "uid": p.uid, "email": p.email}
            for p in user.provider_data
        ],
        "claims": user.custom_claims or {},
    }


def _listing_photo_folders(db: firestore.Client, uid: str) -> Iterator[str]:
    for source in _finder("listings/{listingId}")(db, uid):
        for listing in _pages(source.select([])):
            yield output_folder("listing", listing.id)


_PHOTO_FOLDERS: dict[str, Callable[[firestore.Client, str], Iterable[str]]] = {
    "gs://{photos}/avatars/{uid}/": lambda db, uid: [output_folder("avatar", uid)],
    "gs://{photos}/listings/{listingId}/": _listing_photo_folders,
}
"""Where each exported Storage entry's objects are, in the photos bucket."""


def _copy_photos(archive: zipfile.ZipFile, folders: Iterable[str], now: dt.datetime) -> int:
    """Every object under ``folders`` as ``photos/{name}``, streamed; how many. An object
    deleted meanwhile (a replaced avatar) is left out."""
    bucket, copied = photos_bucket(), 0
    for folder in folders:
        for name in storage.object_names(bucket, folder):
            with storage.open_read(bucket, name) as source:
                try:
                    first = source.read(storage.READ_CHUNK)
                except gexc.NotFound:
                    continue
                with archive.open(_info(f"photos/{name}", now, compress=False), "w") as file:
                    file.write(first)
                    shutil.copyfileobj(source, file, storage.READ_CHUNK)
            copied += 1
    return copied


def missing_readers() -> list[str]:
    """The map's exported entries this module cannot read (a new entry, a new kind of
    place): a test holds it empty, so nothing the map promises is silently left out."""
    missing = []
    for entry in MAP.entries:
        if not entry.export or entry.where == "auth":
            continue
        if entry.where == "firestore" and (entry.find or _FINDERS.get(entry.path)):
            continue
        if entry.where == "storage" and entry.path in _PHOTO_FOLDERS:
            continue
        missing.append(f"{entry.where}: {entry.path}")
    return missing


# --- what the archive says about itself ------------------------------------------------


def _manifest(
    uid: str, export_id: str, now: dt.datetime, files: list[dict[str, Any]], photos: int
) -> dict[str, Any]:
    return {
        "exportId": export_id,
        "uid": uid,
        "createdAt": now.astimezone(dt.UTC).isoformat(),
        "files": files,
        "photos": {"folder": "photos/", "files": photos, "what": PHOTOS},
        "withheld": list(WITHHELD),
        "notIncluded": list(NOT_INCLUDED),
        "notExported": sorted({e.path for e in MAP.entries if not e.export}),
    }


def _write_about(archive: zipfile.ZipFile, manifest: Mapping[str, Any], now: dt.datetime) -> None:
    with archive.open(_info("manifest.json", now, compress=True), "w") as file:
        file.write(json.dumps(manifest, ensure_ascii=False, indent=2).encode())
    with archive.open(_info("README.txt", now, compress=True), "w") as file:
        file.write(_readme(manifest).encode())


PHOTOS = (
    "Your photos as we serve them: your avatars and your listings' photos, each in the "
    "sizes and formats we made of it (the originals you uploaded are not kept)."
)
NOT_INCLUDED = (
    "Other users' private data: their messages, email addresses, phone numbers and settings.",
    "Payment card details: Stripe holds them, and we never see or store card numbers; "
    "Stripe's own records of your payments are with Stripe.",
    "Your password: the sign-in service keeps only a one-way hash of it.",
    "Emails and pushes already delivered to you.",
)


def _readme(manifest: Mapping[str, Any]) -> str:
    lines = [
        "Your Homefront data",
        "",
        f"Exported {manifest['createdAt']} for account {manifest['uid']}.",
        "manifest.json says the same as this file, for programs.",
        "",
        "Files (JSON: a list of {path, data}; times in ISO 8601, UTC):",
        *(f"- {f['file']}: {f['records']} record(s); {f['what']}" for f in manifest["files"]),
        f"- photos/: {manifest['photos']['files']} file(s). {PHOTOS}",
        "",
        "Left out of records you share with other users:",
        *(f"- {text}" for text in manifest["withheld"]),
        "",
        "Not in this archive:",
        *(f"- {text}" for text in manifest["notIncluded"]),
        "- Bookkeeping the service keeps to run (counters, limits, idempotency and index "
        "records, moderation reports): " + ", ".join(manifest["notExported"]) + ".",
        "",
    ]
    return "\n".join(lines)
