"""Accepting an offer on a rental with 1, 10 and 50 competing open offers, each with its
holding deposit held in localstripe (goal: the acceptance answers in the same time at 50
as at 1, the releases running after it; what follows costs the same per competing offer).

After one unmeasured warm-up sample, per sample a fresh rental listing and ``n + 1``
offers by fresh renters, each made by ``offers.make`` (its manual-capture PaymentIntent in
localstripe), its card confirmed as the payment sheet does and its hold recorded
(``deposits.refresh``). Then, timed:

1. ``accept``: ``offers.answer_as(..., agent="accept")``, what ``accept_offer`` runs;
2. ``winner``: the accepted offer's trigger (``offer_upkeep.follow_up``): the deposit
   captured, the renter told, the ``n`` other offers moved to rejected;
3. ``losers``: each rejected offer's trigger, :data:`WORKERS` at a time as the Functions
   runtime runs them side by side: its hold cancelled in localstripe, its renter told.

``settled`` is the wall time from the acceptance's start until every other hold is let go.
Each step goes through a metered client (documents read as Firestore bills them, writes,
round trips) and a counted Stripe client (calls by method). After each sample the checks:
one PaymentIntent succeeded, ``n`` cancelled, every offer's deposit state agreeing.

The baseline is the same flow with one competing offer (``n = 1``), in the same run:
``ratio.acceptP50`` is the acceptance's p50 at ``n`` over its p50 at 1 (goal ≈ 1), and
the per-competitor figures (``readsPerLoser``...) show the linear cost.

Run: ``python -m bench.offer_accept [--samples N]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from google.cloud import firestore

from bench import common
from bench.callable_overhead import quiet
from bench.chat_cost import Meter, metered
from marketplace import offer_upkeep, offers
from marketplace.models.deals import RentConditions
from marketplace.payments import deposits, stripe_api

NAME = "offer_accept"
COMPETING = (1, 10, 50)
SAMPLES = 3
WORKERS = 8
RENT = 2_000_00
CARD = "pm_card_visa"
COLUMNS = (
    "competing",
    "samples",
    "acceptP50Ms",
    "winnerP50Ms",
    "losersP50Ms",
    "settledP50Ms",
    "acceptReads",
    "acceptWrites",
    "winnerReads",
    "winnerWrites",
    "readsPerLoser",
    "writesPerLoser",
    "stripePerLoser",
    "stripeCalls",
)


class CountedStripe:
    """The functions' Stripe client, counting the calls made on its PaymentIntents."""

    def __init__(self) -> None:
        self.api = stripe_api.client()
        self.calls: Counter[str] = Counter()
        service = self.api.v1.payment_intents
        for name in ("create", "retrieve", "capture", "cancel"):
            setattr(service, name, self._counted(name, getattr(type(service), name), service))

    def _counted(self, name: str, method: Any, service: Any) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(service, *args, **kwargs)

        return call

    @contextmanager
    def counting(self) -> Iterator[Counter[str]]:
        before = Counter(self.calls)
        seen: Counter[str] = Counter()
        try:
            yield seen
        finally:
            seen.update(self.calls - before)


def _world(db: firestore.Client, stripe: CountedStripe, competing: int) -> tuple[str, list[str]]:
    """A rental and ``competing + 1`` offers on it, every deposit held: (agent, offers)."""
    tag = uuid.uuid4().hex[:8]
    agent, listing_id = f"bench-agent-{tag}", f"bench-rental-{tag}"
    db.document(f"listings/{listing_id}").set(
        {
            "ownerId": agent,
            "status": "active",
            "kind": "rent",
            "title": "Two bed flat",
            "price": {"amount": RENT, "currency": "GBP"},
        }
    )
    made = []
    for n in range(competing + 1):
        renter = f"bench-renter-{tag}-{n}"
        request = offers.MakeOfferRequest(
            listingId=listing_id,
            amount=RENT - n * 100,
            currency="GBP",
            conditions=RentConditions(moveInDate="2027-04-01", termMonths=12),
            expiresAt=dt.datetime.now(dt.UTC) + dt.timedelta(days=5),
        )
        offer = offers.make(
            db,
            buyer_uid=renter,
            email_verified=True,
            request=request,
            stripe_api=lambda: stripe.api,
        )
        assert offer.deposit is not None
        stripe.api.v1.payment_intents.update(
            offer.deposit.paymentIntentId, params={"payment_method": CARD}
        )
        stripe.api.v1.payment_intents.confirm(offer.deposit.paymentIntentId)
        deposits.refresh(db, stripe.api, offer.offerId)
        made.append(offer.offerId)
    return agent, made


def _data(db: firestore.Client, offer_id: str) -> dict[str, Any]:
    return db.document(f"offers/{offer_id}").get().to_dict() or {}


def sample(db: firestore.Client, stripe: CountedStripe, competing: int) -> dict[str, Any]:
    """One acceptance among ``competing`` other held offers, and what follows it."""
    agent, made = _world(db, stripe, competing)
    winner, losers = made[0], made[1:]

    def factory() -> Any:  # the functions pass a client factory too
        return stripe.api

    started = time.perf_counter()
    with metered(db) as accept_meter, stripe.counting() as accept_stripe:
        offers.answer_as(db, winner, agent, agent="accept", stripe_api=factory)
    accepted = time.perf_counter()
    with metered(db) as winner_meter, stripe.counting() as winner_stripe:
        offer_upkeep.follow_up(db, winner, _data(db, winner), factory)
    followed = time.perf_counter()
    loser_meters: list[Meter] = []
    with stripe.counting() as loser_stripe:

        def follow(offer_id: str) -> None:
            with metered_copy(db) as (client, meter):
                offer_upkeep.follow_up(client, offer_id, _data(client, offer_id), factory)
            loser_meters.append(meter)

        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(follow, losers))
    settled = time.perf_counter()
    _check(db, stripe, winner, losers)
    loser_total = Meter()
    for meter in loser_meters:
        for step, rpcs in meter.steps.items():
            loser_total.step(step).add(rpcs)
    return {
        "acceptMs": (accepted - started) * 1000,
        "winnerMs": (followed - accepted) * 1000,
        "losersMs": (settled - followed) * 1000,
        "settledMs": (settled - started) * 1000,
        "accept": accept_meter.total(),
        "winner": winner_meter.total(),
        "losers": loser_total.total(),
        "stripe": {
            "accept": dict(accept_stripe),
            "winner": dict(winner_stripe),
            "losers": dict(loser_stripe),
        },
    }


@contextmanager
def metered_copy(db: firestore.Client) -> Iterator[tuple[firestore.Client, Meter]]:
    """A client of its own (the meter wraps one client's stub) on the same emulator."""
    client = firestore.Client(project=db.project)
    with metered(client) as meter:
        yield client, meter


def _check(db: firestore.Client, stripe: CountedStripe, winner: str, losers: list[str]) -> None:
    states = Counter(_data(db, o)["deposit"]["state"] for o in losers)
    statuses = Counter(
        stripe.api.v1.payment_intents.retrieve(_data(db, o)["deposit"]["paymentIntentId"]).status
        for o in losers
    )
    won = _data(db, winner)
    if (won["status"], won["deposit"]["state"]) != ("accepted", "captured"):
        raise AssertionError(f"the winner ended {won['status']} with {won['deposit']}")
    if states != {"released": len(losers)} or statuses != {"canceled": len(losers)}:
        raise AssertionError(f"the other holds ended {states} (Stripe: {statuses})")


def run(
    db: firestore.Client, *, samples: int = SAMPLES, competing: tuple[int, ...] = COMPETING
) -> dict[str, Any]:
    """Every size, ``samples`` times each (sizes interleaved); rows, figures and ratios."""
    stripe = CountedStripe()
    taken: dict[int, list[dict[str, Any]]] = {n: [] for n in competing}
    with quiet():
        sample(db, stripe, 1)  # warm-up: the first acceptance pays for cold clients
        for _ in range(samples):
            for n in competing:
                taken[n].append(sample(db, stripe, n))
    rows = [_row(n, taken[n]) for n in competing]
    base = rows[0]
    ratios = {
        f"acceptP50at{r['competing']}": common.ratio(r["acceptP50Ms"], base["acceptP50Ms"])
        for r in rows
    }
    return {
        "params": {"competing": list(competing), "samples": samples, "workers": WORKERS},
        "figures": {f"at{r['competing']}": r for r in rows},
        "baseline": {"competing": base["competing"], "acceptP50Ms": base["acceptP50Ms"]},
        "ratios": ratios,
        "rows": rows,
    }


def _row(competing: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def p50(key: str) -> float:
        return round(common.percentiles([r[key] for r in runs], 50)["p50"], 1)

    last = runs[-1]
    losers = last["losers"]
    stripe_losers = sum(last["stripe"]["losers"].values())
    return {
        "competing": competing,
        "samples": len(runs),
        "acceptP50Ms": p50("acceptMs"),
        "winnerP50Ms": p50("winnerMs"),
        "losersP50Ms": p50("losersMs"),
        "settledP50Ms": p50("settledMs"),
        "acceptReads": last["accept"].billed_reads,
        "acceptWrites": last["accept"].written,
        "winnerReads": last["winner"].billed_reads,
        "winnerWrites": last["winner"].written,
        "readsPerLoser": round(losers.billed_reads / competing, 2),
        "writesPerLoser": round(losers.written / competing, 2),
        "stripePerLoser": round(stripe_losers / competing, 2),
        "stripeCalls": last["stripe"],
    }


def main() -> None:
    """Start or reuse the stack, run the benchmark, write and print its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=SAMPLES)
    args = parser.parse_args()
    with common.emulators() as stack, common.triggers_paused(stack):
        from seed.payments import client  # the stack's localstripe, as the seed reaches it

        client()
        outcome = run(common.firestore_client(stack), samples=args.samples)
    path = common.report(NAME, outcome, COLUMNS)
    print(f"written to {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
