"""Photos end to end under the emulators: the callable in the Functions emulator signs the
URL, the bytes go up with a plain ``PUT``, the stand-in's event reaches the deployed
processing function (Pub/Sub → bridge → the emulator's storage trigger), and the listing
shows the processed photo, whose renditions anyone can read by URL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from google.cloud import firestore

from firekit import storage
from marketplace import photos
from pytest_firebase.callables import CallResult
from pytest_firebase.tokens import mint_id_token
from tests.listings.factories import listing
from tests.photos.test_processing import assert_bare, tagged_upload

pytestmark = pytest.mark.e2e


def test_call_put_and_the_processed_photo_appears_on_the_listing(
    firestore_db: firestore.Client,
    firebase_project: str,
    call_emulated: Callable[..., CallResult],
    wait_for: Callable[..., Any],
) -> None:
    agent, home = f"agent-{uuid.uuid4().hex[:10]}", f"home-{uuid.uuid4().hex[:10]}"
    firestore_db.document(f"users/{agent}").set({"role": "agent", "displayName": "A"})
    firestore_db.document(f"listings/{home}").set(listing(agent, status="draft", photos=[]))
    token = mint_id_token(agent, claims={"role": "agent"}, project=firebase_project)
    asked = {"target": "listing", "listingId": home, "contentType": "image/jpeg"}

    upload = call_emulated("request_photo_upload", asked, token).data
    sent = requests.put(
        upload["url"], data=tagged_upload("JPEG"), headers=upload["headers"], timeout=30
    )

    assert sent.status_code == 200
    photos_now = wait_for(
        lambda: (firestore_db.document(f"listings/{home}").get().to_dict() or {}).get("photos"),
        timeout=60,
        what="the processed photo on the listing",
    )
    [entry] = photos_now
    assert entry["id"] == upload["photoId"]
    for size in entry["sizes"]:
        answer = requests.get(size["webp"], timeout=10)
        assert answer.status_code == 200
        assert_bare(photos.Rendition(size["width"], size["height"], "webp", answer.content))
    name = f"uploads/listings/{home}/{upload['photoId']}"
    assert wait_for(
        lambda: not storage.bucket(storage.default_bucket_name()).blob(name).exists(),
        timeout=30,
        what="the upload deleted",
    )
