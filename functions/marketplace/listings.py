"""Listings: the lifecycle past the client's own moves, from review to sold.

Clients create and edit drafts under the rules, and submit one by moving it from
``draft`` (or ``rejected``) to ``pending_review``. The submission trigger then reviews it
here (:func:`review_submission`): it reads the listing as stored *now*, in the effect's
transaction, and acts only while it is still ``pending_review``; it checks what rules
cannot (price sanity per kind, photos, a usable address, no duplicate on the market),
normalises the text, derives ``geohash`` and ``searchKeys``, and then either publishes
(owners who are verified or on the paid plan) or leaves the listing queued for an admin.
A listing it cannot accept (bad data included) is rejected with a reason, never raised
about, so no event ever loops.

Queued means: still ``pending_review``, with ``searchKeys`` set and ``reviewedAt`` unset
(the moderation queue is ``status == pending_review`` by ``createdAt``). Whatever it
decides, the review records the checks it ran on the listing (``reviewChecks``: each
check, passed or not, and what it found), so a moderator sees them.

**The agent hears of every decision** (published by the trigger, approved or rejected by
an admin, rejected by the trigger): each stamps ``reviewedAt``, and a trigger on that
field tells the agent (:func:`tell_review`: inbox entry, push) from the listing as the
decision left it. The inbox entry's id names the decision (the listing and its
``reviewedAt``), so a retried or redelivered event tells once, and a later decision on
the same listing tells again.

Every other move goes through :func:`approve`, :func:`reject` and :func:`set_status`,
each checked against :data:`GRAPH`; a move the graph does not allow is refused with
:data:`TRANSITION_NOT_ALLOWED` before anything is written.

**When an agent leaves** (their profile is deleted, or its ``role`` is no longer
``agent``), :func:`archive_departed_owners_listings` archives every listing they own, from
whatever status (:data:`DEPARTURE_MOVES`), with ``archivedReason: "agent_departed"`` and an
audit entry per listing. It decides from the profile as stored *now*, re-read in every
page's transaction, never from the event: a demotion followed by a re-promotion before the
sweep runs leaves the listings alone, and a re-promotion mid-sweep stops it at the next
page. A re-promotion *after* the sweep restores nothing: ``archived`` is terminal, and
putting homes back on the market needs the agent's word that they are still for sale (the
audit entries keep each listing's previous status). Each page archives, in one
transaction, only listings not yet archived, so repeating the sweep (a redelivered event,
a retry after a crash, two events of one departure) archives and audits each listing once.

The sweep has to win against the paths that could put a departed agent's listing (back) on
the market, so each re-reads the owner's profile in its own transaction: the submission
trigger archives instead of publishing, queueing or rejecting; :func:`approve` and
:func:`set_status` refuse. A demoted agent's client may hold an ID token with the old role
claim for up to an hour and write drafts under the rules meanwhile; such a draft stays
private to them and is archived when submitted, so it can never be published.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import pygeohash
from google.cloud import firestore
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from firekit.errors import (
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Refusal,
    field_issues,
)
from firekit.ids import PlainId
from firekit.transactions import run_transaction
from marketplace import audit

# marketplace.queries is imported by the functions that run a query: its table of queries
# imports every model, and this module is imported at every function's cold start (its
# request models), which should build only the models it needs.
from marketplace.models.listings import (
    ArchiveReason,
    Listing,
    ListingStatus,
    ReviewCheck,
    ReviewCheckName,
)
from marketplace.profiles import profile_ref
from marketplace.roles import Role

if TYPE_CHECKING:  # marketplace.notify (push, mail) is imported by the review notice only
    from firekit.notify import Notice, Outcome

LISTINGS = "listings"
GEOHASH_PRECISION = 9
"""About 5 m x 5 m: finer than any map zoom, coarse prefixes give the NEAR ranges."""
MAX_REASON = 500

GRAPH: Mapping[str, frozenset[str]] = {
    # "archived" from draft, pending_review and rejected: only the system's departure move.
    "draft": frozenset({"pending_review", "archived"}),
    "pending_review": frozenset({"draft", "active", "rejected", "archived"}),
    "rejected": frozenset({"draft", "pending_review", "archived"}),
    "active": frozenset({"under_offer", "sold", "let", "archived"}),
    "under_offer": frozenset({"active", "sold", "let", "archived"}),
    "sold": frozenset({"archived"}),
    "let": frozenset({"archived"}),
    "archived": frozenset(),
}
"""Every status move anyone may make (clients' moves are the model's ``Transitions``)."""

AgentStatus = Literal["active", "under_offer", "sold", "let", "archived"]
AGENT_MOVES: Mapping[str, frozenset[str]] = {
    "active": frozenset({"under_offer", "sold", "let", "archived"}),
    "under_offer": frozenset({"active", "sold", "let", "archived"}),
    "sold": frozenset({"archived"}),
    "let": frozenset({"archived"}),
}
"""The moves an owner makes through :func:`set_status` (a subset of :data:`GRAPH`)."""
ADMIN_MOVES: Mapping[str, frozenset[str]] = {"pending_review": frozenset({"active", "rejected"})}
"""The moves an admin makes through :func:`approve` and :func:`reject`."""
KIND_ONLY = {"sold": "sale", "let": "rent"}
"""Statuses only one kind reaches: a rental is let, never sold (either may be under offer:
an accepted rental offer holds the home while references are checked)."""
DEPARTURE_MOVES: Mapping[str, frozenset[str]] = {
    status: frozenset({"archived"})
    for status in ("active", "under_offer", "sold", "let", "rejected", "pending_review", "draft")
}
"""The system's move when a listing's agent leaves: from any status straight to archived.

Nobody's choice, so it is neither in :data:`AGENT_MOVES` nor in :data:`ADMIN_MOVES`. The
order is the sweep's: public listings leave the market first; then rejected,
pending_review and draft, so that a client's own move (rejected or draft to
pending_review, pending_review or rejected to draft) during the sweep can only lead into a
status still to be swept, or into pending_review after it was swept, where the submission
trigger archives it.
"""
DEPARTED: ArchiveReason = "agent_departed"
SYSTEM_ACTOR = "system"
"""The audit log's actor for what no person did (the admin's role change is audited apart)."""
DEPARTURE_PAGE = 200
"""Listings archived per transaction: 200 updates + 200 audit entries, within the 500
writes per commit that Firestore long enforced (still the safe bound); a page's snapshots
are all the sweep holds in memory."""

# How the callables' moves refuse (each listed in its callable's refusals=).
NO_SUCH_LISTING = Refusal(NotFound, "no_such_listing", "No such listing.")
OWN_LISTING = Refusal(
    FailedPrecondition, "own_listing", "Agents cannot do this with their own listings."
)
"""An agent booking a viewing of, or offering on, a listing of theirs."""
NOT_LISTING_OWNER = Refusal(
    PermissionDenied, "not_listing_owner", "Only the listing's agent may do this."
)
NO_LONGER_AGENT = Refusal(
    PermissionDenied, "no_longer_agent", "Only an agent may change a listing's status."
)
"""The caller's profile is no longer an agent's: the role claim in a demoted agent's ID
token outlives the demotion by up to an hour, the profile does not."""
TRANSITION_NOT_ALLOWED = Refusal(
    FailedPrecondition,
    "transition_not_allowed",
    "The listing cannot move from its status to the one asked.",
)
STATUS_NOT_FOR_KIND = Refusal(
    FailedPrecondition,
    "status_not_for_kind",
    "Only a listing for sale can be sold; only one for rent can be let.",
)
AGENT_DEPARTED = Refusal(FailedPrecondition, DEPARTED, "The listing's agent is no longer an agent.")
"""The departure sweep archives the listing (or has)."""
NOT_PUBLISHABLE = Refusal(
    FailedPrecondition, "listing_not_publishable", "The listing cannot be published as it is."
)
"""The message lists what is wrong (the review's own reasons)."""

DUPLICATE_STATUSES = frozenset({"pending_review", "active", "under_offer"})
"""A listing at the same address in one of these is on (or about to be on) the market."""

# Prices in major units (pounds, euros, ...); rent is per month.
PRICE_BOUNDS = {"sale": (10_000, 200_000_000), "rent": (50, 200_000)}
PRICE_BANDS = {
    "sale": (0, 100_000, 200_000, 300_000, 400_000, 500_000, 750_000, 1_000_000, 2_000_000),
    "rent": (0, 500, 750, 1_000, 1_250, 1_500, 2_000, 3_000, 5_000),
}
"""Lower edges of the price bands a ``searchKeys`` entry names (the last one is open)."""

SERVER_FIELDS = frozenset(
    {
        "status",
        "geohash",
        "searchKeys",
        "publishedAt",
        "reviewedAt",
        "rejectionReason",
        "archivedReason",
        "reviewChecks",
    }
)
NORMALISED_FIELDS = frozenset({"title", "description", "address.postcode"})
OWNED_FIELDS = SERVER_FIELDS | NORMALISED_FIELDS
"""What the submission trigger writes; a change of only these is its own (loop guard).

A client's submission always changes ``updatedAt`` too (the rules demand the request
time on every update), so it is never mistaken for the trigger's own write.
"""

ListingId = PlainId
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REASON)
]


class ListingRequest(BaseModel):
    """An admin's approval of a listing waiting for review."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    listingId: ListingId


class RejectRequest(BaseModel):
    """An admin's rejection, with the reason the agent will read."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    listingId: ListingId
    reason: Reason


class SetStatusRequest(BaseModel):
    """An owner's move of their listing on the market."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    listingId: ListingId
    status: AgentStatus


class TransitionResult(BaseModel):
    """The status a call moved a listing from and to."""

    model_config = ConfigDict(defer_build=True)

    listingId: str
    status: ListingStatus
    previousStatus: ListingStatus


class ReviewOutcome(enum.StrEnum):
    """What the submission trigger did."""

    IGNORED = "ignored"  # the listing is gone or no longer pending review
    PUBLISHED = "published"
    QUEUED = "queued"
    REJECTED = "rejected"
    ARCHIVED = "archived"  # the owner is no longer an agent


@dataclass(frozen=True)
class DepartureSweep:
    """What :func:`archive_departed_owners_listings` did."""

    archived: int
    """Listings this sweep archived (0 when a previous sweep had archived them all)."""
    owner_is_agent: bool
    """The owner is an agent (again) as stored now: the sweep left the rest alone."""


def listing_ref(db: firestore.Client, listing_id: str) -> firestore.DocumentReference:
    """The document of one listing."""
    return db.collection(LISTINGS).document(listing_id)


def can_move(before: str, after: str) -> bool:
    """Does the lifecycle graph allow ``before`` -> ``after``?"""
    return after in GRAPH.get(before, frozenset())


# --- normalisation and derived fields -------------------------------------------------


def collapse(text: str) -> str:
    """Trimmed, with runs of whitespace as one space."""
    return " ".join(text.split())


def normalise_postcode(postcode: str) -> str:
    """Upper case, single-spaced: ``" sw1a   1aa"`` -> ``"SW1A 1AA"``."""
    return collapse(postcode).upper()


def address_key(line1: str, postcode: str) -> str:
    """The form two addresses are compared in: case-, space- and punctuation-insensitive."""
    return re.sub(r"[^0-9a-z]", "", f"{line1}|{postcode}".casefold())


def geohash_of(lat: float, lng: float) -> str:
    """The geohash of a point at :data:`GEOHASH_PRECISION`."""
    return str(pygeohash.encode(lat, lng, precision=GEOHASH_PRECISION))


def price_band(kind: str, amount_major: int) -> str:
    """``<low>-<high>`` (or ``<low>+`` for the top band) of the band holding a price."""
    edges = PRICE_BANDS[kind]
    low = max(edge for edge in edges if edge <= amount_major)
    higher = [edge for edge in edges if edge > amount_major]
    return f"{low}-{higher[0]}" if higher else f"{low}+"


def search_keys(listing: Listing) -> list[str]:
    """The keys saved searches and filters match with ``array-contains``.

    ``city:<city>``, ``kind:<kind>``, ``type:<type>``, ``beds:<n>``, ``city_kind:<city>|
    <kind>`` and ``price:<kind>:<currency>:<band>`` (bands per kind, in major units).
    """
    city = collapse(listing.address.city).casefold()
    major = listing.price.amount // 100
    return [
        f"city:{city}",
        f"kind:{listing.kind}",
        f"type:{listing.propertyType}",
        f"beds:{listing.bedrooms}",
        f"city_kind:{city}|{listing.kind}",
        f"price:{listing.kind}:{listing.price.currency}:{price_band(listing.kind, major)}",
    ]


def normalised_fields(listing: Listing) -> dict[str, Any]:
    """The client's text tidied: trimmed title and description, postcode upper-cased."""
    return {
        "title": collapse(listing.title),
        "description": listing.description.strip(),
        "address.postcode": normalise_postcode(listing.address.postcode),
    }


def derived_fields(listing: Listing) -> dict[str, Any]:
    """What the server computes for search: ``geohash`` and ``searchKeys``."""
    return {
        "geohash": geohash_of(listing.location.lat, listing.location.lng),
        "searchKeys": search_keys(listing),
    }


# --- sanity checks --------------------------------------------------------------------


def checks(listing: Listing) -> list[ReviewCheck]:
    """Each content check the review makes, passed or not, with what it found: the failed
    ones' details are sentences the agent can act on (:func:`failed`)."""
    amount = listing.price.amount
    low, high = PRICE_BOUNDS[listing.kind]
    what = "monthly rent" if listing.kind == "rent" else "price"
    within = f"between {low:,} and {high:,} {listing.price.currency}"
    photos = len(listing.photos)
    address = listing.address
    missing = [
        sentence
        for part, sentence in (
            (address.line1, "The address needs a first line."),
            (address.city, "The address needs a city."),
            (address.postcode, "The address needs a postcode."),
        )
        if not collapse(part)
    ]
    return [
        _check(
            "price",
            low * 100 <= amount <= high * 100,
            ok=f"The {what} is {within}.",
            fix=f"The {what} must be more than zero."
            if amount <= 0
            else f"The {what} must be {within}.",
        ),
        _check(
            "photos",
            photos > 0,
            ok=f"{photos} photo{'' if photos == 1 else 's'}.",
            fix="Add at least one photo.",
        ),
        _check(
            "address",
            not missing,
            ok="The address has a first line, a city and a postcode.",
            fix=" ".join(missing),
        ),
        _check(
            "title",
            len(collapse(listing.title)) >= 5,
            ok="The title has at least 5 characters.",
            fix="The title needs at least 5 characters.",
        ),
    ]


def _check(check: ReviewCheckName, passed: bool, *, ok: str, fix: str) -> ReviewCheck:
    return ReviewCheck(check=check, passed=passed, detail=ok if passed else fix)


def failed(found: list[ReviewCheck]) -> list[str]:
    """What the failed checks found: sentences the agent can act on."""
    return [check.detail for check in found if not check.passed]


def problems(listing: Listing) -> list[str]:
    """What makes a listing unfit to publish, as sentences the agent can act on."""
    return failed(checks(listing))


def is_duplicate(listing_id: str, listing: Listing, others: list[Any]) -> bool:
    """Is another listing at the same address on (or about to be on) the market?"""
    key = address_key(listing.address.line1, listing.address.postcode)
    for other in others:
        if other.id == listing_id:
            continue
        data = other.to_dict() or {}
        address = data.get("address")
        if data.get("status") not in DUPLICATE_STATUSES or not isinstance(address, dict):
            continue
        if address_key(str(address.get("line1", "")), str(address.get("postcode", ""))) == key:
            return True
    return False


def reason_text(found: list[str]) -> str:
    """The agent-facing rejection reason, within the model's 500 characters."""
    text = " ".join(found)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


@dataclass(frozen=True)
class _Reviewed:
    listing: Listing | None
    checks: list[ReviewCheck]

    @property
    def problems(self) -> list[str]:
        return failed(self.checks)

    @property
    def record(self) -> dict[str, Any]:
        """The checks as the listing keeps them, for the moderator to see."""
        return {"reviewChecks": [check.model_dump() for check in self.checks]}


def _review_reads(
    db: firestore.Client, transaction: firestore.Transaction, listing_id: str, data: dict[str, Any]
) -> _Reviewed:
    """Validate and sanity-check a stored listing, duplicate query included (reads only).

    The duplicate check (a query) runs only when every other check passed."""
    try:
        listing = Listing.model_validate(data)
    except ValidationError as exc:
        fields = sorted({issue["field"] for issue in field_issues(exc)})
        detail = f"The listing has invalid data in: {', '.join(fields)}."
        return _Reviewed(None, [ReviewCheck(check="data", passed=False, detail=detail)])
    found = checks(listing)
    postcode = normalise_postcode(listing.address.postcode)
    if postcode and all(check.passed for check in found):
        from marketplace import queries  # lazy: see the imports

        query = queries.DUPLICATE_ADDRESS.build(db, equals={"address.postcode": postcode})
        duplicate = is_duplicate(listing_id, listing, list(transaction.get(query)))
        found.append(duplicate_check(duplicate))
    return _Reviewed(listing, found)


def duplicate_check(duplicate: bool) -> ReviewCheck:
    """The duplicate-address check's record (it needs a query, so :func:`checks` has not)."""
    return _check(
        "duplicate",
        not duplicate,
        ok="No other listing at this address is on the market.",
        fix="This address is already on the market in another listing.",
    )


def _publishable(profile: Mapping[str, Any]) -> bool:
    return profile.get("verified") is True or profile.get("plan") == "agent_pro"


def _publish_fields(listing: Listing) -> dict[str, Any]:
    return {
        **normalised_fields(listing),
        **derived_fields(listing),
        "status": "active",
        "publishedAt": firestore.SERVER_TIMESTAMP,
        "reviewedAt": firestore.SERVER_TIMESTAMP,
        "rejectionReason": None,
    }


def _reject_fields(reason: str) -> dict[str, Any]:
    return {
        "status": "rejected",
        "rejectionReason": reason,
        "reviewedAt": firestore.SERVER_TIMESTAMP,
    }


# --- the submission trigger -----------------------------------------------------------


def review_submission(
    db: firestore.Client, transaction: firestore.Transaction, listing_id: str
) -> ReviewOutcome:
    """Review a submitted listing as stored now: publish, queue, reject or archive it.

    Reads (listing, owner profile, same-postcode listings) all come before the writes, as
    Firestore transactions require. Never raises for bad data.

    A listing whose owner is not an agent now (demoted, or the profile deleted) is
    archived as ``agent_departed``, whatever its content: publishing or queueing it would
    race the departure sweep, and a rejection would invite a resubmission that no agent
    can make. Archiving is what the sweep does too, so the listing ends the same whichever
    of the two runs first.
    """
    ref = listing_ref(db, listing_id)
    snapshot = ref.get(transaction=transaction)
    data = (snapshot.to_dict() or {}) if snapshot.exists else {}
    if data.get("status") != "pending_review":
        return ReviewOutcome.IGNORED
    owner = _agent_profile(db, transaction, data.get("ownerId"))
    if owner is None:
        _archive_departed(transaction, db, ref, data)
        return ReviewOutcome.ARCHIVED
    reviewed = _review_reads(db, transaction, listing_id, data)
    if reviewed.listing is None or reviewed.problems:
        rejected = _reject_fields(reason_text(reviewed.problems))
        transaction.update(ref, rejected | reviewed.record)
        return ReviewOutcome.REJECTED
    listing = reviewed.listing
    if _publishable(owner):
        transaction.update(ref, _publish_fields(listing) | reviewed.record)
        return ReviewOutcome.PUBLISHED
    queued = {
        **normalised_fields(listing),
        **derived_fields(listing),
        "rejectionReason": None,
        **reviewed.record,
    }
    transaction.update(ref, queued)
    return ReviewOutcome.QUEUED


# --- an agent's departure -------------------------------------------------------------


def is_departure(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> bool:
    """Is this profile write a demotion from agent, or a deletion (of any profile)?

    Every deletion counts, not only an agent's: an account erased after a demotion whose
    sweep never completed must still leave no listing behind, and deletions are rare. Only
    the cue to look: what to do is decided from the profile as stored when the sweep runs,
    since the event may be old news by then.
    """
    if after is None:
        return before is not None
    return _role(before) == Role.AGENT.value and _role(after) != Role.AGENT.value


def archive_departed_owners_listings(db: firestore.Client, owner_uid: str) -> DepartureSweep:
    """Archive every listing of ``owner_uid`` not yet archived, unless they are an agent now.

    One transaction per page of at most :data:`DEPARTURE_PAGE` listings of one status
    (statuses in :data:`DEPARTURE_MOVES` order); each re-reads the profile, so a
    re-promotion stops the sweep at the next page, and each page query starts afresh:
    archived listings drop out of it, so no cursor is needed and nothing is visited twice.
    Safe to run again at any time: it only ever archives what is not archived yet.
    """
    archived = 0
    for status in DEPARTURE_MOVES:
        while True:
            page = _archive_page(db, owner_uid, status)
            if page is None:
                return DepartureSweep(archived=archived, owner_is_agent=True)
            archived += page
            if page < DEPARTURE_PAGE:
                break
    return DepartureSweep(archived=archived, owner_is_agent=False)


def _archive_page(db: firestore.Client, owner_uid: str, status: str) -> int | None:
    """Archive up to a page of the owner's listings in ``status``; None if they are an agent."""
    from marketplace import queries  # lazy: see the imports

    query = queries.AGENT_LISTINGS_BY_STATUS.build(
        db, equals={"ownerId": owner_uid, "status": status}, limit=DEPARTURE_PAGE
    )

    def apply(transaction: firestore.Transaction) -> int | None:
        if _agent_profile(db, transaction, owner_uid) is not None:
            return None
        page = list(transaction.get(query))
        for snapshot in page:
            _archive_departed(transaction, db, snapshot.reference, snapshot.to_dict() or {})
        return len(page)

    return run_transaction(
        db, apply, busy_message="The agent's listings are being changed; try again."
    )


def _archive_departed(
    transaction: firestore.Transaction,
    db: firestore.Client,
    ref: firestore.DocumentReference,
    data: Mapping[str, Any],
) -> None:
    previous = _move_allowed(data, "archived", DEPARTURE_MOVES)
    transaction.update(ref, {"status": "archived", "archivedReason": DEPARTED})
    audit.record_in(
        transaction,
        db,
        "listing.archived",
        actor_uid=SYSTEM_ACTOR,
        target=f"{LISTINGS}/{ref.id}",
        before={"status": previous, "archivedReason": None},
        after={"status": "archived", "archivedReason": DEPARTED},
    )


def _agent_profile(
    db: firestore.Client, transaction: firestore.Transaction, owner_id: object
) -> Mapping[str, Any] | None:
    """The owner's profile as stored now if they are an agent, else None (no profile too)."""
    if not isinstance(owner_id, str) or not owner_id or "/" in owner_id:
        return None  # no usable owner id: no agent stands behind the listing
    snapshot = profile_ref(db, owner_id).get(transaction=transaction)
    profile = (snapshot.to_dict() or {}) if snapshot.exists else {}
    return profile if _role(profile) == Role.AGENT.value else None


def _role(profile: Mapping[str, Any] | None) -> object:
    return (profile or {}).get("role")


# --- callables' domain ----------------------------------------------------------------


def approve(db: firestore.Client, *, actor_uid: str, listing_id: str) -> TransitionResult:
    """An admin publishes a listing waiting for review (checked again, as it may not
    have been reviewed by the trigger yet)."""

    def apply(transaction: firestore.Transaction) -> TransitionResult:
        ref, data = _read(db, transaction, listing_id)
        previous = _move_allowed(data, "active", ADMIN_MOVES)
        if _agent_profile(db, transaction, data.get("ownerId")) is None:
            # The departure sweep archives it (or has, if this read lost the race).
            raise AGENT_DEPARTED()
        reviewed = _review_reads(db, transaction, listing_id, data)
        if reviewed.listing is None or reviewed.problems:
            raise NOT_PUBLISHABLE(
                "The listing cannot be published: " + reason_text(reviewed.problems)
            )
        transaction.update(ref, _publish_fields(reviewed.listing) | reviewed.record)
        audit.record_in(
            transaction,
            db,
            "listing.approved",
            actor_uid=actor_uid,
            target=f"{LISTINGS}/{listing_id}",
            before={"status": previous},
            after={"status": "active"},
        )
        return TransitionResult(listingId=listing_id, status="active", previousStatus=previous)

    return _run(db, apply)


def reject(
    db: firestore.Client, *, actor_uid: str, listing_id: str, reason: str
) -> TransitionResult:
    """An admin sends a listing waiting for review back to its agent, with a reason."""

    def apply(transaction: firestore.Transaction) -> TransitionResult:
        ref, data = _read(db, transaction, listing_id)
        previous = _move_allowed(data, "rejected", ADMIN_MOVES)
        transaction.update(ref, _reject_fields(reason))
        audit.record_in(
            transaction,
            db,
            "listing.rejected",
            actor_uid=actor_uid,
            target=f"{LISTINGS}/{listing_id}",
            before={"status": previous},
            after={"status": "rejected"},
            reason=reason,
        )
        return TransitionResult(listingId=listing_id, status="rejected", previousStatus=previous)

    return _run(db, apply)


def set_status(
    db: firestore.Client, *, owner_uid: str, listing_id: str, status: str
) -> TransitionResult:
    """The owner marks their listing under offer, sold, let, archived, or active again."""

    def apply(transaction: firestore.Transaction) -> TransitionResult:
        ref, data = _read(db, transaction, listing_id)
        if data.get("ownerId") != owner_uid:
            raise NOT_LISTING_OWNER("Only the listing's agent may change its status.")
        # The profile, not the token's claim: a move back to active must not undo the sweep.
        if _agent_profile(db, transaction, owner_uid) is None:
            raise NO_LONGER_AGENT()
        previous = _move_allowed(data, status, AGENT_MOVES)
        only = KIND_ONLY.get(status)
        if only is not None and data.get("kind") != only:
            raise STATUS_NOT_FOR_KIND(f"Only a listing for {only} can be marked {status}.")
        changes: dict[str, Any] = {"status": status, "updatedAt": firestore.SERVER_TIMESTAMP}
        if status == "active":  # back on the market: the accepted offer fell through
            changes["acceptedOfferId"] = None
        transaction.update(ref, changes)
        return TransitionResult(
            listingId=listing_id, status=cast(ListingStatus, status), previousStatus=previous
        )

    return _run(db, apply)


def _read(
    db: firestore.Client, transaction: firestore.Transaction, listing_id: str
) -> tuple[firestore.DocumentReference, dict[str, Any]]:
    ref = listing_ref(db, listing_id)
    snapshot = ref.get(transaction=transaction)
    if not snapshot.exists:
        raise NO_SUCH_LISTING()
    return ref, snapshot.to_dict() or {}


def _move_allowed(data: Mapping[str, Any], status: str, moves: Mapping[str, frozenset[str]]) -> Any:
    """The stored status, if ``moves`` (a part of :data:`GRAPH`) allows it -> ``status``."""
    previous = data.get("status")
    if not isinstance(previous, str) or status not in moves.get(previous, frozenset()):
        shown = previous if isinstance(previous, str) and previous in GRAPH else "its status"
        raise TRANSITION_NOT_ALLOWED(f"A listing cannot move from {shown} to {status}.")
    return previous


def _run(
    db: firestore.Client, apply: Callable[[firestore.Transaction], TransitionResult]
) -> TransitionResult:
    return run_transaction(
        db, apply, busy_message="The listing is being changed by someone else; try again."
    )


# --- telling the agent ----------------------------------------------------------------

REVIEW_KIND = "listing_review"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_REVIEW_TITLES = {"active": "Your listing is live", "rejected": "Your listing needs changes"}


def review_notice_id(listing_id: str, reviewed_at: dt.datetime) -> str:
    """The inbox id of one review decision: ``review-{listingId}-{reviewedAt in epoch µs}``."""
    micros = (reviewed_at.astimezone(dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1)
    return f"review-{listing_id}-{micros}"


def review_notice(listing_id: str, listing: Mapping[str, Any]) -> Notice | None:
    """What the agent is told of the decision ``listing`` (as the decision left it) holds;
    None if it holds none (no ``reviewedAt``, a status no review sets, no owner)."""
    from firekit.notify import Notice  # lazy: see the imports

    reviewed_at, status, owner = (listing.get(k) for k in ("reviewedAt", "status", "ownerId"))
    title = _REVIEW_TITLES.get(str(status))
    if not isinstance(reviewed_at, dt.datetime) or title is None:
        return None
    if not isinstance(owner, str) or not owner or "/" in owner:
        return None
    name = collapse(str(listing.get("title") or "")) or "Your listing"
    reason = str(listing.get("rejectionReason") or "").strip()
    if status == "active":
        body = f"{name} is on the market now."
    else:
        body = f"{name} was not published. {reason or 'See the listing for what to change.'}"
    data = {"listingId": listing_id, "status": str(status)} | ({"reason": reason} if reason else {})
    return Notice(
        uid=owner,
        id=review_notice_id(listing_id, reviewed_at),
        kind=REVIEW_KIND,
        title=title,
        body=body if len(body) <= MAX_REASON else body[: MAX_REASON - 1] + "…",
        link=f"/listings/{listing_id}",
        data=data,
        extra={"listingId": listing_id},
    )


def tell_review(
    db: firestore.Client, listing_id: str, listing: Mapping[str, Any]
) -> Outcome | None:
    """Tell the agent of the review decision ``listing`` holds, once (None: it holds none)."""
    from marketplace import notify  # lazy: see the imports

    notice = review_notice(listing_id, listing)
    return notify.notify(db, notice) if notice is not None else None
