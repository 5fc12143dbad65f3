"""Fan-out in bounded chunks through a Cloud Tasks queue, once per recipient.

A job (say: "tell everyone whose saved search matches listing L") pages through a source
query in chunks of ``chunk_size`` documents, so memory stays bounded however many
recipients match. A Cloud Task runs up to ``chunks_per_task`` chunks one after another,
reading them through one streamed query (a query per chunk would cost a query's
overhead per 200 recipients), and stops early once ``task_budget`` has passed; the rest
goes to the next task. Each chunk runs in three steps, recorded in a
``_fanoutChunks/{job}-{n}`` document:

1. **Prepare and commit.** The delivery turns the chunk's page into writes (inbox
   documents with deterministic ids, digest entries) and *pending* side effects
   (pushes). The writes and the chunk record, holding the pending list, what the side
   effects share (once) and the next page's cursor, commit in one batch, with
   ``create`` on the record: two attempts of one chunk cannot both commit. A page is
   first prepared *optimistically*: the documents whose existence says "this user was
   reached" are created rather than read first, which saves a read per recipient in the
   usual case (nobody reached yet); if one exists, the atomic batch writes nothing and
   the page is prepared again, reading them (see :class:`Delivery`).
2. **Act.** The pending side effects run in slices of ``act_slice``; after each slice
   the record says how far it got, so a failure (a crash, a provider outage) is
   retried by the queue and resumes with what is left instead of repeating what was
   done. Side effects the delivery reports as worth retrying (a provider's transient
   error) stay pending and the task is retried for them alone. An attempt holds the
   record for a short lease, renewed after every slice (the attempt that commits it
   holds it from the commit; any other claims it in a transaction): a duplicate
   delivery of the task while it runs is told to come back later (``ChunkBusy``,
   answered 503 so the queue retries), and the retry of an attempt that died takes
   over once its lease ran out. A chunk whose job no longer applies records nothing, so
   the job can run again.
3. **Go on**, to the next chunk or, at the end of the task, by queueing the task of the
   next chunk (task id ``{job}-{n}``, so a repeat is refused by the queue). A chunk whose
   side effects fail first hands the chunks after it to a task of their own (and says
   so in its record, where the retry of its task stops), so a provider outage delays
   no one else and no chunk is run by two tasks.

A retried or duplicated task walks its chunks again: each one recorded is recognised by
its record (one read) and resumed where it stopped, so no recipient the earlier attempt
reached is reached again, except in the one window no at-least-once system closes (the
process dies after a provider accepted a slice and before the record says so);
deliveries make that harmless where they can (the push transport collapses duplicates
on the device).

Pages are read and the chunk's batch written through :mod:`firekit.wire`, which skips the
SDK's proto-plus layer: at 10,000 recipients that layer alone cost seconds of CPU.

The integration core knows nothing of listings or searches: a :class:`Delivery` says
what the source query is and what a page turns into."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

from firebase_admin import exceptions as admin_exceptions
from firebase_admin import functions as admin_functions
from firebase_functions import https_fn, options, tasks_fn
from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from firekit import logs, wire
from firekit.bootstrap import db as default_db
from firekit.bootstrap import is_emulated
from firekit.errors import field_issues, log_unexpected

CHUNKS = "_fanoutChunks"
RECORD_TTL = dt.timedelta(days=14)
"""Chunk records outlive any retry (Cloud Tasks gives up after its retry window)."""
DEFAULT_CHUNK = 200
"""Recipients per task: one batch of at most ~2 writes each stays under 500 writes."""
DEFAULT_ACT_SLICE = 100
DEFAULT_CHUNKS_PER_TASK = 50
"""Chunks one task runs through one streamed query (10,000 recipients at 200)."""
DEFAULT_TASK_BUDGET = dt.timedelta(minutes=4)
"""A task starts no new chunk after this: well inside a task function's timeout."""
DEFAULT_LEASE = dt.timedelta(minutes=2)
"""How long an attempt holds a chunk without progress: renewed after every slice, so a
live attempt keeps it and a dead one's retry waits at most this long."""
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,400}$")


class ChunkTask(BaseModel):
    """One task's payload: which job, which chunk, and where its page starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job: str = Field(pattern=JOB_ID.pattern)
    """Deterministic per job, e.g. ``new-<listingId>``: a repeated start is the same job."""
    kind: str = Field(min_length=1, max_length=64)
    """Which :class:`Delivery` handles it."""
    params: dict[str, Any] = Field(default_factory=dict)
    chunk: int = Field(default=0, ge=0)
    after: str | None = Field(default=None, max_length=4000)
    """Where the previous page ended: its last source document's path, or for a source
    that expands its documents, ``[path, key]`` of its last entry as JSON."""

    @property
    def task_id(self) -> str:
        """The Cloud Tasks id: the queue refuses a second task of the same chunk."""
        return f"{self.job}-{self.chunk:05d}"


@dataclass
class Prepared:
    """What a page of source documents turns into."""

    writes: list[tuple[firestore.DocumentReference, dict[str, Any]]] = field(default_factory=list)
    """Document writes (merged into what is there), committed with the chunk record."""
    creates: list[tuple[firestore.DocumentReference, dict[str, Any]]] = field(default_factory=list)
    """Documents that must not exist yet (optimistic pages only): if one does, nothing
    of the page is written and it is prepared again, not optimistically."""
    pending: list[dict[str, Any]] = field(default_factory=list)
    """Side effects to perform after the commit (JSON-able; e.g. one push each)."""
    shared: dict[str, Any] = field(default_factory=dict)
    """What every pending side effect of the page has in common (JSON-able; e.g. the
    message), stored once in the record rather than in each."""
    recipients: int = 0


@dataclass(frozen=True)
class Entry:
    """One recipient of a source document that holds many (see :attr:`Source.expand`)."""

    key: str
    value: Any


@dataclass(frozen=True)
class Source:
    """Where a chunk's recipients come from, and what the delivery found deciding it."""

    query: firestore.Query
    """The recipients' query (paged by document id)."""
    context: Any = None
    """Handed to :meth:`Delivery.prepare` for the same chunk (e.g. the listing just
    re-read to check that the job still applies), so it need not be read again."""
    expand: Callable[[wire.Snapshot], Iterable[tuple[str, Any]]] | None = None
    """If the query's documents each hold many recipients (shards of an index, see
    :mod:`firekit.shards`): a document's ``(key, value)`` pairs in key order. Pages are
    then of :class:`Entry`, and a chunk's cursor names a document and a key in it."""


class Delivery(Protocol):
    """A kind of fan-out: where recipients come from and what each page turns into."""

    def source(self, db: firestore.Client, task: ChunkTask) -> Source | None:
        """Asked before every chunk: the recipients' query, or None if the job no longer
        applies (e.g. the listing left the market): it then ends without delivering."""

    def prepare(
        self,
        db: firestore.Client,
        task: ChunkTask,
        page: Sequence[Any],
        *,
        context: Any,
        optimistic: bool,
    ) -> Prepared:
        """Writes and pending side effects for one page (reads allowed, no writes): the
        source's documents (:class:`wire.Snapshot`), or its :class:`Entry` items if the
        source expands them; ``context`` is what :meth:`source` found for this chunk.

        ``optimistic``: assume no recipient of the page was reached before, and put the
        documents whose existence would say otherwise in ``creates`` instead of reading
        them; the engine prepares the page again with ``optimistic=False`` if one exists.
        """

    def act(
        self,
        db: firestore.Client,
        task: ChunkTask,
        pending: Sequence[dict[str, Any]],
        *,
        shared: Mapping[str, Any],
    ) -> Sequence[dict[str, Any]]:
        """Perform some pending side effects (``shared``: what the page's have in common);
        return those to try again later (the task is then retried for them alone);
        raise to retry the whole slice."""


Enqueue = Callable[[ChunkTask], None]
"""Queue a chunk's task; repeating the same chunk must be harmless."""


def cloud_tasks_queue(function_name: str) -> Enqueue:
    """Enqueue on the Cloud Tasks queue of a task function (the emulator's, when run there)."""

    def enqueue(task: ChunkTask) -> None:
        queue = admin_functions.task_queue(function_name)
        # firebase-admin (Python, 7.7) posts the data as the whole body, while a task
        # function reads the callable envelope ``{"data": ...}`` (as the Node SDK sends
        # it): wrap it ourselves, or every task is refused as "missing data".
        body = {"data": task.model_dump()}
        try:
            queue.enqueue(body, admin_functions.TaskOptions(task_id=task.task_id))
        except (admin_exceptions.AlreadyExistsError, admin_exceptions.ConflictError):
            pass  # already queued (a retried chunk, a repeated job start): nothing to do
        except ValueError as exc:
            # firebase-admin 7.7 under the emulator: after the emulator accepted a *named*
            # task, it drops the first character of the name it echoes and fails to parse
            # it. The task is queued; anything else is a real error.
            if not (is_emulated() and str(exc) == "Invalid resource name format."):
                raise

    return enqueue


@dataclass(frozen=True)
class ChunkOutcome:
    """What one run of one task (one or more chunks) did."""

    outcome: str
    """Each distinct outcome of its chunks, in order, comma-separated: ``delivered``,
    ``resumed`` (an earlier attempt committed its writes), ``duplicate`` (an earlier
    attempt finished it) or ``stopped`` (the job no longer applies)."""
    recipients: int = 0
    acted: int = 0
    next_task: ChunkTask | None = None
    chunks: int = 1


@dataclass
class _TaskRun:
    """What the chunks of one task share."""

    db: firestore.Client
    delivery: Delivery
    pages: _Pages
    cautious: bool = False
    """A page of this task found someone reached before: read first from now on."""


@dataclass(frozen=True)
class _Claimed:
    """A chunk taken for a lease: what is left to do."""

    pending: list[dict[str, Any]]
    shared: dict[str, Any]
    done: int
    """How many of the record's pending list are behind ``pending``."""


@dataclass(frozen=True)
class _Done:
    """One chunk's run: its outcome and the cursor of the chunk after it."""

    outcome: str
    recipients: int = 0
    acted: int = 0
    next_after: str | None = None
    handed_off: bool = False
    """The chunks after it went to a task of their own (see :meth:`Fanout._run_one`)."""


@dataclass(frozen=True)
class _Looked:
    """One chunk as read before anything of it is written: the record an attempt
    committed, or the page and what the delivery prepared of it (neither: the job
    stopped)."""

    record: dict[str, Any] | None = None
    source: Source | None = None
    page: Sequence[Any] = ()
    cursor: str | None = None
    """The page after this one's, as read (None: the last)."""
    prepared: Prepared | None = None

    @property
    def next_after(self) -> str | None:
        """Where the next chunk starts, as far as reading tells."""
        found = self.record.get("next") if self.record is not None else self.cursor
        return found if isinstance(found, str) else None

    @property
    def handed_off(self) -> bool:
        """The record says the chunks after it went to a task of their own."""
        return self.record is not None and bool(self.record.get("handedOff"))


class _Pages:
    """The source query streamed from a cursor, a page at a time.

    One query serves every page of a task while the pages follow each other; a page
    asked for from anywhere else (a chunk an earlier attempt committed has its own
    cursor) reopens it. Holds one page and one item of the next (and, for a source that
    expands its documents, the document being expanded).
    """

    def __init__(self, db: firestore.Client, size: int) -> None:
        self.db, self.size = db, size
        self._stream: Iterator[wire.Snapshot] | None = None
        self._items: Iterator[tuple[str, Any]] | None = None
        self._at: str | None = None
        self._ahead: tuple[str, Any] | None = None

    def page(self, source: Source, after: str | None, left: int) -> tuple[list[Any], str | None]:
        """The ``size`` items after ``after``, and the cursor of the page after them
        (None: this is the last). ``left``: pages this task may still read."""
        if self._items is None or self._at != after:
            self._open(source, after, left)
        assert self._items is not None
        read = [self._ahead] if self._ahead is not None else []
        read += islice(self._items, self.size + 1 - len(read))
        self._ahead = read[self.size] if len(read) > self.size else None
        read = read[: self.size]
        self._at = read[-1][0] if self._ahead is not None else None
        return [item for _, item in read], self._at

    def _open(self, source: Source, after: str | None, left: int) -> None:
        self.close()
        query = source.query.order_by(FieldPath.document_id())
        if source.expand is None:
            if after is not None:
                query = query.start_after({FieldPath.document_id(): self.db.document(after)})
            # Enough for every page the task may read, and one to tell whether more follow.
            self._stream = wire.stream(query.limit(self.size * left + 1))
            self._items = ((s.reference.path, s) for s in self._stream)
            return
        doc, key = _cursor(after)
        if doc is not None:
            query = query.start_at({FieldPath.document_id(): self.db.document(doc)})
        self._stream = wire.stream(query)
        self._items = _entries(self._stream, source.expand, doc, key)

    def close(self) -> None:
        """End the open stream, if any (cancels the query)."""
        stream, self._stream, self._items, self._ahead = self._stream, None, None, None
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def _entries(
    documents: Iterable[wire.Snapshot],
    expand: Callable[[wire.Snapshot], Iterable[tuple[str, Any]]],
    after_doc: str | None,
    after_key: str | None,
) -> Iterator[tuple[str, Entry]]:
    """The documents' entries in order, each with its cursor, from after ``after_key``
    of ``after_doc`` (a document still being read when the cursor was taken)."""
    for snapshot in documents:
        path = snapshot.reference.path
        for key, value in expand(snapshot):
            if path == after_doc and after_key is not None and key <= after_key:
                continue
            yield json.dumps([path, key], ensure_ascii=False), Entry(key, value)


def _cursor(after: str | None) -> tuple[str | None, str | None]:
    """``(document path, key)`` of an expanding source's cursor. One that is not such a
    pair (a task queued before its source expanded) starts from the beginning: the
    delivery's own records keep anyone reached from being reached again."""
    try:
        doc, key = json.loads(after) if after is not None else (None, None)
    except (ValueError, TypeError):
        return None, None
    return (doc, key) if isinstance(doc, str) and isinstance(key, str) else (None, None)


@dataclass
class Fanout:
    """A set of deliveries run through one task queue."""

    deliveries: Mapping[str, Delivery]
    enqueue: Enqueue
    chunk_size: int = DEFAULT_CHUNK
    act_slice: int = DEFAULT_ACT_SLICE
    lease: dt.timedelta = DEFAULT_LEASE
    chunks_per_task: int = DEFAULT_CHUNKS_PER_TASK
    task_budget: dt.timedelta = DEFAULT_TASK_BUDGET

    def start(self, job: str, kind: str, params: Mapping[str, Any] | None = None) -> ChunkTask:
        """Queue a job's first chunk. Starting the same job again does nothing new."""
        if kind not in self.deliveries:
            raise ValueError(f"no delivery of kind {kind!r}")
        task = ChunkTask(job=job, kind=kind, params=dict(params or {}))
        self.enqueue(task)
        return task

    def run_chunk(self, db: firestore.Client, task: ChunkTask) -> ChunkOutcome:
        """Run the task's chunks, from ``task.chunk`` on, then queue the next task.

        A task runs up to ``chunks_per_task`` chunks, one after another, reading them
        through one streamed query, and stops early once ``task_budget`` has passed; the
        chunks after it go to a new task, named after its first chunk. Each chunk is run
        to the end (see the module docstring) before the next writes anything (the next
        is read meanwhile), so a failure is retried from the task's first chunk: the
        chunks done are recognised by their records (one read each) and the one that
        failed resumes where it stopped.

        Raises :class:`ChunkBusy` while another attempt holds a chunk's lease: the queue
        then retries later, and if that attempt died, its lease has run out by then.
        """
        deadline = time.monotonic() + self.task_budget.total_seconds()
        pages = _Pages(db, self.chunk_size)
        run = _TaskRun(db, self.deliveries[task.kind], pages)
        current: ChunkTask | None = task
        outcomes: list[str] = []
        recipients = acted = 0
        ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fanout-read-ahead")
        upcoming: Future[_Looked] | None = None
        try:
            for number in range(self.chunks_per_task):
                assert current is not None
                left = self.chunks_per_task - number
                looked = upcoming.result() if upcoming else self._look(run, current, left=left)
                upcoming = None
                following = self._next(current, looked.next_after)
                if (
                    following is not None
                    and left > 1
                    and not looked.handed_off
                    and time.monotonic() < deadline
                ):
                    # Read the next chunk (its record, page and accounts) while this one
                    # commits and acts: it only reads, and its own commit is checked
                    # like any other (a recipient this chunk reaches fails its create).
                    upcoming = ahead.submit(self._look, run, following, left=left - 1)
                done = self._finish(run, current, looked)
                outcomes.append(done.outcome)
                recipients, acted = recipients + done.recipients, acted + done.acted
                if done.handed_off:  # the chunks after it are another task's
                    current = None
                    break
                current = self._next(current, done.next_after)
                if current is None or time.monotonic() > deadline:
                    break
        finally:
            ahead.shutdown(wait=True, cancel_futures=True)  # it reads from the stream
            pages.close()
        if current is not None:
            self.enqueue(current)
        summary = ",".join(dict.fromkeys(outcomes))
        return ChunkOutcome(summary, recipients, acted, current, len(outcomes))

    # -- the steps ----------------------------------------------------------------------

    def _look(self, run: _TaskRun, task: ChunkTask, *, left: int) -> _Looked:
        """Read one chunk: its record if an attempt committed it, else its page,
        prepared optimistically unless this task met someone reached before."""
        db = run.db
        snapshot = db.collection(CHUNKS).document(task.task_id).get()
        if snapshot.exists:
            return _Looked(record=snapshot.to_dict() or {})
        source = run.delivery.source(db, task)
        if source is None:
            return _Looked()
        page, next_after = run.pages.page(source, task.after, left)
        prepared = run.delivery.prepare(
            db, task, page, context=source.context, optimistic=not run.cautious
        )
        return _Looked(source=source, page=page, cursor=next_after, prepared=prepared)

    def _finish(self, run: _TaskRun, task: ChunkTask, looked: _Looked) -> _Done:
        """Run one chunk read by :meth:`_look`: commit its record (or go on from the one
        found), then act on what is pending."""
        db = run.db
        ref = db.collection(CHUNKS).document(task.task_id)
        if looked.record is not None:
            record, outcome = looked.record, "resumed"
        else:
            committed = self._commit(run, task, ref, looked)
            if committed is None:
                # Nothing is recorded: if the job's event holds again later (the listing
                # is back on the market), a re-run of this chunk reads it afresh.
                return _Done("stopped")
            record, outcome = committed
        next_after = record.get("next")
        next_after = next_after if isinstance(next_after, str) else None
        recipients = int(record.get("recipients", 0))
        handed_off = bool(record.get("handedOff"))
        if record.get("state") == "done":
            finished = "delivered" if outcome == "delivered" else "duplicate"
            return _Done(finished, recipients, 0, next_after, handed_off)
        if outcome == "delivered":  # committed by this attempt, which holds its lease
            claimed: _Claimed | None = _Claimed(
                list(record["pending"]), dict(record["shared"] or {}), 0
            )
        else:
            claimed = self._claim(db, ref)
        if claimed is None:
            return _Done("duplicate", recipients, 0, next_after, handed_off)
        try:
            acted = self._act(db, run.delivery, task, ref, claimed)
        except BaseException:
            # This chunk waits for the queue's retry (for as long as a provider is down,
            # perhaps until the queue gives up): the chunks after it must not wait with
            # it. They go on in a task of their own, and the record says so, so that the
            # retry of this task stops here and no chunk is run by two tasks.
            following = self._next(task, next_after)
            if following is not None and not handed_off:
                self.enqueue(following)
                ref.update({"handedOff": True})
            raise
        return _Done(outcome, recipients, acted, next_after, handed_off)

    def _commit(
        self, run: _TaskRun, task: ChunkTask, ref: firestore.DocumentReference, looked: _Looked
    ) -> tuple[dict[str, Any], str] | None:
        """Commit the prepared page's writes and the record together: (record, outcome).

        The page is first prepared optimistically (nobody on it reached before): the
        documents that say "reached" are created, not read. If one exists (a user with
        two matching sources, a job run again), the batch fails whole and the page is
        prepared again reading them; the rest of the task then reads from the start.
        """
        db = run.db
        source, page, prepared = looked.source, looked.page, looked.prepared
        if source is None or prepared is None:
            return None
        while True:
            record = self._record(task, prepared=prepared, next_after=looked.cursor)
            batch = wire.Batch(db)
            for target, data in prepared.creates:
                batch.create(target, data)
            for target, data in prepared.writes:
                batch.set(target, data, merge=True)
            batch.create(ref, record)
            try:
                batch.commit()
            except AlreadyExists:
                # Atomic: none of ours landed. Either a concurrent attempt of this chunk
                # committed first (go on from its record), or one of the page's
                # recipients was reached before (prepare again, reading).
                existing = ref.get()
                if existing.exists:
                    return existing.to_dict() or {}, "resumed"
                if not prepared.creates:
                    raise
                run.cautious = True
                prepared = run.delivery.prepare(
                    db, task, page, context=source.context, optimistic=False
                )
                continue
            return record, "delivered"

    def _record(
        self, task: ChunkTask, *, prepared: Prepared, next_after: str | None
    ) -> dict[str, Any]:
        """The chunk's record as committed: held by the committing attempt for a lease
        if anything is pending (it goes on to act without claiming it again)."""
        now = dt.datetime.now(dt.UTC)
        state = "written" if prepared.pending else "done"
        lease_until = now + self.lease if prepared.pending else None
        return {
            "job": task.job,
            "kind": task.kind,
            "chunk": task.chunk,
            "state": state,
            "recipients": prepared.recipients,
            "pending": prepared.pending,
            "done": 0,
            "shared": prepared.shared,
            "next": next_after,
            "acted": 0,
            "leaseUntil": lease_until,
            "createdAt": firestore.SERVER_TIMESTAMP,
            "expiresAt": now + RECORD_TTL,
        }

    def _next(self, task: ChunkTask, next_after: str | None) -> ChunkTask | None:
        if next_after is None:
            return None
        return task.model_copy(update={"chunk": task.chunk + 1, "after": next_after})

    def _claim(self, db: firestore.Client, ref: firestore.DocumentReference) -> _Claimed | None:
        """Take the record for a lease: what is left to do, or None if it is done.

        Raises :class:`ChunkBusy` if another attempt holds a live lease.
        """

        @firestore.transactional
        def claim(transaction: firestore.Transaction) -> _Claimed | None:
            record = ref.get(transaction=transaction).to_dict() or {}
            now = dt.datetime.now(dt.UTC)
            lease_until = record.get("leaseUntil")
            if record.get("state") == "done":
                return None
            if isinstance(lease_until, dt.datetime) and lease_until > now:
                raise ChunkBusy(f"{ref.id} is held until {lease_until.isoformat()}")
            transaction.update(ref, {"leaseUntil": now + self.lease})
            done = int(record.get("done") or 0)
            pending = list(record.get("pending") or [])[done:]
            return _Claimed(pending, dict(record.get("shared") or {}), done)

        result: _Claimed | None = claim(db.transaction())
        return result

    def _act(
        self,
        db: firestore.Client,
        delivery: Delivery,
        task: ChunkTask,
        ref: firestore.DocumentReference,
        claimed: _Claimed,
    ) -> int:
        """Act slice by slice; after each, the record says how far it got (``done``, an
        index into its pending list, which is rewritten only when some must be retried)."""
        acted, done, pending = 0, claimed.done, claimed.pending
        while pending:
            part, rest = pending[: self.act_slice], pending[self.act_slice :]
            try:
                retry = list(delivery.act(db, task, part, shared=claimed.shared))
            except BaseException:
                # Let the next attempt in at once (the queue's backoff paces it).
                ref.update({"leaseUntil": None})
                raise
            acted += len(part) - len(retry)
            pending, done = rest, done + len(part)
            now = dt.datetime.now(dt.UTC)
            update: dict[str, Any] = {
                "done": done,
                "acted": firestore.Increment(len(part) - len(retry)),
                "leaseUntil": now + self.lease,  # renewed: a live attempt keeps its chunk
            }
            if retry:
                # Some side effects failed for a reason that may pass (a provider hiccup):
                # record what is left, free the chunk, and have the queue retry it later.
                ref.update(update | {"pending": retry + rest, "done": 0, "leaseUntil": None})
                raise ChunkRetry(f"{len(retry)} side effects to retry")
            if not pending:
                update |= {"state": "done", "pending": [], "done": 0, "leaseUntil": None}
            ref.update(update)
        return acted


class ChunkBusy(RuntimeError):  # noqa: N818 (a state, not a failure)
    """Another attempt holds this chunk; the queue should retry later."""


class ChunkRetry(RuntimeError):  # noqa: N818
    """Some of a chunk's side effects must be tried again later."""


def task_function(
    fanout_of: Callable[[], Fanout],
    *,
    max_attempts: int = 20,
    max_concurrent: int = 20,
    max_per_second: int = 50,
    **task_options: Any,
) -> Callable[[Callable[..., Any]], Any]:
    """Declare the Cloud Tasks function that runs a :class:`Fanout`'s chunks.

    The decorated function is only the deployed name; the body is the engine. Retries:
    exponential backoff from 1 s to 5 min, ``max_attempts`` times; the rate limits keep a
    large job from starving everything else of Firestore write capacity.
    """

    def decorate(named: Callable[..., Any]) -> Any:
        function_name = named.__name__

        def run(request: https_fn.CallableRequest[Any]) -> dict[str, Any]:
            started = time.perf_counter()
            try:
                task = ChunkTask.model_validate(request.data)
            except ValidationError as exc:
                # A malformed payload can never succeed: acknowledge it, loudly.
                issues = field_issues(exc)
                logs.error("fan-out task refused", function=function_name, issues=issues)
                return {"outcome": "refused"}
            try:
                result = fanout_of().run_chunk(default_db(), task)
            except (ChunkBusy, ChunkRetry) as exc:
                logs.info(
                    "fan-out chunk deferred",
                    function=function_name,
                    job=task.job,
                    chunk=task.chunk,
                    reason=str(exc),
                )
                # 503: the queue retries with backoff (no traceback: nothing is wrong).
                raise https_fn.HttpsError(https_fn.FunctionsErrorCode.UNAVAILABLE, "retry") from exc
            except Exception as exc:
                log_unexpected(
                    exc, {"function": function_name, "job": task.job, "chunk": task.chunk}
                )
                raise
            logs.info(
                "fan-out chunk",
                function=function_name,
                job=task.job,
                chunk=task.chunk,
                outcome=result.outcome,
                recipients=result.recipients,
                acted=result.acted,
                latencyMs=round((time.perf_counter() - started) * 1000, 1),
            )
            return {"outcome": result.outcome, "recipients": result.recipients}

        run.__name__ = run.__qualname__ = function_name
        run.__doc__ = named.__doc__
        return tasks_fn.on_task_dispatched(
            retry_config=options.RetryConfig(
                max_attempts=max_attempts, min_backoff_seconds=1, max_backoff_seconds=300
            ),
            rate_limits=options.RateLimits(
                max_concurrent_dispatches=max_concurrent, max_dispatches_per_second=max_per_second
            ),
            **task_options,
        )(run)

    return decorate
