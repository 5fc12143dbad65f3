"""200 buyers asking at once for overlapping times of one agent's diary: never two
viewings in one granule, every loser told ``slot_taken``, and nobody loses to nobody."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from google.cloud import firestore

from firekit.errors import AppError
from marketplace import viewings
from tests.viewings.world import Diary, at, new_uid

REQUESTS = 200


def test_two_hundred_overlapping_requests_never_double_book(firestore_db: firestore.Client) -> None:
    diary = Diary(firestore_db)
    # Three listings of one agent, with slots of 30, 45 and 60 minutes over one morning:
    # every request overlaps many others, in the agent's diary if not in the listing's.
    lengths = (30, 45, 60)
    for minutes in lengths:
        home = diary.listing()
        diary.hours(
            home,
            weekly={"wed": "09:00-12:00"},
            slot=minutes,
            auto=minutes == 45,
        )
    rng = random.Random(15)
    choices = [
        (home, at(3, "09:00") + dt.timedelta(minutes=m * k))
        for home, m in zip(diary.listings, lengths, strict=True)
        for k in range(180 // m)
    ]
    asks = [rng.choice(choices) for _ in range(REQUESTS)]

    def ask(job: tuple[str, dt.datetime]) -> tuple[str, str]:
        home, start = job
        try:
            booked = diary.request(new_uid("buyer"), home, start, key=uuid.uuid4().hex)
            return "won", booked.viewingId
        except AppError as error:
            return f"{error.code.value}:{error.details.get('reason')}", ""

    with ThreadPoolExecutor(max_workers=32) as pool:
        outcomes = list(pool.map(ask, asks))

    kinds = Counter(kind for kind, _ in outcomes)
    assert set(kinds) == {"won", "failed-precondition:slot_taken"}, kinds
    live = [
        s.to_dict() or {}
        for s in firestore_db.collection(viewings.VIEWINGS).stream()
        if (s.to_dict() or {})["status"] in viewings.ACTIVE
    ]
    assert len(live) == kinds["won"]
    # The sweep: one agent's diary, so no two live viewings may overlap at all.
    for a, b in itertools.combinations(live, 2):
        assert a["slotEnd"] <= b["slotStart"] or b["slotEnd"] <= a["slotStart"], (a, b)
    # Nobody lost to nobody: every refused time overlaps a viewing that won.
    length = dict(zip(diary.listings, lengths, strict=True))
    for (kind, _), (home, start) in zip(outcomes, asks, strict=True):
        end = start + dt.timedelta(minutes=length[home])
        if kind != "won":
            assert any(v["slotStart"] < end and start < v["slotEnd"] for v in live)
    # Every lock belongs to a live viewing that lists it, and every listed lock exists.
    locks = {s.id for s in firestore_db.collection(viewings.LOCKS).stream()}
    assert locks == {lock for v in live for lock in v["locks"]}
