"""The fan-out engine: a task runs its chunks, each committed with its record, then acted on.

See :mod:`firekit.fanout` for the whole story; here are the steps of one chunk, recorded
in a ``_fanoutChunks/{job}-{n}`` document:

1. **Prepare and commit.** The delivery turns the chunk's page into writes and *pending*
   side effects; the writes and the record (the pending list, what the side effects
   share, the next page's cursor) commit in one batch, with ``create`` on the record, so
   two attempts of one chunk cannot both commit. A page is first prepared
   optimistically (:meth:`Delivery.prepare`): if a document it creates exists, the batch
   writes nothing and the page is prepared again, reading.
2. **Act**, in slices of ``act_slice``, the record saying after each how far it got, so
   a retry resumes with what is left. The attempt that commits the record holds it for
   a lease from that commit (any other claims it in a transaction), renewed after every
   slice: a duplicate delivery meanwhile gets :class:`ChunkBusy` (503, the queue comes
   back later), and the retry of an attempt that died takes over once the lease ran out.
   The lease is the record's ``leaseUntil`` and not a :mod:`firekit.leases` lock, because
   it must be taken in the very batch that commits the page and renewed in the very
   update that records each slice, which a lock document of its own would turn into two
   more writes per chunk and one more per slice.
3. **Go on** to the next chunk (read while this one commits and acts), or at the end of
   the task queue the task of the next chunk. A chunk whose side effects fail first
   hands the chunks after it to a task of their own (and says so in its record, where
   the retry of its task stops), so a provider outage delays no one else and no chunk
   is run by two tasks.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore

from firekit import wire
from firekit.fanout.pages import Pages, Source
from firekit.fanout.queue import ChunkBusy, ChunkRetry, Enqueue, Task
from firekit.transactions import run_transaction

CHUNKS = "_fanoutChunks"
RECORD_TTL = dt.timedelta(days=14)
"""Chunk records outlive any retry (Cloud Tasks gives up after its retry window)."""
CHUNK_SIZE = 200
"""Recipients per chunk: one batch of at most ~2 writes each stays under 500 writes."""
ACT_SLICE = 100
CHUNKS_PER_TASK = 50
"""Chunks one task runs through one read of its source (10,000 recipients at 200)."""
TASK_BUDGET = dt.timedelta(minutes=4)
"""A task starts no new chunk after this: well inside a task function's timeout."""
LEASE = dt.timedelta(minutes=2)
"""How long an attempt holds a chunk without progress: renewed after every slice, so a
live attempt keeps it and a dead one's retry waits at most this long."""


@dataclass
class Prepared:
    """What a page of recipients turns into."""

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


class Delivery(Protocol):
    """A kind of fan-out: where recipients come from and what each page turns into."""

    def source(self, db: firestore.Client, task: Task) -> Source | None:
        """Asked before every chunk: the recipients, or None if the job no longer
        applies (e.g. the listing left the market): it then ends without delivering."""

    def prepare(
        self,
        db: firestore.Client,
        task: Task,
        page: Sequence[Any],
        *,
        context: Any,
        optimistic: bool,
    ) -> Prepared:
        """Writes and pending side effects for one page of the source's recipients
        (reads allowed, no writes); ``context`` is what :meth:`source` found.

        ``optimistic``: assume no recipient of the page was reached before, and put the
        documents whose existence would say otherwise in ``creates`` instead of reading
        them; the engine prepares the page again with ``optimistic=False`` if one exists.
        """

    def act(
        self,
        db: firestore.Client,
        task: Task,
        pending: Sequence[dict[str, Any]],
        *,
        shared: Mapping[str, Any],
    ) -> Sequence[dict[str, Any]]:
        """Perform some pending side effects (``shared``: what the page's have in common);
        return those to try again later (the task is then retried for them alone);
        raise to retry the whole slice."""


@dataclass(frozen=True)
class TaskOutcome:
    """What one run of one task (one or more chunks) did."""

    outcome: str
    """Each distinct outcome of its chunks, in order, comma-separated: ``delivered``,
    ``resumed`` (an earlier attempt committed its writes), ``duplicate`` (an earlier
    attempt finished it) or ``stopped`` (the job no longer applies)."""
    recipients: int = 0
    acted: int = 0
    next_task: Task | None = None
    chunks: int = 1


@dataclass
class _TaskRun:
    """What the chunks of one task share."""

    db: firestore.Client
    delivery: Delivery
    pages: Pages
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
    """The chunks after it went to a task of their own (see :meth:`Fanout._finish`)."""


@dataclass(frozen=True)
class _Looked:
    """One chunk as read before anything of it is written: the record an attempt
    committed, or the page and what the delivery prepared of it (neither: the job
    stopped)."""

    record: dict[str, Any] | None = None
    source: Source | None = None
    page: Sequence[Any] = ()
    cursor: str | None = None
    """The cursor of the page after this one's, as read (None: the last)."""
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


def _following(chunk: Task, next_after: str | None) -> Task | None:
    """The task of the chunk after ``chunk`` (None: it was the last)."""
    return None if next_after is None else chunk.starting_at(chunk.first_chunk + 1, next_after)


@dataclass
class Fanout:
    """A set of deliveries run through one task queue."""

    deliveries: Mapping[str, Delivery]
    enqueue: Enqueue
    chunk_size: int = CHUNK_SIZE
    act_slice: int = ACT_SLICE
    lease: dt.timedelta = LEASE
    chunks_per_task: int = CHUNKS_PER_TASK
    task_budget: dt.timedelta = TASK_BUDGET

    def start(self, job: str, kind: str, params: Mapping[str, Any] | None = None) -> Task:
        """Queue a job's first task. Starting the same job again does nothing new."""
        if kind not in self.deliveries:
            raise ValueError(f"no delivery of kind {kind!r}")
        task = Task(job=job, kind=kind, params=dict(params or {}))
        self.enqueue(task)
        return task

    def run_task(self, db: firestore.Client, task: Task) -> TaskOutcome:
        """Run the task's chunks, from ``task.first_chunk`` on, then queue the next task.

        A task runs up to ``chunks_per_task`` chunks, one after another, through one read
        of the source, and stops early once ``task_budget`` has passed; the chunks after
        it go to a new task, named after its first chunk. Each chunk is run to the end
        before the next writes anything (the next is read meanwhile), so a failure is
        retried from the task's first chunk: the chunks done are recognised by their
        records (one read each) and the one that failed resumes where it stopped.

        Raises :class:`ChunkBusy` while another attempt holds a chunk's lease: the queue
        then retries later, and if that attempt died, its lease has run out by then.
        """
        run = _TaskRun(db, self.deliveries[task.kind], Pages(self.chunk_size))
        ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fanout-read-ahead")
        try:
            done, rest = self._chunks(run, task, ahead)
        finally:
            ahead.shutdown(wait=True, cancel_futures=True)  # it reads from the source
            run.pages.close()
        if rest is not None:
            self.enqueue(rest)
        summary = ",".join(dict.fromkeys(d.outcome for d in done))
        recipients, acted = sum(d.recipients for d in done), sum(d.acted for d in done)
        return TaskOutcome(summary, recipients, acted, rest, len(done))

    def _chunks(
        self, run: _TaskRun, task: Task, ahead: ThreadPoolExecutor
    ) -> tuple[list[_Done], Task | None]:
        """Run the task's chunks in turn: what each did, and the task of the rest."""
        deadline = time.monotonic() + self.task_budget.total_seconds()
        chunk: Task | None = task
        done: list[_Done] = []
        upcoming: Future[_Looked] | None = None
        for number in range(self.chunks_per_task):
            assert chunk is not None
            left = self.chunks_per_task - number
            looked = upcoming.result() if upcoming else self._look(run, chunk, left=left)
            following = _following(chunk, looked.next_after)
            go_on = left > 1 and not looked.handed_off and time.monotonic() < deadline
            # Read the next chunk (its record, page and what the delivery reads) while
            # this one commits and acts: it only reads, and its own commit is checked
            # like any other (a recipient this chunk reaches fails its create).
            upcoming = (
                ahead.submit(self._look, run, following, left=left - 1)
                if following is not None and go_on
                else None
            )
            done.append(self._finish(run, chunk, looked))
            if done[-1].handed_off:  # the chunks after it are another task's
                return done, None
            chunk = _following(chunk, done[-1].next_after)
            if chunk is None or time.monotonic() > deadline:
                break
        return done, chunk

    # -- the steps ----------------------------------------------------------------------

    def _look(self, run: _TaskRun, chunk: Task, *, left: int) -> _Looked:
        """Read one chunk: its record if an attempt committed it, else its page,
        prepared optimistically unless this task met someone reached before."""
        db = run.db
        snapshot = db.collection(CHUNKS).document(chunk.task_id).get()
        if snapshot.exists:
            return _Looked(record=snapshot.to_dict() or {})
        source = run.delivery.source(db, chunk)
        if source is None:
            return _Looked()
        page, cursor = run.pages.page(source, chunk.after, left)
        prepared = run.delivery.prepare(
            db, chunk, page, context=source.context, optimistic=not run.cautious
        )
        return _Looked(source=source, page=page, cursor=cursor, prepared=prepared)

    def _finish(self, run: _TaskRun, chunk: Task, looked: _Looked) -> _Done:
        """Run one chunk read by :meth:`_look`: commit its record (or go on from the one
        found), then act on what is pending."""
        ref = run.db.collection(CHUNKS).document(chunk.task_id)
        if looked.record is not None:
            record, outcome = looked.record, "resumed"
        else:
            committed = self._commit(run, chunk, ref, looked)
            if committed is None:
                # Nothing is recorded: if the job's event holds again later (the listing
                # is back on the market), a re-run of this chunk reads it afresh.
                return _Done("stopped")
            record, outcome = committed
        found = _Looked(record=record)
        recipients = int(record.get("recipients", 0))
        finished = _Done(outcome, recipients, 0, found.next_after, found.handed_off)
        if record.get("state") == "done":
            return finished if outcome == "delivered" else _duplicate(finished)
        claimed = (
            _Claimed(list(record["pending"]), dict(record["shared"] or {}), 0)
            if outcome == "delivered"  # committed by this attempt, which holds its lease
            else self._claim(run.db, ref)
        )
        if claimed is None:
            return _duplicate(finished)
        try:
            acted = self._act(run, chunk, ref, claimed)
        except BaseException:
            self._hand_off(chunk, ref, finished)
            raise
        return _Done(outcome, recipients, acted, finished.next_after, finished.handed_off)

    def _hand_off(self, chunk: Task, ref: firestore.DocumentReference, done: _Done) -> None:
        """This chunk waits for the queue's retry (for as long as a provider is down,
        perhaps until the queue gives up): the chunks after it must not wait with it.
        They go on in a task of their own, and the record says so, so that the retry of
        this task stops here and no chunk is run by two tasks."""
        following = _following(chunk, done.next_after)
        if following is not None and not done.handed_off:
            self.enqueue(following)
            ref.update({"handedOff": True})

    def _commit(
        self, run: _TaskRun, chunk: Task, ref: firestore.DocumentReference, looked: _Looked
    ) -> tuple[dict[str, Any], str] | None:
        """Commit the prepared page's writes and the record together: (record, outcome).

        If a document the optimistic page creates exists (a user with two matching
        entries, a job run again), the batch fails whole and the page is prepared again
        reading them; the rest of the task then reads first from the start.
        """
        source, prepared = looked.source, looked.prepared
        if source is None or prepared is None:
            return None
        while True:
            record = self._record(chunk, prepared=prepared, next_after=looked.cursor)
            batch = wire.Batch(run.db)
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
                    run.db, chunk, looked.page, context=source.context, optimistic=False
                )
                continue
            return record, "delivered"

    def _record(self, chunk: Task, *, prepared: Prepared, next_after: str | None) -> dict[str, Any]:
        """The chunk's record as committed: held by the committing attempt for a lease
        if anything is pending (it goes on to act without claiming it again)."""
        now = dt.datetime.now(dt.UTC)
        return {
            "job": chunk.job,
            "kind": chunk.kind,
            "chunk": chunk.first_chunk,
            "state": "written" if prepared.pending else "done",
            "recipients": prepared.recipients,
            "pending": prepared.pending,
            "done": 0,
            "shared": prepared.shared,
            "next": next_after,
            "acted": 0,
            "leaseUntil": now + self.lease if prepared.pending else None,
            "createdAt": firestore.SERVER_TIMESTAMP,
            "expiresAt": now + RECORD_TTL,
        }

    def _claim(self, db: firestore.Client, ref: firestore.DocumentReference) -> _Claimed | None:
        """Take the record for a lease: what is left to do, or None if it is done.

        Raises :class:`ChunkBusy` if another attempt holds a live lease.
        """

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

        return run_transaction(db, claim, busy_message=f"{ref.id} is being claimed")

    def _act(
        self, run: _TaskRun, chunk: Task, ref: firestore.DocumentReference, claimed: _Claimed
    ) -> int:
        """Act slice by slice; after each, the record says how far it got (``done``, an
        index into its pending list, which is rewritten only when some must be retried)."""
        acted, done, pending = 0, claimed.done, claimed.pending
        while pending:
            part, pending = pending[: self.act_slice], pending[self.act_slice :]
            try:
                retry = list(run.delivery.act(run.db, chunk, part, shared=claimed.shared))
            except BaseException:
                ref.update({"leaseUntil": None})  # let the next attempt in at once
                raise
            acted, done = acted + len(part) - len(retry), done + len(part)
            update: dict[str, Any] = {
                "done": done,
                "acted": firestore.Increment(len(part) - len(retry)),
                "leaseUntil": dt.datetime.now(dt.UTC) + self.lease,  # a live attempt keeps it
            }
            if retry:
                # Some side effects failed for a reason that may pass (a provider hiccup):
                # record what is left, free the chunk, and have the queue retry it later.
                ref.update(update | {"pending": retry + pending, "done": 0, "leaseUntil": None})
                raise ChunkRetry(f"{len(retry)} side effects to retry")
            if not pending:
                update |= {"state": "done", "pending": [], "done": 0, "leaseUntil": None}
            ref.update(update)
        return acted


def _duplicate(done: _Done) -> _Done:
    """An earlier attempt finished the chunk: nothing acted now."""
    return _Done("duplicate", done.recipients, 0, done.next_after, done.handed_off)
