"""Viewings: free slots, booking and every later move (callables), telling the other
party (a trigger), the viewing clock (a schedule) and calendars (an HTTPS feed). See
:mod:`marketplace.viewings` and :mod:`marketplace.viewing_upkeep`."""

from __future__ import annotations

import datetime as dt

from firebase_functions import https_fn, scheduler_fn
from flask import Request, Response
from pydantic import BaseModel, ConfigDict, StrictBool

from firekit import bootstrap, logs, observe
from firekit.callables import CallContext, callable_function
from firekit.errors import BUSY, MOVE_NOT_ALLOWED
from firekit.events import AnyDocument, DocumentChange, Effects, document_trigger
from firekit.ratelimit import RateLimit
from marketplace import viewings as v
from marketplace.listings import OWN_LISTING

_LOOKS = RateLimit(60, per_seconds=60)
_BOOKINGS = RateLimit(20, per_seconds=60)
_MOVES = RateLimit(60, per_seconds=60)
_MOVE_REFUSALS = (v.NO_SUCH_VIEWING, MOVE_NOT_ALLOWED, v.NOT_YOURS_TO_MOVE, BUSY)


@callable_function(
    v.SlotsRequest, rate_limit=_LOOKS, refusals=(v.NO_SUCH_LISTING, v.NO_VIEWING_HOURS)
)
def list_viewing_slots(call: CallContext, data: v.SlotsRequest) -> v.SlotsResult:
    """The listing's free viewing slots in a window of at most 14 days."""
    return v.free_slots(bootstrap.db(), data)


@callable_function(
    v.ViewingRequest,
    rate_limit=_BOOKINGS,
    refusals=(
        v.NO_SUCH_LISTING,
        OWN_LISTING,
        v.NO_VIEWING_HOURS,
        v.NOT_A_SLOT,
        v.SLOT_TAKEN,
        v.PENDING_LIMIT,
        v.REQUEST_KEY_REUSED,
        BUSY,
    ),
)
def request_viewing(call: CallContext, data: v.ViewingRequest) -> v.ViewingResult:
    """Book a slot: confirmed at once, or waiting for the agent (at most a day)."""
    return v.request_viewing(bootstrap.db(), call.uid, data)


@callable_function(v.ViewingMove, rate_limit=_MOVES, refusals=(*_MOVE_REFUSALS, v.REQUEST_LAPSED))
def confirm_viewing(call: CallContext, data: v.ViewingMove) -> v.ViewingResult:
    """The agent confirms a waiting request."""
    return v.move(bootstrap.db(), data.viewingId, "confirm", call.uid)


@callable_function(v.ViewingMove, rate_limit=_MOVES, refusals=_MOVE_REFUSALS)
def decline_viewing(call: CallContext, data: v.ViewingMove) -> v.ViewingResult:
    """The agent declines a waiting request; its time is free again."""
    return v.move(bootstrap.db(), data.viewingId, "decline", call.uid)


@callable_function(v.CancelRequest, rate_limit=_MOVES, refusals=_MOVE_REFUSALS)
def cancel_viewing(call: CallContext, data: v.CancelRequest) -> v.ViewingResult:
    """Either party cancels, saying why; its time is free again."""
    return v.move(bootstrap.db(), data.viewingId, "cancel", call.uid, reason=data.reason)


@callable_function(
    v.RescheduleRequest,
    rate_limit=_MOVES,
    refusals=(
        *_MOVE_REFUSALS,
        v.NO_SUCH_LISTING,
        v.NO_VIEWING_HOURS,
        v.NOT_A_SLOT,
        v.SLOT_TAKEN,
        v.PENDING_LIMIT,
    ),
)
def reschedule_viewing(call: CallContext, data: v.RescheduleRequest) -> v.ViewingResult:
    """Either party moves the viewing to another free slot (or nothing changes)."""
    return v.reschedule(bootstrap.db(), data.viewingId, call.uid, data.start)


class CalendarLinkRequest(BaseModel):
    """``renew``: replace the link (the old one stops working)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    renew: StrictBool = False


class CalendarLink(BaseModel):
    """The address of the caller's viewings calendar, to subscribe to."""

    url: str


@callable_function(CalendarLinkRequest, rate_limit=RateLimit(10, per_seconds=60))
def calendar_link(call: CallContext, data: CalendarLinkRequest) -> CalendarLink:
    """The caller's private calendar address (``.ics``), made on first use."""
    from marketplace import viewing_upkeep  # lazy: ics rendering is the calendar's alone

    token = viewing_upkeep.feed_token(bootstrap.db(), call.uid, renew=data.renew)
    return CalendarLink(url=f"{bootstrap.function_url('viewing_calendar')}?token={token}")


@https_fn.on_request()
def viewing_calendar(request: Request) -> Response:
    """A user's viewings as an RFC 5545 calendar, for the token their link carries."""
    from marketplace import viewing_upkeep  # lazy: see calendar_link

    if request.method not in ("GET", "HEAD"):
        return Response("Method Not Allowed", status=405, headers={"Allow": "GET, HEAD"})
    text = viewing_upkeep.calendar_for(bootstrap.db(), request.args.get("token", ""))
    if text is None:  # no such token: say nothing more (it is the only secret)
        return Response("Not Found", status=404, mimetype="text/plain")
    return Response(
        text,
        status=200,
        mimetype="text/calendar",
        headers={
            "Content-Disposition": 'attachment; filename="viewings.ics"',
            "Cache-Control": "private, max-age=300",
        },
    )


# Claim, retried: a push leaves the building. The inbox id names the viewing and the
# revision, so each move is told once, whatever order the events arrive in.
@document_trigger(
    "viewings/{viewingId}",
    model=AnyDocument,
    on="written",
    only_when_changed=("revision",),
    mode="claim",
    retry=True,
)
def notify_viewing_change(change: DocumentChange[AnyDocument], effects: Effects) -> None:
    """Tell the other party of a viewing's latest move."""
    from marketplace import viewing_upkeep  # lazy: firekit.push imports firebase_admin

    after = change.after_data
    if after is None:
        return
    told = viewing_upkeep.tell_change(effects.db, change.params["viewingId"], after)
    logs.info(
        "viewing change told",
        viewingId=change.params["viewingId"],
        change=after["lastChange"]["kind"],
        told=sum(o.told for o in told),
    )


@scheduler_fn.on_schedule(schedule="every 5 minutes", timeout_sec=300)
def viewing_clock(event: scheduler_fn.ScheduledEvent) -> None:
    """Every 5 minutes: lapse requests whose time is up, complete viewings that are
    over, and remind both parties a day and an hour before."""
    from marketplace import viewing_upkeep  # lazy: see calendar_link

    done = viewing_upkeep.tick(bootstrap.db(), dt.datetime.now(dt.UTC))
    observe.annotate(viewings=done)
