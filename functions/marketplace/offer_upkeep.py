"""What follows an offer's move: taking or letting go its deposit as the move asked,
telling the other party, rejecting the listing's other open offers once one is accepted;
and the clock that lapses offers whose time is up and watches the deposits' holds.

Run by the offer trigger (each revision once, retried) and the offer clock; every step is
a move through :func:`marketplace.offers.answer` or a deposit step that checks Stripe
first, so a rerun finds nothing left to do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from google.cloud import firestore

from firekit import logs
from firekit.notify import Notice, Outcome
from marketplace import offers, queries
from marketplace.models.deals import OPEN_STATUSES
from marketplace.offers import StripeFactory
from marketplace.payments import deposits
from marketplace.queries import RangeOp

PAGE = 200
STUCK_AFTER = dt.timedelta(minutes=2)
"""An ask older than this has not been carried out by its trigger (or Stripe has not
reported the hold): the clock sees to it."""
HOLD_ENDING = "The hold on the holding deposit ran out before the offer was answered."
OFF_MARKET = "The listing is no longer on the market ({status})."
AUTHORISE_WAIT = dt.timedelta(days=1)
"""How long the clock asks Stripe about a hold the renter has not authorised (after
that, the renter's card is not coming: the offer lapses on its own expiry)."""
_WHAT: Mapping[str, tuple[str, str]] = {
    "make": ("New offer", "{who} offered {amount} for {home}."),
    "accept": ("Offer accepted", "Your offer of {amount} for {home} was accepted."),
    "accept_counter": ("Counter-offer accepted", "{who} accepted your {amount} for {home}."),
    "reject": ("Offer rejected", "Your offer of {amount} for {home} was rejected."),
    "lose": ("Offer not accepted", "Another offer for {home} was accepted."),
    "counter": ("Counter-offer", "The agent for {home} would accept {amount}."),
    "decline": ("Counter-offer declined", "{who} declined your counter-offer for {home}."),
    "withdraw": ("Offer withdrawn", "{who} withdrew their offer of {amount} for {home}."),
    "lapse": ("Offer lapsed", "The offer of {amount} for {home} lapsed unanswered."),
}
"""Title and body of the notice of each move (a replaced offer tells nobody: the new one
does)."""


def told_of_change(data: Mapping[str, Any]) -> list[str]:
    """Who hears of the offer's latest move: the party who did not make it (a lapse both;
    losing to another offer the buyer)."""
    by = data["lastChange"]["by"]
    if by == "buyer":
        return [data["agentId"]]
    if by == "agent":
        return [data["buyerId"]]
    return (
        [data["buyerId"]]
        if data["lastChange"]["move"] == "lose"
        else [
            data["buyerId"],
            data["agentId"],
        ]
    )


def change_notices(db: firestore.Client, offer_id: str, data: Mapping[str, Any]) -> list[Notice]:
    """The notices of the move ``data`` records (an offer as its event has it)."""
    from marketplace.notify import display_name, listing_title, move_notices  # lazy: see follow_up

    move = data["lastChange"]["move"]
    if move not in _WHAT:
        return []
    title, body = _WHAT[move]
    shown = data["counterAmount"] if move == "counter" else data["amount"]
    text = body.format(
        who=display_name(db, data["buyerId"]) or "The buyer",
        amount=_money(shown),
        home=listing_title(db, data["listingId"]),
    )
    return move_notices(
        "offer",
        offer_id,
        data,
        recipients=told_of_change(data),
        title=title,
        text=text,
        change=move,
    )


def follow_up(
    db: firestore.Client, offer_id: str, data: Mapping[str, Any], stripe_api: StripeFactory
) -> dict[str, Any]:
    """After a move: do what it asked of the deposit, tell the other party once; after an
    acceptance, reject the listing's other open offers. Safe to run again (Stripe is
    checked before it is asked, notices are once each, moves find no edge)."""
    from marketplace import notify  # lazy: firekit.push imports firebase_admin.messaging

    deposit = data.get("deposit") or {}
    carried = "nothing"
    if deposit.get("asked") in ("capture", "cancel") and deposit.get("state") not in deposits.FINAL:
        carried = deposits.carry_out(db, stripe_api(), offer_id)
    told: list[Outcome] = [notify.notify(db, n) for n in change_notices(db, offer_id, data)]
    lost = 0
    if data.get("status") == "accepted":
        lost = lose_others(db, data["listingId"], offer_id)
    return {"deposit": carried, "told": sum(o.told for o in told), "lost": lost}


def lose_others(db: firestore.Client, listing_id: str, winner: str) -> int:
    """Reject every other open offer on the listing ("another offer was accepted")."""
    moved = 0
    for status in OPEN_STATUSES:
        query = queries.OPEN_OFFERS.build(
            db, equals={"listingId": listing_id, "status": status}, limit=PAGE
        )
        for snapshot in query.stream():
            if snapshot.id != winner and _move(db, snapshot.id, "lose", offers.ANOTHER_ACCEPTED):
                moved += 1
    return moved


def tick(db: firestore.Client, stripe_api: StripeFactory, now: dt.datetime) -> dict[str, int]:
    """One run of the offer clock. Letting holds go that are about to end comes first, and
    every offer is a step of its own: one that fails (Stripe down, a bad document) is
    logged and left for the next run, never stopping the rest."""
    return {
        "released": release_holds_ending(db, now),
        "lapsed": lapse_due(db, now),
        "checked": check_hold_ends(db, stripe_api),
        "warned": warn_holds_ending(db, now),
        "settled": settle_stuck_deposits(db, stripe_api, now),
    }


def _each(snapshots: Iterable[Any], step: Callable[[Any], bool], what: str) -> int:
    """Run ``step`` on each offer; how many it did something to. A step that raises is
    logged, and the others still run."""
    done = 0
    for snapshot in snapshots:
        try:
            done += bool(step(snapshot))
        except Exception as failed:  # one offer's failure must not stop the clock
            logs.error(
                "offer clock step failed", step=what, offerId=snapshot.id, error=repr(failed)
            )
    return done


def lapse_due(db: firestore.Client, now: dt.datetime) -> int:
    """Lapse every open or countered offer whose time is up (a page of each per run)."""
    moved = 0
    for status in OPEN_STATUSES:
        query = queries.OFFERS_TO_LAPSE.build(
            db, equals={"status": status}, ranges={"expiresAt": [("<=", now)]}, limit=PAGE
        )
        moved += _each(query.stream(), lambda s: _move(db, s.id, "lapse", None, now), "lapse")
    return moved


def _holds_ending_by(db: firestore.Client, moment: dt.datetime) -> Any:
    return queries.HOLDS_ENDING.build(
        db,
        equals={"deposit.state": "held"},
        ranges={"deposit.captureBefore": [("<=", moment)]},
        limit=PAGE,
    ).stream()


def release_holds_ending(db: firestore.Client, now: dt.datetime) -> int:
    """Lapse every undecided offer whose hold ends within the hour: its deposit is let go
    (the offer trigger cancels it) rather than ever captured after Stripe dropped it."""

    def release(snapshot: Any) -> bool:
        undecided = (snapshot.to_dict() or {}).get("status") in OPEN_STATUSES
        return undecided and _move(db, snapshot.id, "lapse", HOLD_ENDING, now)

    return _each(_holds_ending_by(db, now + deposits.RELEASE_BEFORE), release, "release")


def check_hold_ends(db: firestore.Client, stripe_api: StripeFactory) -> int:
    """Ask each new hold's charge when it really ends (once per hold)."""
    query = queries.HOLDS_TO_CHECK.build(
        db, equals={"deposit.state": "held", "deposit.captureBeforeChecked": False}, limit=PAGE
    )
    return _each(query.stream(), lambda s: deposits.learn_hold_end(db, stripe_api(), s.id), "check")


def warn_holds_ending(db: firestore.Client, now: dt.datetime) -> int:
    """Tell both parties, once, that an undecided offer's hold ends within a day."""
    from marketplace import notify  # lazy: see follow_up

    def warn(snapshot: Any) -> bool:
        data = snapshot.to_dict() or {}
        if data["status"] not in OPEN_STATUSES or data["deposit"].get("flaggedAt"):
            return False
        for notice in hold_notices(db, snapshot.id, data):
            notify.notify(db, notice)
        snapshot.reference.update({"deposit.flaggedAt": now})
        return True

    return _each(_holds_ending_by(db, now + deposits.WARN_BEFORE), warn, "warn")


def settle_stuck_deposits(db: firestore.Client, stripe_api: StripeFactory, now: dt.datetime) -> int:
    """Finish what a trigger left: a capture or release asked minutes ago and not done; a
    hold asked for in the last day whose authorisation Stripe has not reported."""
    stuck: list[tuple[RangeOp, dt.datetime]] = [("<=", now - STUCK_AFTER)]
    recent: list[tuple[RangeOp, dt.datetime]] = [*stuck, (">=", now - AUTHORISE_WAIT)]
    waiting = {
        "authorise": (["awaiting_card"], recent),
        "capture": (sorted(deposits.UNSETTLED), stuck),
        "cancel": (sorted(deposits.UNSETTLED), stuck),
    }
    settled = 0
    for asked, (states, when) in waiting.items():
        query = queries.DEPOSITS_ASKED.build(
            db,
            equals={"deposit.asked": asked, "deposit.state": states},
            ranges={"deposit.askedAt": when},
            limit=PAGE,
        )

        def settle(snapshot: Any, asked: str = asked) -> bool:
            if asked == "authorise":
                outcome = deposits.refresh(db, stripe_api(), snapshot.id)
            else:
                outcome = deposits.carry_out(db, stripe_api(), snapshot.id)
            logs.info(
                "deposit settled by the clock", offerId=snapshot.id, asked=asked, outcome=outcome
            )
            return True

        settled += _each(query.stream(), settle, f"settle {asked}")
    return settled


def end_offers_off_market(db: firestore.Client, listing_id: str, status: str) -> int:
    """Lapse every open offer on a listing that left the market (let, sold, withdrawn,
    archived...): their holds are let go and their buyers told."""
    if status in offers.OFFERABLE:
        return 0
    reason = OFF_MARKET.format(status=status.replace("_", " "))
    moved = 0
    for open_status in OPEN_STATUSES:
        query = queries.OPEN_OFFERS.build(
            db, equals={"listingId": listing_id, "status": open_status}, limit=PAGE
        )
        moved += _each(query.stream(), lambda s: _move(db, s.id, "lapse", reason), "off market")
    return moved


def hold_notices(db: firestore.Client, offer_id: str, data: Mapping[str, Any]) -> list[Notice]:
    """The warning that an undecided offer's deposit hold ends within a day."""
    ends = data["deposit"]["captureBefore"]
    from marketplace.notify import listing_title

    home = listing_title(db, data["listingId"])
    return [
        Notice(
            uid=uid,
            id=f"offer-{offer_id}-hold-ending",
            kind="offer",
            title="Holding deposit hold ends soon",
            body=f"The card hold on the holding deposit for {home} ends "
            f"{ends:%d %b %H:%M} UTC. Unless the offer is accepted more than an hour before "
            "then, it lapses and the hold is released.",
            link=f"/offers/{offer_id}",
            data={"offerId": offer_id, "change": "hold_ending"},
            extra={"listingId": data["listingId"]},
            collapse_id=f"offer-{offer_id}",
        )
        for uid in (data["agentId"], data["buyerId"])
    ]


def _move(
    db: firestore.Client,
    offer_id: str,
    move: Any,
    reason: str | None,
    now: dt.datetime | None = None,
) -> bool:
    """Make a system move; False if the offer moved on meanwhile (nothing left to do)."""
    from firekit.errors import AppError

    try:
        offers.answer(db, offer_id, move, None, reason=reason, now=now)
    except AppError as refused:
        if (refused.details or {}).get("reason") in ("move_not_allowed", "no_such_offer"):
            return False
        raise
    return True


def _money(value: Mapping[str, Any]) -> str:
    symbol = {"GBP": "£", "EUR": "€", "USD": "$"}.get(value["currency"])
    major = value["amount"] / 100
    text = f"{major:,.0f}" if value["amount"] % 100 == 0 else f"{major:,.2f}"
    return f"{symbol}{text}" if symbol else f"{text} {value['currency']}"
