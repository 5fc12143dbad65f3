"""``firekit.fanout``'s engine against the Firestore emulator, with a delivery of its own.

The delivery (:class:`Scratch`) reaches the documents of a scratch collection: a page
turns into one ``reached`` document per recipient (created, so its existence says "was
reached") and one pending side effect each, which it performs in memory and can make
fail. The queue is a list: a test decides when a task runs, runs it twice, or lets it
fail and runs it again (what Cloud Tasks does on a 5xx).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from google.cloud import firestore

from firekit import fanout, wire

PEOPLE = "_testPeople"
REACHED = "_testReached"


class BoomError(RuntimeError):
    """An injected failure."""


@dataclass
class Scratch:
    """A delivery to the documents of :data:`PEOPLE`: reached once each, acted on in memory."""

    db: firestore.Client
    acted: list[str] = field(default_factory=list)
    fail_on_act: int | None = None
    """The act call (1-based) that raises."""
    retry_once: set[str] = field(default_factory=set)
    """Recipients whose side effect fails transiently the first time."""
    stopped: bool = False
    prepared: list[bool] = field(default_factory=list)
    """``optimistic`` of each prepare call."""
    during_act: Any = None
    """Called at the first act (a duplicate delivery arriving meanwhile)."""
    calls: int = 0

    def source(self, db: firestore.Client, task: fanout.Task) -> fanout.Source | None:
        if self.stopped:
            return None
        return fanout.Source(fanout.documents(db, db.collection(PEOPLE)), context=task.job)

    def prepare(
        self,
        db: firestore.Client,
        task: fanout.Task,
        page: Sequence[wire.Document],
        *,
        context: Any,
        optimistic: bool,
    ) -> fanout.Prepared:
        self.prepared.append(optimistic)
        refs = {person.id: db.document(f"{REACHED}/{person.id}") for person in page}
        known = (
            set()
            if optimistic
            else {s.id for s in wire.get_all(db, list(refs.values())) if s.exists}
        )
        prepared = fanout.Prepared(shared={"job": context})
        for person, ref in refs.items():
            if person in known:
                continue
            (prepared.creates if optimistic else prepared.writes).append((ref, {"job": context}))
            prepared.pending.append({"id": person})
            prepared.recipients += 1
        return prepared

    def act(
        self,
        db: firestore.Client,
        task: fanout.Task,
        pending: Sequence[dict[str, Any]],
        *,
        shared: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        self.calls += 1
        if self.calls == 1 and self.during_act is not None:
            self.during_act()
        if self.calls == self.fail_on_act:
            raise BoomError("the provider is down")
        retry = [p for p in pending if p["id"] in self.retry_once]
        self.retry_once -= {p["id"] for p in retry}
        self.acted += [p["id"] for p in pending if p not in retry]
        return retry


@dataclass
class Queue:
    """Cloud Tasks, as a list: a task id is queued once; tasks run when a test says so."""

    tasks: list[fanout.Task] = field(default_factory=list)
    ran: int = 0

    def __call__(self, task: fanout.Task) -> None:
        if task.task_id not in {t.task_id for t in self.tasks}:
            self.tasks.append(task)

    def drain(
        self,
        run: Callable[[fanout.Task], fanout.TaskOutcome],
        failures: tuple[type[BaseException], ...],
    ) -> list[str]:
        """Run the tasks queued since the last drain, in order (``<first chunk>:<outcome>``);
        one that fails with one of ``failures`` goes to the back of the queue, as a retry."""
        outcomes = []
        while self.ran < len(self.tasks):
            task = self.tasks[self.ran]
            try:
                outcomes.append(f"{task.first_chunk}:{run(task).outcome}")
            except failures:
                outcomes.append(f"{task.first_chunk}:failed")
                self.tasks.append(self.tasks.pop(self.ran))
                continue
            self.ran += 1
        return outcomes


class Harness:
    """``people`` recipients, chunks of 3, slices of 2, ``per_task`` chunks a task."""

    def __init__(self, db: firestore.Client, *, people: int, per_task: int = 2) -> None:
        self.db, self.delivery, self.queue = db, Scratch(db), Queue()
        self.people = [f"p{n:02d}" for n in range(people)]
        batch = db.batch()
        for person in self.people:
            batch.set(db.document(f"{PEOPLE}/{person}"), {"name": person})
        batch.commit()
        self.fanout = fanout.Fanout(
            {"scratch": self.delivery},
            self.queue,
            chunk_size=3,
            act_slice=2,
            chunks_per_task=per_task,
        )

    def run(self, task: fanout.Task) -> fanout.TaskOutcome:
        return self.fanout.run_task(self.db, task)

    def drain(self) -> list[str]:
        return self.queue.drain(self.run, (BoomError, fanout.ChunkRetry, fanout.ChunkBusy))

    def record(self, chunk: int, job: str = "job") -> dict[str, Any]:
        return (
            self.db.document(f"{fanout.CHUNKS}/{fanout.chunk_id(job, chunk)}").get().to_dict() or {}
        )

    def reached(self) -> set[str]:
        return {s.id for s in self.db.collection(REACHED).stream()}


@pytest.fixture(params=["wire", "public SDK"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both paths of the engine's reads and writes (``FANOUT_WIRE``)."""
    monkeypatch.setenv(wire.SETTING, "1" if request.param == "wire" else "0")
    return str(request.param)


def test_each_recipient_is_reached_once_through_tasks_of_several_chunks(
    firestore_db: firestore.Client, path: str
) -> None:
    h = Harness(firestore_db, people=10)  # 4 chunks of 3, 2 chunks a task

    h.fanout.start("job", "scratch")
    outcomes = h.drain()

    assert outcomes == ["0:delivered", "2:delivered"]
    assert Counter(h.delivery.acted) == Counter(h.people)
    assert h.reached() == set(h.people)
    # Each chunk's record holds the cursor the next starts from; the second task was
    # queued with the cursor the second chunk's page ended at.
    assert [h.record(n)["recipients"] for n in range(4)] == [3, 3, 3, 1]
    assert h.queue.tasks[1].after == h.record(1)["next"] is not None
    assert h.record(3)["next"] is None
    assert {h.record(n)["state"] for n in range(4)} == {"done"}
    assert h.delivery.prepared == [True] * 4  # nobody reached before: no reads


def test_a_duplicate_task_reaches_nobody_again(firestore_db: firestore.Client) -> None:
    h = Harness(firestore_db, people=7)
    first = h.fanout.start("job", "scratch")
    h.drain()

    again = h.run(first)
    tail = h.run(h.queue.tasks[1])

    assert (again.outcome, again.chunks, again.acted) == ("duplicate", 2, 0)
    assert again.next_task is not None and again.next_task.task_id == h.queue.tasks[1].task_id
    assert (tail.outcome, tail.acted) == ("duplicate", 0)
    assert Counter(h.delivery.acted) == Counter(h.people)


def test_a_retry_resumes_where_the_failed_attempt_stopped(firestore_db: firestore.Client) -> None:
    h = Harness(firestore_db, people=3, per_task=1)
    h.delivery.fail_on_act = 2  # the chunk's second slice: its first two were acted on
    task = h.fanout.start("job", "scratch")

    with pytest.raises(BoomError):
        h.run(task)
    record = h.record(0)
    retried = h.run(task)

    assert (record["state"], record["done"], record["leaseUntil"]) == ("written", 2, None)
    assert (retried.outcome, retried.acted) == ("resumed", 1)
    assert Counter(h.delivery.acted) == Counter(h.people)


def test_a_failing_chunk_hands_the_chunks_after_it_to_a_task_of_their_own(
    firestore_db: firestore.Client,
) -> None:
    h = Harness(firestore_db, people=9, per_task=3)
    h.delivery.fail_on_act = 3  # chunk 1's first slice

    h.fanout.start("job", "scratch")
    outcomes = h.drain()

    # Chunk 2 went on in its own task; the retry of the first finds chunk 0 done, resumes
    # chunk 1 and stops there (the record says the rest is another task's).
    assert outcomes == ["0:failed", "2:delivered", "0:duplicate,resumed"]
    assert [t.first_chunk for t in h.queue.tasks] == [2, 0]
    assert h.record(1)["handedOff"] is True
    assert Counter(h.delivery.acted) == Counter(h.people)


def test_side_effects_worth_retrying_are_retried_alone(firestore_db: firestore.Client) -> None:
    h = Harness(firestore_db, people=3, per_task=1)
    h.delivery.retry_once = {"p01"}
    task = h.fanout.start("job", "scratch")

    with pytest.raises(fanout.ChunkRetry):
        h.run(task)
    pending = h.record(0)["pending"]
    retried = h.run(task)

    assert pending == [{"id": "p01"}, {"id": "p02"}]  # the retry, then what was not tried
    assert (retried.outcome, retried.acted) == ("resumed", 2)
    assert Counter(h.delivery.acted) == Counter(h.people)


def test_a_duplicate_delivery_while_the_first_acts_is_told_to_come_back(
    firestore_db: firestore.Client,
) -> None:
    h = Harness(firestore_db, people=3, per_task=1)
    task = h.fanout.start("job", "scratch")
    answers: list[str] = []

    def duplicate() -> None:
        try:
            h.run(task)
            answers.append("ran")
        except fanout.ChunkBusy:
            answers.append("busy")

    h.delivery.during_act = duplicate
    first = h.run(task)

    assert answers == ["busy"]  # the committing attempt holds the lease from its commit
    assert (first.outcome, first.acted) == ("delivered", 3)
    assert (h.record(0)["state"], h.record(0)["leaseUntil"]) == ("done", None)


def test_an_attempt_that_died_holding_its_chunk_is_taken_over_after_its_lease(
    firestore_db: firestore.Client,
) -> None:
    h = Harness(firestore_db, people=3, per_task=1)
    h.delivery.fail_on_act = 1
    task = h.fanout.start("job", "scratch")
    with pytest.raises(BoomError):
        h.run(task)
    # As if that attempt had died instead (a lost instance): its lease stays.
    ref = h.db.document(f"{fanout.CHUNKS}/{task.task_id}")
    ref.update({"leaseUntil": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)})

    with pytest.raises(fanout.ChunkBusy):
        h.run(task)
    ref.update({"leaseUntil": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)})
    later = h.run(task)

    assert (later.outcome, later.acted) == ("resumed", 3)
    assert Counter(h.delivery.acted) == Counter(h.people)


def test_a_page_with_someone_reached_before_is_prepared_again_reading(
    firestore_db: firestore.Client, path: str
) -> None:
    h = Harness(firestore_db, people=6)
    h.db.document(f"{REACHED}/p04").set({"job": "an earlier one"})

    h.fanout.start("job", "scratch")
    h.drain()

    # Chunk 0 optimistic; chunk 1 (p03-p05) failed its creates and read; the task reads
    # first from then on.
    assert h.delivery.prepared == [True, True, False]
    assert sorted(h.delivery.acted) == ["p00", "p01", "p02", "p03", "p05"]
    assert [h.record(n)["recipients"] for n in range(2)] == [3, 2]


def test_a_job_that_no_longer_applies_stops_and_records_nothing(
    firestore_db: firestore.Client,
) -> None:
    h = Harness(firestore_db, people=4)
    h.delivery.stopped = True

    h.fanout.start("job", "scratch")
    assert h.drain() == ["0:stopped"]
    h.delivery.stopped = False  # it applies again: a re-run reads it afresh
    assert h.run(h.queue.tasks[0]).outcome == "delivered"

    assert Counter(h.delivery.acted) == Counter(h.people)


def test_a_spent_time_budget_queues_the_rest_as_a_task_named_after_its_first_chunk(
    firestore_db: firestore.Client,
) -> None:
    h = Harness(firestore_db, people=9, per_task=3)
    h.fanout.task_budget = dt.timedelta(0)

    h.fanout.start("job", "scratch")
    outcomes = h.drain()

    assert outcomes == ["0:delivered", "1:delivered", "2:delivered"]
    assert [t.task_id for t in h.queue.tasks] == [fanout.chunk_id("job", n) for n in range(3)]


def test_a_malformed_payload_is_refused_by_the_task_model() -> None:
    for bad in (
        {"job": "a/b", "kind": "scratch"},
        {"job": "x", "kind": "k", "first_chunk": -1},
        {"job": "x", "kind": "k", "chunk": 1},  # not a field of a task
        {},
    ):
        with pytest.raises(ValueError):
            fanout.Task.model_validate(bad)
