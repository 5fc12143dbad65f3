"""A sharded index: named groups of small entries, kept in a few documents per group.

Why: a fan-out that finds its audience with a query reads one document per member, and
the Firestore emulator answers an ``array-contains-any`` query by scanning the whole
collection. An index that keeps each group's entries (say: the saved searches anchored in
one city) inside shard documents turns a fan-out to 10,000 members into reading a few
dozen documents, in production and under the emulator alike.

**Layout.** A group's shard ``n`` is ``{collection}/{gid}-{n:05d}`` (``gid``: a hash of
the group's name, so any name is a valid id) holding ``group``, ``shard``, ``count`` and
``entries`` (a map of key to ``{"s": slot, "v": entry}``); its layout document
``{collection}/{gid}`` says how many shards it has. Each key has a *slot*, a random
number the index draws when it first sees the key (so nobody choosing keys can pile them
into one shard), and the slot decides the shard by linear hashing: a group starts with
``2 ** initial_level`` shards, and once the next shard in turn holds ``max_entries`` it
splits in two, moving about half of its entries to a new shard numbered after every
other. Random slots spread entries evenly, and the shard next in turn is one of the
fullest, so every shard stays near ``max_entries`` at most, far under Firestore's 1 MiB,
however large the group grows; a small group is one or two small documents.

**Reading.** :meth:`ShardedIndex.walk` gives the entries of up to 30 groups, shard by
shard in id order and by key within a shard, each with a cursor (an opaque string) from
which a later walk goes on. An entry only ever moves to a shard numbered after its own,
so a reader that pages through the shards in order while a split happens sees each entry
at least once (perhaps twice), never misses one that was there all along. The layout
(shard documents, their fields, the cursor's form) is this module's alone.

**Writing.** :meth:`ShardedIndex.update` puts one key's entry in one group, or in none,
inside the caller's transaction. The index keeps its own record of each key (its group,
its slot and a digest of its entry, in ``{collection}Keys``), which outlives whatever
the entry stands for: a key deleted and created again is still found where it was. An
update reads that record and the groups' layouts and writes the shards blind (never
reading them), so concurrent updates of a group do not contend on its shards, each
shard's ``count`` stays exact, and an update that changes nothing writes nothing.
:meth:`ShardedIndex.make_room` splits the shard next in turn if it is full, in a
transaction of its own, before an update that adds a key. A split (one per few hundred
additions to a group) can conflict with an update of the same group running at that
moment; Firestore aborts one and its retry goes through (the emulator takes its 30 s
lock timeout to notice).
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from firekit import wire
from firekit.transactions import run_transaction

MAX_GROUPS_PER_QUERY = 30
"""Firestore's limit on the values of an ``in`` filter."""


MAX_KEY_BYTES = 512
"""Keys longer than this are refused (an entry's field path must stay well under
Firestore's 1,500 bytes)."""


def new_slot() -> int:
    """A key's slot: random, so keys spread evenly whoever picks them."""
    return secrets.randbits(62)


@dataclass(frozen=True)
class Layout:
    """How many shards a group has: ``2 ** level + split`` (linear hashing)."""

    level: int
    split: int = 0

    def shard_of(self, slot: int) -> int:
        """The shard holding a key of this slot."""
        shard = slot % (1 << self.level)
        return slot % (1 << (self.level + 1)) if shard < self.split else shard

    @property
    def shards(self) -> int:
        return (1 << self.level) + self.split

    def after_split(self) -> Layout:
        """The layout once shard ``split`` has split in two."""
        split = self.split + 1
        return Layout(self.level + 1, 0) if split == 1 << self.level else Layout(self.level, split)


@dataclass(frozen=True, slots=True)  # one per entry read: no __dict__ each
class Entry:
    """One key's entry, as :meth:`ShardedIndex.walk` gives it."""

    key: str
    value: Any


def _entries(snapshot: wire.Document) -> list[tuple[str, Any]]:
    """A shard's entries in key order: ``(key, entry)``."""
    data = snapshot.to_dict() or {}
    held = data.get("entries") or {}
    return sorted((key, kept.get("v")) for key, kept in held.items() if isinstance(kept, dict))


def _cursor(after: str) -> tuple[str, str]:
    """``(shard path, key)`` of a cursor :meth:`ShardedIndex.walk` gave."""
    try:
        path, key = json.loads(after)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a cursor of a sharded index: {after[:80]!r}") from exc
    if not isinstance(path, str) or not isinstance(key, str):
        raise ValueError(f"not a cursor of a sharded index: {after[:80]!r}")
    return path, key


def _digest(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(entry, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ShardedIndex:
    """Groups of entries in shard documents under ``collection`` (see the module)."""

    collection: str
    max_entries: int = 500
    """Entries a shard holds before one splits (a few hundred bytes each: ~150 KB)."""
    initial_level: int = 1
    """A new group starts with ``2 ** initial_level`` shards (writes spread over them)."""
    draw_slot: Callable[[], int] = new_slot
    """Where a new key's slot comes from (random; a test may seed it)."""

    def group_id(self, group: str) -> str:
        return hashlib.sha256(group.encode()).hexdigest()[:24]

    def layout_ref(self, db: firestore.Client, group: str) -> firestore.DocumentReference:
        return db.collection(self.collection).document(self.group_id(group))

    def shard_ref(
        self, db: firestore.Client, group: str, shard: int
    ) -> firestore.DocumentReference:
        return db.collection(self.collection).document(f"{self.group_id(group)}-{shard:05d}")

    def walk(
        self, db: firestore.Client, groups: Sequence[str], after: str | None = None
    ) -> Iterator[tuple[str, Entry]]:
        """Every entry of ``groups`` (1 to 30), each with its cursor, shard by shard and by
        key within a shard; from just after ``after`` (a cursor a walk gave), if given.

        One streamed query over the groups' shards; closing the iterator cancels it.
        """
        wanted = sorted(set(groups))
        if not 0 < len(wanted) <= MAX_GROUPS_PER_QUERY:
            raise ValueError(f"1 to {MAX_GROUPS_PER_QUERY} groups, not {len(wanted)}")
        query = (
            db.collection(self.collection)
            .where(filter=firestore.FieldFilter("group", "in", wanted))
            .order_by(FieldPath.document_id())
        )
        start = _cursor(after) if after is not None else None
        if start is not None:
            # The shard the cursor is in may hold entries after its key (or have split:
            # its entries moved only to shards after it, which the walk reads anyway).
            query = query.start_at({FieldPath.document_id(): db.document(start[0])})
        return self._walk(wire.stream(query), start)

    @staticmethod
    def _walk(
        shards: Iterator[wire.Document], start: tuple[str, str] | None
    ) -> Iterator[tuple[str, Entry]]:
        try:
            for shard in shards:
                path = shard.reference.path
                for key, value in _entries(shard):
                    if start is not None and path == start[0] and key <= start[1]:
                        continue
                    yield json.dumps([path, key], ensure_ascii=False), Entry(key, value)
        finally:
            close = getattr(shards, "close", None)
            if close is not None:
                close()  # cancels the query

    def _layout(self, snapshot: Any) -> Layout:
        data = (snapshot.to_dict() or {}) if snapshot.exists else {}
        level, split = data.get("level"), data.get("split")
        if isinstance(level, int) and isinstance(split, int):
            return Layout(level, split)
        return Layout(self.initial_level)

    def layouts(
        self, db: firestore.Client, groups: Sequence[str], transaction: Any = None
    ) -> dict[str, Layout]:
        """Each group's layout (in ``transaction``, if given)."""
        refs = [self.layout_ref(db, group) for group in groups]
        found = {s.reference.id: s for s in db.get_all(refs, transaction=transaction)}
        return {group: self._layout(found[self.group_id(group)]) for group in groups}

    def key_path(self, key: str) -> str:
        """The path of the index's own record of a key."""
        return f"{self.collection}Keys/{hashlib.sha256(key.encode()).hexdigest()[:32]}"

    def key_ref(self, db: firestore.Client, key: str) -> firestore.DocumentReference:
        return db.document(self.key_path(key))

    def update(
        self,
        db: firestore.Client,
        transaction: firestore.Transaction,
        key: str,
        *,
        group: str | None,
        entry: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Have ``key``'s entry be ``entry`` in ``group`` (None: in no group), in
        ``transaction``, before its writes. Returns the group it was in before."""
        if group is not None and entry is None:
            raise ValueError("an entry to put in the group")
        if len(key.encode()) > MAX_KEY_BYTES:
            raise ValueError(f"a key of at most {MAX_KEY_BYTES} bytes")
        record_ref = self.key_ref(db, key)
        record = next(iter(db.get_all([record_ref], transaction=transaction)))
        held = (record.to_dict() or {}) if record.exists else {}
        current = held.get("group") if isinstance(held.get("group"), str) else None
        kept_slot = held.get("slot")
        slot = kept_slot if isinstance(kept_slot, int) else self.draw_slot()
        digest = _digest(entry) if entry is not None else None
        if group == current and (group is None or held.get("entry") == digest):
            return current  # where it is already, as it is
        groups = sorted({g for g in (group, current) if g is not None})
        layouts = self.layouts(db, groups, transaction)
        field = FieldPath("entries", key).to_api_repr()
        if current is not None and current != group:
            shard = layouts[current].shard_of(slot)
            gone = {"entries": {key: firestore.DELETE_FIELD}, "count": firestore.Increment(-1)}
            transaction.set(self.shard_ref(db, current, shard), gone, merge=[field, "count"])
        if group is None:
            transaction.delete(record_ref)
            return current
        shard = layouts[group].shard_of(slot)
        kept = {"s": slot, "v": dict(entry or {})}
        data = {
            "group": group,
            "shard": shard,
            "entries": {key: kept},
            "count": firestore.Increment(0 if current == group else 1),
        }
        transaction.set(
            self.shard_ref(db, group, shard), data, merge=["group", "shard", field, "count"]
        )
        transaction.set(record_ref, {"key": key, "group": group, "slot": slot, "entry": digest})
        return current

    def make_room(self, db: firestore.Client, group: str) -> bool:
        """Split the shard of ``group`` next in turn if it is full; outside any
        transaction (it runs its own), before an update that adds a key to the group."""
        layout = self.layouts(db, [group])[group]
        next_in_turn = self.shard_ref(db, group, layout.split).get(field_paths=["count"])
        count = int((next_in_turn.to_dict() or {}).get("count") or 0) if next_in_turn.exists else 0
        if count < self.max_entries:
            return False

        def split(transaction: firestore.Transaction) -> bool:
            now = self.layouts(db, [group], transaction)[group]
            if now != layout:
                return False  # another update split it meanwhile
            source = self.shard_ref(db, group, now.split)
            whole = next(iter(db.get_all([source], transaction=transaction)))
            held = dict((whole.to_dict() or {}).get("entries") or {}) if whole.exists else {}
            after = now.after_split()
            sibling = now.split + (1 << now.level)
            moving = {k: v for k, v in held.items() if after.shard_of(int(v["s"])) == sibling}
            staying = {k: v for k, v in held.items() if k not in moving}
            for shard, part in ((now.split, staying), (sibling, moving)):
                transaction.set(
                    self.shard_ref(db, group, shard),
                    {
                        "group": group,
                        "shard": shard,
                        "count": len(part),
                        "entries": part,
                    },
                )
            # The layout names its group as ``of``: the shards' query filters on ``group``.
            transaction.set(
                self.layout_ref(db, group),
                {"of": group, "level": after.level, "split": after.split},
            )
            return True

        return run_transaction(db, split, busy_message=f"group {group!r} is being split")

    def bulk(
        self,
        group: str,
        items: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        slot_of: Callable[[str], int] = lambda _key: new_slot(),
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(path, data)`` of a new group's layout, shards and key records holding
        ``items``, for loading an index in bulk into an empty group (seeds, benchmarks):
        as many shards as keep each about half full. ``slot_of``: each key's slot
        (random; a benchmark that compares runs gives a fixed one)."""
        held = dict(items)
        fill = max(1, self.max_entries // 2)
        level = max(self.initial_level, math.ceil(math.log2(max(1, len(held)) / fill)))
        layout = Layout(level)
        shards: dict[int, dict[str, Any]] = {}
        for key, entry in held.items():
            slot = slot_of(key)
            shards.setdefault(layout.shard_of(slot), {})[key] = {"s": slot, "v": dict(entry)}
            record = {"key": key, "group": group, "slot": slot, "entry": _digest(entry)}
            yield self.key_path(key), record
        gid = self.group_id(group)
        yield f"{self.collection}/{gid}", {"of": group, "level": level, "split": 0}
        for shard, part in sorted(shards.items()):
            yield (
                f"{self.collection}/{gid}-{shard:05d}",
                {
                    "group": group,
                    "shard": shard,
                    "count": len(part),
                    "entries": part,
                },
            )
