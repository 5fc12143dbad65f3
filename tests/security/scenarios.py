"""What each row of the rules matrix does for each operation, with valid documents.

Every scenario arranges one stored document (and whatever it depends on) as an admin,
then says, per operation, what a client acting as a principal would send: the query
it would list with, the document it would create for itself, the edit it would make.
Only *who* varies across a row; the payloads are valid, so a deny is the rules saying
"not you", never "bad shape" (the adversarial and agreement tests cover shapes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from marketplace import limits
from marketplace.limits import Held, Rate
from pytest_firebase.rest import SERVER_TIMESTAMP, Filter, FirestoreRest

OWNER, OTHER, AGENT, ADMIN = "owner-u", "other-u", "agent-u", "admin-u"
UIDS = {"anonymous": None, "owner": OWNER, "other": OTHER, "agent": AGENT, "admin": ADMIN}
CLAIMS = {"other": {"role": "buyer"}, "agent": {"role": "agent"}, "admin": {"role": "admin"}}
NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


TOMBSTONES = "_tombstones"
"""Phase one of an account's deletion writes ``_tombstones/{uid}`` (the Admin SDK): from
then on the rules refuse that uid every write and every private read."""


def tombstone(erasure_id: str = "erasure-1") -> dict[str, Any]:
    """A tombstone as phase one writes it (the rules only ask whether it exists)."""
    return {"erasureId": erasure_id, "closedAt": NOW, "expiresAt": NOW + dt.timedelta(hours=1)}


def money(amount: int = 350_000_00) -> dict[str, Any]:
    return {"amount": amount, "currency": "GBP"}


def listing_draft(owner: str) -> dict[str, Any]:
    """A listing as its agent creates it."""
    return {
        "ownerId": owner,
        "status": "draft",
        "kind": "sale",
        "propertyType": "house",
        "title": "Three-bed terrace near the park",
        "description": "Bright and quiet.",
        "price": money(),
        "bedrooms": 3,
        "bathrooms": 1,
        "areaSqm": 92,
        "address": {
            "line1": "12 Elm Road",
            "line2": None,
            "city": "Leeds",
            "postcode": "LS6 2AB",
            "country": "GB",
        },
        "location": {"lat": 53.81, "lng": -1.56},
        "features": ["garden"],
        "createdAt": SERVER_TIMESTAMP,
        "updatedAt": SERVER_TIMESTAMP,
    }


def stored(doc: dict[str, Any]) -> dict[str, Any]:
    """A client payload as it reads once stored (request-time stamps become times)."""
    return {k: (NOW if v is SERVER_TIMESTAMP else v) for k, v in doc.items()}


def saved_search(owner: str) -> dict[str, Any]:
    return {
        "ownerId": owner,
        "name": "Leeds family homes",
        "kind": "sale",
        "city": "Leeds",
        "propertyTypes": ["house"],
        "currency": "GBP",
        "priceMin": None,
        "priceMax": 400_000_00,
        "bedroomsMin": 3,
        "near": None,
        "channels": {"inApp": True, "push": True, "email": False},
        "muted": False,
        "createdAt": SERVER_TIMESTAMP,
        "updatedAt": SERVER_TIMESTAMP,
    }


def conversation(listing_id: str, buyer: str, agent: str) -> dict[str, Any]:
    return {
        "listingId": listing_id,
        "buyerId": buyer,
        "agentId": agent,
        "participantIds": [buyer, agent],
        "createdAt": SERVER_TIMESTAMP,
        "updatedAt": SERVER_TIMESTAMP,
    }


Arrange = Callable[[FirestoreRest, str], str]
"""(admin client, unique suffix) -> the path of the stored document."""


@dataclass(frozen=True)
class Scenario:
    """How one matrix row is exercised."""

    arrange: Arrange
    list_query: Callable[[str, str | None], tuple[str, list[Filter]]]
    """(stored path, principal uid) -> (collection, filters) of the query to run."""
    create: Callable[[str | None, str], tuple[str, dict[str, Any]]] | None
    """(principal uid, suffix) -> (path, document) the principal creates for itself."""
    update: dict[str, Any] | Callable[[str | None], dict[str, Any]] = field(default_factory=dict)
    """The edit, or (principal uid) -> the edit, when it names the principal."""
    owner_claims: dict[str, Any] = field(default_factory=dict)
    cap: Held | Rate | None = None
    """The cap a create counts against: the principal's batch writes its usage too."""


def _put(path: str, data: dict[str, Any]) -> Arrange:
    def arrange(admin: FirestoreRest, n: str) -> str:
        full = path.format(n=n)
        admin.set(full, stored(data)).expect_ok()
        return full

    return arrange


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0]


def _by(field_name: str) -> Callable[[str, str | None], tuple[str, list[Filter]]]:
    """List the owner's documents of the collection by ``field_name == owner``."""
    return lambda path, uid: (_parent(path), [(field_name, "==", OWNER)])


def _all(path: str, uid: str | None) -> tuple[str, list[Filter]]:
    return _parent(path), []


PROFILE = {
    "displayName": "Olive Owner",
    "photoURL": None,
    "bio": "",
    "role": "buyer",
    "searchName": "olive owner",
    "verified": False,
    "plan": None,
}
DEVICE = {
    "token": "tok-{n}",
    "ownerId": OWNER,
    "platform": "ios",
    "appVersion": "1.0.0",
    "locale": "en-GB",
    "createdAt": SERVER_TIMESTAMP,
    "updatedAt": SERVER_TIMESTAMP,
}


def _device(uid: str | None, n: str) -> tuple[str, dict[str, Any]]:
    return f"users/{OWNER}/devices/new-{n}", {**DEVICE, "token": f"new-{n}"}


def _favorite(uid: str | None, n: str) -> tuple[str, dict[str, Any]]:
    return f"users/{OWNER}/favorites/fav-{n}", {
        "listingId": f"fav-{n}",
        "createdAt": SERVER_TIMESTAMP,
    }


def _listing(status: str, **server_fields: Any) -> Arrange:
    return _put("listings/l-{n}", {**listing_draft(OWNER), "status": status, **server_fields})


def _favorite_arrange(admin: FirestoreRest, n: str) -> str:
    # The stored favourite's listing, and the public listing a principal favourites.
    for listing_id in (f"l-{n}", f"fav-{n}"):
        admin.set(f"listings/{listing_id}", stored({**listing_draft(AGENT), "status": "active"}))
    return _put(f"users/{OWNER}/favorites/l-{{n}}", {"listingId": "l-{n}", "createdAt": NOW})(
        admin, n
    )


def availability(**changes: Any) -> dict[str, Any]:
    """Viewing hours as an agent writes them: weekday evenings and Saturday mornings."""
    return {
        "weekly": {
            **dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "17:00-19:30"),
            "sat": "10:00-13:00",
        },
        "slotMinutes": 30,
        "timeZone": "Europe/London",
        "datesOff": ["2026-12-25"],
        "autoConfirm": False,
        "createdAt": SERVER_TIMESTAMP,
        "updatedAt": SERVER_TIMESTAMP,
        **changes,
    }


def _availability_arrange(admin: FirestoreRest, n: str) -> str:
    # The owner's hours for one listing of theirs, and a second listing to write hours for.
    for listing_id in (f"av-{n}", f"avn-{n}"):
        admin.set(f"listings/{listing_id}", stored({**listing_draft(OWNER), "status": "active"}))
    return _put(f"users/{OWNER}/availability/av-{{n}}", availability())(admin, n)


def _new_availability(uid: str | None, n: str) -> tuple[str, dict[str, Any]]:
    # Scope: the owner's other listing (scope `all` exists at most once per owner).
    return f"users/{OWNER}/availability/avn-{n}", availability()


def _new_listing(uid: str | None, n: str) -> tuple[str, dict[str, Any]]:
    return f"listings/new-{n}-{uid}", listing_draft(uid or "nobody")


def _new_search(uid: str | None, n: str) -> tuple[str, dict[str, Any]]:
    return f"savedSearches/new-{n}-{uid}", saved_search(uid or "nobody")


def _listing_list(status: str) -> Callable[[str, str | None], tuple[str, list[Filter]]]:
    public = status in ("active", "under_offer", "sold", "let")
    field_filter: Filter = ("status", "==", status) if public else ("ownerId", "==", OWNER)
    return lambda path, uid: ("listings", [field_filter])


def _conversation_arrange(admin: FirestoreRest, n: str) -> str:
    admin.set(f"listings/cl-{n}", stored({**listing_draft(AGENT), "status": "active"}))
    admin.set(f"listings/cn-{n}", stored({**listing_draft(AGENT), "status": "active"}))
    path = f"conversations/cl-{n}__{OWNER}"
    admin.set(path, stored(conversation(f"cl-{n}", OWNER, AGENT))).expect_ok()
    return path


def _party_list(owner_field: str, party_field: str, contains: bool = False):  # type: ignore[no-untyped-def]
    """The owner's documents, or the agent's when the agent (the other party) asks."""
    op = "array-contains" if contains else "=="

    def query(path: str, uid: str | None) -> tuple[str, list[Filter]]:
        if uid == AGENT:
            return _parent(path), [(party_field, op, AGENT)]
        return _parent(path), [(owner_field, op, OWNER)]

    return query


def _new_conversation(uid: str | None, n: str) -> tuple[str, dict[str, Any]]:
    # A conversation of the principal's own about another of the agent's active listings.
    return f"conversations/cn-{n}__{uid}", conversation(f"cn-{n}", uid or "nobody", AGENT)


def _message_arrange(admin: FirestoreRest, n: str) -> str:
    conversation_path = _conversation_arrange(admin, n)
    path = f"{conversation_path}/messages/m-{n}"
    admin.set(
        path,
        stored(
            {"senderId": OWNER, "text": "Is it still available?", "createdAt": SERVER_TIMESTAMP}
        ),
    ).expect_ok()
    return path


def _new_message(uid: str | None, n: str) -> tuple[str, dict[str, Any]]:
    path = f"conversations/cl-{n}__{OWNER}/messages/new-{n}-{uid}"
    return path, {
        "senderId": uid or "nobody",
        "text": "Can I view it on Saturday?",
        "createdAt": SERVER_TIMESTAMP,
    }


def _messages_list(path: str, uid: str | None) -> tuple[str, list[Filter]]:
    return _parent(path), []


def _blocked_message_arrange(admin: FirestoreRest, n: str) -> str:
    path = _message_arrange(admin, n)
    conversation_path = path.split("/messages/")[0]
    admin.update(conversation_path, {"blockedBy": {AGENT: NOW}}).expect_ok()
    return path


def field_path(*segments: str) -> str:
    """A field path as the REST API takes it: segments other than identifiers in backticks."""
    return ".".join(
        s if s.replace("_", "a").isalnum() and not s[:1].isdigit() and s.isascii() else f"`{s}`"
        for s in segments
    )


def _read_receipt(uid: str | None) -> dict[str, Any]:
    """A participant marks the conversation read: its own lastReadAt entry, request time."""
    return {field_path("lastReadAt", uid or "nobody"): SERVER_TIMESTAMP}


def _report_arrange(admin: FirestoreRest, n: str) -> str:
    _message_arrange(admin, n)
    path = f"reports/r-{n}"
    report = {
        "reporterId": OWNER,
        "conversationId": f"cl-{n}__{OWNER}",
        "messageId": f"m-{n}",
        "reason": "spam",
        "note": "",
        "createdAt": NOW,
        "status": "open",
    }
    admin.set(path, report).expect_ok()
    return path


def _new_report(uid: str | None, n: str) -> tuple[str, dict[str, Any]]:
    return f"reports/new-{n}-{uid}", {
        "reporterId": uid or "nobody",
        "conversationId": f"cl-{n}__{OWNER}",
        "messageId": f"m-{n}",
        "reason": "harassment",
        "note": "Keeps asking for a deposit by bank transfer.",
        "createdAt": SERVER_TIMESTAMP,
    }


VIEWING_START = NOW + dt.timedelta(days=2)
VIEWING = {
    "listingId": "l1",
    "agentId": AGENT,
    "requesterId": OWNER,
    "slotStart": VIEWING_START,
    "slotEnd": VIEWING_START + dt.timedelta(minutes=30),
    "timeZone": "Europe/London",
    "status": "requested",
    "note": None,
    "expiresAt": NOW + dt.timedelta(days=1),
    "locks": [
        f"{scope}__{owner}__{granule}"
        for scope, owner in (("agent", AGENT), ("listing", "l1"))
        for granule in ("20261103T1200Z", "20261103T1215Z")
    ],
    "holds": [f"{OWNER}__all__0", f"{OWNER}__l1__0"],
    "requestKey": "req-1",
    "revision": 1,
    "lastChange": {
        "kind": "requested",
        "by": OWNER,
        "at": NOW,
        "reason": None,
        "previousStart": None,
    },
    "nextReminderAt": None,
    "createdAt": NOW,
    "updatedAt": NOW,
}
OFFER = {
    "listingId": "l1",
    "buyerId": OWNER,
    "agentId": AGENT,
    "amount": money(),
    "status": "submitted",
    "message": None,
    "deposit": None,
    "createdAt": NOW,
    "updatedAt": NOW,
}
NOTIFICATION = {
    "kind": "listing_match",
    "title": "New home in Leeds",
    "body": "3 bed house",
    "listingId": "l1",
    "createdAt": NOW,
    "read": False,
    "readAt": None,
}
"""An unread entry of the in-app inbox, as functions write it."""
AGENT_DRAFT = {"role": "agent"}

SCENARIOS: dict[str, Scenario] = {
    "users/{uid}[profile]": Scenario(
        _put(f"users/{OWNER}", PROFILE), _all, None, {"displayName": "Olive O."}
    ),
    "users/{uid}/private/{docId}[account]": Scenario(
        _put(
            f"users/{OWNER}/private/account",
            {"email": "olive@example.com", "phone": None, "notifications": None},
        ),
        _all,
        None,
        {"phone": "+447700900123"},
    ),
    "users/{uid}/devices/{token}[device]": Scenario(
        _put(f"users/{OWNER}/devices/tok-{{n}}", DEVICE),
        _all,
        _device,
        {"appVersion": "1.0.1", "updatedAt": SERVER_TIMESTAMP},
        cap=limits.DEVICES,
    ),
    "users/{uid}/notifications/{notificationId}[notification]": Scenario(
        _put(f"users/{OWNER}/notifications/n-{{n}}", NOTIFICATION),
        _all,
        None,
        {"read": True, "readAt": SERVER_TIMESTAMP},
    ),
    "users/{uid}/favorites/{listingId}[favorite]": Scenario(
        _favorite_arrange, _all, _favorite, cap=limits.FAVORITES
    ),
    "users/{uid}/availability/{scope}[an agent's hours]": Scenario(
        _availability_arrange,
        _all,
        _new_availability,
        {"autoConfirm": True, "updatedAt": SERVER_TIMESTAMP},
        AGENT_DRAFT,
        limits.AVAILABILITY,
    ),
    "users/{uid}/availability/{scope}[a buyer's hours]": Scenario(
        _availability_arrange,
        _all,
        _new_availability,
        {"autoConfirm": True, "updatedAt": SERVER_TIMESTAMP},
        {"role": "buyer"},
        limits.AVAILABILITY,
    ),
    "users/{uid}/limits/{doc}[usage]": Scenario(
        _put(f"users/{OWNER}/limits/usage", {"favorites": {"ids": []}}),
        _all,
        None,
        {"devices": {"ids": ["a-new-device"]}},
    ),
    "listings/{listingId}[draft]": Scenario(
        _listing("draft"),
        _listing_list("draft"),
        _new_listing,
        {"title": "Three-bed terrace, new kitchen", "updatedAt": SERVER_TIMESTAMP},
        AGENT_DRAFT,
        limits.LISTINGS,
    ),
    "listings/{listingId}[draft after review]": Scenario(
        _listing("draft", reviewedAt=NOW, rejectionReason=None),
        _listing_list("draft"),
        _new_listing,
        {"title": "Three-bed terrace, new photos", "updatedAt": SERVER_TIMESTAMP},
        AGENT_DRAFT,
        limits.LISTINGS,
    ),
    "listings/{listingId}[pending_review]": Scenario(
        _listing("pending_review"),
        _listing_list("pending_review"),
        _new_listing,
        {"status": "draft", "updatedAt": SERVER_TIMESTAMP},
        AGENT_DRAFT,
        limits.LISTINGS,
    ),
    "listings/{listingId}[active]": Scenario(
        _listing("active"),
        _listing_list("active"),
        _new_listing,
        {"price": money(340_000_00), "updatedAt": SERVER_TIMESTAMP},
        AGENT_DRAFT,
        limits.LISTINGS,
    ),
    "listings/{listingId}[sold]": Scenario(
        _listing("sold"),
        _listing_list("sold"),
        _new_listing,
        {"price": money(1_00), "updatedAt": SERVER_TIMESTAMP},
        AGENT_DRAFT,
        limits.LISTINGS,
    ),
    "listings/{listingId}[rejected]": Scenario(
        _listing("rejected"),
        _listing_list("rejected"),
        _new_listing,
        {"status": "draft", "updatedAt": SERVER_TIMESTAMP},
        AGENT_DRAFT,
        limits.LISTINGS,
    ),
    "listings/{listingId}[archived]": Scenario(
        _listing("archived"),
        _listing_list("archived"),
        _new_listing,
        {"title": "Back on the market?", "updatedAt": SERVER_TIMESTAMP},
        AGENT_DRAFT,
        limits.LISTINGS,
    ),
    "savedSearches/{searchId}[search]": Scenario(
        _put("savedSearches/s-{n}", saved_search(OWNER)),
        _by("ownerId"),
        _new_search,
        {"muted": True, "updatedAt": SERVER_TIMESTAMP},
        cap=limits.SAVED_SEARCHES,
    ),
    "viewings/{viewingId}[viewing]": Scenario(
        _put("viewings/v-{n}", VIEWING),
        _party_list("requesterId", "agentId"),
        None,
        {"status": "confirmed"},
    ),
    "viewingLocks/{lockId}[granule lock]": Scenario(
        _put(
            "viewingLocks/agent__{n}__20261103T1200Z",
            {"viewingId": "v1", "start": VIEWING_START, "createdAt": NOW},
        ),
        _all,
        None,
        {"viewingId": "v2"},
    ),
    "viewingHolds/{holdId}[waiting-request place]": Scenario(
        _put(
            f"viewingHolds/{OWNER}__all__{{n}}",
            {"requesterId": OWNER, "viewingId": "v1", "createdAt": NOW},
        ),
        _all,
        None,
        {"viewingId": "v2"},
    ),
    "calendarFeeds/{token}[calendar token]": Scenario(
        _put("calendarFeeds/tok-{n}", {"uid": OWNER, "createdAt": NOW}),
        _all,
        None,
        {"uid": AGENT},
    ),
    "offers/{offerId}[offer]": Scenario(
        _put("offers/o-{n}", OFFER), _party_list("buyerId", "agentId"), None, {"status": "accepted"}
    ),
    "conversations/{conversationId}[conversation]": Scenario(
        _conversation_arrange,
        _party_list("participantIds", "participantIds", contains=True),
        _new_conversation,
        _read_receipt,
        cap=limits.CONVERSATIONS,
    ),
    "conversations/{conversationId}/messages/{messageId}[message]": Scenario(
        _message_arrange,
        _messages_list,
        _new_message,
        {"text": "Edited after the fact"},
        cap=limits.MESSAGES,
    ),
    "conversations/{conversationId}/messages/{messageId}[blocked sender]": (
        Scenario(
            _blocked_message_arrange,
            _messages_list,
            _new_message,
            {"text": "Edited after the fact"},
            cap=limits.MESSAGES,
        )
    ),
    "reports/{reportId}[report]": Scenario(
        _report_arrange, _all, _new_report, {"status": "dismissed"}, cap=limits.REPORTS
    ),
    "users/{uid}/counters/{counterId}[unread badge]": Scenario(
        _put(
            f"users/{OWNER}/counters/unread",
            {"messages": 3, "conversations": 1, "updatedAt": NOW},
        ),
        _all,
        None,
        {"messages": 0},
    ),
    "customers/{uid}[customer]": Scenario(
        _put(f"customers/{OWNER}", {"stripeCustomerId": "cus_1", "createdAt": NOW}),
        _all,
        None,
        {"stripeCustomerId": "cus_2"},
    ),
    "customers/{uid}/subscriptions/{subscriptionId}[subscription]": Scenario(
        _put(
            f"customers/{OWNER}/subscriptions/sub-{{n}}",
            {"status": "active", "plan": "agent_pro", "stripeCreated": 1, "updatedAt": NOW},
        ),
        _all,
        None,
        {"status": "canceled"},
    ),
    "customers/{uid}/payments/{paymentId}[payment]": Scenario(
        _put(
            f"customers/{OWNER}/payments/pi-{{n}}",
            {
                "amount": money(4_900),
                "status": "succeeded",
                "purpose": "plan",
                "stripeCreated": 1,
                "updatedAt": NOW,
            },
        ),
        _all,
        None,
        {"status": "refunded"},
    ),
    "auditLog/{entryId}[entry]": Scenario(
        _put(
            "auditLog/a-{n}",
            {
                "action": "user.role_changed",
                "actorUid": ADMIN,
                "target": f"users/{OWNER}",
                "change": {"before": {"role": "buyer"}, "after": {"role": "agent"}},
                "reason": None,
                "requestId": "request-1",
                "at": NOW,
            },
        ),
        _all,
        lambda uid, n: (
            f"auditLog/forged-{n}",
            {
                "action": "user.role_changed",
                "actorUid": uid,
                "target": f"users/{uid}",
                "change": {"before": {"role": "buyer"}, "after": {"role": "admin"}},
                "reason": None,
                "requestId": "forged",
                "at": NOW,
            },
        ),
        {"change": {"before": {}, "after": {}}},
    ),
    "_metrics/{windowId}[window]": Scenario(
        _put(
            "_metrics/5m-2026110112{n}",
            {
                "window": "5m",
                "start": NOW,
                "expiresAt": NOW + dt.timedelta(days=2),
                "bounds": [10, 100, 1000, None],
                "functions": {"find_user": {"count": 1, "ok": 1, "outcomes": {"OK": 1}}},
            },
        ),
        _all,
        lambda uid, n: (f"_metrics/5m-forged-{n}", {"window": "5m", "start": NOW}),
        {"functions": {}},
    ),
    "_eventLedger/{entryId}[ledger entry]": Scenario(
        _put("_eventLedger/e-{n}", {"state": "DONE"}), _all, None, {"state": "PENDING"}
    ),
}
