"""Favourite counts: exact under duplicate, reordered and concurrent events."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest
from flask import Flask, request
from google.api_core.exceptions import Aborted
from google.cloud import firestore

from api.favorites import on_favorite_written, roll_up_favorites
from marketplace import favorites
from pytest_firebase.events import deliver, redelivery

Event = Any


def favourite_data(listing_id: str) -> dict[str, Any]:
    return {"listingId": listing_id, "createdAt": dt.datetime.now(dt.UTC)}


@pytest.fixture
def listing_id(firestore_db: firestore.Client) -> str:
    # Unique per test; only the listing's existence matters to the trigger.
    listing_id = f"listing-{uuid.uuid4().hex[:10]}"
    firestore_db.document(f"listings/{listing_id}").set({"title": "A home", "favoritesCount": 0})
    return listing_id


def new_uid() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


def retried(attempt: Callable[[], object], retry_on: type[Exception], within: float) -> None:
    """``attempt()``, again after a growing random pause while it raises ``retry_on``,
    for at most ``within`` seconds (then the last error stands)."""
    deadline = time.monotonic() + within
    for tries in itertools.count():
        try:
            attempt()
            return
        except retry_on:
            if time.monotonic() >= deadline:
                raise
            time.sleep(random.uniform(0, min(2.0, 0.05 * 2**tries)))


def written(write: Callable[[], object]) -> None:
    """A user's write, retried on ABORTED as the client SDKs do.

    The emulator aborts a write to a document that a trigger's transaction holds a read
    lock on when it waits too long ("Transaction lock timeout", after about 20 s on a
    busy 2-core machine); a client app retries until it lands.
    """
    retried(write, Aborted, within=120)


class Favourites:
    """Writes favourites to Firestore and builds the event each write would send."""

    def __init__(self, db: Any, make_event: Callable[..., Event], listing_id: str) -> None:
        self.db, self.make_event, self.listing_id = db, make_event, listing_id

    def path(self, uid: str) -> str:
        return f"users/{uid}/favorites/{self.listing_id}"

    def create(self, uid: str) -> Event:
        data = favourite_data(self.listing_id)
        written(lambda: self.db.document(self.path(uid)).set(data))
        return self.make_event(self.path(uid), before=None, after=data)

    def delete(self, uid: str) -> Event:
        before = self.db.document(self.path(uid)).get().to_dict()
        written(lambda: self.db.document(self.path(uid)).delete())
        return self.make_event(self.path(uid), before=before, after=None)

    def exists(self, uid: str) -> bool:
        return bool(self.db.document(self.path(uid)).get().exists)


@pytest.fixture
def favs(
    firestore_db: firestore.Client, firestore_event: Callable[..., Event], listing_id: str
) -> Favourites:
    return Favourites(firestore_db, firestore_event, listing_id)


def marks(db: Any, listing_id: str) -> set[str]:
    return {d.id for d in db.collection(f"listings/{listing_id}/favoriteMarks").stream()}


def shard_counts(db: Any, listing_id: str) -> list[int]:
    return [d.get("count") for d in db.collection(f"listings/{listing_id}/favoriteShards").stream()]


def test_a_favourite_counts_once(
    firestore_db: firestore.Client, favs: Favourites, listing_id: str
) -> None:
    uid = new_uid()
    deliver(on_favorite_written, favs.create(uid))

    assert favorites.exact_count(firestore_db, listing_id) == 1
    assert marks(firestore_db, listing_id) == {uid}


def test_the_same_event_delivered_three_times_counts_once(
    firestore_db: firestore.Client, favs: Favourites, listing_id: str
) -> None:
    event = favs.create(new_uid())

    for copy in (event, redelivery(event), redelivery(event)):
        deliver(on_favorite_written, copy)

    assert favorites.exact_count(firestore_db, listing_id) == 1
    assert sum(shard_counts(firestore_db, listing_id)) == 1


def test_a_delete_after_its_create_uncounts(
    firestore_db: firestore.Client, favs: Favourites, listing_id: str
) -> None:
    uid, other = new_uid(), new_uid()
    deliver(on_favorite_written, favs.create(other))
    deliver(on_favorite_written, favs.create(uid))
    deliver(on_favorite_written, favs.delete(uid))

    assert favorites.exact_count(firestore_db, listing_id) == 1
    assert marks(firestore_db, listing_id) == {other}


def test_a_delete_delivered_before_its_create_ends_at_zero(
    firestore_db: firestore.Client, favs: Favourites, listing_id: str
) -> None:
    uid = new_uid()
    created = favs.create(uid)
    deleted = favs.delete(uid)

    deliver(on_favorite_written, deleted)
    deliver(on_favorite_written, created)  # the stale create arrives last
    deliver(on_favorite_written, redelivery(deleted))

    assert favorites.exact_count(firestore_db, listing_id) == 0
    assert marks(firestore_db, listing_id) == set()


def test_events_delivered_newest_first_leave_a_refavourite_counted(
    firestore_db: firestore.Client, favs: Favourites, listing_id: str
) -> None:
    uid = new_uid()
    events = [favs.create(uid), favs.delete(uid), favs.create(uid)]

    for event in reversed(events):
        deliver(on_favorite_written, event)

    assert favorites.exact_count(firestore_db, listing_id) == 1


def test_a_favourite_of_a_missing_listing_is_ignored(
    firestore_db: firestore.Client, firestore_event: Callable[..., Event]
) -> None:
    uid, missing = new_uid(), f"listing-{uuid.uuid4().hex[:10]}"
    favs = Favourites(firestore_db, firestore_event, missing)
    event = favs.create(uid)

    deliver(on_favorite_written, event)
    deliver(on_favorite_written, favs.delete(uid))

    assert shard_counts(firestore_db, missing) == []
    assert marks(firestore_db, missing) == set()
    assert not firestore_db.document(f"listings/{missing}").get().exists
    assert favorites.roll_up_listing(firestore_db, missing) is None


def run_roll_up() -> None:
    # The scheduled function as Cloud Scheduler calls it (an HTTP request).
    with Flask(__name__).test_request_context(method="POST"):
        response: Any = cast(Any, roll_up_favorites)(request)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_the_roll_up_copies_the_exact_count_onto_the_listing(
    firestore_db: firestore.Client, favs: Favourites, listing_id: str
) -> None:
    uids = [new_uid() for _ in range(3)]
    for uid in uids:
        deliver(on_favorite_written, favs.create(uid))
    deliver(on_favorite_written, favs.delete(uids[0]))

    run_roll_up()

    assert firestore_db.document(f"listings/{listing_id}").get().get("favoritesCount") == 2


def deliver_as_the_platform_does(event: Event) -> None:
    """Deliver ``event``, redelivering while the trigger raises (it has ``retry=True``).

    Under heavy contention the emulator sometimes aborts a transaction with "Transaction
    lock timeout" (two transactions of one favourite both upgrading their read lock on the
    mark, a deadlock production Firestore resolves by wound-wait). The trigger then raises
    and the platform redelivers (for up to a week): that redelivery is part of what keeps
    the count exact.
    """
    first = [True]

    def attempt() -> None:
        copy = event if first[0] else redelivery(event)
        first[0] = False
        deliver(on_favorite_written, copy)

    retried(attempt, Exception, within=120)


def test_200_concurrent_toggles_end_with_the_exact_count(
    firestore_db: firestore.Client, favs: Favourites, listing_id: str
) -> None:
    rng = random.Random(4)
    users = [new_uid() for _ in range(60)]
    toggles = [rng.choice(users) for _ in range(200)]
    locks = {uid: threading.Lock() for uid in users}
    late: list[Event] = []
    late_lock = threading.Lock()

    def toggle(uid: str) -> None:
        # One user's writes are ordered (a user taps one at a time); deliveries are not.
        with locks[uid]:
            event = favs.delete(uid) if favs.exists(uid) else favs.create(uid)
        roll = rng.random()
        if roll < 0.3:  # held back: delivered later, after newer events of the same user
            with late_lock:
                late.append(event)
            return
        deliver_as_the_platform_does(event)
        if roll > 0.8:  # a platform retry of an event that was already handled
            deliver_as_the_platform_does(redelivery(event))

    # Eight at a time: as concurrent as two cores make it; sixteen only queued longer
    # behind the emulator's aborted transactions (8 to 74 s from run to run).
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(toggle, toggles))
    late += [redelivery(e) for e in late[: len(late) // 2]]
    rng.shuffle(late)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(deliver_as_the_platform_does, late))

    expected = {uid for uid in users if favs.exists(uid)}
    assert 0 < len(expected) < len(users)
    assert marks(firestore_db, listing_id) == expected
    assert favorites.exact_count(firestore_db, listing_id) == len(expected)
    assert len(shard_counts(firestore_db, listing_id)) > 1  # the writes were spread
    run_roll_up()
    assert firestore_db.document(f"listings/{listing_id}").get().get("favoritesCount") == len(
        expected
    )


def test_loaded_favourites_stay_counted_when_their_events_arrive(
    firestore_db: firestore.Client, favs: Favourites, listing_id: str
) -> None:
    # A loader (the seed) writes favourites with their counter documents, no events.
    loaded = [new_uid(), new_uid()]
    now = dt.datetime.now(dt.UTC)
    for uid in loaded:
        firestore_db.document(favs.path(uid)).set(favourite_data(listing_id))
    for path, data in favorites.counter_documents(listing_id, loaded, now).items():
        firestore_db.document(path).set(data)

    deliver(on_favorite_written, favs.delete(loaded[0]))
    deliver(on_favorite_written, favs.create(new_uid()))

    assert favorites.exact_count(firestore_db, listing_id) == 2
    assert favorites.roll_up_listing(firestore_db, listing_id) == 2
