"""Erasing a user who owns 10,000 documents and 50 photos (issue 18): the erasure
cascade's wall time, Firestore reads and writes and peak memory, against a bare recursive
delete of the same documents in the same run (goal: ≤ 1.5 × its time; memory flat in
the number of documents).

**The world** (:func:`world`), written in parallel batches before any timing, the same
document for document for every side measured (the database emptied before each): the
user ``bench-leaver``, an agent with an Auth account, a profile and a private account,
owning N documents in three equal parts:

- favourites (``users/{uid}/favorites/{listingId}``) of N/3 other agents' listings, each
  counted as ``favorites.reconcile`` leaves it: the listing's mark
  (``favoriteMarks/{uid}``), one shard holding 1 and ``favoritesCount`` 1;
- inbox notifications (``users/{uid}/notifications/*``), every kind in turn;
- messages the user sent **as the agent** in one conversation a buyer opened about the
  user's own listing: the cascade pseudonymises them in place (the conversation's id
  names the buyer, not the user, so it is not re-keyed). Every message of the
  conversation is the user's, so the baseline deletes exactly the messages the cascade
  rewrites;

and :data:`PHOTOS` objects in the photos bucket: 2 avatars of 4 renditions each
(``avatars/{uid}/...``) and the listing's 7 photos of 6 renditions each
(``listings/{listingId}/...``). Around them: the buyer (a profile, the conversation's
inbox entry, which the cascade rewords) and the other agent.

**The cascade** (``cascade``): ``erasure.begin`` then ``erasure.CASCADE.run`` until it
says ``done``, in process, as ``delete_my_account`` and the account task run them. Every
step of the cascade runs, most of them finding nothing.

**The baselines**, no counts kept, nothing pseudonymised, no Auth:

- ``recursiveDelete``, the one of the goal: ``db.recursive_delete`` of ``users/{uid}``
  and of the conversation's ``messages``, then ``storage.delete_prefix`` of the two
  folders. ``recursive_delete`` deletes through a ``BulkWriter``, whose defaults hold it
  to 500 deletes a second (the SDK's answer to Firestore's 500/50/5 ramp-up rule);
- ``unthrottled`` (for reference): the same with a ``BulkWriter`` allowed
  :data:`UNTHROTTLED` a second: the floor of the work itself.

**What is counted.** Every RPC of the measured client through a metered GAPIC stub
(:func:`metered`; ``batch_write``, which the ``BulkWriter`` uses, included): documents
read as Firestore bills them (documents returned, gets of absent documents, empty
queries), documents deleted and written (updates, sets, transforms), round trips, and
``list_collection_ids`` calls (apart: not counted as reads). The cascade's time, reads
and writes per step come from its own "erasure page" log lines (one after each page's
commit): what happened between two lines was that page's; ``begin`` and the last
transaction (``finish``) are rows of their own.

**Timing.** Each size runs in a fresh interpreter (``--measure N``), after a warm-up of
both sides on a tiny world (imports, channels, the emulator's JIT). The largest size
runs :data:`ROUNDS` rounds, the others one; within a round the sides run in rotating
order, each on a freshly written world; the figures are medians of the rounds.
**Memory**: one more run of each side with ``tracemalloc`` on (so its overhead does not
touch the timed runs): the peak of Python allocations during the run over what was live
when it began, the peak RSS above the start (``VmHWM`` reset, as
``bench.fanout_memory`` measures it), and, for the cascade, the memory live after each
page (flat when nothing accumulates across pages).

Run: ``python -m bench.erasure [--sizes 2500,5000,10000] [--rounds 3]`` (``make bench``);
``--quick`` for a small run of a minute.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stdout, suppress
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.bulk_writer import BulkWriterOptions

from bench import chat_cost, common
from bench import fanout_world as world_io
from bench.fanout_memory import MIB, peak

NAME = "erasure"
SIZES = (2_500, 5_000, 10_000)
QUICK_SIZES = (60, 150)
ROUNDS = 3
"""Timed rounds at the largest size (one at the others)."""
WARMUP_SIZE = 30
SIDES = ("cascade", "recursiveDelete", "unthrottled")
BASELINE = "recursiveDelete"
GOAL = 1.5
UNTHROTTLED = 100_000
"""Deletes a second the ``unthrottled`` baseline's BulkWriter may send."""

UID = "bench-leaver"
BUYER = "bench-buyer"
OTHER_AGENT = "bench-agent"
HOME = "bench-leaver-home"
"""The user's own listing, which the conversation is about."""
CONVERSATION = f"{HOME}__{BUYER}"
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
AVATARS = 2
AVATAR_RENDITIONS = ("160.webp", "160.jpg", "640.webp", "640.jpg")
LISTING_PHOTOS = 7
LISTING_RENDITIONS = ("320.webp", "320.jpg", "1024.webp", "1024.jpg", "2048.webp", "2048.jpg")
PHOTOS = AVATARS * len(AVATAR_RENDITIONS) + LISTING_PHOTOS * len(LISTING_RENDITIONS)
KINDS = ("listing_match", "price_drop", "offer", "viewing", "system", "listing_review")
SHARDS = 16

COLUMNS = (
    "documents",
    "side",
    "rounds",
    "wall s",
    "× baseline",
    "reads",
    "writes",
    "deletes",
    "round trips",
    "traced MiB",
    "RSS MiB",
)


# --- the world ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """How N documents are shared out (favourites take the remainder)."""

    favorites: int
    notifications: int
    messages: int

    @classmethod
    def of(cls, documents: int) -> Split:
        third = documents // 3
        return cls(documents - 2 * third, third, third)

    def as_dict(self) -> dict[str, int]:
        return {
            "favorites": self.favorites,
            "notifications": self.notifications,
            "messages": self.messages,
        }


def favourite_listing(n: int) -> str:
    """The id of the ``n``-th listing the user favourited."""
    return f"bench-fav-{n:06d}"


def documents(split: Split) -> Iterator[world_io.Doc]:
    """Every document of the world (see the module docstring), generated as written."""
    profile = {
        "displayName": "Lena Leaver",
        "searchName": "lena leaver",
        "bio": "Lettings and sales in Hackney.",
        "role": "agent",
        "verified": True,
        "avatar": {"id": "a1"},
        "createdAt": NOW,
    }
    yield f"users/{UID}", profile
    yield f"users/{UID}/private/account", {"email": "lena@example.test", "createdAt": NOW}
    yield f"users/{BUYER}", {"displayName": "Bo Buyer", "role": "buyer", "createdAt": NOW}
    yield f"users/{OTHER_AGENT}", {"displayName": "Other", "role": "agent", "createdAt": NOW}
    photos = [{"id": f"p{k}", "caption": ""} for k in range(LISTING_PHOTOS)]
    yield f"listings/{HOME}", world_io.listing(UID, photos=photos)
    for n in range(split.favorites):
        listing_id = favourite_listing(n)
        yield f"listings/{listing_id}", world_io.listing(OTHER_AGENT, favoritesCount=1)
        yield f"users/{UID}/favorites/{listing_id}", {"listingId": listing_id, "createdAt": NOW}
        yield f"listings/{listing_id}/favoriteMarks/{UID}", {"uid": UID, "countedAt": NOW}
        shard = {"listingId": listing_id, "count": 1, "updatedAt": NOW}
        yield f"listings/{listing_id}/favoriteShards/{n % SHARDS}", shard
    for n in range(split.notifications):
        kind = KINDS[n % len(KINDS)]
        yield (
            f"users/{UID}/notifications/n{n:06d}",
            {
                "kind": kind,
                "title": f"A {kind.replace('_', ' ')} for you",
                "body": "A two bed flat near the park is now £340,000.",
                "listingId": favourite_listing(n % max(split.favorites, 1)),
                "link": f"/listings/{favourite_listing(n % max(split.favorites, 1))}",
                "data": {},
                "createdAt": NOW - dt.timedelta(minutes=n),
                "read": n % 3 != 0,
            },
        )
    yield from conversation(split.messages)


def conversation(messages: int) -> Iterator[world_io.Doc]:
    """The buyer's conversation with the user (the agent) about the user's listing, every
    message the user's; the buyer's inbox entry and badge for it."""
    said = [NOW - dt.timedelta(seconds=messages - n) for n in range(messages)]
    for n, at in enumerate(said):
        text = f"Thanks for asking: viewing slot {n} is free, shall I book it?"
        yield (
            f"conversations/{CONVERSATION}/messages/m{n:06d}",
            {
                "senderId": UID,
                "text": text,
                "createdAt": at,
            },
        )
    last = f"m{messages - 1:06d}"
    yield (
        f"conversations/{CONVERSATION}",
        {
            "listingId": HOME,
            "buyerId": BUYER,
            "agentId": UID,
            "participantIds": [BUYER, UID],
            "createdAt": NOW - dt.timedelta(days=30),
            "updatedAt": NOW,
            "lastReadAt": {UID: NOW},
            "blockedBy": {},
            "lastMessage": {"messageId": last, "text": "Thanks", "senderId": UID, "sentAt": NOW},
            "unread": {BUYER: 1, UID: 0},
        },
    )
    yield (
        f"users/{BUYER}/notifications/chat-{CONVERSATION}-0",
        {
            "kind": "message",
            "title": "New message from Lena Leaver",
            "body": "Thanks for asking",
            "link": f"/conversations/{CONVERSATION}",
            "data": {"conversationId": CONVERSATION, "messageId": last, "senderId": UID},
            "createdAt": NOW,
            "read": False,
        },
    )
    yield f"users/{BUYER}/counters/unread", {"messages": 1, "conversations": 1}


def photo_folders() -> tuple[str, str]:
    """The two folders of the user's photo objects in the photos bucket."""
    from marketplace import photo_uploads

    return (
        photo_uploads.output_folder("avatar", UID),
        photo_uploads.output_folder("listing", HOME),
    )


def photo_names() -> list[str]:
    avatars, listing = photo_folders()
    names = [f"{avatars}a{a}/{r}" for a in range(AVATARS) for r in AVATAR_RENDITIONS]
    return names + [f"{listing}p{p}/{r}" for p in range(LISTING_PHOTOS) for r in LISTING_RENDITIONS]


def world(db: firestore.Client, split: Split) -> int:
    """An emptied database, then the world; returns how many documents were written."""
    from firebase_admin import auth

    from firekit import storage
    from marketplace import photo_uploads

    world_io.reset(db)
    bucket = photo_uploads.photos_bucket()
    for folder in photo_folders():
        storage.delete_prefix(bucket, folder)
    names = photo_names()

    def upload(name: str) -> None:
        storage.bucket(bucket).blob(name).upload_from_string(b"\xff\xd8 a photo")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(upload, names))
    with suppress(auth.UserNotFoundError):
        auth.delete_user(UID)
    auth.create_user(uid=UID, email="lena@example.test", display_name="Lena Leaver")
    return world_io.write_all(db, documents(split))


# --- the meter ----------------------------------------------------------------------------


@dataclass
class Count(chat_cost.Rpcs):
    """``chat_cost``'s counts of a kind of RPC (round trips, seconds waited, documents
    returned, absent gets, empty queries, written), with the deletes among the written and
    the ``list_collection_ids`` calls (not counted as reads)."""

    deleted: int = 0
    collection_lists: int = 0

    @property
    def reads(self) -> int:
        return self.billed_reads

    @property
    def updated(self) -> int:
        """Writes that are not deletes: sets, updates, transforms."""
        return self.written - self.deleted

    def minus(self, other: Count) -> Count:
        out = Count()
        for name in self.__dataclass_fields__:
            setattr(out, name, getattr(self, name) - getattr(other, name))
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: billed reads, writes and their parts."""
        return {
            "reads": self.reads,
            "writes": self.written,
            "deletes": self.deleted,
            "updates": self.updated,
            "documentsReturned": self.read,
            "missingGets": self.missing,
            "emptyQueries": self.empty,
            "roundTrips": self.calls,
            "listCollectionIds": self.collection_lists,
            "rpcSeconds": round(self.seconds, 3),
        }


@dataclass
class Meter(chat_cost.Meter):
    """Every RPC of a block, by kind (``query notifications``, ``commit``, ...), safe to
    count from the BulkWriter's pool of threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)

    def step(self, name: str) -> Count:
        with self.lock:
            count = self.steps.setdefault(name, Count())
        assert isinstance(count, Count)
        return count

    def total(self) -> Count:
        total = Count()
        for count in self.snapshot().values():
            total.add(count)
        return total

    def snapshot(self) -> dict[str, Count]:
        """A copy of every kind's count."""
        with self.lock:
            return {name: Count(**vars(count)) for name, count in self.steps.items()}


class _MeteredApi(chat_cost._MeteredApi):
    """``chat_cost``'s metered stub, counting deletes apart, and the two RPCs a recursive
    delete adds: ``batch_write`` (the BulkWriter's, from its threads) and
    ``list_collection_ids``."""

    _meter: Meter

    def _call(self, step: Any, method: str, request: Any, kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return getattr(self._api, method)(request=request, **kwargs)
        finally:
            with self._meter.lock:
                step.calls += 1
                step.seconds += time.perf_counter() - started

    def _write(self, name: str, method: str, request: Any, kwargs: Any) -> Any:
        writes = [world_io._pb(w) for w in request.get("writes") or []]
        count = self._meter.step(name)
        response = self._call(count, method, request, kwargs)
        with self._meter.lock:  # a refused commit raises: it wrote nothing
            count.written += len(writes)
            count.deleted += sum(w.WhichOneof("operation") == "delete" for w in writes)
        return response

    def commit(self, request: Any, **kwargs: Any) -> Any:
        name = "commit (tx)" if request.get("transaction") else "commit"
        return self._write(name, "commit", request, kwargs)

    def batch_write(self, request: Any, **kwargs: Any) -> Any:
        return self._write("batch_write (BulkWriter)", "batch_write", request, kwargs)

    def list_collection_ids(self, request: Any, **kwargs: Any) -> Any:
        count = self._meter.step("list_collection_ids")
        count.collection_lists += 1
        return self._call(count, "list_collection_ids", request, kwargs)


@contextmanager
def metered(db: Any) -> Iterator[Meter]:
    """Count and time every RPC ``db`` makes inside the block (the client's private stub
    attribute, as :func:`bench.chat_cost.metered` reaches it)."""
    meter = Meter()
    api = db._firestore_api  # creates the stub if it was not yet
    db._firestore_api_internal = _MeteredApi(api, meter)
    try:
        yield meter
    finally:
        db._firestore_api_internal = api


# --- the cascade's pages ------------------------------------------------------------------


@dataclass
class Mark:
    """A moment of the cascade: a page of ``step`` just committed (or begin, finish)."""

    step: str
    at: float
    kinds: dict[str, Count]
    live_mib: float | None

    @property
    def totals(self) -> Count:
        total = Count()
        for count in self.kinds.values():
            total.add(count)
        return total


class PageLines(io.TextIOBase):
    """Where the cascade's log lines go while it is measured: each ``erasure page`` line
    (written after the page's commit) is a :class:`Mark`; the rest is dropped."""

    def __init__(self, meter: Meter, *, detail: bool = True) -> None:
        # Each page's RPCs are kept with ``detail``: off when memory is measured (the
        # marks are the bench's memory, not the cascade's).
        self.meter, self.detail = meter, detail
        self.marks: list[Mark] = []
        self.warnings = 0

    def mark(self, step: str) -> None:
        live = tracemalloc.get_traced_memory()[0] / MIB if tracemalloc.is_tracing() else None
        kinds = self.meter.snapshot() if self.detail else {}
        self.marks.append(Mark(step, time.perf_counter(), kinds, live))

    def write(self, text: str) -> int:
        if '"erasure page"' in text:
            self.mark(json.loads(text)["step"])
        elif '"WARNING"' in text:
            self.warnings += 1
        return len(text)


def by_step(marks: Sequence[Mark]) -> dict[str, dict[str, Any]]:
    """Seconds, pages and RPC counts per step (and per kind of RPC: round trips and the
    seconds waited on them), from consecutive marks."""
    steps: dict[str, dict[str, Any]] = {}
    for before, after in pairwise(marks):
        row = steps.setdefault(
            after.step, {"pages": 0, "seconds": 0.0, "count": Count(), "kinds": {}}
        )
        row["pages"] += 1
        row["seconds"] += after.at - before.at
        row["count"].add(after.totals.minus(before.totals))
        for kind, count in after.kinds.items():
            spent = count.minus(before.kinds.get(kind, Count()))
            if spent.calls:
                row["kinds"].setdefault(kind, Count()).add(spent)
    return {
        name: {"pages": row["pages"], "seconds": round(row["seconds"], 3)}
        | row["count"].as_dict()
        | {
            "rpcs": {
                kind: {"calls": c.calls, "seconds": round(c.seconds, 3)}
                for kind, c in sorted(row["kinds"].items(), key=lambda item: -item[1].seconds)
            }
        }
        for name, row in steps.items()
    }


# --- the sides ----------------------------------------------------------------------------


@dataclass
class Ran:
    """One side's run on one world."""

    side: str
    seconds: float
    count: Count
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    live_mib: list[float] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)


def erase(db: firestore.Client, detail: bool = True) -> Ran:
    """``erasure.begin`` and ``CASCADE.run`` until done, metered, page by page (each
    page's RPCs kept with ``detail``)."""
    from marketplace import erasure

    with metered(db) as meter:
        lines = PageLines(meter, detail=detail)
        with redirect_stdout(lines):
            lines.mark("start")
            started = time.perf_counter()
            erasure_id = erasure.begin(db, UID, requested_by="self", now=dt.datetime.now(dt.UTC))
            lines.mark("begin")
            runs = []
            while (outcome := erasure.CASCADE.run(db, erasure_id).outcome) == "more":
                runs.append(outcome)
            seconds = time.perf_counter() - started
            lines.mark("finish")
    if outcome != "done":
        raise AssertionError(f"the cascade ended {outcome!r}")
    progress = erasure.CASCADE.ref(db, erasure_id).get().to_dict() or {}
    ran = Ran("cascade", seconds, meter.total(), by_step(lines.marks))
    ran.progress = {
        name: {"pages": state.get("pages", 0), "counts": state.get("counts", {})}
        for name, state in (progress.get("steps") or {}).items()
    }
    ran.live_mib = [m.live_mib for m in lines.marks[1:-1] if m.live_mib is not None]
    ran.checks = {"runs": len(runs) + 1, "warnings": lines.warnings, "state": progress["state"]}
    ran.checks |= erased_checks(db, progress["pseudonym"])
    return ran


def bare_delete(db: firestore.Client, side: str, detail: bool = True) -> Ran:
    """The baseline: recursive deletes of the user's subtree and the conversation's
    messages, the two photo folders deleted; through a default BulkWriter, or one allowed
    :data:`UNTHROTTLED` deletes a second (``detail``: nothing here is per page)."""
    from firekit import storage
    from marketplace import photo_uploads

    def writer() -> Any:
        if side == "recursiveDelete":
            return None  # recursive_delete's own: db.bulk_writer()
        fast = BulkWriterOptions(initial_ops_per_second=UNTHROTTLED, max_ops_per_second=UNTHROTTLED)
        return db.bulk_writer(options=fast)

    with metered(db) as meter:
        started = time.perf_counter()
        deleted = db.recursive_delete(db.document(f"users/{UID}"), bulk_writer=writer())
        messages = db.collection(f"conversations/{CONVERSATION}/messages")
        deleted += db.recursive_delete(messages, bulk_writer=writer())
        bucket = photo_uploads.photos_bucket()
        objects = sum(storage.delete_prefix(bucket, folder) for folder in photo_folders())
        seconds = time.perf_counter() - started
    ran = Ran(side, seconds, meter.total())
    ran.checks = {"documentsDeleted": deleted, "objectsDeleted": objects}
    ran.checks |= bare_checks(db)
    return ran


def erased_checks(db: firestore.Client, pseudonym: str) -> dict[str, Any]:
    """After the cascade (untimed): nothing of the user left, the counts taken down, the
    messages kept under the pseudonym."""
    from firebase_admin import auth

    from marketplace import erasure

    messages = db.collection(f"conversations/{CONVERSATION}/messages")
    shards = db.collection_group("favoriteShards").where(
        filter=FieldFilter("listingId", ">=", "bench-fav-")
    )
    try:
        auth.get_user(UID)
        auth_left = True
    except auth.UserNotFoundError:
        auth_left = False
    conversation = db.document(f"conversations/{CONVERSATION}").get().to_dict() or {}
    return {
        "leftovers": erasure.leftovers(db, UID),
        "favouriteCountsLeft": sum(int((s.to_dict() or {})["count"]) for s in shards.stream()),
        "messagesOfTheUser": _count(messages.where(filter=FieldFilter("senderId", "==", UID))),
        "messagesOfThePseudonym": _count(
            messages.where(filter=FieldFilter("senderId", "==", pseudonym))
        ),
        "conversationAgent": "pseudonym" if conversation.get("agentId") == pseudonym else "?",
        "objectsLeft": _objects_left(),
        "authUserLeft": auth_left,
    }


def bare_checks(db: firestore.Client) -> dict[str, Any]:
    """After a bare delete (untimed): the subtree and the messages gone, no object left."""
    profile = db.document(f"users/{UID}")
    return {
        "subtreeLeft": sum(_count(c) for c in profile.collections()) + profile.get().exists,
        "messagesLeft": _count(db.collection(f"conversations/{CONVERSATION}/messages")),
        "objectsLeft": _objects_left(),
    }


def _count(query: Any) -> int:
    return int(query.count().get()[0][0].value)


def _objects_left() -> int:
    from firekit import storage
    from marketplace import photo_uploads

    bucket = photo_uploads.photos_bucket()
    return sum(len(list(storage.object_names(bucket, folder))) for folder in photo_folders())


RUNNERS: dict[str, Callable[[firestore.Client, bool], Ran]] = {
    "cascade": erase,
    "recursiveDelete": lambda db, detail: bare_delete(db, "recursiveDelete", detail),
    "unthrottled": lambda db, detail: bare_delete(db, "unthrottled", detail),
}
"""Each side: ``(db, detail)`` -> what it did (``detail``: per-page RPCs kept)."""


# --- one size -----------------------------------------------------------------------------


def measure_one(
    db: firestore.Client,
    documents_owned: int,
    *,
    rounds: int,
    warm_up: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """One size: a warm-up, ``rounds`` timed rounds of every side (order rotating, a fresh
    world each), then one traced run of each side."""
    from firekit.bootstrap import ensure_initialized

    ensure_initialized()  # the Auth calls (begin, close, auth) use the default app

    def say(text: str) -> None:
        if progress:
            print(f"  {documents_owned:,}: {text}", file=sys.stderr, flush=True)

    split = Split.of(documents_owned)
    for side in SIDES if warm_up else ():  # imports, channels, the emulator's JIT
        world(db, Split.of(WARMUP_SIZE))
        RUNNERS[side](db, False)
    timed: dict[str, list[Ran]] = {side: [] for side in SIDES}
    written = 0
    for n in range(rounds):
        order = SIDES[n % len(SIDES) :] + SIDES[: n % len(SIDES)]
        for side in order:
            written = world(db, split)
            timed[side].append(RUNNERS[side](db, True))
            say(f"round {n + 1} {side}: {timed[side][-1].seconds:.2f} s")
    traced: dict[str, dict[str, Any]] = {}
    for side in SIDES:
        world(db, split)
        tracing = not tracemalloc.is_tracing()
        if tracing:
            tracemalloc.start()
        try:
            with peak() as measured:
                ran = RUNNERS[side](db, False)
        finally:
            if tracing:
                tracemalloc.stop()
        traced[side] = measured.as_dict() | _live(ran.live_mib)
        say(f"traced {side}: {traced[side]['tracedPeakMiB']} MiB")
    return {
        "documents": documents_owned,
        "split": split.as_dict(),
        "worldDocuments": written,
        "rounds": rounds,
        "sides": {side: _side(runs, traced[side]) for side, runs in timed.items()},
    }


def _live(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {}
    return {
        "liveAfterPageMiB": {
            "first": round(samples[0], 2),
            "last": round(samples[-1], 2),
            "max": round(max(samples), 2),
            "growthFirstToLast": round(samples[-1] - samples[0], 2),
            "pages": len(samples),
        }
    }


def _side(runs: list[Ran], traced: dict[str, Any]) -> dict[str, Any]:
    median = sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]
    out: dict[str, Any] = {
        "seconds": [round(r.seconds, 3) for r in runs],
        "medianS": round(statistics.median(r.seconds for r in runs), 3),
        **median.count.as_dict(),
        "memory": traced,
        "checks": median.checks,
    }
    if median.steps:
        out["steps"] = median.steps
        out["progress"] = median.progress
    return out


def measure_in_subprocess(documents_owned: int, rounds: int, project: str) -> dict[str, Any]:
    """:func:`measure_one` in a fresh interpreter (the stack's addresses are inherited)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "result.json"
        command = [sys.executable, "-m", "bench.erasure", "--measure", str(documents_owned)]
        command += ["--rounds", str(rounds), "--project", project, "--out", str(out)]
        subprocess.run(command, check=True, cwd=common.ROOT, stdout=subprocess.DEVNULL)
        result: dict[str, Any] = json.loads(out.read_text())
        return result


# --- every size ---------------------------------------------------------------------------


def run(
    sizes: Sequence[int],
    measure: Callable[[int, int], dict[str, Any]],
    *,
    rounds: int = ROUNDS,
) -> dict[str, Any]:
    """Every size measured by ``measure(size, rounds)`` (``rounds`` at the largest, one at
    the others); figures, baseline, ratios and rows."""
    from marketplace import erasure

    ordered = sorted(sizes)
    measured = []
    for size in ordered:
        print(f"measuring {size:,} documents...", flush=True)
        measured.append(measure(size, rounds if size == ordered[-1] else 1))
    largest, smallest = measured[-1], measured[0]
    top = largest["sides"]

    def ratio(side: str, key: str, row: dict[str, Any] = largest) -> float | None:
        return common.ratio(row["sides"][side][key], row["sides"][BASELINE][key])

    def traced(row: dict[str, Any], side: str) -> float:
        return float(row["sides"][side]["memory"]["tracedPeakMiB"])

    n, m = largest["documents"], smallest["documents"]
    wall = ratio("cascade", "medianS")
    ratios: dict[str, Any] = {
        "wall": wall,
        "writes": ratio("cascade", "writes"),
        "reads": ratio("cascade", "reads"),
        "roundTrips": ratio("cascade", "roundTrips"),
        "wallOverUnthrottled": common.ratio(
            top["cascade"]["medianS"], top["unthrottled"]["medianS"]
        ),
        "unthrottledOverRecursiveDelete": ratio("unthrottled", "medianS"),
        "wallBySize": {str(row["documents"]): ratio("cascade", "medianS", row) for row in measured},
        f"cascadeTraced{n}Over{m}": common.ratio(
            traced(largest, "cascade"), traced(smallest, "cascade")
        ),
        f"recursiveDeleteTraced{n}Over{m}": common.ratio(
            traced(largest, BASELINE), traced(smallest, BASELINE)
        ),
        "goal": f"cascade wall ≤ {GOAL} × the recursive delete's at {n:,}; memory flat in N",
    }
    ratios["goalMet"] = wall is not None and wall <= GOAL
    params = {
        "sizes": ordered,
        "roundsAtLargest": rounds,
        "split": {str(row["documents"]): row["split"] for row in measured},
        "photoObjects": {
            "avatars": AVATARS * len(AVATAR_RENDITIONS),
            "listing": LISTING_PHOTOS * len(LISTING_RENDITIONS),
        },
        "conversationSide": "agent: the user's messages are pseudonymised in place (the "
        "conversation's id names the buyer, so it is not re-keyed); every message of the "
        "conversation is the user's",
        "favourites": "of existing listings, each counted (a mark and a shard holding 1)",
        "pageSizes": {
            "PAGE": erasure.PAGE,
            "BULK": getattr(erasure, "BULK", None),
            "MESSAGES": getattr(erasure, "MESSAGES", None),
        },
        "baselineBulkWriter": {
            "recursiveDelete": "defaults (500 a second)",
            "unthrottled": f"{UNTHROTTLED:,} a second",
        },
        "memory": "one traced run per side and size after the timed ones, fresh interpreter "
        "per size; tracemalloc peak above the start, VmHWM above the start",
    }
    baseline = {
        "what": "db.recursive_delete of users/{uid} and of the conversation's messages, "
        "storage.delete_prefix of the two photo folders (default BulkWriter)",
        "documents": n,
        **{k: top[BASELINE][k] for k in ("medianS", "reads", "writes", "deletes", "roundTrips")},
    }
    figures = {str(row["documents"]): {"split": row["split"], **row["sides"]} for row in measured}
    return {
        "figures": figures,
        "baseline": baseline,
        "ratios": ratios,
        "params": params,
        "rows": [_row(row, side) for row in measured for side in SIDES],
    }


def _row(row: dict[str, Any], side: str) -> dict[str, Any]:
    data = row["sides"][side]
    return {
        "documents": row["documents"],
        "side": side,
        "rounds": row["rounds"],
        "wall s": data["medianS"],
        "× baseline": common.ratio(data["medianS"], row["sides"][BASELINE]["medianS"]),
        "reads": data["reads"],
        "writes": data["writes"],
        "deletes": data["deletes"],
        "round trips": data["roundTrips"],
        "traced MiB": data["memory"]["tracedPeakMiB"],
        "RSS MiB": data["memory"]["rssPeakAboveStartMiB"],
    }


def write(outcome: dict[str, Any], directory: Path = common.RESULTS) -> Path:
    """The outcome of :func:`run` as ``<directory>/erasure.json``."""
    return common.write_outcome(NAME, outcome, directory)


def main() -> None:
    """Start or reuse the stack, measure each size in its own process, write, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:  # the child: one size, on the parent's stack
        db = firestore.Client(project=args.project)
        result = measure_one(db, args.measure, rounds=args.rounds, progress=True)
        args.out.write_text(json.dumps(result))
        return
    sizes = QUICK_SIZES if args.quick else tuple(int(s) for s in args.sizes.split(","))
    rounds = 1 if args.quick else args.rounds
    import devstack

    with common.emulators() as stack, common.triggers_paused(stack):
        # In-process Cloud Storage code talks to the stand-in, as the functions do.
        os.environ.update(devstack.storage_environment(stack.config.port_offset))
        project = common.firestore_client(stack).project
        outcome = run(sizes, lambda n, r: measure_in_subprocess(n, r, project), rounds=rounds)
    path = common.report(NAME, outcome, COLUMNS)
    print(f"\nratios: {json.dumps(outcome['ratios'])}")
    print(f"written to {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
