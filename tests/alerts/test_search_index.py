"""The alert index through the real search trigger: late, shuffled and repeated events.

Each client write below is made to Firestore and turned into the event Firestore would
send (``before`` and ``after`` as stored around the write); the events are then delivered
to ``on_saved_search_written`` in another order, some twice, some between later writes.
Whatever the order, the search ends in the audience of its latest state only, once, and
every shard's count matches its entries.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from google.cloud import firestore

from api.alerts import on_saved_search_written
from marketplace import alerts
from marketplace.models import SavedSearch
from pytest_firebase.events import deliver, redelivery

from .world import search, uid

Event = Any
NEAR = {"lat": 51.5014, "lng": -0.1419, "radiusKm": 2.0}
CHANGES: list[dict[str, Any]] = [
    {"city": "Leeds"},
    {"muted": True},
    {"muted": False, "city": None, "near": NEAR},
    {"priceMax": 500_000_00, "channels": {"inApp": True, "push": False, "email": True}},
]


def where_indexed(db: Any) -> dict[str, dict[str, Any]]:
    """Search id -> audience and entry, across the whole index; checks shard counts and
    that no search is in two places."""
    found: dict[str, dict[str, Any]] = {}
    for shard in db.collection(alerts.SEARCH_INDEX.collection).stream():
        data = shard.to_dict() or {}
        if "entries" not in data:
            continue  # a layout document
        assert data["count"] == len(data["entries"]), shard.id
        for key, kept in data["entries"].items():
            assert key not in found, f"{key} is in two shards"
            found[key] = {"audience": data["group"], "entry": kept["v"]}
    # The index's own records say the same.
    records = {
        r.get("key"): r.get("group")
        for r in db.collection(f"{alerts.SEARCH_INDEX.collection}Keys").stream()
    }
    assert records == {key: place["audience"] for key, place in found.items()}
    return found


class Searches:
    """A buyer's search, written as a client writes it, and the events of each write."""

    def __init__(self, db: Any, make_event: Callable[..., Event]) -> None:
        self.db, self.make_event = db, make_event
        self.owner = uid("buyer")
        self.id = f"{self.owner}-1"
        self.ref = db.document(f"savedSearches/{self.id}")

    def write(self, data: dict[str, Any] | None) -> Event:
        before = self.ref.get().to_dict()
        if data is None:
            self.ref.delete()
        elif before is None:
            self.ref.set(data)
        else:
            self.ref.update(data)
        after = self.ref.get().to_dict()
        return self.make_event(f"savedSearches/{self.id}", before=before, after=after)

    def expected(self) -> dict[str, Any] | None:
        stored = self.ref.get().to_dict()
        if stored is None:
            return None
        saved = SavedSearch.model_validate(stored)
        group = alerts.audience(saved)
        return None if group is None else {"audience": group, "entry": alerts.entry_of(saved)}


@pytest.fixture
def searches(firestore_db: firestore.Client, firestore_event: Callable[..., Event]) -> Searches:
    return Searches(firestore_db, firestore_event)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_late_shuffled_and_repeated_events_leave_the_search_where_its_latest_state_says(
    firestore_db: firestore.Client, searches: Searches, seed: int
) -> None:
    rng = random.Random(seed)
    pending = [searches.write(search(searches.owner))]
    for change in CHANGES:
        pending.append(searches.write(change))
        # Some events arrive now, in any order; the rest later.
        rng.shuffle(pending)
        for _ in range(rng.randint(0, len(pending))):
            deliver(on_saved_search_written, pending.pop())
    events = pending + [redelivery(e) for e in rng.sample(pending, len(pending) // 2)]
    rng.shuffle(events)
    for event in events:
        deliver(on_saved_search_written, event)
    expected = searches.expected()
    assert expected is not None and expected["audience"].startswith("sale|GBP|gh5:")
    assert where_indexed(firestore_db) == {searches.id: expected}
    assert searches.ref.get().to_dict()["audience"] == expected["audience"]


def test_a_deleted_search_leaves_the_index_whatever_arrives_after(
    firestore_db: firestore.Client, searches: Searches
) -> None:
    created = searches.write(search(searches.owner))
    deliver(on_saved_search_written, created)
    moved = searches.write({"city": "Bath"})
    deliver(on_saved_search_written, moved)
    assert where_indexed(firestore_db)[searches.id]["audience"] == "sale|GBP|city:bath"

    deleted = searches.write(None)
    for event in (deleted, redelivery(deleted), redelivery(moved), redelivery(created)):
        deliver(on_saved_search_written, event)

    assert where_indexed(firestore_db) == {}
    assert list(alerts.SEARCH_INDEX.walk(firestore_db, ["sale|GBP|city:bath"])) == []


def test_a_search_deleted_before_its_trigger_ran_is_never_indexed(
    firestore_db: firestore.Client, searches: Searches
) -> None:
    created = searches.write(search(searches.owner))
    deleted = searches.write(None)
    for event in (deleted, created, redelivery(created)):
        deliver(on_saved_search_written, event)
    assert where_indexed(firestore_db) == {}


def test_a_search_deleted_and_created_again_before_its_events_arrive_moves_once(
    firestore_db: firestore.Client, searches: Searches
) -> None:
    deliver(on_saved_search_written, searches.write(search(searches.owner)))  # London
    deleted = searches.write(None)
    again = searches.write(search(searches.owner, city="Leeds"))  # the same id
    for event in (again, deleted, redelivery(again)):
        deliver(on_saved_search_written, event)
    assert where_indexed(firestore_db) == {searches.id: searches.expected()}
    assert where_indexed(firestore_db)[searches.id]["audience"] == "sale|GBP|city:leeds"


def test_a_search_that_no_longer_fits_the_model_leaves_its_audience(
    firestore_db: firestore.Client, searches: Searches
) -> None:
    deliver(on_saved_search_written, searches.write(search(searches.owner)))
    broken = searches.write({"kind": "auction"})  # written before a model change, say
    deliver(on_saved_search_written, broken)
    assert where_indexed(firestore_db) == {}
    assert searches.ref.get().to_dict()["audience"] is None
