"""The alert fan-out in-process against the Firestore emulator: once per user, whatever fails.

The tasks run through the same ``Fanout.run_task`` the ``deliverAlerts`` task function
runs; the queue is a local list, so a test decides when a task runs, runs it twice, or
lets it fail and runs it again (what Cloud Tasks does on a 5xx).
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from firebase_admin import exceptions, messaging
from google.cloud import firestore

from firekit import fanout, push
from firekit.transactions import run_transaction
from marketplace import alerts
from marketplace.models.users import QuietHours
from tests.core.test_fanout import Queue

from .world import NOW, World, listing, uid


class BoomError(RuntimeError):
    """An injected failure."""


@dataclass
class Transport:
    """FCM's shape, in memory: records what it sends; can fail on a chosen call."""

    sent: list[messaging.Message] = field(default_factory=list)
    fail_on_call: int | None = None
    unavailable_once: set[str] = field(default_factory=set)
    """Tokens FCM answers UNAVAILABLE the first time."""
    calls: int = 0

    def send_each(self, messages: list[messaging.Message]) -> messaging.BatchResponse:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise BoomError("FCM unavailable")
        responses = []
        for message in messages:
            if str(message.token).startswith(push.EXPIRED_PREFIX):
                responses.append(messaging.SendResponse(None, messaging.UnregisteredError("gone")))
            elif str(message.token) in self.unavailable_once:
                self.unavailable_once.discard(str(message.token))
                responses.append(
                    messaging.SendResponse(None, exceptions.UnavailableError("try later"))
                )
            else:
                self.sent.append(message)
                responses.append(messaging.SendResponse({"name": "ok"}, None))
        return messaging.BatchResponse(responses)

    def tokens(self) -> Counter[str]:
        return Counter(str(m.token) for m in self.sent)


class Harness:
    """One task per chunk unless ``per_task`` says otherwise: most tests are about
    chunks; the tests of tasks that run several chunks say so."""

    def __init__(
        self, db: Any, *, chunk: int = 50, clock: dt.datetime = NOW, per_task: int = 1
    ) -> None:
        self.db, self.world = db, World(db)
        self.transport, self.queue = Transport(), Queue()
        self.delivery = alerts.AlertDelivery(
            transport=lambda _db: self.transport, clock=lambda: clock
        )
        self.fanout = fanout.Fanout(
            {kind: self.delivery for kind in alerts.EVENT_KINDS},
            self.queue,
            chunk_size=chunk,
            act_slice=20,
            chunks_per_task=per_task,
        )

    def told_about_a_new_home(self, buyers: int) -> tuple[list[str], str]:
        """``buyers`` matching buyers, and a new home's job run to its end."""
        agent = self.world.agent()
        told = [self.world.buyer() for _ in range(buyers)]
        home = self.publish(agent)
        self.start(home)
        self.drain()
        return told, home

    def redeliver_all(self, seed: int) -> list[str]:
        """Cloud Tasks redelivers: every task queued so far again, in a shuffled order."""
        again = list(self.queue.tasks)
        random.Random(seed).shuffle(again)
        return [self.fanout.run_task(self.db, task).outcome for task in again]

    def sync_tokens(self, who: str) -> list[str] | None:
        """What the devices trigger does after a device write."""

        def sync(transaction: firestore.Transaction) -> list[str] | None:
            return push.sync_tokens(self.db, transaction, alerts.DEVICES, who)

        return run_transaction(self.db, sync, busy_message="busy")

    def publish(self, owner: str, **overrides: Any) -> str:
        home = uid("home")
        self.db.document(f"listings/{home}").set(listing(owner, **overrides))
        return home

    def start(
        self,
        home: str,
        kind: alerts.EventKind = "new_listing",
        amount: int | None = None,
        *,
        event: str = "event-1",
    ) -> None:
        """Start the job one listing change (``event``) starts."""
        note = alerts.notification_id(home, kind, amount)
        params: dict[str, Any] = {"listingId": home, "notificationId": note}
        params |= {"amount": amount} if amount else {}
        self.fanout.start(alerts.alert_job(note, event), kind, params)

    def drain(self) -> list[str]:
        """Run the tasks queued since the last drain (a failed one again, last)."""
        run = functools.partial(self.fanout.run_task, self.db)
        return self.queue.drain(run, (BoomError, fanout.ChunkRetry, fanout.ChunkBusy))


@pytest.fixture
def h(firestore_db: firestore.Client) -> Harness:
    return Harness(firestore_db)


def inbox_counts(h: Harness, users: list[str]) -> dict[str, int]:
    return {u: len(h.world.inbox(u)) for u in users}


def test_every_matching_buyer_is_told_once_across_chunks(h: Harness) -> None:
    agent = h.world.agent()
    buyers = [h.world.buyer() for _ in range(120)]
    twice = h.world.buyer(searches=({}, {"priceMax": 500_000_00}))  # two matching searches
    home = h.publish(agent)

    h.start(home)
    outcomes = h.drain()

    assert outcomes == ["0:delivered", "1:delivered", "2:delivered"]  # 122 searches, 50 a chunk
    assert inbox_counts(h, [*buyers, twice]) == {u: 1 for u in [*buyers, twice]}
    assert h.transport.tokens() == Counter({f"tok-{u}-0": 1 for u in [*buyers, twice]})
    # Duplicate pushes would collapse on the device anyway: every message says which it is.
    first = h.transport.sent[0]
    assert first.android.collapse_key == first.apns.headers["apns-collapse-id"]


@pytest.mark.parametrize(
    ("per_task", "expected"),
    [
        # Chunk 1 hands chunk 2 to its own task before it waits for its retry.
        (1, ["0:delivered", "1:failed", "2:delivered", "1:resumed"]),
        # One task for all three: chunk 1 hands chunk 2 to a new task; the retry finds
        # chunk 0 done by its record, resumes chunk 1 and stops there.
        (3, ["0:failed", "2:delivered", "0:duplicate,resumed"]),
    ],
)
def test_a_failure_mid_fan_out_is_retried_without_telling_anyone_twice(
    firestore_db: firestore.Client, per_task: int, expected: list[str]
) -> None:
    h = Harness(firestore_db, per_task=per_task)
    agent = h.world.agent()
    buyers = [h.world.buyer() for _ in range(150)]
    home = h.publish(agent)
    # Chunk 0 pushes in 3 calls (20 users a slice, 50 a chunk); call 5 is chunk 1's second
    # slice: its first 20 users were pushed when FCM fails.
    h.transport.fail_on_call = 5

    h.start(home)
    outcomes = h.drain()

    assert outcomes == expected
    assert inbox_counts(h, buyers) == {u: 1 for u in buyers}
    assert h.transport.tokens() == Counter({f"tok-{u}-0": 1 for u in buyers})
    records = [d.to_dict() for d in h.db.collection(fanout.CHUNKS).stream()]
    assert sorted((r["chunk"], r["state"], r["pending"]) for r in records) == [
        (0, "done", []),
        (1, "done", []),
        (2, "done", []),
    ]
    assert [r["chunk"] for r in records if r.get("handedOff")] == [1]


def test_duplicated_and_shuffled_tasks_change_nothing(h: Harness) -> None:
    buyers, home = h.told_about_a_new_home(110)
    sent_once = h.transport.tokens()

    outcomes = h.redeliver_all(seed=7)
    # The trigger's event redelivered starts the same job: a repeat the queue refuses.
    queued = len(h.queue.tasks)
    h.start(home)
    assert len(h.queue.tasks) == queued
    # A new change (back on the market) runs a new job: it reads every search again,
    # and tells nobody twice.
    h.start(home, event="event-2")
    rerun = h.drain()

    assert outcomes == ["duplicate"] * queued
    assert rerun == ["0:delivered", "1:delivered", "2:delivered"]
    assert h.transport.tokens() == sent_once
    assert inbox_counts(h, buyers) == {u: 1 for u in buyers}


def test_a_rerun_job_tells_only_those_not_yet_told(h: Harness) -> None:
    # Stopped while the listing was under offer, then back on the market: the new job
    # reads every search (some saved since) and tells only those not told.
    agent = h.world.agent()
    first = [h.world.buyer() for _ in range(30)]
    home = h.publish(agent)
    h.start(home)
    h.drain()
    h.db.document(f"listings/{home}").update({"status": "under_offer"})
    h.start(home, event="event-2")
    assert h.drain()[-1] == "0:stopped"
    h.db.document(f"listings/{home}").update({"status": "active"})
    late = h.world.buyer()

    h.start(home, event="event-3")  # the change back to active
    h.drain()

    assert inbox_counts(h, [*first, late]) == {u: 1 for u in [*first, late]}
    assert h.transport.tokens()[f"tok-{late}-0"] == 1
    assert all(h.transport.tokens()[f"tok-{u}-0"] == 1 for u in first)


def test_muted_other_criteria_and_own_listings_are_not_told(h: Harness) -> None:
    agent = h.world.agent()
    told = h.world.buyer()
    not_told = [
        h.world.buyer(searches=({"muted": True},)),
        h.world.buyer(searches=({"bedroomsMin": 3},)),
        h.world.buyer(searches=({"propertyTypes": ["bungalow"]},)),
        h.world.buyer(searches=({"priceMax": 300_000_00},)),
        h.world.buyer(searches=({"kind": "rent"},)),
        h.world.buyer(searches=({"city": "Leeds"},)),
        h.world.buyer(
            searches=({"city": None, "near": {"lat": 53.8, "lng": -1.55, "radiusKm": 5}},)
        ),
    ]
    near = h.world.buyer(
        searches=({"city": None, "near": {"lat": 51.50, "lng": -0.14, "radiusKm": 1}},)
    )
    anywhere = h.world.buyer(searches=({"city": None},))
    own_search = h.db.document(f"savedSearches/{agent}-own")
    from .world import index, search

    own_search.set(search(agent))
    index(h.db, own_search.id)
    home = h.publish(agent)

    h.start(home)
    h.drain()

    assert inbox_counts(h, [told, near, anywhere]) == {told: 1, near: 1, anywhere: 1}
    assert inbox_counts(h, [*not_told, agent]) == {u: 0 for u in [*not_told, agent]}


def test_channels_quiet_hours_and_dead_tokens(firestore_db: firestore.Client) -> None:
    # 21:30 UTC in July is 22:30 in London (BST): inside 22:00-07:00 quiet hours there,
    # outside them in UTC, so a clock that ignored the zone would push.
    h = Harness(firestore_db, clock=dt.datetime(2026, 7, 1, 21, 30, tzinfo=dt.UTC))
    agent = h.world.agent()
    quiet = QuietHours(start="22:00", end="07:00", timezone="Europe/London").model_dump()
    sleeping = h.world.buyer(quietHours=quiet)
    push_off = h.world.buyer(push=False)
    email_only = h.world.buyer(
        searches=({"channels": {"inApp": False, "push": False, "email": True}},)
    )
    dead = h.world.buyer()
    h.db.document(f"users/{dead}/devices/expired-{dead}").set(
        {
            **h.db.document(f"users/{dead}/devices/tok-{dead}-0").get().to_dict(),
            "token": f"expired-{dead}",
        }
    )
    assert h.sync_tokens(dead) == [f"tok-{dead}-0", f"expired-{dead}"]
    home = h.publish(agent)

    h.start(home)
    h.drain()

    # Everyone has the inbox record; the email-only user's never badges (read).
    assert inbox_counts(h, [sleeping, push_off, email_only, dead]) == {
        sleeping: 1,
        push_off: 1,
        email_only: 1,
        dead: 1,
    }
    assert set(h.transport.tokens()) == {f"tok-{dead}-0"}  # quiet, off and email-only: none
    assert not h.db.document(f"users/{dead}/devices/expired-{dead}").get().exists
    assert h.db.document(f"users/{dead}/devices/tok-{dead}-0").get().exists
    assert h.sync_tokens(dead) == [f"tok-{dead}-0"]  # the delete's trigger event
    for user in (sleeping, push_off, email_only, dead):  # each inbox document is a digest item
        (note,) = h.world.inbox(user).values()
        assert (note["emailDay"], note["emailTo"]) == ("2026-07-01", f"{user}@example.test")
    assert h.world.inbox(email_only)[next(iter(h.world.inbox(email_only)))]["read"] is True


def test_a_stale_event_notifies_nobody(h: Harness) -> None:
    agent = h.world.agent()
    buyer = h.world.buyer()
    gone = h.publish(agent, status="under_offer")  # left the market before the job ran
    moved = h.publish(agent, price={"amount": 300_000_00, "currency": "GBP"})

    h.start(gone)
    h.start(moved, "price_drop", 320_000_00)  # dropped again since: that drop's job tells
    outcomes = h.drain()

    assert outcomes == ["0:stopped", "0:stopped"]
    assert h.world.inbox(buyer) == {}


def test_the_daily_digest_is_mailed_once_in_trigger_email_format(h: Harness) -> None:
    agent = h.world.agent()
    buyer = h.world.buyer()
    for _ in range(3):
        h.start(h.publish(agent))
    h.drain()

    today = NOW.date()
    assert alerts.send_due_digests(h.db, today) == 0  # the day is not over
    assert alerts.send_due_digests(h.db, today + dt.timedelta(days=1)) == 1
    assert alerts.send_due_digests(h.db, today + dt.timedelta(days=1)) == 0  # once

    mails = [d.to_dict() for d in h.db.collection("mail").stream()]
    assert len(mails) == 1
    assert mails[0]["to"] == f"{buyer}@example.test"
    assert mails[0]["message"]["subject"] == "3 new homes for your saved searches"
    assert mails[0]["message"]["text"].count("New home matching your search") == 3
    # The inbox documents stay, no longer marked for a digest.
    notes = h.world.inbox(buyer).values()
    assert len(notes) == 3 and not any("emailDay" in n or "emailTo" in n for n in notes)


def test_a_users_busy_day_and_other_users_each_get_their_own_digest(h: Harness) -> None:
    agent = h.world.agent()
    buyers = [h.world.buyer() for _ in range(3)]
    email_off = h.world.buyer(
        searches=({"channels": {"inApp": True, "push": True, "email": False}},)
    )
    for _ in range(4):
        h.start(h.publish(agent))
    h.drain()

    # Pages of 5 items: a user's day straddles pages, and still goes in one message.
    tomorrow = NOW.date() + dt.timedelta(days=1)
    assert alerts.send_due_digests(h.db, tomorrow, page=5) == 3
    mails = [d.to_dict() for d in h.db.collection("mail").stream()]
    assert sorted(m["to"] for m in mails) == sorted(f"{b}@example.test" for b in buyers)
    assert {m["message"]["subject"] for m in mails} == {"4 new homes for your saved searches"}
    assert all("emailDay" not in n for n in h.world.inbox(email_off).values())


def test_a_malformed_task_is_refused_by_the_payload_model() -> None:
    for bad in (
        {"job": "a/b", "kind": "new_listing"},
        {"job": "x", "kind": "k", "first_chunk": -1},
        {},
    ):
        with pytest.raises(ValueError):
            fanout.Task.model_validate(bad)


def test_a_users_channels_add_up_across_chunks(h: Harness) -> None:
    from .world import index, search

    agent = h.world.agent()
    buyer = h.world.buyer(searches=())
    # One search first in the first shard (the first chunk), the other last in the
    # second (the last chunk): ids that sort first and last, their slots pinned (a new
    # audience has 2 shards; the index draws a slot only for a key it has no record of).
    first, last = f"aaa-{buyer}", f"zzz-{buyer}"
    for key, slot in ((first, 0), (last, 1)):
        h.db.document(alerts.SEARCH_INDEX.key_path(key)).set({"key": key, "slot": slot})
    in_app_only = {"inApp": True, "push": False, "email": False}
    h.db.document(f"savedSearches/{first}").set(search(buyer, channels=in_app_only))
    index(h.db, first)
    fillers = [h.world.buyer(searches=({"channels": in_app_only},)) for _ in range(60)]
    h.db.document(f"savedSearches/{last}").set(search(buyer))
    index(h.db, last)
    home = h.publish(agent)

    h.start(home)
    outcomes = h.drain()

    assert len(outcomes) == 2
    assert inbox_counts(h, [buyer, *fillers]) == {u: 1 for u in [buyer, *fillers]}
    note = h.world.inbox(buyer)[f"new_listing-{home}"]
    assert note["data"]["channels"] == ["email", "inApp", "push"]
    assert h.transport.tokens() == Counter({f"tok-{buyer}-0": 1})
    assert (note["emailDay"], note["emailTo"]) == ("2026-11-24", f"{buyer}@example.test")


def test_an_attempt_that_died_holding_its_chunk_is_taken_over_after_its_lease(
    h: Harness,
) -> None:
    agent = h.world.agent()
    buyers = [h.world.buyer() for _ in range(10)]
    home = h.publish(agent)
    h.start(home)
    task = h.queue.tasks[0]
    h.transport.fail_on_call = 1
    with pytest.raises(BoomError):
        h.fanout.run_task(h.db, task)
    # As if that attempt had died instead (a timeout, a lost instance): the lease stays.
    record = h.db.collection(fanout.CHUNKS).document(task.task_id)
    record.update({"leaseUntil": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)})

    with pytest.raises(fanout.ChunkBusy):  # answered 503: the queue comes back later
        h.fanout.run_task(h.db, task)
    record.update({"leaseUntil": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)})
    later = h.fanout.run_task(h.db, task)

    assert (later.outcome, later.acted) == ("resumed", 10)
    assert h.transport.tokens() == Counter({f"tok-{u}-0": 1 for u in buyers})


def test_a_duplicate_task_arriving_while_the_first_pushes_is_told_to_come_back(
    h: Harness,
) -> None:
    """The attempt that commits a chunk holds its lease from that commit (it claims
    nothing afterwards): a duplicate delivery of its task in the meantime is refused."""
    agent = h.world.agent()
    buyers = [h.world.buyer() for _ in range(10)]
    home = h.publish(agent)
    h.start(home)
    task = h.queue.tasks[0]
    duplicates: list[str] = []
    send_each = h.transport.send_each

    def with_a_duplicate(messages: list[messaging.Message]) -> messaging.BatchResponse:
        if not duplicates:
            try:
                h.fanout.run_task(h.db, task)
                duplicates.append("ran")
            except fanout.ChunkBusy:
                duplicates.append("busy")
        return send_each(messages)

    h.transport.send_each = with_a_duplicate  # type: ignore[method-assign]
    first = h.fanout.run_task(h.db, task)

    assert duplicates == ["busy"]
    assert (first.outcome, first.acted) == ("delivered", 10)
    assert h.transport.tokens() == Counter({f"tok-{u}-0": 1 for u in buyers})
    record = h.db.collection(fanout.CHUNKS).document(task.task_id).get().to_dict() or {}
    assert (record["state"], record["leaseUntil"]) == ("done", None)


def test_a_transient_fcm_failure_retries_only_those_users(h: Harness) -> None:
    agent = h.world.agent()
    buyers = [h.world.buyer() for _ in range(10)]
    h.transport.unavailable_once = {f"tok-{buyers[3]}-0"}
    home = h.publish(agent)

    h.start(home)
    outcomes = h.drain()

    assert outcomes == ["0:failed", "0:resumed"]
    assert h.transport.tokens() == Counter({f"tok-{u}-0": 1 for u in buyers})


def test_a_late_item_after_its_digest_was_mailed_goes_out_next_run(h: Harness) -> None:
    agent = h.world.agent()
    buyer = h.world.buyer()
    h.start(h.publish(agent))
    h.drain()
    tomorrow = NOW.date() + dt.timedelta(days=1)
    assert alerts.send_due_digests(h.db, tomorrow) == 1

    h.start(h.publish(agent))  # a chunk that committed just after midnight's send
    h.drain()

    assert alerts.send_due_digests(h.db, tomorrow) == 1
    assert alerts.send_due_digests(h.db, tomorrow) == 0
    mails = [d.to_dict() for d in h.db.collection("mail").stream()]
    assert sorted(m["message"]["subject"] for m in mails) == [
        "1 new home for your saved searches",
        "1 new home for your saved searches",
    ]
    assert {m["to"] for m in mails} == {f"{buyer}@example.test"}


# --- tasks that run several chunks ---------------------------------------------------------


def test_a_task_runs_several_chunks_and_hands_the_rest_to_the_next_task(
    firestore_db: firestore.Client,
) -> None:
    h = Harness(firestore_db, per_task=3)
    agent = h.world.agent()
    buyers = [h.world.buyer() for _ in range(220)]  # 5 chunks of 50
    home = h.publish(agent)

    h.start(home)
    outcomes = h.drain()

    assert outcomes == ["0:delivered", "3:delivered"]
    assert [t.task_id.rsplit("-", 1)[1] for t in h.queue.tasks] == ["00000", "00003"]
    assert inbox_counts(h, buyers) == {u: 1 for u in buyers}
    assert h.transport.tokens() == Counter({f"tok-{u}-0": 1 for u in buyers})
    records = sorted(d.to_dict()["chunk"] for d in h.db.collection(fanout.CHUNKS).stream())
    assert records == [0, 1, 2, 3, 4]


def test_redelivered_tasks_and_a_spent_time_budget_tell_nobody_twice(
    firestore_db: firestore.Client,
) -> None:
    h = Harness(firestore_db, per_task=4)
    buyers, _home = h.told_about_a_new_home(160)  # one task: 4 chunks of 50
    sent_once = h.transport.tokens()

    # Redelivered, and by a worker whose budget is spent at once (it runs one chunk and
    # queues the next, under a name the queue has not seen).
    outcomes = h.redeliver_all(seed=3)
    h.fanout.task_budget = dt.timedelta(0)
    hurried = h.fanout.run_task(h.db, h.queue.tasks[0])
    tail = h.drain()

    assert outcomes == ["duplicate"]
    assert (hurried.outcome, hurried.chunks, hurried.next_task.first_chunk) == ("duplicate", 1, 1)
    assert tail == ["1:duplicate", "2:duplicate", "3:duplicate"]
    assert h.transport.tokens() == sent_once == Counter({f"tok-{u}-0": 1 for u in buyers})
    assert inbox_counts(h, buyers) == {u: 1 for u in buyers}


# --- push tokens kept on the account ---------------------------------------------------------


def test_accounts_from_before_the_token_sync_are_pushed_to_their_devices(h: Harness) -> None:
    agent = h.world.agent()
    synced = h.world.buyer(tokens=2)
    legacy = h.world.buyer(tokens=2, synced=False)  # no pushTokens: the devices are read
    home = h.publish(agent)

    h.start(home)
    h.drain()

    assert h.transport.tokens() == Counter(
        {f"tok-{u}-{n}": 1 for u in (synced, legacy) for n in (0, 1)}
    )


def test_the_token_sync_keeps_the_newest_devices_whatever_order_its_events_come_in(
    h: Harness,
) -> None:
    buyer = h.world.buyer(tokens=0)
    devices = h.db.collection(f"users/{buyer}/devices")
    from .world import device

    # Seven devices used at different times; then the oldest-but-one is deleted.
    for n in range(7):
        used = NOW + dt.timedelta(minutes=n)
        devices.document(f"t{n}").set(device(buyer, f"t{n}") | {"updatedAt": used})
    devices.document("t1").delete()
    newest = ["t6", "t5", "t4", "t3", "t2"]

    # One sync per event (7 writes, 1 delete), redelivered and shuffled: each reads the
    # devices as they are now, so all end the same, and the repeats write nothing.
    events = [buyer] * 8 * 2
    random.Random(11).shuffle(events)
    results = [h.sync_tokens(who) for who in events]

    assert results[0] == newest and results[1:] == [None] * (len(events) - 1)
    account = h.db.document(f"users/{buyer}/private/account").get().to_dict()
    assert account["pushTokens"] == newest
    # A user with no account (deleted) gets none created.
    ghost = uid("ghost")
    h.db.document(f"users/{ghost}/devices/g0").set(device(ghost, "g0"))
    assert h.sync_tokens(ghost) is None
    assert not h.db.document(f"users/{ghost}/private/account").get().exists
