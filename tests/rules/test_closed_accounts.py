"""A closed account against the real ``firestore.rules`` on the emulator, past the matrix.

Phase one of an account's deletion writes the tombstone ``_tombstones/{uid}`` with the
Admin SDK; the ID tokens the user holds stay valid for up to an hour, and the rules'
``live()`` refuses them every write and every private read. The matrix
(``tests/security/test_rules_matrix.py``) checks each cell a signed-in principal may do with
its account closed; here: that every rule granting anything asks ``live()`` (so a new
collection cannot forget it), of the collection ``firekit.ownership`` writes, that nobody
but the Admin SDK touches a tombstone, and that the tombstone's lookup, asked by every write
of a batch, costs a batch one of its 20.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import matrix  # rules/matrix.py
from limits.client import CappedClient
from security.scenarios import NOTIFICATION, NOW, TOMBSTONES, listing_draft, stored, tombstone

from firekit import ownership
from firekit.docmodel import REQUEST_TIME
from marketplace import limits
from pytest_firebase.rest import SERVER_TIMESTAMP, FirestoreRest

from .test_model_rules_agreement import update_write

AsUser = Callable[..., FirestoreRest]
ROOT = Path(__file__).resolve().parents[2]
PUBLIC_READS = {("users/{uid}", "get"), ("users/{uid}", "list")}
"""The rules that grant without asking ``live()``: public profiles, which any signed-in
user reads. (A public listing's read asks it only when the listing is not public.)"""


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_every_rule_that_grants_anything_asks_whether_the_caller_is_live() -> None:
    text = (ROOT / "firestore.rules").read_text()
    asks = matrix.rule_calls(text, "live")
    granting = {
        (path, op)
        for path, ops in matrix.rule_conditions(text).items()
        for op, condition in ops.items()
        if condition != "false"
    }

    assert {(path, op) for path, op in granting if not asks[path][op]} == PUBLIC_READS


def test_the_rules_ask_for_the_tombstone_the_core_writes() -> None:
    text = (ROOT / "firestore.rules").read_text()
    assert TOMBSTONES == ownership.TOMBSTONES
    assert f"exists(/databases/$(database)/documents/{TOMBSTONES}/$(request.auth.uid))" in text


def test_nobody_but_the_admin_sdk_reads_or_writes_a_tombstone(
    admin_rest: FirestoreRest, as_user: AsUser
) -> None:
    closed, live, admin = _uid("closed"), _uid("live"), _uid("admin")
    admin_rest.set(f"{TOMBSTONES}/{closed}", tombstone()).expect_ok()
    own = as_user(closed)
    # The closed account cannot see, lift or rewrite its own tombstone.
    assert own.get(f"{TOMBSTONES}/{closed}").denied
    assert own.delete(f"{TOMBSTONES}/{closed}").denied
    assert own.update(f"{TOMBSTONES}/{closed}", {"expiresAt": NOW}).denied
    # Nor does anyone close an account, their own or another's, or list who is closed.
    for uid, claims in ((live, {}), (admin, {"role": "admin"})):
        client = as_user(uid, claims)
        assert client.create(f"{TOMBSTONES}/{uid}", tombstone()).denied
        assert client.create(f"{TOMBSTONES}/{_uid('victim')}", tombstone()).denied
        assert client.get(f"{TOMBSTONES}/{closed}").denied
        assert client.query(TOMBSTONES, [], limit=10).denied
    assert admin_rest.get(f"{TOMBSTONES}/{closed}").data is not None


def _notifications(admin_rest: FirestoreRest, uid: str, count: int) -> list[str]:
    paths = [f"users/{uid}/notifications/n-{i}" for i in range(count)]
    for path in paths:
        admin_rest.set(path, NOTIFICATION).expect_ok()
    return paths


def test_marking_thirty_notifications_read_in_one_batch_asks_the_tombstone_once(
    admin_rest: FirestoreRest, as_user: AsUser
) -> None:
    # Every one of the 30 updates asks live(); a batch may look up 20 documents, so this
    # passes only because the one tombstone counts once over the whole batch.
    read = {"read": True, "readAt": REQUEST_TIME}
    for closed in (False, True):
        uid = _uid("reader")
        paths = _notifications(admin_rest, uid, 30)
        if closed:
            admin_rest.set(f"{TOMBSTONES}/{uid}", tombstone()).expect_ok()
        client = as_user(uid)

        result = client.commit([update_write(client.project, path, read) for path in paths])

        assert result.denied if closed else result.ok, result.error_message


def _favourite_at_once(admin_rest: FirestoreRest, as_user: AsUser, count: int) -> tuple[bool, str]:
    """A live user favourites ``count`` public listings in one batch, with its usage."""
    uid, agent = _uid("fan"), _uid("agent")
    listing_ids = [f"{uid}-l{i}" for i in range(count)]
    for listing_id in listing_ids:
        listing = stored({**listing_draft(agent), "status": "active"})
        admin_rest.set(f"listings/{listing_id}", listing).expect_ok()
    capped = CappedClient(as_user(uid), uid)
    favourites = [
        capped.create_write(
            f"users/{uid}/favorites/{listing_id}",
            {"listingId": listing_id, "createdAt": SERVER_TIMESTAMP},
        )
        for listing_id in listing_ids
    ]
    ids = [{"stringValue": listing_id} for listing_id in listing_ids]
    held = {"ids": {"appendMissingElements": {"values": ids}}}
    usage = capped.usage_write(limits.FAVORITES.key, {}, held)
    result = capped.rest.commit([*favourites, usage])
    assert result.status in (200, 403), result.error_message
    return result.ok, result.error_message


def test_a_capped_batch_of_a_live_user_fits_twenty_lookups_with_the_tombstone(
    admin_rest: FirestoreRest, as_user: AsUser
) -> None:
    # Each favourite looks up its listing, the caller's tombstone, and the usage as the
    # batch leaves it (getAfter of a document the batch writes, which takes none of the 20
    # on the emulator): 19 listings + the tombstone = 20, the batch's limit. One more is
    # refused: the tombstone takes one of the 20 (20 listings fitted without it).
    ok, message = _favourite_at_once(admin_rest, as_user, 19)
    assert ok, message
    ok, _ = _favourite_at_once(admin_rest, as_user, 20)
    assert not ok
