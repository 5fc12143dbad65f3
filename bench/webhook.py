"""Stripe webhook processing in process against the emulator: 1,000 signed subscription
and invoice events through the real intake, against a bare handler doing only the same
Firestore transaction.

The world: 100 agents known to Stripe, each set up as ``customers.ensure_customer``
leaves them (``customers/{uid}``, the account's ``stripeCustomerId``, the reverse map
``_stripeCustomers/{customerId}``), with a profile and an Auth account holding an
unrelated claim. Each agent's subscription to the plan lives through ten events, in the
shapes Stripe sends them (API 2024-06-20, as localstripe's): created ``incomplete`` and
paid in the same second, active, renewed (a paid invoice that changes nothing), a failed
renewal and its ``past_due`` update (same second: stale), paid again, then either a
scheduled cancellation and ``deleted`` or another renewal. All 1,000 events are delivered
in Stripe's order (by ``created``, agents interleaved).

- **Intake** (the figures): per event, a body signed as Stripe signs it, just before it
  is delivered (the verifier refuses signatures older than 5 minutes), in a Flask request
  context; timed: ``firekit.webhooks.handle_request`` with ``events.intake()`` and
  ``stripe_verifier(stripe_api.webhook_secret)``, what ``stripe_webhook`` runs: shape
  checks, signature (the official SDK), JSON, the ledger entry created as the event's
  lease, the handler and the entry's update (on the lease's precondition) in one
  transaction, the followup, the log line.
- **Baseline**: on a twin world (other ids, same states), the same handler function on
  the same event (already parsed, no signature, no ledger) inside
  ``firestore.transactional``.

Two configurations, each on fresh worlds: ``transaction`` (no followups on either side:
what verification and the ledger add to the bare transaction) and ``withClaimSync`` (the
intake's followup, which syncs the ``plan`` custom claim through the Auth emulator after
the commit, and the same followup after the baseline's transaction, under the same
condition: applied, stale or duplicate). Intake and baseline alternate per event (which
goes first alternates too), so both see the same emulator load. A warm-up world goes
first, untimed. The log lines go to ``/dev/null`` while timing.

Run: ``python -m bench.webhook [--customers N]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, request
from google.cloud import firestore

from bench import common
from firekit import bootstrap, webhooks
from marketplace.payments import customers, events, plans, stripe_api
from marketplace.profiles import account_ref, new_profile, profile_ref
from marketplace.roles import Role
from pytest_firebase.webhooks import stripe_event, stripe_webhook

NAME = "webhook"
CUSTOMERS = 100
EVENTS_PER_CUSTOMER = 10
WARMUP_CUSTOMERS = 3
CONFIGS = ("transaction", "withClaimSync")
DAY = 86_400
PERIOD = 31 * DAY
APP = Flask(__name__)
FOLLOWED = (webhooks.Outcome.APPLIED, webhooks.Outcome.DUPLICATE, webhooks.Outcome.STALE)
"""The outcomes after which the intake runs a followup (``Intake.process``)."""


# --- the world -------------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    """One agent known to Stripe, with one subscription to the plan."""

    uid: str
    customer: str
    subscription: str
    start: int


def agents(tag: str, count: int, t0: int) -> list[Agent]:
    """``count`` agents of the world ``tag``; their subscriptions start 37 s apart."""
    return [
        Agent(f"wh-{tag}-{n:03d}", f"cus_wh{tag}{n:03d}", f"sub_wh{tag}{n:03d}", t0 + 37 * n)
        for n in range(count)
    ]


def store(db: firestore.Client, world: Sequence[Agent]) -> None:
    """Auth accounts (role and an unrelated claim), profiles, and the customer documents
    ``customers.ensure_customer`` writes."""
    from firebase_admin import auth

    uids = [a.uid for a in world]
    for start in range(0, len(uids), 1000):  # a reused stack may hold an earlier run's
        auth.delete_users(uids[start : start + 1000])
    records = [
        auth.ImportUserRecord(
            a.uid,
            email=f"{a.uid}@homefront.test",
            custom_claims={"role": "agent", "team": "north"},
        )
        for a in world
    ]
    for start in range(0, len(records), 1000):
        result = auth.import_users(records[start : start + 1000])
        if result.failure_count:
            raise RuntimeError(f"Auth import failed: {result.errors[0].reason}")
    batch, pending = db.batch(), 0
    for agent in world:
        email = f"{agent.uid}@homefront.test"
        batch.set(profile_ref(db, agent.uid), new_profile("Bench Agent", None, Role.AGENT))
        batch.set(
            customers.customer_ref(db, agent.uid),
            {
                "stripeCustomerId": agent.customer,
                "email": email,
                "createdAt": firestore.SERVER_TIMESTAMP,
            },
        )
        batch.set(account_ref(db, agent.uid), {"stripeCustomerId": agent.customer}, merge=True)
        batch.set(
            db.collection(customers.BY_STRIPE_ID).document(agent.customer), {"uid": agent.uid}
        )
        pending += 4
        if pending >= 400:
            batch.commit()
            batch, pending = db.batch(), 0
    batch.commit()


# --- Stripe's objects, as events carry them ---------------------------------------------


def _plan() -> dict[str, Any]:
    return {
        "id": plans.PLAN_ID,
        "object": "plan",
        "active": True,
        "amount": plans.PLAN_PRICE.amount,
        "currency": plans.PLAN_PRICE.currency.lower(),
        "interval": plans.PLAN_INTERVAL,
        "interval_count": 1,
        "product": "prod_homefront_agent_pro",
        "livemode": False,
    }


def subscription(
    agent: Agent, status: str, period: int, *, cancelling: bool = False, ended: int | None = None
) -> dict[str, Any]:
    """The subscription in its ``period``-th billing period (0 is the first)."""
    start = agent.start + period * PERIOD
    return {
        "id": agent.subscription,
        "object": "subscription",
        "customer": agent.customer,
        "status": status,
        "created": agent.start,
        "start_date": agent.start,
        "current_period_start": start,
        "current_period_end": start + PERIOD,
        "cancel_at_period_end": cancelling,
        "canceled_at": ended,
        "ended_at": ended,
        "collection_method": "charge_automatically",
        "currency": "gbp",
        "latest_invoice": f"in_{agent.subscription}_{period}",
        "livemode": False,
        "metadata": {"uid": agent.uid, "purpose": "agent_plan"},
        "items": {
            "object": "list",
            "has_more": False,
            "data": [
                {
                    "id": f"si_{agent.subscription}",
                    "object": "subscription_item",
                    "created": agent.start,
                    "quantity": 1,
                    "plan": _plan(),
                    "price": {**_plan(), "object": "price", "unit_amount": plans.PLAN_PRICE.amount},
                    "subscription": agent.subscription,
                }
            ],
        },
    }


def invoice(agent: Agent, period: int, *, paid: bool) -> dict[str, Any]:
    """The invoice of the ``period``-th billing period, paid or with its payment failed."""
    start = agent.start + period * PERIOD
    amount = plans.PLAN_PRICE.amount
    return {
        "id": f"in_{agent.subscription}_{period}",
        "object": "invoice",
        "customer": agent.customer,
        "subscription": agent.subscription,
        "status": "paid" if paid else "open",
        "paid": paid,
        "billing_reason": "subscription_create" if period == 0 else "subscription_cycle",
        "amount_due": amount,
        "amount_paid": amount if paid else 0,
        "amount_remaining": 0 if paid else amount,
        "attempt_count": 1,
        "currency": "gbp",
        "created": start,
        "period_start": start,
        "period_end": start,
        "payment_intent": f"pi_{agent.subscription}_{period}",
        "livemode": False,
        "lines": {
            "object": "list",
            "has_more": False,
            "data": [
                {
                    "id": f"il_{agent.subscription}_{period}",
                    "object": "line_item",
                    "amount": amount,
                    "currency": "gbp",
                    "type": "subscription",
                    "subscription": agent.subscription,
                    "plan": _plan(),
                    "period": {"start": start, "end": start + PERIOD},
                }
            ],
        },
    }


def lifecycle(agent: Agent, n: int) -> list[dict[str, Any]]:
    """The ten events of one agent's subscription, in Stripe's order."""
    t, updated, paid = agent.start, "customer.subscription.updated", "invoice.payment_succeeded"
    raw: list[tuple[str, dict[str, Any], int]] = [
        ("customer.subscription.created", subscription(agent, "incomplete", 0), t),
        (paid, invoice(agent, 0, paid=True), t),
        (updated, subscription(agent, "active", 0), t + 1),
        (paid, invoice(agent, 1, paid=True), t + PERIOD),  # a renewal: already active
        (updated, subscription(agent, "active", 1), t + PERIOD),
        ("invoice.payment_failed", invoice(agent, 2, paid=False), t + 2 * PERIOD),
        (updated, subscription(agent, "past_due", 2), t + 2 * PERIOD),  # same second: stale
        (paid, invoice(agent, 2, paid=True), t + 2 * PERIOD + 3 * DAY),
    ]
    if n % 2:  # cancels at the end of the period
        raw += [
            (updated, subscription(agent, "active", 2, cancelling=True), t + 2 * PERIOD + 4 * DAY),
            (
                "customer.subscription.deleted",
                subscription(agent, "canceled", 2, cancelling=True, ended=t + 3 * PERIOD),
                t + 3 * PERIOD,
            ),
        ]
    else:  # renews
        raw += [
            (paid, invoice(agent, 3, paid=True), t + 3 * PERIOD),
            (updated, subscription(agent, "active", 3), t + 3 * PERIOD),
        ]
    return [
        stripe_event(kind, obj, event_id=f"evt_{agent.subscription}_{k}", created=at)
        for k, (kind, obj, at) in enumerate(raw)
    ]


def stream(world: Sequence[Agent]) -> list[dict[str, Any]]:
    """Every agent's events, in the order Stripe sends them (by ``created``)."""
    events_ = [e for n, agent in enumerate(world) for e in lifecycle(agent, n)]
    return sorted(events_, key=lambda e: e["created"])  # stable: lifecycle order kept


# --- delivering one event -----------------------------------------------------------------


def intake_for(config: str) -> Callable[[], webhooks.Intake]:
    """The intake as ``stripe_webhook`` builds it per request (without followups for the
    ``transaction`` configuration)."""
    if config == "transaction":
        return lambda: dataclasses.replace(events.intake(), followups={})
    return events.intake


def deliver(
    db: firestore.Client, payload: dict[str, Any], intake: Callable[[], webhooks.Intake]
) -> tuple[str, float]:
    """Sign ``payload`` and hand it to the intake as the function does; ``(outcome, ms)``."""
    signed = stripe_webhook(payload, stripe_api.webhook_secret())
    with APP.test_request_context(
        "/stripe_webhook", method="POST", data=signed.body, headers=signed.headers
    ):
        started = time.perf_counter()
        verify = webhooks.stripe_verifier(stripe_api.webhook_secret)
        response = webhooks.handle_request(request, intake(), verify, db)
        elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{payload['id']}: {response.status_code} {response.get_data()!r}")
    return str(response.get_json()["outcome"]), elapsed


def bare(db: firestore.Client, payload: dict[str, Any], config: str) -> tuple[str, float]:
    """The same handler on the same event in a transaction: no signature, no ledger."""
    event = webhooks.parse_event(events.PROVIDER, payload)
    handler = events.handlers()[event.type]
    followup = plans.FOLLOWUPS.get(event.type) if config != "transaction" else None

    @firestore.transactional
    def apply(transaction: firestore.Transaction) -> str:
        return handler(db, transaction, event)

    started = time.perf_counter()
    outcome = apply(db.transaction())
    if followup is not None and outcome in FOLLOWED:
        followup(db, event)
    return outcome, (time.perf_counter() - started) * 1000


# --- the measurement ----------------------------------------------------------------------


@dataclass
class Measured:
    """One configuration: every event's latency through the intake and the bare handler."""

    config: str
    intake_ms: list[float] = dataclasses.field(default_factory=list)
    bare_ms: list[float] = dataclasses.field(default_factory=list)
    intake_outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    bare_outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    same_end_state: bool = False
    ledger_entries: int = 0


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The log lines (one per event, to stdout as on Cloud Run) go to /dev/null."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def end_state(db: firestore.Client, world: Sequence[Agent], claims: bool) -> list[tuple[Any, ...]]:
    """Each agent's mirror, profile plan and (with claim sync) claims, ids left out."""
    from firebase_admin import auth

    state = []
    for agent in world:
        mirror = plans.subscription_ref(db, agent.uid, agent.subscription).get().to_dict() or {}
        plan = (profile_ref(db, agent.uid).get().to_dict() or {}).get("plan")
        claim = (auth.get_user(agent.uid).custom_claims or {}) if claims else {}
        state.append(
            (
                mirror.get("status"),
                mirror.get("currentPeriodEnd"),
                mirror.get("cancelAtPeriodEnd"),
                mirror.get("stripeCreated", 0) - agent.start,
                plan,
                claim.get("plan"),
                claim.get("team"),
            )
        )
    return state


def measure(db: firestore.Client, config: str, count: int, t0: int) -> Measured:
    """Fresh twin worlds for ``config``: every event through both paths, alternating."""
    intake = intake_for(config)
    live, twin = agents(f"{config[0]}a", count, t0), agents(f"{config[0]}b", count, t0)
    store(db, live + twin)
    outcome = Measured(config)

    def through_intake(payload: dict[str, Any]) -> None:
        done, ms = deliver(db, payload, intake)
        outcome.intake_outcomes[done] += 1
        outcome.intake_ms.append(ms)

    def through_bare(payload: dict[str, Any]) -> None:
        done, ms = bare(db, payload, config)
        outcome.bare_outcomes[done] += 1
        outcome.bare_ms.append(ms)

    with quiet():
        for i, (a, b) in enumerate(zip(stream(live), stream(twin), strict=True)):
            if i % 2:  # who goes first alternates
                through_bare(b)
                through_intake(a)
            else:
                through_intake(a)
                through_bare(b)
    claims = config != "transaction"
    outcome.same_end_state = end_state(db, live, claims) == end_state(db, twin, claims)
    prefix = f"{events.PROVIDER}:evt_sub_wh{config[0]}a"
    outcome.ledger_entries = sum(
        1 for ref in db.collection(webhooks.LEDGER).list_documents() if ref.id.startswith(prefix)
    )
    return outcome


def run(
    db: firestore.Client, *, customers: int = CUSTOMERS, configs: Sequence[str] = CONFIGS
) -> dict[str, Any]:
    """Warm up, then measure each configuration on its own fresh worlds; summarise."""
    bootstrap.ensure_initialized()  # the claim sync goes through firebase_admin's Auth
    t0 = int(time.time()) - 120 * DAY
    warm = agents("w", WARMUP_CUSTOMERS, t0)
    store(db, warm)
    with quiet():
        for payload in stream(warm):
            deliver(db, payload, events.intake)
            bare(db, {**payload, "id": payload["id"] + "_bare"}, "withClaimSync")
    measured = []
    for config in configs:
        started = time.perf_counter()
        measured.append(measure(db, config, customers, t0))
        print(
            f"{config}: {customers * EVENTS_PER_CUSTOMER} events each way in "
            f"{time.perf_counter() - started:.0f} s"
        )
    return summarise(
        measured,
        {
            "customers": customers,
            "eventsPerCustomer": EVENTS_PER_CUSTOMER,
            "events": customers * EVENTS_PER_CUSTOMER,
            "warmupEvents": len(warm) * EVENTS_PER_CUSTOMER,
            "configs": list(configs),
            "eventTypes": dict(Counter(e["type"] for e in stream(agents("x", customers, t0)))),
        },
    )


def _stats(values: Sequence[float]) -> dict[str, float]:
    figures = common.percentiles(values, 50, 95) | {"mean": statistics.fmean(values)}
    return {key: round(value, 2) for key, value in figures.items()}


def summarise(measured: Sequence[Measured], params: dict[str, Any]) -> dict[str, Any]:
    """Per configuration: latency of the intake and of the bare handler, and their ratio."""
    figures: dict[str, Any] = {}
    baseline: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    rows = []
    for m in measured:
        mine, bare_ = _stats(m.intake_ms), _stats(m.bare_ms)
        figures[m.config] = {
            "latencyMs": mine,
            "events": len(m.intake_ms),
            "outcomes": dict(m.intake_outcomes),
            "ledgerEntries": m.ledger_entries,
            "sameEndStateAsBaseline": m.same_end_state,
        }
        baseline[m.config] = {
            "latencyMs": bare_,
            "events": len(m.bare_ms),
            "outcomes": dict(m.bare_outcomes),
        }
        ratios[m.config] = {k: common.ratio(mine[k], bare_[k]) for k in ("p50", "p95", "mean")}
        rows.append(
            {
                "config": m.config,
                "events": len(m.intake_ms),
                "intake p50": mine["p50"],
                "intake p95": mine["p95"],
                "intake mean": mine["mean"],
                "bare p50": bare_["p50"],
                "bare p95": bare_["p95"],
                "bare mean": bare_["mean"],
                "x p50": ratios[m.config]["p50"],
                "x p95": ratios[m.config]["p95"],
                "x mean": ratios[m.config]["mean"],
            }
        )
    baseline["what"] = (
        "the same handler on the same (already parsed) event in firestore.transactional, on a"
        " twin world: no signature, no ledger; withClaimSync: plus the same followup"
    )
    return {
        "figures": figures,
        "baseline": baseline,
        "ratios": ratios,
        "params": params,
        "rows": rows,
    }


def write(outcome: dict[str, Any], directory: Path = common.RESULTS) -> Path:
    """The outcome of :func:`run` as ``<directory>/webhook.json``."""
    return common.write_outcome(NAME, outcome, directory)


COLUMNS = (
    "config",
    "events",
    "intake p50",
    "intake p95",
    "intake mean",
    "bare p50",
    "bare p95",
    "bare mean",
    "x p50",
    "x p95",
    "x mean",
)


def main() -> None:
    """Start or reuse the emulators, run the benchmark, write and print its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=CUSTOMERS)
    args = parser.parse_args()
    import devstack  # on the path once bench.common is imported

    with common.emulators() as stack, common.triggers_paused(stack):
        # The webhook secret, as the in-process tests read it (functions/.secret.local).
        os.environ.update(devstack.stripe_environment(stack.config.port_offset))
        outcome = run(common.firestore_client(stack), customers=args.customers)
    path = common.report(NAME, outcome, COLUMNS)
    print(f"written to {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
