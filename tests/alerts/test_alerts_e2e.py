"""Saved-search alerts end to end: the real triggers, the Cloud Tasks emulator, the worker.

An agent submits a listing through the rules; the submission trigger publishes it; the
alert trigger starts a fan-out on the ``deliverAlerts`` queue; the worker writes inboxes
and records pushes. Nothing here calls our code in-process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.cloud import firestore
from limits.client import CappedClient

from marketplace import alerts, limits
from pytest_firebase.rest import SERVER_TIMESTAMP, FirestoreRest
from pytest_firebase.wait import stays_absent

from .world import World, listing, search, uid

pytestmark = pytest.mark.e2e


def test_a_published_listing_notifies_matching_buyers_once_and_nobody_else(
    firestore_db: firestore.Client,
    as_user: Callable[..., FirestoreRest],
    wait_for: Callable[..., Any],
) -> None:
    world = World(firestore_db, by_trigger=True)
    agent = world.agent(verified=True)
    matching = world.buyer(tokens=2)
    elsewhere = world.buyer(searches=({"city": "Leeds"},))
    muted = world.buyer(searches=({"muted": True},))
    # The agent searches too, and their own listing matches it: they must not be told.
    own_search = firestore_db.document(f"savedSearches/{agent}-own")
    own_search.set(search(agent))
    wait_for(lambda: own_search.get().to_dict().get("audience"), timeout=30, what="its audience")

    home = uid("home")
    firestore_db.document(f"listings/{home}").set(listing(agent, status="draft"))
    agent_client = as_user(agent, {"role": "agent"})
    submitted = agent_client.update(
        f"listings/{home}", {"status": "pending_review", "updatedAt": SERVER_TIMESTAMP}
    )
    assert submitted.ok, submitted.error_message

    inbox = wait_for(lambda: world.inbox(matching), timeout=60, what="the buyer's notification")
    assert list(inbox) == [f"new_listing-{home}"]
    note = inbox[f"new_listing-{home}"]
    assert (note["kind"], note["listingId"], note["read"]) == ("listing_match", home, False)
    pushes = wait_for(lambda: len(world.pushes(matching)) == 2 and world.pushes(matching))
    assert {p["token"] for p in pushes} == {f"tok-{matching}-0", f"tok-{matching}-1"}
    assert all(p["data"]["notificationId"] == f"new_listing-{home}" for p in pushes)
    # The inbox document is also the day's email digest item.
    assert note["emailTo"] == f"{matching}@example.test" and note["emailDay"]

    for nobody in (elsewhere, muted, agent):
        assert alerts_in(world.inbox(nobody)) == {}, nobody
        assert world.pushes(nobody) == []

    # A price drop: a second notification, again only for the matching buyer.
    dropped = agent_client.update(
        f"listings/{home}",
        {"price": {"amount": 325_000_00, "currency": "GBP"}, "updatedAt": SERVER_TIMESTAMP},
    )
    assert dropped.ok, dropped.error_message
    drop_id = f"price_drop-{home}-{325_000_00}"
    inbox = wait_for(
        lambda: drop_id in (box := world.inbox(matching)) and box, timeout=60, what="price drop"
    )
    assert set(inbox) == {f"new_listing-{home}", drop_id}
    assert "£325,000" in inbox[drop_id]["body"]
    wait_for(lambda: len(world.pushes(matching)) == 4, what="the price drop's pushes")
    stays_absent(lambda: len(world.pushes(matching)) > 4, duration=3.0, what="a repeated push")
    for nobody in (elsewhere, muted, agent):
        assert alerts_in(world.inbox(nobody)) == {}, nobody


def test_a_saved_search_enters_and_leaves_the_alert_index_through_the_real_trigger(
    firestore_db: firestore.Client,
    as_user: Callable[..., FirestoreRest],
    wait_for: Callable[..., Any],
) -> None:
    buyer = uid("buyer")
    data = {k: v for k, v in search(buyer).items() if k not in ("createdAt", "updatedAt")} | {
        "createdAt": SERVER_TIMESTAMP,
        "updatedAt": SERVER_TIMESTAMP,
    }
    own = CappedClient(as_user(buyer), buyer)  # a capped create: the usage in its batch
    created = own.create_held(limits.SAVED_SEARCHES, f"savedSearches/{buyer}-1", data)
    assert created.ok, created.error_message
    ref = firestore_db.document(f"savedSearches/{buyer}-1")
    audience = wait_for(lambda: ref.get().to_dict().get("audience"), timeout=30, what="audience")
    assert audience == "sale|GBP|city:london"
    assert indexed(firestore_db, audience) == {f"{buyer}-1"}

    muted = as_user(buyer).update(
        f"savedSearches/{buyer}-1", {"muted": True, "updatedAt": SERVER_TIMESTAMP}
    )
    assert muted.ok, muted.error_message
    wait_for(lambda: ref.get().to_dict().get("audience") is None, timeout=30, what="no audience")
    assert indexed(firestore_db, audience) == set()
    # Unmuted, then deleted: it leaves the index with it.
    unmuted = as_user(buyer).update(
        f"savedSearches/{buyer}-1", {"muted": False, "updatedAt": SERVER_TIMESTAMP}
    )
    assert unmuted.ok, unmuted.error_message
    wait_for(lambda: indexed(firestore_db, audience) == {f"{buyer}-1"}, timeout=30, what="back")
    deleted = as_user(buyer).delete(f"savedSearches/{buyer}-1")
    assert deleted.ok, deleted.error_message
    wait_for(lambda: indexed(firestore_db, audience) == set(), timeout=30, what="left the index")


def alerts_in(inbox: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The inbox's alerts (the agent also hears that their listing is live)."""
    return {k: n for k, n in inbox.items() if n.get("kind") != "listing_review"}


def indexed(db: Any, audience: str) -> set[str]:
    """The search ids the alert index holds in an audience."""
    return {entry.key for _, entry in alerts.SEARCH_INDEX.walk(db, [audience])}


def test_registering_and_removing_a_device_keeps_its_token_on_the_account(
    firestore_db: firestore.Client,
    as_user: Callable[..., FirestoreRest],
    wait_for: Callable[..., Any],
) -> None:
    world = World(firestore_db, by_trigger=True)
    buyer = world.buyer(tokens=0)
    account = firestore_db.document(f"users/{buyer}/private/account")
    phone = as_user(buyer)
    token = f"fcm-{buyer}:APA91b-phone"
    registered = CappedClient(phone, buyer).create_held(
        limits.DEVICES,
        f"users/{buyer}/devices/{token}",
        {
            "token": token,
            "ownerId": buyer,
            "platform": "ios",
            "appVersion": "2.5.0",
            "createdAt": SERVER_TIMESTAMP,
            "updatedAt": SERVER_TIMESTAMP,
        },
    )
    assert registered.ok, registered.error_message
    wait_for(
        lambda: account.get().to_dict().get("pushTokens") == [token],
        timeout=30,
        what="the token kept on the account",
    )
    # The field is the function's: the owner cannot plant tokens there.
    planted = phone.update(f"users/{buyer}/private/account", {"pushTokens": ["someone-else"]})
    assert not planted.ok

    removed = phone.delete(f"users/{buyer}/devices/{token}")
    assert removed.ok, removed.error_message
    wait_for(
        lambda: account.get().to_dict().get("pushTokens") == [],
        timeout=30,
        what="the token dropped",
    )
