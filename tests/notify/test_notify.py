"""Telling one user, in-process against the Firestore emulator: once, on the channels they want.

Pushes go through the emulators' recording transport (``_pushOutbox``), which answers
``expired-`` tokens as FCM answers dead ones.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from firebase_admin import exceptions, messaging
from google.cloud import firestore

from firekit import notify as core
from firekit.transactions import run_transaction
from marketplace import notify

from .factories import NOW, devices, inbox, notice, pushes, user

QUIET = {"start": "22:00", "end": "07:00", "timezone": "Europe/London"}
LATE_IN_LONDON = dt.datetime(2026, 7, 1, 21, 30, tzinfo=dt.UTC)  # 22:30 BST


def at(when: dt.datetime, **changes: Any) -> core.Notifier:
    """Homefront's notifier with its clock at ``when``."""
    return dataclasses.replace(notify.USERS, clock=lambda: when, **changes)


def test_a_notice_sent_three_times_tells_once(firestore_db: firestore.Client) -> None:
    who = user(firestore_db, tokens=2)
    note = notice(who)

    outcomes = [notify.notify(firestore_db, note, notifier=at(NOW)) for _ in range(3)]

    assert [(o.told, o.pushed) for o in outcomes] == [(True, 2), (False, 0), (False, 0)]
    [(note_id, stored)] = inbox(firestore_db, who).items()
    assert note_id == note.id
    assert (stored["kind"], stored["title"], stored["link"], stored["read"]) == (
        "system",
        "Something happened",
        "/somewhere",
        False,
    )
    assert stored["data"] == {"thing": "t1", "channels": ["email", "inApp", "push"]}
    sent = pushes(firestore_db, who)
    assert sorted(p["token"] for p in sent) == [f"tok-{who}-0", f"tok-{who}-1"]
    assert {p["data"]["notificationId"] for p in sent} == {note.id}
    assert {p["data"]["link"] for p in sent} == {"/somewhere"}
    # One collapse id per notice on every platform.
    assert len({(p["collapseKey"], p["apnsCollapseId"], p["webpushTopic"]) for p in sent}) == 1


@pytest.mark.parametrize(
    ("settings", "clock", "asked", "expected_pushes"),
    [
        ({}, NOW, True, 1),
        ({"push": False}, NOW, True, 0),
        ({}, NOW, False, 0),  # the notice asks for none
        ({"quietHours": QUIET}, LATE_IN_LONDON, True, 0),  # 22:30 in London
        ({"quietHours": QUIET}, NOW, True, 1),  # noon
        ({"quietHours": QUIET | {"timezone": "UTC"}}, LATE_IN_LONDON, True, 1),  # 21:30 UTC
    ],
    ids=["default", "push-off", "not-asked", "quiet-hours", "outside-quiet", "quiet-in-utc"],
)
def test_a_push_goes_only_where_the_user_wants_it_and_not_in_their_quiet_hours(
    firestore_db: firestore.Client,
    settings: dict[str, Any],
    clock: dt.datetime,
    asked: bool,
    expected_pushes: int,
) -> None:
    who = user(firestore_db, tokens=1, **settings)

    outcome = notify.notify(firestore_db, notice(who, push=asked), notifier=at(clock))

    assert outcome.told and outcome.pushed == expected_pushes
    assert len(pushes(firestore_db, who)) == expected_pushes
    (stored,) = inbox(firestore_db, who).values()  # the inbox carries it either way
    assert ("push" in stored["data"]["channels"]) is bool(expected_pushes)
    assert "pushPending" not in stored["data"]


def test_dead_tokens_are_pruned_and_live_ones_pushed(firestore_db: firestore.Client) -> None:
    who = user(firestore_db, tokens=1, expired=2)

    outcome = notify.notify(firestore_db, notice(who), notifier=at(NOW))

    assert (outcome.pushed, outcome.removed_tokens) == (1, 2)
    assert devices(firestore_db, who) == {f"tok-{who}-0"}
    assert [p["token"] for p in pushes(firestore_db, who)] == [f"tok-{who}-0"]


def test_an_account_from_before_the_token_sync_is_pushed_to_its_devices(
    firestore_db: firestore.Client,
) -> None:
    who = user(firestore_db, tokens=2, synced=False)

    assert notify.notify(firestore_db, notice(who), notifier=at(NOW)).pushed == 2


def test_a_user_without_an_account_is_told_in_app_and_pushed(
    firestore_db: firestore.Client,
) -> None:
    who = user(firestore_db, tokens=1, account=False)

    outcome = notify.notify(firestore_db, notice(who), notifier=at(NOW))

    assert (outcome.told, outcome.pushed, outcome.emailed) == (True, 1, False)


def test_excluded_tokens_are_not_pushed(firestore_db: firestore.Client) -> None:
    # A token the sender also holds (a shared tablet) never gets the recipient's push.
    who = user(firestore_db, tokens=3)
    reach = notify.USERS.reach(firestore_db, who)

    report = notify.USERS.push_to(
        firestore_db,
        who,
        reach,
        collapse_id="chat-c1",
        title="New message",
        body="Hi",
        data={"conversationId": "c1"},
        exclude={f"tok-{who}-1"},
    )

    assert report.sent == 2
    sent = pushes(firestore_db, who)
    assert sorted(p["token"] for p in sent) == [f"tok-{who}-0", f"tok-{who}-2"]
    assert {p["data"]["conversationId"] for p in sent} == {"c1"}


@pytest.mark.parametrize(
    ("settings", "address", "asked", "marked"),
    [
        ({}, "", True, True),
        ({"email": False}, "", True, False),
        ({}, None, True, False),  # no address
        ({}, "", False, False),  # the notice asks for none
    ],
    ids=["default", "email-off", "no-address", "not-asked"],
)
def test_a_notice_joins_the_days_digest_only_if_the_user_wants_email(
    firestore_db: firestore.Client,
    settings: dict[str, Any],
    address: str | None,
    asked: bool,
    marked: bool,
) -> None:
    who = user(firestore_db, address=address, **settings)

    outcome = notify.notify(firestore_db, notice(who, email=asked), notifier=at(NOW))

    (stored,) = inbox(firestore_db, who).values()
    assert outcome.emailed is marked
    if marked:
        assert (stored["emailDay"], stored["emailTo"]) == ("2026-11-24", f"{who}@example.test")
        assert "email" in stored["data"]["channels"]
    else:
        assert "emailDay" not in stored and "emailTo" not in stored


def test_a_push_left_pending_by_a_call_that_died_is_sent_by_the_next(
    firestore_db: firestore.Client,
) -> None:
    who = user(firestore_db, tokens=1)
    note = notice(who)
    # The first call created the inbox document, then died before pushing.
    reach = notify.USERS.reach(firestore_db, who)
    document = notify.USERS.inbox_document(note, reach, NOW, push_pending=True)
    notify.USERS.inbox_ref(firestore_db, who, note.id).create(document)

    again = notify.notify(firestore_db, note, notifier=at(NOW))
    once_more = notify.notify(firestore_db, note, notifier=at(NOW))

    assert (again.told, again.pushed) == (False, 1)
    assert (once_more.told, once_more.pushed) == (False, 0)
    assert len(pushes(firestore_db, who)) == 1
    assert "pushPending" not in inbox(firestore_db, who)[note.id]["data"]


class Unavailable:
    """FCM down: every message answered UNAVAILABLE."""

    def send_each(self, messages: list[messaging.Message]) -> messaging.BatchResponse:
        error = exceptions.UnavailableError("try later")
        return messaging.BatchResponse([messaging.SendResponse(None, error) for _ in messages])


def test_fcm_unavailable_leaves_the_push_pending_for_a_retry(
    firestore_db: firestore.Client,
) -> None:
    who = user(firestore_db, tokens=1)
    note = notice(who)

    with pytest.raises(core.PushUnavailableError):
        notify.notify(firestore_db, note, notifier=at(NOW, transport=lambda _db: Unavailable()))
    assert inbox(firestore_db, who)[note.id]["data"]["pushPending"] is True
    retried = notify.notify(firestore_db, note, notifier=at(NOW))

    assert (retried.told, retried.pushed) == (False, 1)
    assert "pushPending" not in inbox(firestore_db, who)[note.id]["data"]


def test_an_inbox_entry_is_created_inside_a_callers_transaction_once(
    firestore_db: firestore.Client,
) -> None:
    who = user(firestore_db)
    note = notice(who, kind="message", push=False, email=False, extra={"emailAfter": NOW})

    def create(transaction: firestore.Transaction) -> bool:
        reach = notify.USERS.reach(firestore_db, who, transaction=transaction)
        return notify.USERS.create_inbox_in(firestore_db, transaction, note, reach)

    created = [run_transaction(firestore_db, create, busy_message="busy") for _ in range(2)]

    assert created == [True, False]
    (stored,) = inbox(firestore_db, who).values()
    assert stored["data"]["channels"] == ["inApp"]
    assert stored["emailAfter"] == NOW and "emailDay" not in stored
    assert pushes(firestore_db, who) == []


def test_reach_reads_settings_address_and_tokens_from_the_account(
    firestore_db: firestore.Client,
) -> None:
    who = user(firestore_db, tokens=2, push=False, quietHours=QUIET)
    nobody = "nobody-" + who

    reach = notify.USERS.reach(firestore_db, who)
    both = notify.USERS.reaches(firestore_db, [who, nobody])

    assert reach == core.Reach(
        push=False,
        email=f"{who}@example.test",
        quiet=core.QuietHours("22:00", "07:00", "Europe/London"),
        tokens=(f"tok-{who}-0", f"tok-{who}-1"),
    )
    assert both == {who: reach, nobody: core.NO_ACCOUNT}
    # Settings that no longer fit the model count as none: push and email on.
    assert notify.reach_of({"email": "a@b.test", "notifications": {"push": "yes"}}) == core.Reach(
        push=True, email="a@b.test", quiet=None, tokens=None
    )


@pytest.mark.parametrize(
    ("start", "end", "zone", "utc", "quiet"),
    [
        ("22:00", "07:00", "Europe/London", "2026-01-15T23:00", True),  # GMT
        ("22:00", "07:00", "Europe/London", "2026-01-15T07:00", False),  # end is exclusive
        ("22:00", "07:00", "Europe/London", "2026-07-15T05:30", True),  # 06:30 BST
        ("22:00", "07:00", "Europe/London", "2026-07-15T06:30", False),  # 07:30 BST
        ("13:00", "14:00", "UTC", "2026-07-15T13:30", True),
        ("13:00", "14:00", "UTC", "2026-07-15T14:30", False),
        ("09:00", "09:00", "UTC", "2026-07-15T09:00", False),  # empty window
        ("22:00", "07:00", "Not/AZone", "2026-07-15T23:00", True),  # unknown zone: UTC
    ],
)
def test_quiet_hours(start: str, end: str, zone: str, utc: str, quiet: bool) -> None:
    now = dt.datetime.fromisoformat(utc).replace(tzinfo=dt.UTC)
    assert core.in_quiet_hours(core.QuietHours(start, end, zone), now) is quiet


def test_the_push_payload_carries_the_notice_and_its_string_data() -> None:
    note = notice("u1", data={"conversationId": "c1", "count": 3}, link="/c/c1")
    assert note.push_data() == {
        "conversationId": "c1",
        "notificationId": note.id,
        "kind": "system",
        "link": "/c/c1",
    }
