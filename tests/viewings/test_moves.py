"""Every move of a viewing on one graph: confirm, decline, cancel, reschedule, lapse; what
each frees, and that a move the graph refuses changes nothing."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.cloud import firestore

from firekit.errors import AppError
from marketplace import viewings
from tests.viewings.world import NOW, Diary, at, holds_of, locks_of, new_uid, snapshot_of


@pytest.fixture
def diary(firestore_db: firestore.Client) -> Diary:
    diary = Diary(firestore_db)
    diary.listing()
    diary.hours(slot=60)
    return diary


def reason(error: pytest.ExceptionInfo[AppError]) -> str:
    return str(error.value.details["reason"])


def test_confirming_keeps_the_granules_exactly_as_claimed_and_frees_the_places(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    buyer = new_uid("buyer")
    asked = diary.request(buyer, diary.listings[0], at(3, "10:00"))
    claimed = locks_of(firestore_db, asked.viewingId)

    done = viewings.move(firestore_db, asked.viewingId, "confirm", diary.agent, now=NOW)

    assert done.status == "confirmed" and done.expiresAt is None
    assert locks_of(firestore_db, asked.viewingId) == claimed
    assert set(diary.viewing(asked.viewingId)["locks"]) == claimed
    assert holds_of(firestore_db, asked.viewingId) == set()
    stored = diary.viewing(asked.viewingId)
    assert stored["holds"] == [] and stored["revision"] == 2
    assert stored["lastChange"] == {"kind": "confirmed", "by": diary.agent, "at": NOW}
    assert stored["nextReminderAt"] == at(2, "10:00")


@pytest.mark.parametrize(
    ("move", "by"), [("decline", "agent"), ("cancel", "agent"), ("cancel", "requester")]
)
def test_declining_or_cancelling_frees_the_time_for_someone_else(
    firestore_db: firestore.Client, diary: Diary, move: viewings.Move, by: str
) -> None:
    buyer = new_uid("buyer")
    asked = diary.request(buyer, diary.listings[0], at(3, "10:00"))
    actor = diary.agent if by == "agent" else buyer

    viewings.move(firestore_db, asked.viewingId, move, actor, reason="Away that day", now=NOW)

    stored = diary.viewing(asked.viewingId)
    assert stored["status"] == ("declined" if move == "decline" else "cancelled")
    assert (
        locks_of(firestore_db, asked.viewingId) == set() == holds_of(firestore_db, asked.viewingId)
    )
    assert stored["locks"] == [] and stored["lastChange"].get("reason") == "Away that day"
    assert diary.request(new_uid("buyer"), diary.listings[0], at(3, "10:00")).status == "requested"


def test_only_the_agent_confirms_or_declines_and_a_stranger_learns_nothing(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    buyer = new_uid("buyer")
    asked = diary.request(buyer, diary.listings[0], at(3, "10:00"))
    before = snapshot_of(firestore_db)

    with pytest.raises(AppError) as own:
        viewings.move(firestore_db, asked.viewingId, "confirm", buyer, now=NOW)
    with pytest.raises(AppError) as stranger:
        viewings.move(firestore_db, asked.viewingId, "cancel", new_uid("buyer"), now=NOW)
    with pytest.raises(AppError) as unknown:
        viewings.move(firestore_db, "v-nothing", "cancel", buyer, now=NOW)

    assert (reason(own), own.value.code.value) == ("not_yours_to_move", "permission-denied")
    assert reason(stranger) == reason(unknown) == "no_such_viewing"
    assert snapshot_of(firestore_db) == before


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("decline", "confirm"),
        ("cancel", "confirm"),
        ("cancel", "reschedule"),
        ("confirm", "decline"),
    ],
)
def test_a_move_the_graph_does_not_allow_changes_nothing(
    firestore_db: firestore.Client, diary: Diary, first: viewings.Move, then: viewings.Move
) -> None:
    asked = diary.request(new_uid("buyer"), diary.listings[0], at(3, "10:00"))
    viewings.move(firestore_db, asked.viewingId, first, diary.agent, reason="No", now=NOW)
    before = snapshot_of(firestore_db)

    with pytest.raises(AppError) as refused:
        if then == "reschedule":
            viewings.reschedule(firestore_db, asked.viewingId, diary.agent, at(4, "10:00"), NOW)
        else:
            viewings.move(firestore_db, asked.viewingId, then, diary.agent, now=NOW)

    assert reason(refused) == "move_not_allowed"
    assert snapshot_of(firestore_db) == before


def test_the_graph_names_every_status_and_who_moves_it() -> None:
    statuses = {"requested", "confirmed", "declined", "cancelled", "expired", "completed"}
    assert {status for status, _ in viewings.MOVES} | {e.to for e in viewings.MOVES.values()} == (
        statuses
    )
    final = statuses - {status for status, _ in viewings.MOVES}
    assert final == {"declined", "cancelled", "expired", "completed"}
    assert all(e.by <= {"requester", "agent", "clock"} for e in viewings.MOVES.values())


def test_rescheduling_claims_the_new_time_and_frees_the_old_in_one_batch(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    buyer = new_uid("buyer")
    asked = diary.request(buyer, diary.listings[0], at(3, "10:00"))
    viewings.move(firestore_db, asked.viewingId, "confirm", diary.agent, now=NOW)
    old = locks_of(firestore_db, asked.viewingId)

    moved = viewings.reschedule(firestore_db, asked.viewingId, diary.agent, at(3, "11:00"), NOW)

    assert (moved.status, moved.slotStart) == ("confirmed", "2027-03-03T11:00:00Z")
    new = locks_of(firestore_db, asked.viewingId)
    assert new.isdisjoint(old) and len(new) == 8
    assert set(diary.viewing(asked.viewingId)["locks"]) == new
    stored = diary.viewing(asked.viewingId)
    assert stored["lastChange"]["previousStart"] == at(3, "10:00")
    assert stored["nextReminderAt"] == at(2, "11:00")
    # The old hour is anyone's again.
    assert diary.request(new_uid("buyer"), diary.listings[0], at(3, "10:00")).status == "requested"


def test_a_buyers_reschedule_waits_for_the_agent_again(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    buyer = new_uid("buyer")
    asked = diary.request(buyer, diary.listings[0], at(3, "10:00"))
    viewings.move(firestore_db, asked.viewingId, "confirm", diary.agent, now=NOW)

    moved = viewings.reschedule(firestore_db, asked.viewingId, buyer, at(5, "15:00"), NOW)

    assert moved.status == "requested" and moved.expiresAt == "2027-03-02T08:00:00Z"
    assert len(holds_of(firestore_db, asked.viewingId)) == 2


def test_rescheduling_onto_taken_time_changes_nothing(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    mine = diary.request(new_uid("buyer"), diary.listings[0], at(3, "10:00"))
    diary.request(new_uid("buyer"), diary.listings[0], at(3, "12:00"))
    before = snapshot_of(firestore_db)

    with pytest.raises(AppError) as taken:
        viewings.reschedule(firestore_db, mine.viewingId, diary.agent, at(3, "12:00"), NOW)

    assert reason(taken) == "slot_taken"
    assert snapshot_of(firestore_db) == before


def test_a_request_past_its_expiry_lapses_and_frees_its_time(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    asked = diary.request(new_uid("buyer"), diary.listings[0], at(3, "10:00"))
    later = NOW + viewings.REQUEST_WAITS + dt.timedelta(minutes=1)

    with pytest.raises(AppError) as lapsed:
        viewings.move(firestore_db, asked.viewingId, "confirm", diary.agent, now=later)
    assert reason(lapsed) == "request_lapsed"
    assert diary.viewing(asked.viewingId)["status"] == "expired"
    assert locks_of(firestore_db, asked.viewingId) == set()


def test_a_lapsed_request_never_blocks_a_new_one(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    first = diary.request(new_uid("buyer"), diary.listings[0], at(3, "10:00"))
    later = NOW + viewings.REQUEST_WAITS + dt.timedelta(minutes=1)

    second = diary.request(new_uid("buyer"), diary.listings[0], at(3, "10:00"), now=later)

    assert second.status == "requested"
    assert diary.viewing(first.viewingId)["status"] == "expired"
    assert holds_of(firestore_db, first.viewingId) == set()


def test_a_confirm_and_a_decline_racing_on_one_request_apply_exactly_one(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    # The agent taps confirm on one device and decline on another, eight times over.
    for hour in range(9, 17):
        asked = diary.request(new_uid("buyer"), diary.listings[0], at(3, f"{hour:02d}:00"))

        def act(move: viewings.Move, viewing: str = asked.viewingId) -> str:
            try:
                return viewings.move(firestore_db, viewing, move, diary.agent, now=NOW).status
            except AppError as error:
                return str(error.details["reason"])

        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(act, ("confirm", "decline")))

        stored = diary.viewing(asked.viewingId)
        assert sorted(outcomes) in (
            ["confirmed", "move_not_allowed"],
            ["declined", "move_not_allowed"],
        )
        assert stored["status"] in outcomes and stored["revision"] == 2
        held = 8 if stored["status"] == "confirmed" else 0
        assert len(locks_of(firestore_db, asked.viewingId)) == held


def test_a_lapsed_request_cannot_be_moved_back_to_life(
    firestore_db: firestore.Client, diary: Diary
) -> None:
    buyer = new_uid("buyer")
    asked = diary.request(buyer, diary.listings[0], at(3, "10:00"))
    later = NOW + viewings.REQUEST_WAITS + dt.timedelta(minutes=1)

    with pytest.raises(AppError) as lapsed:
        viewings.reschedule(firestore_db, asked.viewingId, buyer, at(3, "11:00"), later)

    assert reason(lapsed) == "request_lapsed"
    assert diary.viewing(asked.viewingId)["status"] == "expired"
    assert locks_of(firestore_db, asked.viewingId) == set()
