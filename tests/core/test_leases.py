"""The one lease, against the Firestore emulator: one winner among racers, only the owner
releases or renews, a lapsed lease is taken over by exactly one caller."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.cloud import firestore

from firekit import leases
from firekit.errors import Aborted

TTL = dt.timedelta(seconds=30)
MOMENT = dt.timedelta(milliseconds=300)
RACERS = 20


def race(take: Callable[[], leases.Lease | None]) -> list[leases.Lease]:
    """Run ``take`` in RACERS threads released together; the leases they got."""
    start = threading.Barrier(RACERS)

    def one() -> leases.Lease | None:
        start.wait()
        return take()

    with ThreadPoolExecutor(RACERS) as pool:
        results = [pool.submit(one) for _ in range(RACERS)]
    return [held for f in results if (held := f.result()) is not None]


def lapse(lease: leases.Lease) -> None:
    """Wait until ``lease`` has run out (its TTL was short)."""
    time.sleep(max(0.0, (lease.until - dt.datetime.now(dt.UTC)).total_seconds()) + 0.05)


def test_exactly_one_of_many_racing_callers_gets_the_lease(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> None:
    ref = firestore_db.document(f"_locks/{unique('race')}")

    winners = race(lambda: leases.try_acquire(ref, TTL))

    assert len(winners) == 1
    assert ref.get().to_dict()["token"] == winners[0].token


def test_a_lapsed_lease_is_taken_over_by_exactly_one_of_many_racers(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> None:
    ref = firestore_db.document(f"_locks/{unique('lapsed')}")
    dead = leases.try_acquire(ref, MOMENT)
    assert dead is not None
    lapse(dead)

    winners = race(lambda: leases.try_acquire(ref, TTL))

    assert len(winners) == 1 and winners[0].token != dead.token
    assert ref.get().to_dict()["token"] == winners[0].token


def test_a_held_lease_is_refused_and_released_only_by_its_owner(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> None:
    ref = firestore_db.document(f"_locks/{unique('owner')}")
    old = leases.try_acquire(ref, MOMENT)
    assert old is not None and leases.try_acquire(ref, TTL) is None
    lapse(old)
    new = leases.try_acquire(ref, TTL)
    assert new is not None

    assert old.release() is False  # its holder came back late: the new owner keeps it
    with pytest.raises(leases.LeaseLost):
        old.renew(TTL)
    assert ref.get().to_dict()["token"] == new.token

    assert new.release() is True
    assert not ref.get().exists


def test_renewing_keeps_the_lease_past_its_first_expiry(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> None:
    ref = firestore_db.document(f"_locks/{unique('renew')}")
    held = leases.try_acquire(ref, MOMENT)
    assert held is not None

    held.renew(TTL)
    time.sleep(MOMENT.total_seconds() + 0.05)

    assert leases.try_acquire(ref, TTL) is None  # still ours after the first expiry
    assert ref.get().to_dict()["until"] == held.until
    assert held.release() is True


def test_leaving_the_block_releases_even_on_an_exception(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> None:
    ref = firestore_db.document(f"_locks/{unique('block')}")

    with (
        pytest.raises(RuntimeError),
        leases.acquire(ref, TTL, wait=TTL, busy_message="busy") as held,
    ):
        assert ref.get().to_dict()["token"] == held.token
        raise RuntimeError("the work failed")

    assert not ref.get().exists
    assert leases.try_acquire(ref, TTL) is not None


def test_a_waiter_gets_the_lease_when_the_holder_releases_and_gives_up_after_its_wait(
    firestore_db: firestore.Client, unique: Callable[[str], str]
) -> None:
    ref = firestore_db.document(f"_locks/{unique('wait')}")
    holder = leases.try_acquire(ref, TTL)
    assert holder is not None
    with pytest.raises(Aborted) as refused:
        leases.acquire(ref, TTL, wait=MOMENT, busy_message="Held elsewhere.")
    # The caller's words, firekit's reason.
    assert (refused.value.message, refused.value.details) == ("Held elsewhere.", {"reason": "busy"})

    threading.Timer(0.3, holder.release).start()
    with leases.acquire(ref, TTL, wait=TTL, busy_message="busy") as waiter:
        assert ref.get().to_dict()["token"] == waiter.token
