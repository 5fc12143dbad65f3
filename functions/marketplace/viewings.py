"""Viewings: a buyer books a slot of an agent's viewing hours, the agent confirms or
declines, either party cancels or reschedules, the viewing clock lapses what waited too
long. No time is ever booked twice.

**No double booking, by construction.** Firestore has no exclusion constraint, so a
booking claims every 15-minute granule its time covers, twice: in the agent's diary
(``viewingLocks/agent__{agentId}__{granule}``) and in the listing's
(``viewingLocks/listing__{listingId}__{granule}``), as ``create()`` writes, in one batch
with the viewing itself. A batch is atomic and ``create()`` fails if the document exists,
so of any number of overlapping requests exactly one commits; the others find the granule
taken and get ``FAILED_PRECONDITION`` with reason ``slot_taken``. No transaction is
involved: on the emulator, racing transactions abort together (``firekit.leases`` has the
figures), while racing ``create()`` calls always leave one winner.

**Every move on one graph.** :data:`MOVES` says which status each move leads from and to,
and who may make it; a move the graph does not allow is ``move_not_allowed`` and changes
nothing. A move writes the viewing with a precondition on the update time it read, in the
same batch as the locks it frees (a cancel) or claims and frees (a reschedule), so two
moves racing on one viewing cannot both apply, and a viewing never holds a granule it
does not list in ``locks``.

**Waiting requests.** On a listing whose agent confirms by hand, a request waits at most
a day (never past its own start) and counts against its requester's places: 10 in all,
3 per listing, each a create-only ``viewingHolds`` document claimed in the same batch. A
request whose time is up lapses: the viewing clock lapses it, and a request that finds
a granule held by a lapsed request lapses that one first, so a lapsed request never
blocks anybody.

**Idempotency.** The viewing's id is derived from the requester and their request key,
so a retried request finds its viewing and returns it, whatever happened since.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from firekit import logs
from firekit.errors import (
    BUSY,
    MOVE_NOT_ALLOWED,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Refusal,
    ResourceExhausted,
)
from firekit.ids import PlainId
from marketplace import slots
from marketplace.listings import OWN_LISTING
from marketplace.models.viewings import MAX_NOTE, MAX_REASON, Availability

VIEWINGS = "viewings"
LOCKS = "viewingLocks"
HOLDS = "viewingHolds"
AVAILABILITY = "users/{uid}/availability/{scope}"
ALL_LISTINGS = "all"
"""The availability scope that covers every listing of its agent."""
PUBLIC_STATUSES = ("active", "under_offer")
"""Listings a buyer may book a viewing of."""
REQUEST_WAITS = dt.timedelta(hours=24)
"""The longest a request waits for its agent before it lapses."""
HORIZON = dt.timedelta(days=90)
"""How far ahead a viewing may be booked."""
PENDING_IN_ALL = 10
PENDING_PER_LISTING = 3
ACTIVE = ("requested", "confirmed")
"""Statuses that hold time in the diaries."""
_ATTEMPTS = 8
REMINDERS: Sequence[dt.timedelta] = (dt.timedelta(days=1), dt.timedelta(hours=1))
"""Both parties of a confirmed viewing are reminded this long before it."""

NO_SUCH_LISTING = Refusal(NotFound, "no_such_listing", "No such listing.")
NO_SUCH_VIEWING = Refusal(NotFound, "no_such_viewing", "No such viewing.")
NO_VIEWING_HOURS = Refusal(
    FailedPrecondition,
    "no_viewing_hours",
    "The agent has not published viewing hours for this listing.",
)
NOT_A_SLOT = Refusal(
    FailedPrecondition, "not_a_slot", "That time is not one of the listing's viewing slots."
)
SLOT_TAKEN = Refusal(
    FailedPrecondition, "slot_taken", "That time has just been booked; pick another slot."
)
PENDING_LIMIT = Refusal(
    ResourceExhausted,
    "pending_limit",
    "Too many of your viewing requests are waiting for an answer.",
)
NOT_YOURS_TO_MOVE = Refusal(
    PermissionDenied, "not_yours_to_move", "Only the listing's agent may do that."
)
REQUEST_LAPSED = Refusal(
    FailedPrecondition, "request_lapsed", "The request waited too long and has lapsed."
)
REQUEST_KEY_REUSED = Refusal(
    FailedPrecondition,
    "request_key_reused",
    "This request key was already used for another viewing; use a new key for a new request.",
)

# ---- the requests and answers of the callables

Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NOTE)]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REASON)
]
RequestKey = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class SlotsRequest(_Request):
    """The free slots of a listing between ``start`` and ``end`` (at most 14 days)."""

    listingId: PlainId
    start: AwareDatetime
    end: AwareDatetime

    @field_validator("end")
    @classmethod
    def _window(cls, end: dt.datetime, info: ValidationInfo) -> dt.datetime:
        # On `end`, so the refusal names the field to fix (`start` is checked first).
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError("end must be after start")
        if start is not None and end - start > slots.MAX_WINDOW:
            raise ValueError("the window is at most 14 days")
        return end


class SlotView(BaseModel):
    """One free slot, in UTC and in the listing's local time."""

    start: str
    end: str
    localStart: str
    localEnd: str


class SlotsResult(BaseModel):
    """The free slots, soonest first, and the zone their local times are in."""

    listingId: str
    timeZone: str
    slotMinutes: int
    slots: list[SlotView]


class ViewingRequest(_Request):
    """A buyer's request for the slot starting at ``start``; ``requestKey`` (made by the
    app once per request, reused on retries) makes a retry return the same viewing."""

    listingId: PlainId
    start: AwareDatetime
    requestKey: RequestKey
    note: Note | None = None


class ViewingMove(_Request):
    """Confirm or decline (the agent): which viewing."""

    viewingId: PlainId


class CancelRequest(_Request):
    """Cancel (either party), saying why."""

    viewingId: PlainId
    reason: Reason


class RescheduleRequest(_Request):
    """Move a viewing to the slot starting at ``start``."""

    viewingId: PlainId
    start: AwareDatetime


class ViewingResult(BaseModel):
    """A viewing as its parties see it after a call."""

    viewingId: str
    listingId: str
    status: str
    slotStart: str
    slotEnd: str
    expiresAt: str | None = None


# ---- the transition graph

Actor = Literal["requester", "agent", "clock"]
Move = Literal["confirm", "decline", "cancel", "reschedule", "expire", "complete"]


@dataclass(frozen=True)
class Edge:
    """A move allowed from one status: where it leads and who may make it."""

    to: str
    by: frozenset[str]


MOVES: Mapping[tuple[str, str], Edge] = {
    ("requested", "confirm"): Edge("confirmed", frozenset({"agent"})),
    ("requested", "decline"): Edge("declined", frozenset({"agent"})),
    ("requested", "cancel"): Edge("cancelled", frozenset({"requester", "agent"})),
    ("requested", "reschedule"): Edge("requested", frozenset({"requester", "agent"})),
    ("requested", "expire"): Edge("expired", frozenset({"clock"})),
    ("confirmed", "cancel"): Edge("cancelled", frozenset({"requester", "agent"})),
    ("confirmed", "reschedule"): Edge("confirmed", frozenset({"requester", "agent"})),
    ("confirmed", "complete"): Edge("completed", frozenset({"clock"})),
}
"""(status, move) → the status it leads to and who may make it. A reschedule's own
status is decided by who moves it (:func:`_rescheduled_status`); every other status is
final. Nothing else is a move."""
CHANGE_OF: Mapping[str, str] = {
    "confirm": "confirmed",
    "decline": "declined",
    "cancel": "cancelled",
    "reschedule": "rescheduled",
    "expire": "expired",
    "complete": "completed",
}
"""The ``lastChange.kind`` each move records."""


def edge(status: str, move: str, actor: str) -> Edge:
    """The edge ``move`` takes from ``status`` for ``actor``; refused if there is none."""
    found = MOVES.get((status, move))
    if found is None:
        raise MOVE_NOT_ALLOWED(status=status, move=move)
    if actor not in found.by:
        raise (
            NOT_YOURS_TO_MOVE()
            if found.by == {"agent"}
            else MOVE_NOT_ALLOWED(status=status, move=move)
        )
    return found


# ---- ids


def viewing_id(requester: str, request_key: str) -> str:
    """The viewing a request makes: the same for every retry of one request."""
    digest = hashlib.sha256(f"{requester}\n{request_key}".encode()).hexdigest()
    return f"v-{digest[:24]}"


def lock_ids(agent_id: str, listing_id: str, start: dt.datetime, end: dt.datetime) -> list[str]:
    """The granule locks a viewing from ``start`` to ``end`` holds: the agent's diary's,
    then the listing's."""
    stamps = [g.strftime("%Y%m%dT%H%MZ") for g in slots.granules(start, end)]
    return [f"agent__{agent_id}__{s}" for s in stamps] + [
        f"listing__{listing_id}__{s}" for s in stamps
    ]


def _hold_ids(requester: str, listing_id: str) -> tuple[list[str], list[str]]:
    every = [f"{requester}__{ALL_LISTINGS}__{n}" for n in range(PENDING_IN_ALL)]
    here = [f"{requester}__{listing_id}__{n}" for n in range(PENDING_PER_LISTING)]
    return every, here


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def result_of(viewing_id_: str, data: Mapping[str, Any]) -> ViewingResult:
    """What a call answers about a viewing."""
    expires = data.get("expiresAt")
    return ViewingResult(
        viewingId=viewing_id_,
        listingId=data["listingId"],
        status=data["status"],
        slotStart=_iso(data["slotStart"]),
        slotEnd=_iso(data["slotEnd"]),
        expiresAt=_iso(expires) if expires is not None else None,
    )


# ---- availability and slots


@dataclass(frozen=True)
class Bookable:
    """A listing a buyer may book, with its agent's hours for it."""

    listing_id: str
    agent_id: str
    hours: Availability


def bookable(
    db: firestore.Client,
    listing_id: str,
    listing: firestore.DocumentSnapshot[Any] | None = None,
) -> Bookable:
    """The public listing and its agent's viewing hours (the listing's own, else the
    agent's for all listings): 2 round trips, 3 reads (the listing unless given, and both
    scopes of hours in one ``get_all``)."""
    listing = listing or db.document(f"listings/{listing_id}").get()
    data = listing.to_dict() or {}
    if not listing.exists or data.get("status") not in PUBLIC_STATUSES:
        raise NO_SUCH_LISTING()
    agent = str(data["ownerId"])
    scopes = [listing_id, ALL_LISTINGS]
    refs = [db.document(AVAILABILITY.format(uid=agent, scope=s)) for s in scopes]
    found = {s.reference.id: s for s in db.get_all(refs)}
    for scope in scopes:
        snapshot = found.get(scope)
        if snapshot is not None and snapshot.exists:
            hours = Availability.model_validate(snapshot.to_dict())
            try:
                slots.zone(hours.timeZone)
            except slots.UnknownTimeZone:
                raise NO_VIEWING_HOURS() from None
            return Bookable(listing_id, agent, hours)
    raise NO_VIEWING_HOURS()


def taken_granules(
    db: firestore.Client, place: Bookable, start: dt.datetime, end: dt.datetime
) -> set[dt.datetime]:
    """Granules between ``start`` and ``end`` held in the agent's or the listing's diary
    (two range reads over lock ids, which sort by time)."""
    taken: set[dt.datetime] = set()
    for scope, owner in (("agent", place.agent_id), ("listing", place.listing_id)):
        low = f"{scope}__{owner}__{start.strftime('%Y%m%dT%H%MZ')}"
        high = f"{scope}__{owner}__{end.strftime('%Y%m%dT%H%MZ')}"
        locks, by_id = db.collection(LOCKS), FieldPath.document_id()
        query = locks.where(filter=FieldFilter(by_id, ">=", locks.document(low))).where(
            filter=FieldFilter(by_id, "<", locks.document(high))
        )
        taken.update(s.get("start") for s in query.stream())
    return taken


def free_slots(
    db: firestore.Client, request: SlotsRequest, now: dt.datetime | None = None
) -> SlotsResult:
    """The listing's free slots in the window: its hours minus taken time, none past."""
    place = bookable(db, request.listingId)
    now = now or _now()
    start, end = _on_grid(request.start), _on_grid(request.end, up=True)
    taken = taken_granules(db, place, start, end)
    found = slots.free_slots(place.hours, start, end, taken=taken, not_before=now)
    return SlotsResult(
        listingId=place.listing_id,
        timeZone=place.hours.timeZone,
        slotMinutes=place.hours.slotMinutes,
        slots=[SlotView(**s.to_json()) for s in found],
    )


def _on_grid(at: dt.datetime, *, up: bool = False) -> dt.datetime:
    """``at`` in UTC, down (or ``up``) to the 15-minute grid."""
    at = at.astimezone(dt.UTC).replace(second=0, microsecond=0) + (
        dt.timedelta(minutes=15) - dt.timedelta(microseconds=1) if up else dt.timedelta()
    )
    return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)


def _slot(place: Bookable, start: dt.datetime, now: dt.datetime) -> slots.Slot:
    """The slot of ``place``'s hours starting at ``start``, in the future and the horizon."""
    start = start.astimezone(dt.UTC)
    if start <= now:
        raise _field_issue("start", "in_the_past", "The viewing must start in the future.")
    if start > now + HORIZON:
        raise _field_issue("start", "too_far_ahead", "Viewings can be booked up to 90 days ahead.")
    slot = slots.slot_at(place.hours, start)
    if slot is None:
        raise NOT_A_SLOT(field="start")
    return slot


def _field_issue(field: str, issue: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, [{"field": field, "issue": issue, "message": message}])


# ---- booking


def request_viewing(
    db: firestore.Client, requester: str, request: ViewingRequest, now: dt.datetime | None = None
) -> ViewingResult:
    """Book the slot for ``requester``: confirmed at once if the agent says so, else
    waiting for them (see the module's docstring for why no slot is booked twice)."""
    ref = db.collection(VIEWINGS).document(viewing_id(requester, request.requestKey))
    # Three round trips before the commit's: this request's own viewing beside the listing
    # (one get_all), then the agent's hours (which need the listing's owner).
    listing_ref = db.document(f"listings/{request.listingId}")
    found = {s.reference.path: s for s in db.get_all([ref, listing_ref])}
    earlier = found[ref.path]
    if earlier.exists:
        return _same_request(ref.id, earlier.to_dict() or {}, requester, request)
    now = now or _now()
    place = bookable(db, request.listingId, found[listing_ref.path])
    if place.agent_id == requester:
        raise OWN_LISTING()
    slot = _slot(place, request.start, now)
    waits = not place.hours.autoConfirm
    for attempt in range(_ATTEMPTS):
        # Places are create-only, so they hold the caps by themselves: the first attempt
        # takes two at random without reading; after a collision, the query says which
        # are free (or that none is).
        holds = _places(db, requester, place.listing_id, blind=attempt == 0) if waits else []
        data = _new_viewing(requester, request, place, slot, holds=holds, now=now)
        batch = db.batch()
        batch.create(ref, data)
        for lock in data["locks"]:
            batch.create(db.collection(LOCKS).document(lock), lock_document(ref.id, lock, now))
        for hold in holds:
            batch.create(db.collection(HOLDS).document(hold), _hold(requester, ref.id, now))
        try:
            batch.commit()
        except gexc.Conflict:
            if _after_conflict(db, ref, data, requester=requester, request=request, now=now):
                return result_of(ref.id, (ref.get().to_dict() or {}))
            _back_off(attempt)
            continue
        except gexc.Aborted:
            _back_off(attempt)
            continue
        logs.info(
            "viewing requested", viewingId=ref.id, listingId=place.listing_id, status=data["status"]
        )
        return result_of(ref.id, data)
    raise BUSY("The diary is busy; try again in a moment.")


def _same_request(
    viewing: str, data: Mapping[str, Any], requester: str, request: ViewingRequest
) -> ViewingResult:
    """A retry of a request that made ``viewing``: its viewing as it is now."""
    same = (
        data.get("requesterId") == requester
        and data.get("listingId") == request.listingId
        and data.get("requestKey") == request.requestKey
    )
    if not same:
        raise REQUEST_KEY_REUSED()
    return result_of(viewing, data)


def _new_viewing(
    requester: str,
    request: ViewingRequest,
    place: Bookable,
    slot: slots.Slot,
    *,
    holds: list[str],
    now: dt.datetime,
) -> dict[str, Any]:
    waits = not place.hours.autoConfirm
    status = "requested" if waits else "confirmed"
    data: dict[str, Any] = {
        "listingId": place.listing_id,
        "agentId": place.agent_id,
        "requesterId": requester,
        "slotStart": slot.start,
        "slotEnd": slot.end,
        "timeZone": place.hours.timeZone,
        "status": status,
        "expiresAt": min(now + REQUEST_WAITS, slot.start) if waits else None,
        "locks": lock_ids(place.agent_id, place.listing_id, slot.start, slot.end),
        "holds": holds,
        "requestKey": request.requestKey,
        "revision": 1,
        "lastChange": {"kind": "requested", "by": requester, "at": now},
        "nextReminderAt": None if waits else next_reminder(slot.start, now),
        "createdAt": now,
        "updatedAt": now,
    }
    if request.note is not None:
        data["note"] = request.note
    return data


def lock_document(viewing: str, lock: str, now: dt.datetime) -> dict[str, Any]:
    """The data of granule lock ``lock`` (its id holds its start) held by ``viewing``."""
    stamp = lock.rsplit("__", 1)[1]
    start = dt.datetime.strptime(stamp, "%Y%m%dT%H%MZ").replace(tzinfo=dt.UTC)
    return {"viewingId": viewing, "start": start, "createdAt": now}


def _hold(requester: str, viewing: str, now: dt.datetime) -> dict[str, Any]:
    return {"requesterId": requester, "viewingId": viewing, "createdAt": now}


def _places(db: firestore.Client, requester: str, listing_id: str, *, blind: bool) -> list[str]:
    """A place in each of the requester's two counts of waiting requests: any two
    (``blind``), or two free ones by one query (a read per place held, at most 20), or
    ``pending_limit``."""
    from marketplace import queries  # lazy: the declared queries load every model

    every, here = _hold_ids(requester, listing_id)
    held: set[str] = set()
    if not blind:
        query = queries.PLACES_HELD.build(db, equals={"requesterId": requester})
        held = {s.id for s in query.stream()}
    free_every = [h for h in every if h not in held]
    free_here = [h for h in here if h not in held]
    if not free_every:
        raise PENDING_LIMIT(scope="all", cap=PENDING_IN_ALL)
    if not free_here:
        raise PENDING_LIMIT(scope="listing", cap=PENDING_PER_LISTING)
    # A random free place, not the first: two requests of one buyer racing rarely collide.
    return [random.choice(free_every), random.choice(free_here)]


def _after_conflict(
    db: firestore.Client,
    ref: firestore.DocumentReference,
    data: Mapping[str, Any],
    *,
    requester: str,
    request: ViewingRequest,
    now: dt.datetime,
) -> bool:
    """Why a booking's batch found a document existing. True: this very request got in
    first (a concurrent retry), so answer with its viewing. False: try again (a place was
    taken by the same buyer's other request, or a lapsed request held the time and is
    lapsed now). Raises ``slot_taken`` when a live viewing holds the time."""
    own = ref.get()
    if own.exists:
        _same_request(ref.id, own.to_dict() or {}, requester, request)
        return True
    locks = [db.collection(LOCKS).document(lock) for lock in data["locks"]]
    holders = {str(s.get("viewingId")) for s in db.get_all(locks) if s.exists}
    if not holders:
        return False  # freed meanwhile (a cancel), or only a place of the buyer's was taken
    blocking = [h for h in holders if not lapse_if_due(db, h, now)]
    if blocking:
        raise SLOT_TAKEN()
    return False


def _back_off(attempt: int) -> None:
    """A random, growing pause: out of step with whoever we collided with."""
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))


# ---- moves


def move(
    db: firestore.Client,
    viewing: str,
    what: Move,
    actor_uid: str | None,
    *,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> ViewingResult:
    """Make ``what`` (not a reschedule) of ``viewing`` as ``actor_uid`` (None: the clock)."""
    for attempt in range(_ATTEMPTS):
        moment = now or _now()
        snapshot = _viewing(db, viewing, actor_uid)
        data = snapshot.to_dict() or {}
        actor = _actor(data, actor_uid)
        target = edge(data["status"], what, actor)
        if what == "confirm" and _lapsed(data, moment):
            lapse_if_due(db, viewing, moment)
            raise REQUEST_LAPSED()
        changes = _moved(data, what, target.to, actor_uid=actor_uid, reason=reason, now=moment)
        batch = db.batch()
        batch.update(snapshot.reference, changes, option=_unchanged(snapshot))
        _release(db, batch, data, locks=target.to not in ACTIVE, holds=target.to != "requested")
        try:
            batch.commit()
        except (gexc.FailedPrecondition, gexc.Aborted):
            _back_off(attempt)  # another move got in first: decide again on what it left
            continue
        logs.info("viewing moved", viewingId=viewing, move=what, status=target.to)
        return result_of(viewing, {**data, **changes})
    raise BUSY("This viewing is busy; try again in a moment.")


def reschedule(
    db: firestore.Client,
    viewing: str,
    actor_uid: str,
    start: dt.datetime,
    now: dt.datetime | None = None,
) -> ViewingResult:
    """Move ``viewing`` to the slot at ``start``: claim the new granules and free the old
    ones in one batch, or change nothing (``slot_taken``)."""
    for attempt in range(_ATTEMPTS):
        moment = now or _now()
        snapshot = _viewing(db, viewing, actor_uid)
        data = snapshot.to_dict() or {}
        actor = _actor(data, actor_uid)
        edge(data["status"], "reschedule", actor)
        if _lapsed(data, moment):  # a lapsed request is over: moving it would revive it
            lapse_if_due(db, viewing, moment)
            raise REQUEST_LAPSED()
        place = bookable(db, data["listingId"])
        slot = _slot(place, start, moment)
        status = _rescheduled_status(data["status"], actor, place)
        try:
            changes = _commit_reschedule(
                db,
                snapshot,
                data,
                place=place,
                slot=slot,
                status=status,
                actor_uid=actor_uid,
                now=moment,
            )
        except _MovedMeanwhileError:
            _back_off(attempt)
            continue
        logs.info("viewing rescheduled", viewingId=viewing, status=status)
        return result_of(viewing, {**data, **changes})
    raise BUSY("This viewing is busy; try again in a moment.")


class _MovedMeanwhileError(Exception):
    """The state moved under a batch: read again and decide again."""


def _rescheduled_status(status: str, actor: str, place: Bookable) -> str:
    """The agent's new time stands; a buyer's new time waits for the agent, unless the
    listing confirms at once."""
    if actor == "agent" or place.hours.autoConfirm:
        return "confirmed"
    return "requested"


def _commit_reschedule(
    db: firestore.Client,
    snapshot: firestore.DocumentSnapshot[Any],
    data: Mapping[str, Any],
    *,
    place: Bookable,
    slot: slots.Slot,
    status: str,
    actor_uid: str,
    now: dt.datetime,
) -> dict[str, Any]:
    held = list(data.get("locks", []))
    wanted = lock_ids(place.agent_id, place.listing_id, slot.start, slot.end)
    holds = list(data.get("holds", []))
    if status == "requested" and not holds:
        holds = _places(db, data["requesterId"], place.listing_id, blind=False)
    changes = _moved(data, "reschedule", status, actor_uid=actor_uid, reason=None, now=now)
    changes |= {
        "slotStart": slot.start,
        "slotEnd": slot.end,
        "locks": wanted,
        "holds": holds if status == "requested" else [],
        "expiresAt": min(now + REQUEST_WAITS, slot.start) if status == "requested" else None,
        "nextReminderAt": next_reminder(slot.start, now) if status == "confirmed" else None,
    }
    changes["lastChange"]["previousStart"] = data["slotStart"]
    batch = db.batch()
    batch.update(snapshot.reference, changes, option=_unchanged(snapshot))
    for lock in set(wanted) - set(held):
        batch.create(db.collection(LOCKS).document(lock), lock_document(snapshot.id, lock, now))
    for lock in set(held) - set(wanted):
        batch.delete(db.collection(LOCKS).document(lock))
    for hold in set(holds) - set(data.get("holds", [])):
        batch.create(
            db.collection(HOLDS).document(hold), _hold(data["requesterId"], snapshot.id, now)
        )
    if status != "requested":
        for hold in data.get("holds", []):
            batch.delete(db.collection(HOLDS).document(hold))
    try:
        batch.commit()
    except gexc.Conflict:
        if _new_time_taken(db, snapshot.id, set(wanted) - set(held), now):
            raise SLOT_TAKEN() from None
        raise _MovedMeanwhileError() from None
    except (gexc.FailedPrecondition, gexc.Aborted):
        raise _MovedMeanwhileError() from None
    return changes


def _new_time_taken(
    db: firestore.Client, viewing: str, claimed: set[str], now: dt.datetime
) -> bool:
    refs = [db.collection(LOCKS).document(lock) for lock in claimed]
    holders = {str(s.get("viewingId")) for s in db.get_all(refs) if s.exists} - {viewing}
    return any(not lapse_if_due(db, holder, now) for holder in holders)


def _viewing(
    db: firestore.Client, viewing: str, actor_uid: str | None
) -> firestore.DocumentSnapshot[Any]:
    """The viewing, if ``actor_uid`` is one of its parties (or the clock); else not found:
    a stranger learns nothing of whether it exists."""
    snapshot = db.collection(VIEWINGS).document(viewing).get()
    data = snapshot.to_dict() or {}
    parties = (data.get("requesterId"), data.get("agentId"))
    if not snapshot.exists or (actor_uid is not None and actor_uid not in parties):
        raise NO_SUCH_VIEWING()
    return snapshot


def _actor(data: Mapping[str, Any], actor_uid: str | None) -> str:
    if actor_uid is None:
        return "clock"
    return "agent" if actor_uid == data["agentId"] else "requester"


def _moved(
    data: Mapping[str, Any],
    what: str,
    status: str,
    *,
    actor_uid: str | None,
    reason: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """The fields every move writes: the status, the change to tell, a new revision."""
    change: dict[str, Any] = {"kind": CHANGE_OF[what], "by": actor_uid, "at": now}
    if reason is not None:
        change["reason"] = reason
    changes: dict[str, Any] = {
        "status": status,
        "revision": int(data.get("revision", 1)) + 1,
        "lastChange": change,
        "updatedAt": now,
    }
    if status != "requested":
        changes["expiresAt"] = None
    if status not in ACTIVE:
        changes |= {"locks": [], "holds": [], "nextReminderAt": None}
    elif status == "confirmed" and what == "confirm":
        changes |= {"holds": [], "nextReminderAt": next_reminder(data["slotStart"], now)}
    return changes


def _release(
    db: firestore.Client,
    batch: firestore.WriteBatch,
    data: Mapping[str, Any],
    *,
    locks: bool,
    holds: bool,
) -> None:
    """Delete, in ``batch``, the viewing's granule locks and/or its places."""
    if locks:
        for lock in data.get("locks", []):
            batch.delete(db.collection(LOCKS).document(lock))
    if holds:
        for hold in data.get("holds", []):
            batch.delete(db.collection(HOLDS).document(hold))


def _unchanged(snapshot: firestore.DocumentSnapshot[Any]) -> Any:
    return firestore.Client.write_option(last_update_time=snapshot.update_time)


def _lapsed(data: Mapping[str, Any], now: dt.datetime) -> bool:
    expires = data.get("expiresAt")
    return data.get("status") == "requested" and expires is not None and expires <= now


def lapse_if_due(db: firestore.Client, viewing: str, now: dt.datetime) -> bool:
    """Lapse ``viewing`` if it is a request whose time is up; True if it no longer holds
    time (lapsed now or before, or gone), False if it is live."""
    snapshot = db.collection(VIEWINGS).document(viewing).get()
    data = snapshot.to_dict() or {}
    if not snapshot.exists or data.get("status") not in ACTIVE:
        return True
    if not _lapsed(data, now):
        return False
    changes = _moved(data, "expire", "expired", actor_uid=None, reason=None, now=now)
    batch = db.batch()
    batch.update(snapshot.reference, changes, option=_unchanged(snapshot))
    _release(db, batch, data, locks=True, holds=True)
    try:
        batch.commit()
    except (gexc.FailedPrecondition, gexc.Aborted):
        return False  # it moved meanwhile (confirmed in time?): decide again next round
    logs.info("viewing request lapsed", viewingId=viewing)
    return True


def next_reminder(start: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """When to remind both parties next: a day before, then an hour before (none once
    both are past)."""
    for ahead in REMINDERS:
        at = start - ahead
        if at > now:
            return at
    return None
