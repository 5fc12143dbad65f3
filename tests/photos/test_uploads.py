"""Photos from slot to listing, in-process against the Firestore emulator and the Cloud
Storage stand-in: upload slots and their limits, processing each finished upload (replayed,
raced, out of order, with deletes), refusals, the agent's order, and removal.

Uploads here go to a bucket of their own: the stand-in publishes every write under
``uploads/``, and the live processing function (in the Functions emulator) watches only the
default bucket, so these tests alone deliver their events, exactly when they choose.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from google.cloud import firestore
from google.cloud import storage as gcs  # type: ignore[attr-defined]
from PIL import Image

from api.photos import (
    arrange_listing_photos,
    process_photo_upload,
    remove_deleted_listing_photos,
    remove_deleted_user_photos,
    remove_listing_photos,
    remove_old_avatar,
    request_photo_upload,
)
from firekit import storage
from firekit.errors import AppError
from marketplace import photo_uploads as p
from marketplace import photos
from marketplace.models.listings import MAX_PHOTOS, Listing
from marketplace.models.users import PrivateAccount, Profile
from pytest_firebase.events import deliver, redelivery
from pytest_firebase.storage import storage_event
from tests.listings.factories import listing, sample_photo, uid
from tests.photos.test_processing import assert_bare, tagged_upload

TEST_BUCKET = "demo-marketplace-photo-tests"
AGENT = {"role": "agent"}
Call = Callable[..., Any]


@pytest.fixture(scope="module")
def upload_bucket() -> gcs.Bucket:
    """Where these tests upload (see the module's docstring)."""
    client = storage.client()
    found = client.lookup_bucket(TEST_BUCKET)
    return found if found is not None else client.create_bucket(TEST_BUCKET)


@pytest.fixture
def agent_listing(firestore_db: firestore.Client) -> Iterator[tuple[str, str]]:
    """An agent and a draft of theirs with no photos: (uid, listing id)."""
    owner, listing_id = uid("agent"), uid("home")
    firestore_db.document(f"users/{owner}").set({"role": "agent", "displayName": "Agent"})
    firestore_db.document(f"listings/{listing_id}").set(listing(owner, status="draft", photos=[]))
    yield owner, listing_id
    storage.delete_prefix(p.photos_bucket(), p.output_folder("listing", listing_id))


def hold_photos(db: firestore.Client, listing_id: str, count: int) -> None:
    """Give the listing ``count`` photos recorded earlier."""
    held = [sample_photo(f"Held{n:016d}") for n in range(count)]
    db.document(f"listings/{listing_id}").update({"photos": held})


def slot(db: firestore.Client, owner: str, listing_id: str | None) -> p.PhotoUploadSlot:
    target = "listing" if listing_id else "avatar"
    request = p.PhotoUploadRequest(target=target, listingId=listing_id, contentType="image/jpeg")
    return p.request_upload(db, uid=owner, request=request)


def put_upload(
    bucket: gcs.Bucket, owner_id: str, photo_id: str, data: bytes, *, target: str = "listing"
) -> tuple[Any, gcs.Blob]:
    """Store ``data`` as the slot's upload would be; its finalize event, and the blob."""
    name = p.UploadName(target, owner_id, photo_id).object_name  # type: ignore[arg-type]
    blob = bucket.blob(name)
    blob.upload_from_string(data, content_type="image/jpeg")
    event = storage_event(
        bucket.name, name, generation=blob.generation, size=len(data), content_type="image/jpeg"
    )
    return event, blob


def stored_listing(db: firestore.Client, listing_id: str) -> dict[str, Any]:
    return db.document(f"listings/{listing_id}").get().to_dict() or {}


def outputs(target: str, owner_id: str) -> list[str]:
    folder = p.output_folder(target, owner_id)  # type: ignore[arg-type]
    return sorted(b.name for b in storage.client().list_blobs(p.photos_bucket(), prefix=folder))


def open_slots(db: firestore.Client, subject: str) -> dict[str, Any]:
    return (db.document(f"photoUploads/{subject}").get().to_dict() or {}).get("slots", {})


def jpeg(
    size: tuple[int, int] = (1200, 800), colour: tuple[int, int, int] = (40, 120, 200)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="JPEG", quality=80)
    return out.getvalue()


# --- slots ---------------------------------------------------------------------------


def test_the_agent_gets_a_signed_put_url_for_one_new_object(
    firestore_db: firestore.Client, agent_listing: tuple[str, str], call_function: Call
) -> None:
    owner, listing_id = agent_listing
    asked = {"target": "listing", "listingId": listing_id, "contentType": "image/heic"}

    result = call_function(request_photo_upload, asked, uid=owner, claims=AGENT).data

    url = urllib.parse.urlsplit(result["url"])
    query = urllib.parse.parse_qs(url.query)
    name = f"uploads/listings/{listing_id}/{result['photoId']}"
    assert url.path.endswith(f"/{storage.default_bucket_name()}/{name}")
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
    assert query["X-Goog-Expires"] == ["900"]
    signed = query["X-Goog-SignedHeaders"][0].split(";")
    assert {"content-type", "x-goog-content-length-range", "x-goog-if-generation-match"} <= set(
        signed
    )
    assert result["method"] == "PUT"
    assert result["headers"] == {
        "Content-Type": "image/heic",
        "x-goog-content-length-range": f"0,{15 * 1024 * 1024}",
        "x-goog-if-generation-match": "0",
    }
    assert result["maxBytes"] == 15 * 1024 * 1024
    expires = dt.datetime.fromisoformat(result["expiresAt"])
    assert dt.timedelta(minutes=14) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=15)
    [(photo_id, held)] = open_slots(firestore_db, f"listing-{listing_id}").items()
    assert photo_id == result["photoId"] and held["uid"] == owner
    assert held["contentType"] == "image/heic" and held["attempts"] == 0


@pytest.mark.parametrize(
    ("asked", "status", "reason"),
    [
        ({"target": "listing", "contentType": "image/jpeg"}, "INVALID_ARGUMENT", None),
        (
            {"target": "avatar", "listingId": "x", "contentType": "image/jpeg"},
            "INVALID_ARGUMENT",
            None,
        ),
        (
            {"target": "listing", "listingId": "{id}", "contentType": "image/gif"},
            "INVALID_ARGUMENT",
            None,
        ),
        (
            {"target": "listing", "listingId": "{id}", "contentType": "text/plain"},
            "INVALID_ARGUMENT",
            None,
        ),
        (
            {"target": "listing", "listingId": "nope", "contentType": "image/png"},
            "NOT_FOUND",
            "no_such_listing",
        ),
    ],
    ids=["listing-without-id", "avatar-with-id", "gif", "text", "missing-listing"],
)
def test_a_bad_slot_request_is_refused_and_opens_nothing(
    firestore_db: firestore.Client,
    agent_listing: tuple[str, str],
    call_function: Call,
    asked: dict[str, Any],
    status: str,
    reason: str | None,
) -> None:
    owner, listing_id = agent_listing
    data = {k: v.replace("{id}", listing_id) if isinstance(v, str) else v for k, v in asked.items()}

    result = call_function(request_photo_upload, data, uid=owner, claims=AGENT)

    assert result.error_status == status
    if reason:
        assert result.error["details"]["reason"] == reason
    assert firestore_db.collection("photoUploads").get() == []


def test_only_the_listings_agent_gets_a_slot_and_only_while_photos_may_change(
    firestore_db: firestore.Client, agent_listing: tuple[str, str], call_function: Call
) -> None:
    owner, listing_id = agent_listing
    asked = {"target": "listing", "listingId": listing_id, "contentType": "image/jpeg"}

    other = call_function(request_photo_upload, asked, uid=uid("agent"), claims=AGENT)
    assert other.error_status == "PERMISSION_DENIED"
    assert other.error["details"]["reason"] == "not_listing_owner"
    for status in ("sold", "archived", "pending_review"):
        firestore_db.document(f"listings/{listing_id}").update({"status": status})
        closed = call_function(request_photo_upload, asked, uid=owner, claims=AGENT)
        assert closed.error["details"]["reason"] == "photos_closed", status
    assert firestore_db.collection("photoUploads").get() == []


def test_a_13th_photo_is_refused_at_upload_counting_uploads_under_way(
    firestore_db: firestore.Client, agent_listing: tuple[str, str], call_function: Call
) -> None:
    owner, listing_id = agent_listing
    hold_photos(firestore_db, listing_id, MAX_PHOTOS - 2)
    asked = {"target": "listing", "listingId": listing_id, "contentType": "image/jpeg"}

    first = call_function(request_photo_upload, asked, uid=owner, claims=AGENT)
    second = call_function(request_photo_upload, asked, uid=owner, claims=AGENT)
    thirteenth = call_function(request_photo_upload, asked, uid=owner, claims=AGENT)

    assert first.ok and second.ok
    assert thirteenth.error_status == "FAILED_PRECONDITION"
    assert thirteenth.error["details"]["reason"] == "too_many_photos"
    assert len(open_slots(firestore_db, f"listing-{listing_id}")) == 2


def test_racing_requests_never_open_more_slots_than_the_limit(
    firestore_db: firestore.Client, agent_listing: tuple[str, str]
) -> None:
    # Four requests race for the listing's last place.
    owner, listing_id = agent_listing
    hold_photos(firestore_db, listing_id, MAX_PHOTOS - 1)
    outcomes: list[str] = []

    def ask() -> None:
        try:
            slot(firestore_db, owner, listing_id)
            outcomes.append("slot")
        except AppError as exc:
            outcomes.append(str(exc.details["reason"]))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The emulator's locks may turn some of a race into contention ("busy", which a client
    # asks again): every slot granted is recorded, and never more than the limit.
    assert set(outcomes) <= {"slot", "too_many_photos", "busy"}, outcomes
    granted = outcomes.count("slot")
    assert granted <= 1 and granted == len(open_slots(firestore_db, f"listing-{listing_id}"))
    if not granted:  # all four were busy: the place is still free, and only one
        slot(firestore_db, owner, listing_id)
    with pytest.raises(AppError) as refused:
        slot(firestore_db, owner, listing_id)
    assert refused.value.details["reason"] == "too_many_photos"
    assert len(open_slots(firestore_db, f"listing-{listing_id}")) == 1


def test_expired_slots_free_their_place_and_are_swept(
    firestore_db: firestore.Client, agent_listing: tuple[str, str]
) -> None:
    owner, listing_id = agent_listing
    hold_photos(firestore_db, listing_id, MAX_PHOTOS - 1)
    request = p.PhotoUploadRequest(target="listing", listingId=listing_id, contentType="image/png")
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    p.request_upload(firestore_db, uid=owner, request=request, now=long_ago)

    fresh = p.request_upload(firestore_db, uid=owner, request=request)

    assert list(open_slots(firestore_db, f"listing-{listing_id}")) == [fresh.photoId]


def test_anyone_gets_avatar_slots_up_to_a_few_at_a_time(
    firestore_db: firestore.Client, call_function: Call
) -> None:
    buyer = uid("buyer")
    asked = {"target": "avatar", "contentType": "image/webp"}

    results = [call_function(request_photo_upload, asked, uid=buyer) for _ in range(4)]

    assert [r.ok for r in results] == [True, True, True, False]
    assert results[3].error["details"]["reason"] == "too_many_uploads"
    assert f"/uploads/avatars/{buyer}/" in results[0].data["url"]


# --- processing ----------------------------------------------------------------------


def test_an_upload_becomes_an_upright_bare_photo_on_the_listing(
    firestore_db: firestore.Client, agent_listing: tuple[str, str], upload_bucket: gcs.Bucket
) -> None:
    owner, listing_id = agent_listing
    photo_id = slot(firestore_db, owner, listing_id).photoId
    event, blob = put_upload(upload_bucket, listing_id, photo_id, tagged_upload("JPEG"))

    deliver(process_photo_upload, event)

    [entry] = stored_listing(firestore_db, listing_id)["photos"]
    Listing.model_validate(stored_listing(firestore_db, listing_id))
    assert entry["id"] == photo_id
    assert (entry["width"], entry["height"]) == (600, 400)
    assert [s["width"] for s in entry["sizes"]] == [320, 600]
    assert entry["placeholder"]
    for size in entry["sizes"]:
        for kind in ("webp", "jpeg"):
            answer = requests.get(size[kind], timeout=10)
            assert answer.status_code == 200
            assert answer.headers["Content-Type"] == f"image/{kind}"
            assert "immutable" in answer.headers["Cache-Control"]
            assert_bare(photos.Rendition(size["width"], size["height"], kind, answer.content))
            assert Image.open(io.BytesIO(answer.content)).size == (size["width"], size["height"])
    assert len(outputs("listing", listing_id)) == 4
    assert not blob.exists()
    assert open_slots(firestore_db, f"listing-{listing_id}") == {}


def test_each_event_delivered_three_times_makes_one_entry_and_one_set_of_outputs(
    firestore_db: firestore.Client, agent_listing: tuple[str, str], upload_bucket: gcs.Bucket
) -> None:
    owner, listing_id = agent_listing
    photo_id = slot(firestore_db, owner, listing_id).photoId
    event, _ = put_upload(upload_bucket, listing_id, photo_id, jpeg())
    written: list[str] = []
    real_write = storage.write_once

    def counted(*args: Any, **kwargs: Any) -> bool:
        fresh = real_write(*args, **kwargs)
        written.extend([args[1]] if fresh else [])
        return fresh

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(storage, "write_once", counted)
        outcomes = [
            p.process_upload(firestore_db, storage_upload(e))
            for e in (event, redelivery(event), redelivery(event))
        ]

    assert outcomes == [p.Outcome.ADDED, p.Outcome.DONE_ALREADY, p.Outcome.DONE_ALREADY]
    assert [e["id"] for e in stored_listing(firestore_db, listing_id)["photos"]] == [photo_id]
    assert sorted(written) == outputs("listing", listing_id) and len(written) == 6


def test_deliveries_racing_each_other_make_one_entry(
    firestore_db: firestore.Client, agent_listing: tuple[str, str], upload_bucket: gcs.Bucket
) -> None:
    owner, listing_id = agent_listing
    photo_id = slot(firestore_db, owner, listing_id).photoId
    event, _ = put_upload(upload_bucket, listing_id, photo_id, jpeg())
    threads = [
        threading.Thread(target=deliver, args=(process_photo_upload, redelivery(event)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [e["id"] for e in stored_listing(firestore_db, listing_id)["photos"]] == [photo_id]
    assert len(outputs("listing", listing_id)) == 6


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_an_upload_replaced_and_deleted_out_of_order_makes_at_most_one_entry(
    firestore_db: firestore.Client,
    agent_listing: tuple[str, str],
    upload_bucket: gcs.Bucket,
    order: tuple[int, ...],
) -> None:
    # The client PUT twice to one slot (generations 1 and 2), and the first event comes
    # again; whatever order they arrive in, the photo is recorded once, from generation 2.
    owner, listing_id = agent_listing
    photo_id = slot(firestore_db, owner, listing_id).photoId
    first, _ = put_upload(upload_bucket, listing_id, photo_id, jpeg(colour=(200, 30, 30)))
    second, blob = put_upload(upload_bucket, listing_id, photo_id, jpeg((900, 900)))
    events = [first, second, redelivery(first)]

    for index in order:
        deliver(process_photo_upload, events[index])

    [entry] = stored_listing(firestore_db, listing_id)["photos"]
    assert (entry["width"], entry["height"]) == (900, 900)
    assert len(outputs("listing", listing_id)) == 4  # 320 and 900 wide (never upscaled)
    assert not blob.exists()


def test_an_upload_deleted_before_its_event_changes_nothing_and_keeps_the_slot(
    firestore_db: firestore.Client, agent_listing: tuple[str, str], upload_bucket: gcs.Bucket
) -> None:
    owner, listing_id = agent_listing
    photo_id = slot(firestore_db, owner, listing_id).photoId
    event, blob = put_upload(upload_bucket, listing_id, photo_id, jpeg())
    blob.delete()

    assert p.process_upload(firestore_db, storage_upload(event)) is p.Outcome.STALE
    assert stored_listing(firestore_db, listing_id)["photos"] == []
    assert outputs("listing", listing_id) == []
    assert photo_id in open_slots(firestore_db, f"listing-{listing_id}")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"Dear agent, this is not a photo at all.\n" * 20, "not_an_image"),
        (jpeg()[:900], "unreadable"),
    ],
    ids=["text-named-jpg", "truncated-jpeg"],
)
def test_a_refused_upload_is_deleted_and_the_agent_sees_why(
    firestore_db: firestore.Client,
    agent_listing: tuple[str, str],
    upload_bucket: gcs.Bucket,
    data: bytes,
    reason: str,
) -> None:
    owner, listing_id = agent_listing
    photo_id = slot(firestore_db, owner, listing_id).photoId
    event, blob = put_upload(upload_bucket, listing_id, photo_id, data)

    deliver(process_photo_upload, event)
    deliver(process_photo_upload, redelivery(event))

    stored = stored_listing(firestore_db, listing_id)
    [issue] = stored["photoIssues"]
    assert (issue["photoId"], issue["reason"]) == (photo_id, reason)
    assert issue["message"]
    assert stored["photos"] == [] and outputs("listing", listing_id) == []
    assert not blob.exists()
    assert open_slots(firestore_db, f"listing-{listing_id}") == {}
    Listing.model_validate(stored)


def test_a_60_megapixel_png_upload_is_refused_without_being_decoded(
    firestore_db: firestore.Client,
    agent_listing: tuple[str, str],
    upload_bucket: gcs.Bucket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner, listing_id = agent_listing
    photo_id = slot(firestore_db, owner, listing_id).photoId
    out = io.BytesIO()
    Image.new("1", (10_000, 6_000)).save(out, format="PNG")  # 60 MP, a few kB compressed
    event, _ = put_upload(upload_bucket, listing_id, photo_id, out.getvalue())
    monkeypatch.setattr(Image.Image, "load", lambda *_: pytest.fail("decoded"))

    deliver(process_photo_upload, event)

    assert stored_listing(firestore_db, listing_id)["photoIssues"][0]["reason"] == "too_many_pixels"


def test_an_upload_over_15_mb_is_refused_before_it_is_read(
    firestore_db: firestore.Client,
    agent_listing: tuple[str, str],
    upload_bucket: gcs.Bucket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The stand-in ignores the URL's size range; the event's size is checked again.
    owner, listing_id = agent_listing
    photo_id = slot(firestore_db, owner, listing_id).photoId
    _, blob = put_upload(upload_bucket, listing_id, photo_id, jpeg())
    big = storage_event(
        upload_bucket.name, blob.name, generation=blob.generation, size=15 * 1024 * 1024 + 1
    )
    monkeypatch.setattr(storage, "read", lambda *_: pytest.fail("read"))

    deliver(process_photo_upload, big)

    assert stored_listing(firestore_db, listing_id)["photoIssues"][0]["reason"] == "too_large"
    assert not blob.exists()


def test_a_photo_past_the_limit_at_recording_is_refused_and_its_outputs_removed(
    firestore_db: firestore.Client, agent_listing: tuple[str, str], upload_bucket: gcs.Bucket
) -> None:
    # Photos recorded by other means since the slot opened fill the listing first.
    owner, listing_id = agent_listing
    photo_id = slot(firestore_db, owner, listing_id).photoId
    hold_photos(firestore_db, listing_id, MAX_PHOTOS)
    event, _ = put_upload(upload_bucket, listing_id, photo_id, jpeg())

    deliver(process_photo_upload, event)

    stored = stored_listing(firestore_db, listing_id)
    assert len(stored["photos"]) == MAX_PHOTOS
    assert stored["photoIssues"][0]["reason"] == "too_many_photos"
    assert outputs("listing", listing_id) == []


def test_a_run_that_keeps_failing_stops_with_a_refusal(
    firestore_db: firestore.Client,
    agent_listing: tuple[str, str],
    upload_bucket: gcs.Bucket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner, listing_id = agent_listing
    photo_id = slot(firestore_db, owner, listing_id).photoId
    event, blob = put_upload(upload_bucket, listing_id, photo_id, jpeg())

    def crash(*_: Any) -> None:
        raise MemoryError("out of memory")

    monkeypatch.setattr(photos, "process", crash)
    for _ in range(p.MAX_ATTEMPTS):
        with pytest.raises(MemoryError):  # raised: the platform redelivers
            deliver(process_photo_upload, redelivery(event))
    deliver(process_photo_upload, redelivery(event))

    assert stored_listing(firestore_db, listing_id)["photoIssues"][0]["reason"] == "unreadable"
    assert not blob.exists()


def test_an_upload_without_a_slot_is_deleted_and_recorded_nowhere(
    firestore_db: firestore.Client, agent_listing: tuple[str, str], upload_bucket: gcs.Bucket
) -> None:
    _, listing_id = agent_listing
    event, blob = put_upload(upload_bucket, listing_id, "Stray000000000000001", jpeg())

    assert p.process_upload(firestore_db, storage_upload(event)) is p.Outcome.UNEXPECTED
    assert not blob.exists()
    assert stored_listing(firestore_db, listing_id)["photos"] == []


def test_objects_outside_uploads_never_start_processing(
    firestore_db: firestore.Client, upload_bucket: gcs.Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What processing writes (and anything else in the bucket) returns before any work.
    monkeypatch.setattr(p, "process_upload", lambda *_: pytest.fail("processed"))
    blob = upload_bucket.blob("listings/x/AAAAAAAAAAAAAAAAAAAA/320.webp")
    blob.upload_from_string(b"RIFF", content_type="image/webp")

    deliver(
        process_photo_upload, storage_event(upload_bucket.name, blob.name, generation=1, size=4)
    )

    assert blob.exists()


# --- the agent's order, and removal --------------------------------------------------


def processed_listing(
    db: firestore.Client, owner: str, listing_id: str, bucket: gcs.Bucket, count: int
) -> list[str]:
    ids = []
    for n in range(count):
        photo_id = slot(db, owner, listing_id).photoId
        event, _ = put_upload(bucket, listing_id, photo_id, jpeg(colour=(n * 60, 90, 90)))
        deliver(process_photo_upload, event)
        ids.append(photo_id)
    return ids


def test_the_agent_reorders_and_removes_photos_and_their_objects_go(
    firestore_db: firestore.Client,
    agent_listing: tuple[str, str],
    upload_bucket: gcs.Bucket,
    call_function: Call,
    firestore_event: Callable[..., Any],
) -> None:
    owner, listing_id = agent_listing
    a, b, c = processed_listing(firestore_db, owner, listing_id, upload_bucket, 3)
    before = stored_listing(firestore_db, listing_id)

    result = call_function(
        arrange_listing_photos, {"listingId": listing_id, "order": [c, a]}, uid=owner, claims=AGENT
    ).data
    after = stored_listing(firestore_db, listing_id)
    event = firestore_event(f"listings/{listing_id}", before=before, after=after, kind="updated")
    deliver(remove_listing_photos, event)
    deliver(remove_listing_photos, redelivery(event))

    assert result == {"listingId": listing_id, "order": [c, a], "removed": [b]}
    assert [e["id"] for e in after["photos"]] == [c, a]
    left = {name.split("/")[2] for name in outputs("listing", listing_id)}
    assert left == {a, c}


@pytest.mark.parametrize(
    "order", [["Unknown0000000000001"], ["{a}", "{a}"]], ids=["unknown", "twice"]
)
def test_an_order_naming_other_photos_is_refused_and_changes_nothing(
    firestore_db: firestore.Client,
    agent_listing: tuple[str, str],
    upload_bucket: gcs.Bucket,
    call_function: Call,
    order: list[str],
) -> None:
    owner, listing_id = agent_listing
    [a] = processed_listing(firestore_db, owner, listing_id, upload_bucket, 1)
    before = stored_listing(firestore_db, listing_id)
    asked = {"listingId": listing_id, "order": [o.replace("{a}", a) for o in order]}

    result = call_function(arrange_listing_photos, asked, uid=owner, claims=AGENT)
    other = call_function(
        arrange_listing_photos, {"listingId": listing_id, "order": []}, uid="x", claims=AGENT
    )

    assert result.error["details"]["reason"] == "unknown_photos"
    assert other.error["details"]["reason"] == "not_listing_owner"
    assert stored_listing(firestore_db, listing_id) == before


def test_a_deleted_listing_leaves_no_object_behind(
    firestore_db: firestore.Client,
    agent_listing: tuple[str, str],
    upload_bucket: gcs.Bucket,
    firestore_event: Callable[..., Any],
) -> None:
    owner, listing_id = agent_listing
    processed_listing(firestore_db, owner, listing_id, upload_bucket, 2)
    waiting = slot(firestore_db, owner, listing_id)  # an upload under way, in the default bucket
    pending = storage.bucket(storage.default_bucket_name()).blob(
        f"uploads/listings/{listing_id}/{waiting.photoId}"
    )
    pending.upload_from_string(b"half", content_type="image/jpeg")
    before = stored_listing(firestore_db, listing_id)
    firestore_db.document(f"listings/{listing_id}").delete()

    deliver(
        remove_deleted_listing_photos,
        firestore_event(f"listings/{listing_id}", before=before, kind="deleted"),
    )

    assert outputs("listing", listing_id) == []
    assert not pending.exists()
    assert not firestore_db.document(f"photoUploads/listing-{listing_id}").get().exists


# --- avatars -------------------------------------------------------------------------


def test_an_avatar_replaces_the_last_and_the_old_ones_objects_go(
    firestore_db: firestore.Client, upload_bucket: gcs.Bucket, firestore_event: Callable[..., Any]
) -> None:
    buyer = uid("buyer")
    profile = firestore_db.document(f"users/{buyer}")
    profile.set({"role": "buyer", "displayName": "B"})
    seen = []
    for colour in ((10, 10, 10), (250, 250, 250)):
        photo_id = slot(firestore_db, buyer, None).photoId
        event, _ = put_upload(upload_bucket, buyer, photo_id, jpeg(colour=colour), target="avatar")
        before = profile.get().to_dict()
        deliver(process_photo_upload, event)
        seen.append((before, profile.get().to_dict()))
    first, second = seen[0][1]["avatar"]["id"], seen[1][1]["avatar"]["id"]

    late = firestore_event(f"users/{buyer}", before=seen[0][0], after=seen[0][1], kind="updated")
    deliver(remove_old_avatar, late)  # the first change, arriving last: keeps the current one
    assert {n.split("/")[2] for n in outputs("avatar", buyer)} == {first, second}
    change = firestore_event(f"users/{buyer}", before=seen[1][0], after=seen[1][1], kind="updated")
    deliver(remove_old_avatar, change)

    assert {n.split("/")[2] for n in outputs("avatar", buyer)} == {second}
    assert [s["width"] for s in seen[1][1]["avatar"]["sizes"]] == [160, 640]
    Profile.model_validate(seen[1][1])
    profile.delete()
    gone = firestore_event(f"users/{buyer}", before=seen[1][1], kind="deleted")
    deliver(remove_deleted_user_photos, gone)
    assert outputs("avatar", buyer) == []


def test_a_refused_avatar_is_explained_on_the_private_account(
    firestore_db: firestore.Client, upload_bucket: gcs.Bucket
) -> None:
    buyer = uid("buyer")
    firestore_db.document(f"users/{buyer}").set({"role": "buyer", "displayName": "B"})
    photo_id = slot(firestore_db, buyer, None).photoId
    event, _ = put_upload(upload_bucket, buyer, photo_id, b"GIF89a" + bytes(64), target="avatar")

    deliver(process_photo_upload, event)

    account = firestore_db.document(f"users/{buyer}/private/account").get().to_dict() or {}
    assert account["avatarIssue"]["reason"] == "not_an_image"
    PrivateAccount.model_validate(account)
    assert "avatar" not in (firestore_db.document(f"users/{buyer}").get().to_dict() or {})


def storage_upload(event: Any) -> storage.FinishedUpload:
    """What the trigger hands the domain for ``event``."""
    data = event.get_data()
    return storage.FinishedUpload(
        bucket=data["bucket"],
        name=data["name"],
        generation=int(data["generation"]),
        size=int(data["size"]),
        content_type=data.get("contentType"),
        event_id=event["id"],
    )
