"""``firekit.shards``: groups of entries in shard documents, against the emulator.

Every entry is where its group's layout says, exactly once, however it got there (one
update at a time, concurrently, in bulk, repeated); shards split as a group grows; a
reader paging through the shards while they split misses nobody who was there.
"""

from __future__ import annotations

import dataclasses
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from firekit import shards
from firekit.transactions import run_transaction

INDEX = shards.ShardedIndex("_testIndex", max_entries=8, initial_level=1)


def seeded(seed: int) -> shards.ShardedIndex:
    """:data:`INDEX` drawing its slots from a seeded generator: the same shards every run."""
    rng = random.Random(seed)
    return dataclasses.replace(INDEX, draw_slot=lambda: rng.getrandbits(62))


def update(
    db: Any, key: str, group: str | None, *, index: shards.ShardedIndex = INDEX, **entry: Any
) -> str | None:
    """What a caller does: make room, then update in a transaction; the group it was in."""
    if group is not None:
        index.make_room(db, group)

    def run(transaction: firestore.Transaction) -> str | None:
        return index.update(db, transaction, key, group=group, entry=entry or {"k": key})

    return run_transaction(db, run, busy_message="busy")


def held(db: Any, group: str, index: shards.ShardedIndex = INDEX) -> dict[str, dict[str, Any]]:
    """Shard number -> entries, checking each shard's count and each entry's place."""
    layout = index.layouts(db, [group])[group]
    found: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    shards_of_group = db.collection(index.collection).where(
        filter=firestore.FieldFilter("group", "==", group)
    )
    for snapshot in shards_of_group.order_by(FieldPath.document_id()).stream():
        data = snapshot.to_dict() or {}
        assert data["group"] == group
        assert data["count"] == len(data["entries"]), snapshot.id
        assert data["shard"] < layout.shards
        for key, kept in data["entries"].items():
            assert layout.shard_of(kept["s"]) == data["shard"], (key, data["shard"])
            assert key not in seen
            seen.add(key)
        found[str(data["shard"])] = {key: kept["v"] for key, kept in data["entries"].items()}
    return found


def keys_of(found: dict[str, dict[str, Any]]) -> set[str]:
    return {key for part in found.values() for key in part}


def test_an_entry_is_put_replaced_moved_and_removed(firestore_db: firestore.Client) -> None:
    db = firestore_db
    assert update(db, "s1", "london", v=1) is None
    assert keys_of(held(db, "london")) == {"s1"}
    shard = next(
        iter(
            db.collection("_testIndex")
            .where(filter=firestore.FieldFilter("group", "==", "london"))
            .stream()
        )
    ).reference
    stamp = shard.get().update_time
    assert update(db, "s1", "london", v=1) == "london"  # again: a redelivered event
    assert shard.get().update_time == stamp, "the same entry again writes nothing"
    update(db, "s1", "london", v=2)
    assert [e for part in held(db, "london").values() for e in part.values()] == [{"v": 2}]
    assert update(db, "s1", "paris", v=2) == "london"
    assert keys_of(held(db, "london")) == set()
    assert keys_of(held(db, "paris")) == {"s1"}
    assert update(db, "s1", None) == "paris"
    assert update(db, "s1", None) is None  # again
    assert keys_of(held(db, "paris")) == set()
    assert not INDEX.key_ref(db, "s1").get().exists


def test_keys_that_need_quoting_are_kept_as_they_are(firestore_db: firestore.Client) -> None:
    odd = ["a.b", "`x`", "with space", "ünï", "a-b"]
    for key in odd:
        update(firestore_db, key, "g")
    assert keys_of(held(firestore_db, "g")) == set(odd)
    update(firestore_db, "a.b", None)
    assert keys_of(held(firestore_db, "g")) == set(odd) - {"a.b"}


def test_a_growing_group_splits_its_shards_and_keeps_every_entry_once(
    firestore_db: firestore.Client,
) -> None:
    db = firestore_db
    index = seeded(1)
    keys = [f"search-{n:04d}" for n in range(160)]
    for key in keys:
        update(db, key, "big", index=index)
    found = held(db, "big", index)
    assert keys_of(found) == set(keys)
    layout = index.layouts(db, ["big"])["big"]
    # It split as it grew: shards hold about what they may, on average.
    assert layout.shards > 2 and len(keys) / layout.shards <= 1.5 * index.max_entries
    # Linear hashing: a shard waits its turn to split, but never long.
    assert max(len(part) for part in found.values()) <= 3 * index.max_entries
    for key in keys[::2]:
        update(db, key, None, index=index)
    assert keys_of(held(db, "big", index)) == set(keys[1::2])


def test_concurrent_updates_of_one_group_lose_nothing(firestore_db: firestore.Client) -> None:
    db = firestore_db
    roomy = shards.ShardedIndex("_testIndex", max_entries=1000, initial_level=0)
    keys = [f"k{n:03d}" for n in range(60)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(lambda key: update(db, key, "busy", index=roomy), keys))
        list(pool.map(lambda key: update(db, key, "other", index=roomy), keys[::3]))
    assert keys_of(held(db, "busy", roomy)) == set(keys) - set(keys[::3])
    assert keys_of(held(db, "other", roomy)) == set(keys[::3])


def test_a_reader_paging_while_shards_split_misses_no_one_who_was_there(
    firestore_db: firestore.Client,
) -> None:
    db = firestore_db
    before = [f"old-{n:03d}" for n in range(40)]
    for key in before:
        update(db, key, "g")
    walk = INDEX.walk(db, ["g"])
    first = [next(walk) for _ in range(6)]  # part of the first shard
    walk.close()
    seen = {entry.key for _, entry in first}
    for n in range(60):  # enough to split shards both read and not yet read
        update(db, f"new-{n:03d}", "g")
    cursor = first[-1][0]
    seen |= {entry.key for _, entry in INDEX.walk(db, ["g"], cursor)}
    assert set(before) <= seen


def test_a_walk_goes_on_from_any_cursor_it_gave_whatever_script_the_keys_are_in(
    firestore_db: firestore.Client,
) -> None:
    db = firestore_db
    keys = [f"{n:02d}-" + "検索" * 80 for n in range(12)]  # long, and not ASCII
    for key in keys:
        update(db, key, "scripts")
    walked = list(INDEX.walk(db, ["scripts"]))
    assert sorted(entry.key for _, entry in walked) == keys
    for at, (cursor, _) in enumerate(walked):
        rest = [entry.key for _, entry in INDEX.walk(db, ["scripts"], cursor)]
        assert rest == [entry.key for _, entry in walked[at + 1 :]]
    with pytest.raises(ValueError, match="cursor"):
        INDEX.walk(db, ["scripts"], "savedSearches/a-plain-path")


def test_a_bulk_loaded_group_takes_updates_like_any_other(firestore_db: firestore.Client) -> None:
    db = firestore_db
    loaded = [(f"b{n:04d}", {"n": n}) for n in range(100)]
    batch = db.batch()
    for path, data in INDEX.bulk("bulk", loaded):
        batch.set(db.document(path), data)
    batch.commit()
    assert keys_of(held(db, "bulk")) == {key for key, _ in loaded}
    for key, _ in random.Random(3).sample(loaded, 20):
        update(db, key, None)
    for n in range(30):
        update(db, f"x{n:03d}", "bulk")
    assert len(keys_of(held(db, "bulk"))) == 100 - 20 + 30


def test_keys_spread_over_the_shards_whoever_picks_them(firestore_db: firestore.Client) -> None:
    # Keys chosen to share a hash prefix land in random slots all the same.
    index = seeded(2)
    keys = [f"same-prefix-{n:03d}" for n in range(40)]
    for key in keys:
        update(firestore_db, key, "spread", index=index)
    sizes = [len(part) for part in held(firestore_db, "spread", index).values()]
    assert len(sizes) >= 4 and max(sizes) <= 3 * index.max_entries


def test_a_walk_names_one_to_thirty_groups() -> None:
    db = firestore.Client(project="demo-none")
    with pytest.raises(ValueError):
        INDEX.walk(db, [])
    with pytest.raises(ValueError):
        INDEX.walk(db, [f"g{n}" for n in range(31)])
    with pytest.raises(ValueError, match="entry"):
        INDEX.update(db, db.transaction(), "k", group="g", entry=None)
    with pytest.raises(ValueError, match="bytes"):
        INDEX.update(db, db.transaction(), "k" * 513, group="g", entry={})
