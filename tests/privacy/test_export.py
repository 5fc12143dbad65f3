"""The data export (issue 18), in-process against the Firestore and Auth emulators and the
Cloud Storage stand-in: what the archive holds of the user and what it leaves out of the
people they deal with, once a day, the download link, and doing it again.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from firebase_admin import auth
from google.cloud import firestore

from firekit import ownership, storage
from firekit.errors import AppError
from marketplace import export
from marketplace.models.users import Notification
from marketplace.photo_uploads import output_folder, photos_bucket
from tests.listings.factories import listing, uid

NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class World:
    """The user who exports, and the agent they chat with (whose private data must stay out)."""

    uid: str
    email: str
    other: str
    other_email: str
    their_listing: str
    others_listing: str
    conversation: str
    avatar: str
    """The object name of the user's avatar rendition."""
    listing_photo: str
    """The object name of a photo of the user's listing."""
    others_photo: str

    def own_message(self) -> str:
        return f"Is it still available? ({self.uid})"

    def others_message(self) -> str:
        return f"Yes; call me on my private line ({self.other})"


@pytest.fixture
def world(firestore_db: firestore.Client, auth_emulator: Any) -> Iterator[World]:
    """A user with favourites, a saved search, a listing with a photo, an avatar, a
    conversation with another user's messages and two inbox entries."""
    user, other = uid("exporter"), uid("agent")
    theirs, others = uid("mine"), uid("theirs")
    w = World(
        uid=user,
        email=f"{user}@example.test",
        other=other,
        other_email=f"{other}@example.test",
        their_listing=theirs,
        others_listing=others,
        conversation=f"{others}__{user}",
        avatar=f"{output_folder('avatar', user)}Avatar00000000000001/160.webp",
        listing_photo=f"{output_folder('listing', theirs)}Photo000000000000001/320.jpg",
        others_photo=f"{output_folder('listing', others)}Photo000000000000002/320.jpg",
    )
    auth.create_user(uid=user, email=w.email, display_name="Una Exporter")
    auth.create_user(uid=other, email=w.other_email, display_name="Otto Agent")
    _plant(firestore_db, w)
    for name in (w.avatar, w.listing_photo, w.others_photo):
        storage.write_once(
            photos_bucket(), name, name.encode(), content_type="image/webp", cache_control=""
        )
    yield w
    for folder in (
        output_folder("avatar", user),
        output_folder("listing", w.their_listing),
        output_folder("listing", w.others_listing),
    ):
        storage.delete_prefix(photos_bucket(), folder)
    storage.delete_prefix(storage.default_bucket_name(), f"{export.FOLDER}{user}/")


def _plant(db: firestore.Client, w: World) -> None:
    db.document(f"users/{w.uid}").set({"displayName": "Una Exporter", "role": "agent"})
    db.document(f"users/{w.uid}/private/account").set({"email": w.email, "createdAt": NOW})
    db.document(f"users/{w.other}").set({"displayName": "Otto Agent", "role": "agent"})
    db.document(f"users/{w.other}/private/account").set({"email": w.other_email})
    db.document(f"listings/{w.their_listing}").set(listing(w.uid, status="active"))
    db.document(f"listings/{w.others_listing}").set(listing(w.other, status="active"))
    db.document(f"users/{w.uid}/favorites/{w.others_listing}").set(
        {"listingId": w.others_listing, "createdAt": NOW}
    )
    db.document(f"users/{w.other}/favorites/{w.their_listing}").set(
        {"listingId": w.their_listing, "createdAt": NOW}
    )
    db.document(f"savedSearches/{uid('search')}").set(
        {"ownerId": w.uid, "name": "Near the river", "kind": "sale", "createdAt": NOW}
    )
    db.document(f"savedSearches/{uid('search')}").set(
        {"ownerId": w.other, "name": "Otto's secret search", "kind": "rent", "createdAt": NOW}
    )
    _chat(db, w)


def _chat(db: firestore.Client, w: World) -> None:
    conversation = db.document(f"conversations/{w.conversation}")
    conversation.set(
        {
            "listingId": w.others_listing,
            "buyerId": w.uid,
            "agentId": w.other,
            "participantIds": [w.uid, w.other],
            "createdAt": NOW,
            "updatedAt": NOW,
            "lastReadAt": {w.uid: NOW, w.other: NOW},
            "blockedBy": {},
            "unread": {w.uid: 1, w.other: 0},
            "lastMessage": {
                "messageId": "m2",
                "text": w.others_message()[:140],
                "senderId": w.other,
                "sentAt": NOW,
            },
        }
    )
    messages = conversation.collection("messages")
    messages.document("m1").set({"senderId": w.uid, "text": w.own_message(), "createdAt": NOW})
    messages.document("m2").set({"senderId": w.other, "text": w.others_message(), "createdAt": NOW})
    inbox = db.collection(f"users/{w.uid}/notifications")
    inbox.document("chat-1").set(
        {
            "kind": "message",
            "title": "New message from Otto Agent",
            "body": w.others_message()[:140],
            "data": {"senderId": w.other},
            "createdAt": NOW,
            "read": False,
        }
    )
    inbox.document("review-1").set(
        {
            "kind": "listing_review",
            "title": "Your listing is live",
            "body": "Your flat is on the market.",
            "data": {},
            "createdAt": NOW,
            "read": True,
        }
    )


def download(url: str) -> zipfile.ZipFile:
    """The archive, fetched through its link from the stand-in."""
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 200, answer.text
    return zipfile.ZipFile(io.BytesIO(answer.content))


def records(archive: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(archive.read(name))
    return found


def exported(db: firestore.Client, w: World) -> tuple[export.ExportResult, zipfile.ZipFile]:
    export_id = export.start(db, w.uid, NOW)
    result = export.build(db, w.uid, export_id, NOW)
    assert result is not None
    return result, download(result.url)


# --- what the archive holds ------------------------------------------------------------


def test_the_archive_holds_the_users_data_and_photos(
    firestore_db: firestore.Client, world: World
) -> None:
    result, archive = exported(firestore_db, world)

    assert archive.testzip() is None
    mine = f"users__{world.uid}"
    [profile] = records(archive, f"firestore/{mine}.json")
    assert profile == {
        "path": f"users/{world.uid}",
        "data": {"displayName": "Una Exporter", "role": "agent"},
    }
    [account] = records(archive, f"firestore/{mine}__private.json")
    assert account["data"] == {"email": world.email, "createdAt": NOW.isoformat()}
    [favourite] = records(archive, f"firestore/{mine}__favorites.json")
    assert favourite["path"] == f"users/{world.uid}/favorites/{world.others_listing}"
    [search] = records(archive, "firestore/savedSearches.json")
    assert search["data"]["name"] == "Near the river"
    [home] = records(archive, "firestore/listings.json")
    assert home["path"] == f"listings/{world.their_listing}"
    [user] = records(archive, "auth/user.json")
    assert (user["uid"], user["email"], user["displayName"]) == (
        world.uid,
        world.email,
        "Una Exporter",
    )
    assert user["createdAt"] and user["disabled"] is False
    photos = sorted(n for n in archive.namelist() if n.startswith("photos/"))
    assert photos == sorted([f"photos/{world.avatar}", f"photos/{world.listing_photo}"])
    assert archive.read(f"photos/{world.avatar}") == world.avatar.encode()
    assert result.counts[f"firestore/{mine}__favorites.json"] == 1
    assert result.counts["photos/"] == 2
    assert {"manifest.json", "README.txt"} <= set(archive.namelist())


def test_shared_records_go_in_without_the_other_users_words_or_private_data(
    firestore_db: firestore.Client, world: World
) -> None:
    _, archive = exported(firestore_db, world)

    [conversation] = records(archive, "firestore/conversations.json")
    assert conversation["path"] == f"conversations/{world.conversation}"
    assert conversation["data"]["lastReadAt"] == {world.uid: NOW.isoformat()}
    assert conversation["data"]["unread"] == {world.uid: 1}
    assert "lastMessage" not in conversation["data"]  # the other participant wrote it
    messages = records(archive, "firestore/conversations__conversationId__messages.json")
    assert [m["data"]["text"] for m in messages] == [world.own_message()]
    inbox = {
        r["path"].rsplit("/", 1)[1]: r["data"]
        for r in records(archive, f"firestore/users__{world.uid}__notifications.json")
    }
    assert "body" not in inbox["chat-1"] and inbox["chat-1"]["title"]
    assert inbox["review-1"]["body"] == "Your flat is on the market."
    everything = b"".join(archive.read(name) for name in archive.namelist())
    for secret in (
        world.others_message().encode(),
        world.other_email.encode(),
        b"Otto's secret search",
        world.others_photo.encode(),
        f"users/{world.other}/favorites".encode(),
    ):
        assert secret not in everything


def test_the_manifest_says_what_each_file_is_and_what_was_left_out(
    firestore_db: firestore.Client, world: World
) -> None:
    result, archive = exported(firestore_db, world)

    manifest = json.loads(archive.read("manifest.json"))
    listed = {f["file"]: f["records"] for f in manifest["files"]}
    json_files = {n for n in archive.namelist() if n.endswith(".json") and n != "manifest.json"}
    assert set(listed) == json_files
    assert listed == {k: v for k, v in result.counts.items() if k != "photos/"}
    assert manifest["photos"]["files"] == 2
    assert any("Stripe" in line for line in manifest["notIncluded"])
    assert any("messages" in line for line in manifest["withheld"])
    assert "users/{uid}/limits/{doc}" in manifest["notExported"]
    readme = archive.read("README.txt").decode()
    assert "Stripe" in readme and "firestore/savedSearches.json: 1 record(s)" in readme


def test_each_source_is_read_in_pages_and_every_document_arrives_once(
    firestore_db: firestore.Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "PAGE", 3)
    favourites = firestore_db.collection(f"users/{world.uid}/favorites")
    for n in range(7):
        favourites.document(f"home-{n:02d}").set({"listingId": f"home-{n:02d}"})

    result, archive = exported(firestore_db, world)

    paths = [r["path"] for r in records(archive, f"firestore/users__{world.uid}__favorites.json")]
    assert len(paths) == len(set(paths)) == 8
    assert result.counts[f"firestore/users__{world.uid}__favorites.json"] == 8


def test_every_entry_the_map_exports_has_a_reader_and_a_file_of_its_own() -> None:
    assert export.missing_readers() == []
    names = [
        export.file_name(e, "u1") for e in export.MAP.entries if e.export and e.where == "firestore"
    ]
    assert len(names) == len(set(names))


# --- once a day ----------------------------------------------------------------------------


def test_a_second_export_the_same_day_is_refused_and_writes_nothing(
    firestore_db: firestore.Client, world: World
) -> None:
    first = export.start(firestore_db, world.uid, NOW)

    with pytest.raises(AppError) as refused:
        export.start(firestore_db, world.uid, NOW + dt.timedelta(seconds=1))

    assert export.EXPORT_TODAY.raised(refused.value)
    [record] = firestore_db.collection(f"users/{world.uid}/exports").get()
    assert record.id == NOW.date().isoformat()
    assert (record.get("exportId"), record.get("state")) == (first, "queued")
    assert list(storage.object_names(storage.default_bucket_name(), f"exports/{world.uid}/")) == []
    assert export.start(firestore_db, world.uid, NOW + dt.timedelta(days=1)) != first


def test_two_exports_racing_the_same_day_make_one(
    firestore_db: firestore.Client, world: World
) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def ask() -> None:
        barrier.wait()
        try:
            outcomes.append(export.start(firestore_db, world.uid, NOW))
        except AppError as error:
            outcomes.append("refused" if export.EXPORT_TODAY.raised(error) else repr(error))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes).count("refused") == 3
    assert len(firestore_db.collection(f"users/{world.uid}/exports").get()) == 1


# --- the link and the notice ---------------------------------------------------------------


def test_the_link_is_signed_for_at_most_seven_days_from_now(
    firestore_db: firestore.Client, world: World
) -> None:
    result, _ = exported(firestore_db, world)

    # The stand-in checks no signature (any query string is served): what can be checked
    # here is the URL's shape, its name and its lifetime; Cloud Storage checks the rest.
    url = urllib.parse.urlsplit(result.url)
    query = urllib.parse.parse_qs(url.query)
    assert result.objectName == f"exports/{world.uid}/{result.exportId}.zip"
    assert url.path == f"/{storage.default_bucket_name()}/{result.objectName}"
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
    assert int(query["X-Goog-Expires"][0]) <= 604800
    signed_at = dt.datetime.strptime(query["X-Goog-Date"][0], "%Y%m%dT%H%M%SZ")
    assert abs(signed_at.replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=2)
    assert "attachment" in query["response-content-disposition"][0]
    assert result.expiresAt == NOW + dt.timedelta(days=7)


def test_a_link_longer_than_seven_days_is_refused() -> None:
    with pytest.raises(ValueError, match="7 days"):
        storage.signed_download("bucket", "exports/x.zip", dt.timedelta(days=7, seconds=1))


def test_the_user_is_told_once_with_the_link_and_building_again_rewrites_the_archive(
    firestore_db: firestore.Client, world: World
) -> None:
    export_id = export.start(firestore_db, world.uid, NOW)

    first = export.build(firestore_db, world.uid, export_id, NOW)
    again = export.build(firestore_db, world.uid, export_id, NOW + dt.timedelta(minutes=5))

    assert first is not None and again is not None
    assert again.objectName == first.objectName
    inbox_file = f"firestore/users__{world.uid}__notifications.json"
    assert again.counts[inbox_file] == first.counts[inbox_file] + 1  # the notice itself
    names = list(storage.object_names(storage.default_bucket_name(), f"exports/{world.uid}/"))
    assert names == [first.objectName]
    inbox = firestore_db.collection(f"users/{world.uid}/notifications")
    told = [d for d in inbox.stream() if d.id.startswith("export-")]
    assert [d.id for d in told] == [f"export-{export_id}"]
    notice = told[0].to_dict() or {}
    assert notice["data"]["url"] == first.url  # the first link stays good: same object
    assert notice["link"] == f"/account/exports/{export_id}"
    Notification.model_validate(notice)
    [record] = firestore_db.collection(f"users/{world.uid}/exports").get()
    assert record.get("state") == "ready" and record.get("objectName") == first.objectName
    assert download(first.url).testzip() is None


def test_a_closed_account_gets_no_archive(firestore_db: firestore.Client, world: World) -> None:
    export_id = export.start(firestore_db, world.uid, NOW)
    ownership.tombstone_ref(firestore_db, world.uid).set({"erasureId": "e1", "closedAt": NOW})

    assert export.build(firestore_db, world.uid, export_id, NOW) is None

    assert list(storage.object_names(storage.default_bucket_name(), f"exports/{world.uid}/")) == []
    assert (
        firestore_db.collection(f"users/{world.uid}/notifications").get() != []
    )  # the two planted
    assert (
        not firestore_db.document(f"users/{world.uid}/notifications/export-{export_id}")
        .get()
        .exists
    )


def test_an_export_whose_record_is_gone_does_nothing(
    firestore_db: firestore.Client, world: World
) -> None:
    assert export.build(firestore_db, world.uid, "no-such-export", NOW) is None
