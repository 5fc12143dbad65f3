"""document_trigger, fed CloudEvents shaped as the emulator's through the SDK's handler."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from google.cloud import firestore
from pydantic import BaseModel, Field

from firekit import bootstrap, ledger
from firekit.events import DocumentChange, EffectMode, Effects, EventInProgress, document_trigger
from firekit.ledger import COLLECTION as LEDGER
from firekit.ledger import LedgerState, record_id
from pytest_firebase.events import firestore_event, redelivery

from .conftest import LogReader


class Note(BaseModel):
    title: str = Field(min_length=1)
    body: str = ""
    words: int | None = None  # owned: written back by the handler


def counter(db: firestore.Client, note_id: str) -> int:
    snap = db.collection("noteCounters").document(note_id).get()
    return int((snap.to_dict() or {}).get("changes", 0)) if snap.exists else 0


def ledger_record(db: firestore.Client, function: str, event_id: str) -> dict[str, Any]:
    snap = db.collection(LEDGER).document(record_id(function, event_id)).get()
    return snap.to_dict() or {}


@document_trigger("notes/{noteId}", model=Note, owned_fields={"words", "updatedAt"})
def count_note_changes(change: DocumentChange[Note], effects: Effects) -> None:
    """Transactional: a non-idempotent increment plus a write-back of owned fields."""
    note_id = change.params["noteId"]
    effects.tx.set(
        effects.db.collection("noteCounters").document(note_id),
        {"changes": firestore.Increment(1)},
        merge=True,
    )
    if change.after is not None:
        owned = {"words": len(change.after.body.split()), "updatedAt": firestore.SERVER_TIMESTAMP}
        effects.tx.set(effects.db.document(change.document), owned, merge=True)


SENT: list[tuple[str, str]] = []
SEND_GATE: dict[str, Callable[[], object]] = {}
FAILURES: Counter[str] = Counter()


@document_trigger("mail/{mailId}", model=Note, mode=EffectMode.CLAIM, lease_seconds=120)
def send_mail(change: DocumentChange[Note], effects: Effects) -> None:
    """Claim mode: the 'side effect' is an append to SENT (think: an email provider)."""
    mail_id = change.params["mailId"]
    SEND_GATE.get(mail_id, lambda: None)()
    if FAILURES[mail_id] > 0:
        FAILURES[mail_id] -= 1
        raise ConnectionError("provider unavailable")
    SENT.append((mail_id, effects.idempotency_key()))


@document_trigger(
    "flaky/{id}", model=Note, mode="claim", retry=True, max_attempts=2, lease_seconds=60
)
def flaky_with_retry(change: DocumentChange[Note], effects: Effects) -> None:
    raise ConnectionError("always down")


@document_trigger("flakytx/{id}", model=Note, retry=True, max_attempts=3)
def flaky_transactional(change: DocumentChange[Note], effects: Effects) -> None:
    key = change.params["id"]
    if FAILURES[key] > 0:
        FAILURES[key] -= 1
        raise ConnectionError("transient")
    effects.tx.set(effects.db.collection("noteCounters").document(key), {"changes": 1})


SEEN: list[DocumentChange[Note]] = []


@document_trigger("seen/{id}", model=Note, on="deleted", name="record_deletes")
def record_deletes(change: DocumentChange[Note], effects: Effects) -> None:
    SEEN.append(change)


def sent_for(mail_id: str) -> list[str]:
    return [key for sent_id, key in SENT if sent_id == mail_id]


def deliver_concurrently(function: Callable[[Any], None], event: Any, copies: int) -> None:
    barrier = threading.Barrier(copies)
    errors: list[BaseException] = []

    def deliver() -> None:
        barrier.wait()
        try:
            function(redelivery(event))
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


# --- transactional effects -------------------------------------------------------------


def test_same_event_three_times_has_one_effect_transactional(
    firestore_db: firestore.Client, unique: Callable[[str], str], read_logs: LogReader
) -> None:
    note_id = unique("n")
    event = firestore_event(f"notes/{note_id}", after={"title": "Hi", "body": "a b c"})
    for _ in range(3):
        count_note_changes(event)
    assert counter(firestore_db, note_id) == 1
    lines = read_logs("trigger")
    assert [line["outcome"] for line in lines] == ["applied", "duplicate", "duplicate"]
    record = ledger_record(firestore_db, "count_note_changes", event["id"])
    assert record["state"] == LedgerState.DONE and record["document"] == f"notes/{note_id}"


def test_concurrent_deliveries_have_one_effect_transactional(
    firestore_db: firestore.Client, unique: Callable[[str], str], read_logs: LogReader
) -> None:
    note_id = unique("n")
    event = firestore_event(f"notes/{note_id}", after={"title": "Hi"})
    deliver_concurrently(count_note_changes, event, copies=2)
    assert counter(firestore_db, note_id) == 1
    assert sorted(line["outcome"] for line in read_logs("trigger")) == ["applied", "duplicate"]


def test_own_write_does_not_loop(
    firestore_db: firestore.Client, unique: Callable[[str], str], read_logs: LogReader
) -> None:
    note_id = unique("n")
    ref = firestore_db.collection("notes").document(note_id)
    created = {"title": "Hi", "body": "one two"}
    ref.set(created)
    count_note_changes(firestore_event(f"notes/{note_id}", after=created))
    after_own_write = ref.get().to_dict() or {}
    assert after_own_write["words"] == 2  # the handler wrote its owned fields back
    # The write above triggers the function again: feed that event back in.
    count_note_changes(firestore_event(f"notes/{note_id}", before=created, after=after_own_write))
    assert counter(firestore_db, note_id) == 1
    # A user's edit of a field the handler does not own is real work.
    edited = {**after_own_write, "body": "one two three"}
    count_note_changes(firestore_event(f"notes/{note_id}", before=after_own_write, after=edited))
    assert counter(firestore_db, note_id) == 2
    outcomes = [line["outcome"] for line in read_logs("trigger")]
    assert outcomes == ["applied", "skipped_own_write", "applied"]


def test_noop_update_is_skipped_but_delete_is_not(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> None:
    note_id = unique("n")
    doc = {"title": "Hi"}
    count_note_changes(firestore_event(f"notes/{note_id}", before=doc, after=doc))
    assert counter(firestore_db, note_id) == 0
    count_note_changes(firestore_event(f"notes/{note_id}", before=doc, after=None))
    assert counter(firestore_db, note_id) == 1


def test_invalid_after_document_is_recorded_without_effect_or_exception(
    firestore_db: firestore.Client, unique: Callable[[str], str], read_logs: LogReader
) -> None:
    note_id = unique("n")
    secret = "private-title-text"
    event = firestore_event(f"notes/{note_id}", after={"title": "", "body": 42, "x": secret})
    count_note_changes(event)
    count_note_changes(event)  # redelivered: still no exception, still no effect
    assert counter(firestore_db, note_id) == 0
    record = ledger_record(firestore_db, "count_note_changes", event["id"])
    assert record["state"] == LedgerState.INVALID
    assert {i["field"]: i["issue"] for i in record["issues"]} == {
        "title": "string_too_short",
        "body": "string_type",
    }
    lines = read_logs("trigger")
    assert [line["outcome"] for line in lines] == ["invalid", "invalid"]
    assert secret not in str(record) and secret not in str(lines)


def test_exactly_one_structured_line_per_event(
    firestore_db: firestore.Client, unique: Callable[[str], str], read_logs: LogReader
) -> None:
    note_id = unique("n")
    event = firestore_event(f"notes/{note_id}", after={"title": "Hi"}, event_id=unique("evt"))
    count_note_changes(event)
    count_note_changes(event)
    lines = read_logs("trigger")
    assert len(lines) == 2
    for line in lines:
        assert line["function"] == "count_note_changes"
        assert line["event_id"] == event["id"]
        assert line["document"] == f"notes/{note_id}"
        assert isinstance(line["latency_ms"], float)
        assert line["severity"] == "INFO"


# --- claim-before-act side effects -----------------------------------------------------


def test_same_event_three_times_has_one_effect_claim(
    firestore_db: firestore.Client, unique: Callable[[str], str], read_logs: LogReader
) -> None:
    mail_id = unique("m")
    event = firestore_event(f"mail/{mail_id}", after={"title": "Welcome"})
    for _ in range(3):
        send_mail(redelivery(event))
    assert sent_for(mail_id) == [f"send_mail:{event['id']}"]
    record = ledger_record(firestore_db, "send_mail", event["id"])
    assert (record["state"], record["attempts"]) == (LedgerState.DONE, 1)
    assert "leaseExpiresAt" not in record and "claimToken" not in record
    assert [line["outcome"] for line in read_logs("trigger")] == [
        "applied",
        "duplicate",
        "duplicate",
    ]


def test_concurrent_deliveries_have_one_effect_claim(
    firestore_db: firestore.Client, unique: Callable[[str], str], read_logs: LogReader
) -> None:
    mail_id = unique("m")
    event = firestore_event(f"mail/{mail_id}", after={"title": "Welcome"})
    other_finished = threading.Event()
    # The winner acts only after the other delivery has returned, so the two overlap.
    SEND_GATE[mail_id] = lambda: other_finished.wait(timeout=20)
    outcomes: list[str] = []

    def deliver() -> None:
        send_mail(redelivery(event))
        outcomes.append("returned")
        if len(outcomes) == 1:
            other_finished.set()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sent_for(mail_id) == [f"send_mail:{event['id']}"]
    lines = read_logs("trigger")
    assert sorted((line["outcome"], line.get("reason")) for line in lines) == [
        ("applied", None),
        ("duplicate", "in_progress"),
    ]


def test_expired_lease_of_a_crashed_attempt_is_taken_over(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> None:
    mail_id = unique("m")
    event = firestore_event(f"mail/{mail_id}", after={"title": "Welcome"})
    crashed = {
        "state": LedgerState.PROCESSING.value,
        "attempts": 1,
        "leaseExpiresAt": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
    }
    firestore_db.collection(LEDGER).document(record_id("send_mail", event["id"])).set(crashed)
    send_mail(event)
    assert sent_for(mail_id) == [f"send_mail:{event['id']}"]
    record = ledger_record(firestore_db, "send_mail", event["id"])
    assert (record["state"], record["attempts"]) == (LedgerState.DONE, 2)


def test_live_lease_blocks_a_second_attempt(
    firestore_db: firestore.Client, unique: Callable[[str], str], read_logs: LogReader
) -> None:
    mail_id = unique("m")
    event = firestore_event(f"mail/{mail_id}", after={"title": "Welcome"})
    live = {
        "state": LedgerState.PROCESSING.value,
        "attempts": 1,
        "leaseExpiresAt": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
    }
    firestore_db.collection(LEDGER).document(record_id("send_mail", event["id"])).set(live)
    send_mail(event)  # retry is off: acknowledged, the lease holder will finish the job
    assert sent_for(mail_id) == []
    assert read_logs("trigger")[0]["reason"] == "in_progress"


def test_failed_side_effect_releases_the_claim_for_a_redelivery(
    firestore_db: firestore.Client, unique: Callable[[str], str], read_logs: LogReader
) -> None:
    mail_id = unique("m")
    FAILURES[mail_id] = 1
    event = firestore_event(f"mail/{mail_id}", after={"title": "Welcome"})
    send_mail(event)  # fails; retry is off so nothing is raised
    record = ledger_record(firestore_db, "send_mail", event["id"])
    assert (record["state"], record["lastError"]) == (LedgerState.FAILED, "ConnectionError")
    send_mail(event)  # a redelivery (e.g. a manual replay) succeeds
    assert sent_for(mail_id) == [f"send_mail:{event['id']}"]
    lines = read_logs()  # stdout and stderr are read one after the other: compare sorted
    assert sorted(line["outcome"] for line in lines if line.get("kind") == "trigger") == [
        "applied",
        "error",
    ]
    assert any("Traceback" in line.get("stack_trace", "") for line in lines)


def taken_over(db: firestore.Client, function: str, event_id: str) -> Callable[[], object]:
    """A gate that, while the handler acts, lets 'another attempt' take the event over."""
    ref = db.collection(LEDGER).document(record_id(function, event_id))
    other = {
        "state": LedgerState.PROCESSING.value,
        "attempts": 2,
        "claimToken": "another-attempt",
        "leaseExpiresAt": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
    }
    return lambda: ref.set(other)


def test_a_finisher_that_lost_its_claim_does_not_mark_it_done(
    firestore_db: firestore.Client, unique: Callable[[str], str], read_logs: LogReader
) -> None:
    mail_id = unique("m")
    event = firestore_event(f"mail/{mail_id}", after={"title": "Welcome"})
    SEND_GATE[mail_id] = taken_over(firestore_db, "send_mail", event["id"])
    send_mail(event)
    assert sent_for(mail_id) == [f"send_mail:{event['id']}"]  # this attempt's effect happened
    record = ledger_record(firestore_db, "send_mail", event["id"])
    assert (record["state"], record["attempts"], record["claimToken"]) == (
        LedgerState.PROCESSING,
        2,
        "another-attempt",
    )
    lines = read_logs()
    [lost] = [line for line in lines if "lost its claim" in line["message"]]
    assert (lost["severity"], lost["effectApplied"], lost["ledgerAttempts"]) == ("ERROR", True, 2)
    [event_line] = [line for line in lines if line.get("kind") == "trigger"]
    assert (event_line["outcome"], event_line["claimLost"]) == ("applied", True)


def test_a_failure_that_lost_its_claim_does_not_mark_it_failed(
    firestore_db: firestore.Client, unique: Callable[[str], str], read_logs: LogReader
) -> None:
    mail_id = unique("m")
    FAILURES[mail_id] = 1
    event = firestore_event(f"mail/{mail_id}", after={"title": "Welcome"})
    SEND_GATE[mail_id] = taken_over(firestore_db, "send_mail", event["id"])
    send_mail(event)
    record = ledger_record(firestore_db, "send_mail", event["id"])
    assert (record["state"], record["claimToken"]) == (LedgerState.PROCESSING, "another-attempt")
    assert "lastError" not in record
    lines = read_logs()
    [lost] = [line for line in lines if "lost its claim" in line["message"]]
    assert (lost["severity"], lost["effectApplied"]) == ("WARNING", False)
    [event_line] = [line for line in lines if line.get("kind") == "trigger"]
    assert (event_line["outcome"], event_line["claimLost"]) == ("error", True)


def test_ledger_final_writes_need_the_claim_token(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> None:
    client = bootstrap.db()
    ref = ledger.ledger_ref(client, "fn", unique("evt"))
    base = ledger.base_record("fn", ref.id, "docs/d", "written")
    expired_at_once, lease = dt.timedelta(0), dt.timedelta(minutes=5)
    first, second = ledger.new_claim_token(), ledger.new_claim_token()
    assert ledger.claim(client, ref, base, expired_at_once, 5, claim_token=first) is (
        ledger.Verdict.CLAIMED
    )
    assert ledger.claim(client, ref, base, lease, 5, claim_token=second) is (ledger.Verdict.CLAIMED)
    with pytest.raises(ledger.ClaimLost) as lost:
        ledger.mark_done(client, ref, first)
    assert (lost.value.state, lost.value.attempts) == ("PROCESSING", 2)
    with pytest.raises(ledger.ClaimLost):
        ledger.mark_failed(client, ref, base, "ConnectionError", claim_token=first)
    assert (ref.get().to_dict() or {})["claimToken"] == second
    ledger.mark_done(client, ref, second)
    assert (ref.get().to_dict() or {})["state"] == LedgerState.DONE
    with pytest.raises(ledger.ClaimLost):  # a DONE record belongs to nobody any more
        ledger.mark_failed(client, ref, base, "ConnectionError", claim_token=second)


def _noop(change: DocumentChange[Note], effects: Effects) -> None:
    pass


def test_a_lease_shorter_than_the_timeout_is_refused_at_decoration() -> None:
    with pytest.raises(ValueError, match=r"shorter than the function's timeout \(60 s\)"):
        document_trigger("x/{id}", model=Note, mode="claim", lease_seconds=59)(_noop)
    with pytest.raises(ValueError, match=r"\(300 s\)"):
        document_trigger("x/{id}", model=Note, mode="claim", lease_seconds=120, timeout_sec=300)(
            _noop
        )
    # As long as the timeout is fine: an attempt is over when the timeout strikes.
    document_trigger("x/{id}", model=Note, mode="claim", lease_seconds=300, timeout_sec=300)(_noop)
    document_trigger("x/{id}", model=Note, mode="claim", timeout_sec=300)(_noop)


# --- retries ---------------------------------------------------------------------------


def test_with_retry_errors_are_reraised_until_max_attempts(
    firestore_db: firestore.Client, unique: Callable[[str], str], read_logs: LogReader
) -> None:
    event = firestore_event(f"flaky/{unique('f')}", after={"title": "x"})
    with pytest.raises(ConnectionError):
        flaky_with_retry(event)
    flaky_with_retry(event)  # second attempt fails too, but that was the last one
    flaky_with_retry(event)  # and later redeliveries are acknowledged at once
    record = ledger_record(firestore_db, "flaky_with_retry", event["id"])
    assert (record["state"], record["attempts"]) == (LedgerState.FAILED, 2)
    lines = read_logs("trigger")
    assert [(line["outcome"], line.get("gaveUp"), line.get("reason")) for line in lines] == [
        ("error", False, None),
        ("error", True, None),
        ("error", None, "gave_up"),
    ]


def test_with_retry_a_live_lease_asks_for_redelivery(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> None:
    event = firestore_event(f"flaky/{unique('f')}", after={"title": "x"})
    live = {
        "state": LedgerState.PROCESSING.value,
        "attempts": 1,
        "leaseExpiresAt": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
    }
    ref = firestore_db.collection(LEDGER).document(record_id("flaky_with_retry", event["id"]))
    ref.set(live)
    with pytest.raises(EventInProgress):
        flaky_with_retry(event)


def test_transactional_failure_then_retry_applies_once(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> None:
    key = unique("t")
    FAILURES[key] = 1
    event = firestore_event(f"flakytx/{key}", after={"title": "x"})
    with pytest.raises(ConnectionError):
        flaky_transactional(event)
    assert counter(firestore_db, key) == 0  # the failed attempt's writes rolled back
    flaky_transactional(event)
    flaky_transactional(event)
    assert counter(firestore_db, key) == 1
    record = ledger_record(firestore_db, "flaky_transactional", event["id"])
    assert (record["state"], record["attempts"]) == (LedgerState.DONE, 2)


# --- shapes ----------------------------------------------------------------------------


def test_deleted_trigger_gets_typed_before_and_metadata(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> None:
    doc_id = unique("s")
    when = dt.datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    event = firestore_event(
        f"seen/{doc_id}", before={"title": "Gone", "body": "b"}, kind="deleted", time=when
    )
    record_deletes(event)
    change = next(c for c in SEEN if c.params == {"id": doc_id})
    assert change.kind == "deleted"
    assert change.before == Note(title="Gone", body="b")
    assert change.after is None and change.after_data is None
    assert (change.document, change.event_id, change.time) == (f"seen/{doc_id}", event["id"], when)
    assert change.event_type == "google.cloud.firestore.document.v1.deleted"
    assert record_deletes.__name__ == "record_deletes"


def test_retry_is_declared_in_the_deploy_manifest() -> None:
    retried = flaky_with_retry.__firebase_endpoint__.eventTrigger  # type: ignore[attr-defined]
    default = count_note_changes.__firebase_endpoint__.eventTrigger  # type: ignore[attr-defined]
    assert (retried["retry"], default["retry"]) == (True, False)
    assert default["eventFilterPathPatterns"] == {"document": "notes/{noteId}"}


RECOMPUTED: Counter[str] = Counter()


@document_trigger("tallies/{id}", model=Note, mode=EffectMode.RECOMPUTE, retry=True)
def recompute_tally(change: DocumentChange[Note], effects: Effects) -> None:
    """Recompute mode: runs on every delivery (the handler is idempotent), no ledger."""
    RECOMPUTED[change.event_id] += 1
    if change.after is not None and change.after.title == "explode":
        raise RuntimeError("recount failed")


def test_recompute_mode_runs_every_delivery_and_keeps_no_ledger(
    firestore_db: firestore.Client,
) -> None:
    event = firestore_event("tallies/t1", after={"title": "a"}, kind="written")
    for copy in (event, redelivery(event), redelivery(event)):
        recompute_tally(copy)

    assert RECOMPUTED[event["id"]] == 3
    assert ledger_record(firestore_db, "recompute_tally", event["id"]) == {}


def test_recompute_mode_failure_is_raised_for_a_redelivery(firestore_db: firestore.Client) -> None:
    event = firestore_event("tallies/t2", after={"title": "explode"}, kind="written")
    with pytest.raises(RuntimeError, match="recount failed"):
        recompute_tally(event)
    assert ledger_record(firestore_db, "recompute_tally", event["id"]) == {}
