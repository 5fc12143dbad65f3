"""What the fan-out benchmarks share: the world they write, the in-process fan-out and a
metered Firestore client.

**The world.** Buyers as the alerts tests build them (``tests/alerts/world.py``, shapes
copied here, since the benchmarks import nothing from ``tests``): a public profile, a
private account with an email, one device (``ownerId`` set) and saved searches with their
``audience``, as the search trigger leaves them, and the alert index holding them (loaded
in bulk, ``alerts.index_documents``); one agent and one active
listing (a two-bed London flat for sale at £350,000). It is written before any timing, in
parallel batches of 500 that are built as they are written (setting up 50,000 buyers
holds one batch per worker in memory, not the world).

**The fan-out.** The ``deliverAlerts`` task function runs :meth:`Fanout.run_task` per Cloud
Task; here the queue is a local deque and a loop runs each chunk as it is queued: the same
code, in one process, one chunk after another. The push transport is in memory
(:class:`MemoryTransport`): in production a push is a network call to FCM, outside
Firestore, and the emulators' ``RecordingTransport`` would add a write per push that
production does not make.

**The meter.** :func:`metered` wraps the client's GAPIC stub, so every RPC the fan-out makes
is counted and timed where it leaves the process, transactions included: documents
returned (``run_query`` results, ``batch_get_documents`` found), gets of absent documents,
documents written per commit, and the seconds spent waiting on each, by step (which
collection a query or get names, what a commit writes). Wall time minus RPC time is the
fan-out's own Python work.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from firebase_admin import messaging

from bench import common
from firekit import fanout
from marketplace import alerts
from marketplace.models import SavedSearch
from pytest_firebase.plugin import empty_database

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
AGENT = "bench-agent"
LISTING_ID = "bench-home"
NOTIFICATION = alerts.notification_id(LISTING_ID, "new_listing")
"""The inbox document id of the listing's ``new_listing`` event."""
BATCH = 500
"""Firestore's limit on the writes of one batch."""
WRITERS = 4

Doc = tuple[str, dict[str, Any]]
"""A document to write: its path and its data."""


# --- the world ------------------------------------------------------------------------


def listing(owner: str = AGENT, **overrides: Any) -> dict[str, Any]:
    """A London flat for sale at £350,000 that passes every submission check."""
    data: dict[str, Any] = {
        "ownerId": owner,
        "status": "active",
        "kind": "sale",
        "propertyType": "flat",
        "title": "Bright two bed flat near the park",
        "description": "Light and quiet.",
        "price": {"amount": 350_000_00, "currency": "GBP"},
        "bedrooms": 2,
        "bathrooms": 1,
        "areaSqm": 70,
        "address": {
            "line1": "12 High Street",
            "line2": None,
            "city": "London",
            "postcode": "SW1A 1AA",
            "country": "GB",
        },
        "location": {"lat": 51.5014, "lng": -0.1419},
        "photos": [],  # alerts read no photo
        "features": [],
        "createdAt": NOW,
        "updatedAt": NOW,
    }
    return data | overrides


def search(owner: str, **overrides: Any) -> dict[str, Any]:
    """Two-bed-plus flats or houses to buy in London up to £400,000, every channel: it
    matches :func:`listing`. Stored with its ``audience``."""
    data: dict[str, Any] = {
        "ownerId": owner,
        "name": "Two beds in London",
        "kind": "sale",
        "city": "London",
        "propertyTypes": ["flat", "house"],
        "currency": "GBP",
        "priceMin": None,
        "priceMax": 400_000_00,
        "bedroomsMin": 2,
        "near": None,
        "channels": {"inApp": True, "push": True, "email": True},
        "muted": False,
        "createdAt": NOW,
        "updatedAt": NOW,
    } | overrides
    return data | {"audience": alerts.audience(SavedSearch.model_validate(data))}


def buyer(uid: str, *searches: dict[str, Any], device: bool = True) -> list[Doc]:
    """A buyer's profile, private account (with an email and, as the devices trigger keeps
    them, their push tokens), one device and ``searches``."""
    token = f"fcm-{uid}-0"
    account = {
        "email": f"{uid}@example.test",
        "createdAt": NOW,
        "pushTokens": [token] if device else [],
    }
    docs: list[Doc] = [
        (f"users/{uid}", {"displayName": "Buyer", "role": "buyer", "createdAt": NOW}),
        (f"users/{uid}/private/account", account),
    ]
    if device:
        docs.append(
            (
                f"users/{uid}/devices/{token}",
                {
                    "token": token,
                    "ownerId": uid,
                    "platform": "android",
                    "appVersion": "2.5.0",
                    "locale": "en-GB",
                    "createdAt": NOW,
                    "updatedAt": NOW,
                },
            )
        )
    docs += [(f"savedSearches/{uid}-{n}", data) for n, data in enumerate(searches)]
    return docs


def recipient_uid(number: int) -> str:
    """The uid of the ``number``-th matching buyer (sorted like the numbers)."""
    return f"buyer-{number:06d}"


def matching_buyers(count: int, *, devices_for: int | None = None) -> Iterator[Doc]:
    """``count`` buyers, each with one search that matches the listing; the first
    ``devices_for`` of them (all if None) with a device."""
    for number in range(count):
        uid = recipient_uid(number)
        yield from buyer(uid, search(uid), device=devices_for is None or number < devices_for)


def the_listing() -> list[Doc]:
    """The agent's profile and their active listing."""
    agent = {"displayName": "Agent", "role": "agent", "verified": True, "createdAt": NOW}
    return [(f"users/{AGENT}", agent), (f"listings/{LISTING_ID}", listing())]


def write_all(db: Any, docs: Iterable[Doc], *, workers: int = WRITERS) -> int:
    """Write ``docs`` in batches of 500 on ``workers`` threads, then the alert index of
    the saved searches among them; returns how many documents.

    Batches are drawn from ``docs`` as workers free up, so at most a few are in memory
    (and the searches' ids and data, for the index).
    """
    searches: list[tuple[str, dict[str, Any]]] = []

    def noting(docs: Iterable[Doc]) -> Iterator[Doc]:
        for path, data in docs:
            if path.startswith(f"{alerts.SEARCHES}/"):
                searches.append((path.split("/")[-1], data))
            yield path, data

    written = _write(db, noting(docs), workers=workers, size=BATCH)
    # Shards hold a few hundred searches each: 20 to a batch keeps a commit to a few MB.
    index = alerts.index_documents(searches, slot_of=fixed_slot)
    written += _write(db, index, workers=workers, size=20)
    return written


def fixed_slot(key: str) -> int:
    """A search's slot in the index, fixed (the index draws one at random): the same
    world shards the same way in every run, so runs compare document for document."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 2


def _write(db: Any, docs: Iterable[Doc], *, workers: int, size: int) -> int:
    source = iter(docs)
    written = 0

    def commit(part: list[Doc]) -> int:
        batch = db.batch()
        for path, data in part:
            batch.set(db.document(path), data)
        batch.commit()
        return len(part)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        while part := list(islice(source, size * workers)):
            parts = [part[i : i + size] for i in range(0, len(part), size)]
            written += sum(pool.map(commit, parts))
    return written


def reset(db: Any) -> None:
    """Delete every document of the client's database on the emulator (the tests' reset)."""
    host = os.environ["FIRESTORE_EMULATOR_HOST"]
    empty_database(host, db.project, db._database or "(default)", timeout=120)


def inbox_counts(db: Any) -> dict[str, int]:
    """How many inbox documents of the benchmark's job each user has."""
    counts: dict[str, int] = {}
    for snapshot in db.collection_group("notifications").select([]).stream():
        parent = snapshot.reference.parent.parent
        if snapshot.id == NOTIFICATION and parent is not None:
            counts[parent.id] = counts.get(parent.id, 0) + 1
    return counts


# --- the fan-out, in process ----------------------------------------------------------


@dataclass
class MemoryTransport:
    """FCM's ``send_each`` in memory: every message accepted, only counted."""

    sent: int = 0

    def send_each(self, messages: list[messaging.Message]) -> messaging.BatchResponse:
        """Accept each message."""
        self.sent += len(messages)
        return messaging.BatchResponse(
            [messaging.SendResponse({"name": "bench"}, None) for _ in messages]
        )


@dataclass
class LocalQueue:
    """Cloud Tasks as a deque: tasks run in order; a task id is queued once."""

    tasks: deque[fanout.Task] = field(default_factory=deque)
    seen: set[str] = field(default_factory=set)

    def __call__(self, task: fanout.Task) -> None:
        if task.task_id not in self.seen:
            self.seen.add(task.task_id)
            self.tasks.append(task)


@dataclass
class FanoutRun:
    """What running one job to the end did."""

    tasks: int = 0
    chunks: int = 0
    recipients: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    pushes: int = 0


def run_job(
    db: Any, *, chunk_size: int = fanout.CHUNK_SIZE, on_chunk: Callable[[], None] | None = None
) -> FanoutRun:
    """Start the listing's ``new_listing`` job and run every task it queues, in order;
    ``on_chunk`` is called as each chunk starts preparing its page."""
    transport, queue = MemoryTransport(), LocalQueue()
    delivery: fanout.Delivery = alerts.AlertDelivery(transport=lambda _db: transport)
    if on_chunk is not None:
        delivery = _Observed(delivery, on_chunk)
    engine = fanout.Fanout(
        {kind: delivery for kind in alerts.EVENT_KINDS}, queue, chunk_size=chunk_size
    )
    run = FanoutRun()
    started = time.perf_counter()
    # The job the listing trigger starts when the listing goes active.
    ((job, kind, params),) = alerts.events_of(LISTING_ID, None, listing(), "bench-event")
    engine.start(job, kind, params)
    while queue.tasks:
        outcome = engine.run_task(db, queue.tasks.popleft())
        run.tasks += 1
        run.chunks += outcome.chunks
        run.recipients += outcome.recipients
        run.outcomes[outcome.outcome] = run.outcomes.get(outcome.outcome, 0) + 1
    run.seconds = time.perf_counter() - started
    run.pushes = transport.sent
    return run


@dataclass
class _Observed:
    """A delivery that says when each chunk starts (before its page is prepared)."""

    delivery: fanout.Delivery
    on_chunk: Callable[[], None]

    def source(self, db: Any, task: fanout.Task) -> Any:
        return self.delivery.source(db, task)

    def prepare(
        self,
        db: Any,
        task: fanout.Task,
        page: Sequence[Any],
        *,
        context: Any,
        optimistic: bool,
    ) -> fanout.Prepared:
        self.on_chunk()
        return self.delivery.prepare(db, task, page, context=context, optimistic=optimistic)

    def act(
        self, db: Any, task: fanout.Task, pending: Sequence[Any], *, shared: Any
    ) -> Sequence[Any]:
        return self.delivery.act(db, task, pending, shared=shared)


# --- the meter ------------------------------------------------------------------------


@dataclass
class Step:
    """The RPCs of one step of the fan-out."""

    calls: int = 0
    seconds: float = 0.0
    read: int = 0
    """Documents returned (query results, gets that found the document)."""
    missing: int = 0
    """Gets of documents that do not exist."""
    empty: int = 0
    """Queries that returned nothing (Firestore bills one read for each)."""
    written: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, seconds rounded."""
        return {
            "calls": self.calls,
            "seconds": round(self.seconds, 3),
            "read": self.read,
            "missing": self.missing,
            "emptyQueries": self.empty,
            "written": self.written,
        }


SOURCE_STEP = "source query (alert index)"
STEP_OF_COLLECTION = {
    "_searchIndex": SOURCE_STEP,
    "devices": "device lookup (push)",
    "notifications": "get_all inbox documents",
    "account": "get_all accounts",
    "listings": "listing re-read",
    fanout.CHUNKS: "chunk record get",
}


@dataclass
class Meter:
    """Counts and times of every RPC, by step."""

    steps: dict[str, Step] = field(default_factory=dict)

    def step(self, name: str) -> Step:
        """The step called ``name`` (created empty)."""
        return self.steps.setdefault(name, Step())

    def total(self) -> Step:
        """Every step summed."""
        total = Step()
        for step in self.steps.values():
            total.calls += step.calls
            total.seconds += step.seconds
            total.read += step.read
            total.missing += step.missing
            total.empty += step.empty
            total.written += step.written
        return total

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Steps, most time first."""
        ordered = sorted(self.steps.items(), key=lambda item: -item[1].seconds)
        return {name: step.as_dict() for name, step in ordered}


def _doc_step(path: str, transaction: Any) -> str:
    parts = path.split("/documents/", 1)[-1].split("/")
    key = parts[-1] if parts[-2:-1] == ["private"] else parts[-2]
    name = STEP_OF_COLLECTION.get(key, f"get {key}")
    return "claim (transaction)" if transaction else name


def _write_step(writes: Iterable[Any], transaction: Any) -> str:
    if transaction:
        return "claim (transaction)"
    paths = []
    for write in writes:
        pb = _pb(write)
        kind = pb.WhichOneof("operation")
        paths.append(pb.update.name if kind == "update" else pb.delete)
    if any("/notifications/" in path for path in paths):
        return "chunk commit (inbox, record)"
    if paths and all(f"/{fanout.CHUNKS}/" in path for path in paths):
        return "record updates (act progress)"
    if paths and all("/devices/" in path for path in paths):
        return "dead-token deletes"
    return "other commits"


def _pb(message: Any) -> Any:
    """The raw protobuf of a proto-plus message (or the message, if raw already)."""
    return getattr(message, "_pb", message)


class _MeteredApi:
    """The GAPIC Firestore stub, counting and timing what passes through it."""

    def __init__(self, api: Any, meter: Meter) -> None:
        self._api, self._meter = api, meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    def _stream(self, step: Step, responses: Iterator[Any], kind: str) -> Iterator[Any]:
        found = 0
        while True:
            started = time.perf_counter()
            try:
                response = next(responses)
            except StopIteration:
                step.seconds += time.perf_counter() - started
                step.empty += kind == "query" and not found
                return
            step.seconds += time.perf_counter() - started
            pb = _pb(response)
            if kind == "query" and pb.HasField("document"):
                step.read += 1
                found += 1
            elif kind == "get":
                found = pb.WhichOneof("result") == "found"
                step.read += found
                step.missing += not found
            yield response

    def run_query(self, request: Any, **kwargs: Any) -> Iterator[Any]:
        collection = request["structured_query"].from_[0].collection_id
        step = self._meter.step(STEP_OF_COLLECTION.get(collection, f"query {collection}"))
        step.calls += 1
        started = time.perf_counter()
        responses = iter(self._api.run_query(request=request, **kwargs))
        step.seconds += time.perf_counter() - started
        return self._stream(step, responses, "query")

    def batch_get_documents(self, request: Any, **kwargs: Any) -> Iterator[Any]:
        documents = request["documents"]
        name = _doc_step(documents[0], request.get("transaction")) if documents else "get"
        step = self._meter.step(name)
        step.calls += 1
        started = time.perf_counter()
        responses = iter(self._api.batch_get_documents(request=request, **kwargs))
        step.seconds += time.perf_counter() - started
        return self._stream(step, responses, "get")

    def _unary(self, name: str, method: str, request: Any, **kwargs: Any) -> Any:
        step = self._meter.step(name)
        step.calls += 1
        started = time.perf_counter()
        try:
            return getattr(self._api, method)(request=request, **kwargs)
        finally:
            step.seconds += time.perf_counter() - started

    def commit(self, request: Any, **kwargs: Any) -> Any:
        writes = list(request.get("writes") or [])
        name = _write_step(writes, request.get("transaction"))
        self._meter.step(name).written += len(writes)
        return self._unary(name, "commit", request, **kwargs)

    def begin_transaction(self, request: Any, **kwargs: Any) -> Any:
        return self._unary("claim (transaction)", "begin_transaction", request, **kwargs)

    def rollback(self, request: Any, **kwargs: Any) -> Any:
        return self._unary("claim (transaction)", "rollback", request, **kwargs)


@contextmanager
def metered(db: Any) -> Iterator[Meter]:
    """Count and time every RPC ``db`` makes inside the block (see the module docstring)."""
    meter = Meter()
    api = db._firestore_api  # creates the stub if it was not yet
    db._firestore_api_internal = _MeteredApi(api, meter)
    try:
        yield meter
    finally:
        db._firestore_api_internal = api


def code_state() -> dict[str, Any]:
    """The commit measured, and the files under ``functions/`` that differ from it."""

    def git(*args: str) -> str:
        command = ["git", *args]
        done = subprocess.run(command, check=False, cwd=common.ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "functions").splitlines()
    return {"head": git("rev-parse", "--short", "HEAD"), "functionsUncommitted": changed}
