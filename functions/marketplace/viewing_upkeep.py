"""What happens to viewings as time passes, and what their parties are told.

* **Told once per move.** Every move of a viewing raises its ``revision`` and records
  ``lastChange``; the trigger on the viewing tells the other party of that change with
  an inbox entry whose id names the viewing and the revision
  (``viewing-{viewingId}-{revision}``), so a redelivered event tells nobody twice, and an
  event delivered after a newer one still tells of its own move (each move happened).
* **The viewing clock** (a schedule, every 5 minutes) lapses requests whose time is up,
  completes viewings that are over (freeing their past granules) and reminds both parties
  a day and an hour before a confirmed viewing. A reminder's inbox id names the viewing,
  which reminder and the start it was for, so a rerun reminds nobody twice and a viewing
  moved to another time is reminded of afresh. The clock moves ``nextReminderAt`` on with a
  precondition on the viewing it read, so a viewing moved meanwhile is left to the next run.
* **Calendars.** Each user has one unguessable token (``calendarFeeds/{token}``); the
  calendar function answers it with their viewings as an RFC 5545 file.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from firekit import logs
from firekit.errors import FailedPrecondition
from firekit.notify import Notice, Outcome
from marketplace import ics, queries, viewings

FEEDS = "calendarFeeds"
PAGE = 200
_WHAT: Mapping[str, tuple[str, str]] = {
    "requested": ("Viewing requested", "{who} asks to view {home} on {when}."),
    "booked": ("Viewing booked", "{who} booked a viewing of {home} on {when}."),
    "confirmed": ("Viewing confirmed", "Your viewing of {home} on {when} is confirmed."),
    "declined": ("Viewing declined", "Your request to view {home} on {when} was declined."),
    "cancelled": ("Viewing cancelled", "The viewing of {home} on {when} is cancelled."),
    "rescheduled": ("Viewing moved", "The viewing of {home} moved to {when}."),
    "expired": ("Viewing request lapsed", "Your request to view {home} on {when} lapsed."),
}
"""Title and body of the notice of each change (``completed`` tells nobody)."""


def _when(data: Mapping[str, Any]) -> str:
    from marketplace.slots import zone

    start: dt.datetime = data["slotStart"]
    return start.astimezone(zone(data["timeZone"])).strftime("%a %d %b at %H:%M")


def told_of_change(data: Mapping[str, Any]) -> list[str]:
    """Who hears of the viewing's latest change: the party who did not make it (both if
    the clock did, but a lapse only its requester; a completion nobody)."""
    change = data["lastChange"]
    if change["kind"] == "completed":
        return []
    if change["kind"] == "expired":
        return [data["requesterId"]]
    parties = [data["requesterId"], data["agentId"]]
    return [uid for uid in parties if uid != change.get("by")]


def change_notices(db: firestore.Client, viewing: str, data: Mapping[str, Any]) -> list[Notice]:
    """The notices of the change ``data`` records (a viewing as its event has it)."""
    from marketplace.notify import (  # lazy: see tell_change
        display_name,
        listing_title,
        move_notices,
    )

    kind = data["lastChange"]["kind"]
    if kind not in _WHAT:
        return []
    # A request on a listing that confirms at once is a booking, not a question.
    shown = "booked" if kind == "requested" and data["status"] == "confirmed" else kind
    title, body = _WHAT[shown]
    by = data["lastChange"].get("by")
    who = (display_name(db, by) if by else None) or "A buyer"
    text = body.format(who=who, home=listing_title(db, data["listingId"]), when=_when(data))
    return move_notices(
        "viewing",
        viewing,
        data,
        recipients=told_of_change(data),
        title=title,
        text=text,
        change=kind,
    )


def tell_change(db: firestore.Client, viewing: str, data: Mapping[str, Any]) -> list[Outcome]:
    """Tell the other party of this revision's change, once."""
    from marketplace import notify  # lazy: firekit.push imports firebase_admin.messaging

    return [notify.notify(db, notice) for notice in change_notices(db, viewing, data)]


# ---- the clock


def lapse_due(db: firestore.Client, now: dt.datetime) -> int:
    """Lapse every waiting request whose time is up (a page per run)."""
    query = queries.VIEWINGS_TO_LAPSE.build(
        db, equals={"status": "requested"}, ranges={"expiresAt": [("<=", now)]}, limit=PAGE
    )
    return sum(viewings.lapse_if_due(db, s.id, now) for s in query.stream())


def complete_due(db: firestore.Client, now: dt.datetime) -> int:
    """Complete every confirmed viewing that has ended, freeing its (past) granules."""
    query = queries.VIEWINGS_TO_COMPLETE.build(
        db, equals={"status": "confirmed"}, ranges={"slotEnd": [("<=", now)]}, limit=PAGE
    )
    done = 0
    for snapshot in query.stream():
        try:
            viewings.move(db, snapshot.id, "complete", None, now=now)
            done += 1
        except FailedPrecondition:
            continue  # cancelled or moved meanwhile
    return done


def remind_due(db: firestore.Client, now: dt.datetime) -> int:
    """Remind both parties of every confirmed viewing whose reminder is due."""
    query = queries.VIEWINGS_TO_REMIND.build(
        db, equals={"status": "confirmed"}, ranges={"nextReminderAt": [("<=", now)]}, limit=PAGE
    )
    return sum(_remind(db, snapshot, now) for snapshot in query.stream())


def _remind(
    db: firestore.Client, snapshot: firestore.DocumentSnapshot[Any], now: dt.datetime
) -> int:
    from marketplace import notify  # lazy: see tell_change

    data = snapshot.to_dict() or {}
    due = data["nextReminderAt"]
    which = "day" if data["slotStart"] - due >= dt.timedelta(hours=12) else "hour"
    if data["slotStart"] > now:  # a reminder found only after the viewing began is moot
        for notice in reminder_notices(db, snapshot.id, data, which):
            notify.notify(db, notice)
    later = viewings.next_reminder(data["slotStart"], max(now, due))
    try:
        snapshot.reference.update(
            {"nextReminderAt": later},
            option=firestore.Client.write_option(last_update_time=snapshot.update_time),
        )
    except gexc.FailedPrecondition:
        return 0  # moved meanwhile: its new state decides the next reminder
    logs.info("viewing reminded", viewingId=snapshot.id, reminder=which)
    return 1


def reminder_notices(
    db: firestore.Client, viewing: str, data: Mapping[str, Any], which: str
) -> list[Notice]:
    """The reminders to both parties (``which``: ``day`` or ``hour`` before)."""
    when = "Tomorrow" if which == "day" else "In an hour"
    from marketplace.notify import listing_title

    body = f"{when}: viewing of {listing_title(db, data['listingId'])}, {_when(data)}."
    start = int(data["slotStart"].timestamp())
    return [
        Notice(
            uid=uid,
            id=f"viewing-{viewing}-reminder-{which}-{start}",
            kind="viewing",
            title="Viewing reminder",
            body=body,
            link=f"/viewings/{viewing}",
            data={"viewingId": viewing, "change": f"reminder_{which}"},
            extra={"listingId": data["listingId"]},
            email=False,
            collapse_id=f"viewing-{viewing}",
        )
        for uid in (data["requesterId"], data["agentId"])
    ]


def tick(db: firestore.Client, now: dt.datetime) -> dict[str, int]:
    """One run of the viewing clock."""
    return {
        "lapsed": lapse_due(db, now),
        "completed": complete_due(db, now),
        "reminded": remind_due(db, now),
    }


# ---- calendars


def feed_token(db: firestore.Client, uid: str, *, renew: bool = False) -> str:
    """The user's calendar token (made on first use; ``renew`` replaces it, so a leaked
    link stops working)."""
    existing = list(queries.CALENDAR_FEED_OF.build(db, equals={"uid": uid}).stream())
    if existing and not renew:
        return existing[0].id
    token = secrets.token_urlsafe(24)
    batch = db.batch()
    batch.create(db.collection(FEEDS).document(token), {"uid": uid, "createdAt": _now()})
    for old in existing:
        batch.delete(old.reference)
    batch.commit()
    return token


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def calendar_for(db: firestore.Client, token: str, now: dt.datetime | None = None) -> str | None:
    """The calendar of the user ``token`` names (None: no such token): their viewings
    from 30 days ago on, as requester and as agent, cancelled ones marked so."""
    if not token or len(token) > 64 or "/" in token:
        return None
    feed = db.collection(FEEDS).document(token).get()
    if not feed.exists:
        return None
    uid = str(feed.get("uid"))
    since = (now or _now()) - dt.timedelta(days=30)
    found: dict[str, dict[str, Any]] = {}
    for party in ("requesterId", "agentId"):
        declared = queries.BUYER_VIEWINGS if party == "requesterId" else queries.AGENT_VIEWINGS
        query = declared.build(db, equals={party: uid}, ranges={"slotStart": [(">=", since)]})
        found |= {s.id: s.to_dict() or {} for s in query.limit(500).stream()}
    homes = _homes(db, {data["listingId"] for data in found.values()})
    events = [_event(v, data, homes.get(data["listingId"], {})) for v, data in found.items()]
    return ics.calendar(sorted(events, key=lambda e: e.start), name="Homefront viewings")


def _homes(db: firestore.Client, listing_ids: set[str]) -> dict[str, dict[str, Any]]:
    refs = [db.document(f"listings/{listing_id}") for listing_id in sorted(listing_ids)]
    return {s.id: s.to_dict() or {} for s in db.get_all(refs) if s.exists}


_STATUS = {"requested": "TENTATIVE", "confirmed": "CONFIRMED", "completed": "CONFIRMED"}


def _event(viewing: str, data: Mapping[str, Any], listing: Mapping[str, Any]) -> ics.CalendarEvent:
    address = listing.get("address") or {}
    place = ", ".join(str(address[k]) for k in ("line1", "city", "postcode") if address.get(k))
    return ics.CalendarEvent(
        uid=f"{viewing}@homefront",
        start=data["slotStart"],
        end=data["slotEnd"],
        time_zone=data["timeZone"],
        summary=f"Viewing: {listing.get('title') or 'a home'}",
        stamp=data["updatedAt"],
        description=data.get("note") or "",
        location=place,
        status=_STATUS.get(data["status"], "CANCELLED"),  # type: ignore[arg-type]
        sequence=int(data.get("revision", 1)) - 1,
    )
