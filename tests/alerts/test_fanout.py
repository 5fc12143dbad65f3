"""The alert fan-out in-process against the Firestore emulator: once per user, whatever fails.

The chunks run through the same ``Fanout.run_chunk`` the ``deliverAlerts`` task function
runs; the queue is a local list, so a test decides when a task runs, runs it twice, or
lets it fail and runs it again (what Cloud Tasks does on a 5xx).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from firebase_admin import messaging

from firekit import fanout, push
from marketplace import alerts
from marketplace.models.users import QuietHours

from .world import NOW, World, listing, uid


class BoomError(RuntimeError):
    """An injected failure."""


@dataclass
class Transport:
    """FCM's shape, in memory: records what it sends; can fail on a chosen call."""

    sent: list[messaging.Message] = field(default_factory=list)
    fail_on_call: int | None = None
    calls: int = 0

    def send_each(self, messages: list[messaging.Message]) -> messaging.BatchResponse:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise BoomError("FCM unavailable")
        responses = []
        for message in messages:
            if str(message.fid).startswith(push.EXPIRED_PREFIX):
                responses.append(messaging.SendResponse(None, messaging.UnregisteredError("gone")))
            else:
                self.sent.append(message)
                responses.append(messaging.SendResponse({"name": "ok"}, None))
        return messaging.BatchResponse(responses)

    def tokens(self) -> Counter[str]:
        return Counter(str(m.fid) for m in self.sent)


@dataclass
class Queue:
    """Cloud Tasks, as a list: tasks run when the test says so."""

    tasks: list[fanout.ChunkTask] = field(default_factory=list)

    def __call__(self, task: fanout.ChunkTask) -> None:
        if task.task_id not in {t.task_id for t in self.tasks}:  # named tasks: one each
            self.tasks.append(task)


class Harness:
    def __init__(self, db: Any, *, chunk: int = 50, clock: dt.datetime = NOW) -> None:
        self.db, self.world = db, World(db)
        self.transport, self.queue = Transport(), Queue()
        self.delivery = alerts.AlertDelivery(
            transport=lambda _db: self.transport, clock=lambda: clock
        )
        self.fanout = fanout.Fanout(
            {kind: self.delivery for kind in alerts.EVENT_KINDS}, self.queue, chunk_size=chunk,
            act_slice=20,
        )  # fmt: skip

    def publish(self, owner: str, **overrides: Any) -> str:
        home = uid("home")
        self.db.document(f"listings/{home}").set(listing(owner, **overrides))
        return home

    def start(
        self, home: str, kind: alerts.EventKind = "new_listing", amount: int | None = None
    ) -> None:
        params: dict[str, Any] = {"listingId": home} | ({"amount": amount} if amount else {})
        self.fanout.start(alerts.alert_job(home, kind, amount), kind, params)

    def drain(self) -> list[str]:
        """Run queued tasks in order; one that fails goes to the back, as a retry."""
        outcomes, done = [], 0
        while done < len(self.queue.tasks):
            task = self.queue.tasks[done]
            try:
                outcomes.append(f"{task.chunk}:{self.fanout.run_chunk(self.db, task).outcome}")
            except BoomError:
                outcomes.append(f"{task.chunk}:failed")
                self.queue.tasks.append(self.queue.tasks.pop(done))
                continue
            done += 1
        return outcomes


@pytest.fixture
def h(firestore_db: Any) -> Harness:
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


def test_a_failure_mid_fan_out_is_retried_without_telling_anyone_twice(h: Harness) -> None:
    agent = h.world.agent()
    buyers = [h.world.buyer() for _ in range(150)]
    home = h.publish(agent)
    # Chunk 0 pushes in 3 calls (20 users a slice, 50 a chunk); call 5 is chunk 1's second
    # slice: its first 20 users were pushed when FCM fails.
    h.transport.fail_on_call = 5

    h.start(home)
    outcomes = h.drain()

    assert "1:failed" in outcomes and outcomes[-1] == "1:resumed"
    assert inbox_counts(h, buyers) == {u: 1 for u in buyers}
    assert h.transport.tokens() == Counter({f"tok-{u}-0": 1 for u in buyers})
    records = [d.to_dict() for d in h.db.collection(fanout.CHUNKS).stream()]
    assert sorted((r["chunk"], r["state"], r["pending"]) for r in records) == [
        (0, "done", []), (1, "done", []), (2, "done", []),
    ]  # fmt: skip


def test_duplicated_and_shuffled_tasks_change_nothing(h: Harness) -> None:
    agent = h.world.agent()
    buyers = [h.world.buyer() for _ in range(110)]
    home = h.publish(agent)
    h.start(home)
    h.drain()
    sent_once = h.transport.tokens()

    # Cloud Tasks redelivers: every task again, in a shuffled order, and the job restarted.
    again = list(h.queue.tasks)
    random.Random(7).shuffle(again)
    outcomes = [h.fanout.run_chunk(h.db, task).outcome for task in again]
    h.start(home)

    assert outcomes == ["duplicate"] * len(again)
    assert h.transport.tokens() == sent_once
    assert inbox_counts(h, buyers) == {u: 1 for u in buyers}


def test_a_rerun_job_tells_only_those_not_yet_told(h: Harness) -> None:
    # Chunk records expire (TTL); after that the inbox documents still say who was told.
    agent = h.world.agent()
    first = [h.world.buyer() for _ in range(30)]
    home = h.publish(agent)
    h.start(home)
    h.drain()
    for record in h.db.collection(fanout.CHUNKS).stream():
        record.reference.delete()
    late = h.world.buyer()
    h.queue.tasks.clear()

    h.start(home)
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
    from .world import search, with_keys

    own_search.set(with_keys(search(agent)))
    home = h.publish(agent)

    h.start(home)
    h.drain()

    assert inbox_counts(h, [told, near, anywhere]) == {told: 1, near: 1, anywhere: 1}
    assert inbox_counts(h, [*not_told, agent]) == {u: 0 for u in [*not_told, agent]}


def test_channels_quiet_hours_and_dead_tokens(firestore_db: Any) -> None:
    # 23:30 in London: inside 22:00-07:00 quiet hours.
    h = Harness(firestore_db, clock=dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.UTC))
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
    home = h.publish(agent)

    h.start(home)
    h.drain()

    assert inbox_counts(h, [sleeping, push_off, email_only, dead]) == {
        sleeping: 1, push_off: 1, email_only: 0, dead: 1,
    }  # fmt: skip
    assert set(h.transport.tokens()) == {f"tok-{dead}-0"}  # quiet, off and email-only: none
    assert not h.db.document(f"users/{dead}/devices/expired-{dead}").get().exists
    assert h.db.document(f"users/{dead}/devices/tok-{dead}-0").get().exists
    digests = {d.id: d.to_dict() for d in h.db.collection(alerts.DIGESTS).stream()}
    assert set(digests) == {f"{u}_2026-11-24" for u in (sleeping, push_off, email_only, dead)}


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


def test_a_malformed_task_is_refused_by_the_payload_model() -> None:
    for bad in ({"job": "a/b", "kind": "new_listing"}, {"job": "x", "kind": "k", "chunk": -1}, {}):
        with pytest.raises(ValueError):
            fanout.ChunkTask.model_validate(bad)
