"""A sharded index: named groups of small entries, kept in a few documents per group.

Why: a fan-out that finds its audience with a query reads one document per member, and
the Firestore emulator answers an ``array-contains-any`` query by scanning the whole
collection. An index that keeps each group's entries (say: the saved searches anchored in
one city) inside shard documents turns a fan-out to 10,000 members into reading a few
dozen documents, in production and under the emulator alike.

**Layout.** A group's shard ``n`` is ``{collection}/{gid}-{n:05d}`` (``gid``: a hash of
the group's name, so any name is a valid id) holding ``group``, ``shard``, ``count`` and
``entries`` (a map of key to entry); its layout document ``{collection}/{gid}`` says how
many shards it has. An entry's shard follows from its key's hash by linear hashing: the
group starts with ``2 ** initial_level`` shards, and when an entry makes its shard hold
more than ``max_entries``, one shard (the next in turn) splits in two, moving about half
of its entries to a new shard numbered after every other. So a shard stays well under
Firestore's 1 MiB document limit however large the group grows, and a small group is
one or two small documents.

**Reading.** :meth:`ShardedIndex.query` gives the shard documents of up to 30 groups,
ordered by id; :func:`entries` lists a shard's entries in key order. An entry only ever
moves to a shard numbered after its own, so a reader that pages through the shards in
id order while a split happens sees each entry at least once (perhaps twice), never
misses one that was there all along.

**Writing.** :meth:`ShardedIndex.update` puts one key's entry in one group and takes it
out of another, inside the caller's transaction. It reads only the groups' layouts and
writes the shards blind (the caller's own document records which group holds the key),
so concurrent updates of a group never wait on each other's shard reads, and repeating
one is harmless. Before an update that adds a key, :meth:`ShardedIndex.make_room` splits
a shard if the key's is full, in a transaction of its own. A split (one per few hundred
additions to a group) can conflict with an update of the same group running at that
moment; Firestore aborts one and its retry goes through (the emulator takes its 30 s lock
timeout to notice).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from firekit import wire

MAX_GROUPS_PER_QUERY = 30
"""Firestore's limit on the values of an ``in`` filter."""


def key_hash(key: str) -> int:
    """A key's place in the hash space (stable across processes and releases)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


@dataclass(frozen=True)
class Layout:
    """How many shards a group has: ``2 ** level + split`` (linear hashing)."""

    level: int
    split: int = 0

    def shard_of(self, key: str) -> int:
        """The shard holding ``key``."""
        hashed = key_hash(key)
        shard = hashed % (1 << self.level)
        return hashed % (1 << (self.level + 1)) if shard < self.split else shard

    @property
    def shards(self) -> int:
        return (1 << self.level) + self.split

    def after_split(self) -> Layout:
        """The layout once shard ``split`` has split in two."""
        split = self.split + 1
        return Layout(self.level + 1, 0) if split == 1 << self.level else Layout(self.level, split)


def entries(snapshot: wire.Snapshot | Any) -> list[tuple[str, Any]]:
    """A shard's entries in key order."""
    data = snapshot.to_dict() or {}
    return sorted((data.get("entries") or {}).items())


@dataclass(frozen=True)
class ShardedIndex:
    """Groups of entries in shard documents under ``collection`` (see the module)."""

    collection: str
    max_entries: int = 500
    """Entries a shard holds before one splits (a few hundred bytes each: ~150 KB)."""
    initial_level: int = 1
    """A new group starts with ``2 ** initial_level`` shards (writes spread over them)."""

    def group_id(self, group: str) -> str:
        return hashlib.sha256(group.encode()).hexdigest()[:24]

    def layout_ref(self, db: firestore.Client, group: str) -> firestore.DocumentReference:
        return db.collection(self.collection).document(self.group_id(group))

    def shard_ref(
        self, db: firestore.Client, group: str, shard: int
    ) -> firestore.DocumentReference:
        return db.collection(self.collection).document(f"{self.group_id(group)}-{shard:05d}")

    def query(self, db: firestore.Client, groups: Sequence[str]) -> firestore.Query:
        """The shard documents of ``groups`` (at most 30)."""
        wanted = sorted(set(groups))
        if not 0 < len(wanted) <= MAX_GROUPS_PER_QUERY:
            raise ValueError(f"1 to {MAX_GROUPS_PER_QUERY} groups, not {len(wanted)}")
        return db.collection(self.collection).where(
            filter=firestore.FieldFilter("group", "in", wanted)
        )

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

    def update(
        self,
        db: firestore.Client,
        transaction: firestore.Transaction,
        key: str,
        *,
        group: str | None,
        entry: Mapping[str, Any] | None = None,
        current: str | None = None,
    ) -> None:
        """Have ``key``'s entry be ``entry`` in ``group`` (None: in no group), given that
        it is now in ``current`` (None: in none), in ``transaction``, before its writes.

        ``current`` is the caller's own record of where the key is, read in the same
        transaction (a field of the document the entry stands for): the shards are
        written blind, never read, so concurrent updates of one group do not contend on
        its shards, and each shard's ``count`` stays exact.
        """
        if group is not None and entry is None:
            raise ValueError("an entry to put in the group")
        groups = sorted({g for g in (group, current) if g is not None})
        if not groups:
            return
        layouts = self.layouts(db, groups, transaction)
        slot = FieldPath("entries", key).to_api_repr()
        if current is not None and current != group:
            shard = layouts[current].shard_of(key)
            gone = {"entries": {key: firestore.DELETE_FIELD}, "count": firestore.Increment(-1)}
            transaction.set(self.shard_ref(db, current, shard), gone, merge=[slot, "count"])
        if group is not None:
            shard = layouts[group].shard_of(key)
            data = {"group": group, "shard": shard, "entries": {key: dict(entry or {})},
                    "count": firestore.Increment(0 if current == group else 1)}  # fmt: skip
            transaction.set(
                self.shard_ref(db, group, shard), data, merge=["group", "shard", slot, "count"]
            )

    def make_room(self, db: firestore.Client, group: str, key: str) -> bool:
        """Split a shard of ``group`` if the one ``key`` goes to is full; outside any
        transaction (it runs its own), before the update that adds the key.

        The shard that splits is the next in turn, which may not be the full one: that
        one's turn comes soon, as every update into a full shard splits one more.
        """
        layout = self.layouts(db, [group])[group]
        home = self.shard_ref(db, group, layout.shard_of(key)).get(field_paths=["count"])
        if not home.exists or int((home.to_dict() or {}).get("count") or 0) < self.max_entries:
            return False

        @firestore.transactional
        def split(transaction: firestore.Transaction) -> bool:
            now = self.layouts(db, [group], transaction)[group]
            if now != layout:
                return False  # another update split one meanwhile
            source = self.shard_ref(db, group, now.split)
            whole = next(iter(db.get_all([source], transaction=transaction)))
            held = dict((whole.to_dict() or {}).get("entries") or {}) if whole.exists else {}
            after = now.after_split()
            sibling = now.split + (1 << now.level)
            moving = {k: v for k, v in held.items() if after.shard_of(k) == sibling}
            staying = {k: v for k, v in held.items() if k not in moving}
            for shard, part in ((now.split, staying), (sibling, moving)):
                transaction.set(self.shard_ref(db, group, shard), {
                    "group": group, "shard": shard, "count": len(part), "entries": part,
                })  # fmt: skip
            # The layout names its group as ``of``: the shards' query filters on ``group``.
            transaction.set(
                self.layout_ref(db, group),
                {"of": group, "level": after.level, "split": after.split},
            )
            return True

        return bool(split(db.transaction()))

    def bulk(
        self, group: str, items: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(path, data)`` of a group's layout and shards holding ``items``, for loading
        a new group in bulk (seeds and benchmarks; it replaces what the group held): as
        many shards as keep each about half full."""
        held = dict(items)
        fill = max(1, self.max_entries // 2)
        level = max(self.initial_level, math.ceil(math.log2(max(1, len(held)) / fill)))
        layout = Layout(level)
        shards: dict[int, dict[str, Any]] = {}
        for key, entry in held.items():
            shards.setdefault(layout.shard_of(key), {})[key] = dict(entry)
        gid = self.group_id(group)
        yield f"{self.collection}/{gid}", {"of": group, "level": level, "split": 0}
        for shard, part in sorted(shards.items()):
            yield f"{self.collection}/{gid}-{shard:05d}", {
                "group": group, "shard": shard, "count": len(part), "entries": part,
            }  # fmt: skip
