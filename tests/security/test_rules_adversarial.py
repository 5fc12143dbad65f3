"""Attacks on the rules: each must be denied, on the real firestore.rules.

A write attack is a small change to a legitimate write. The test sends the attack (it
must be denied, changing nothing), then the legitimate write to the same document (it
must succeed): so every deny below is the rules catching the attack, not a test payload
that was broken anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from limits.client import CappedClient

from marketplace import limits
from pytest_firebase.rest import SERVER_TIMESTAMP, Filter, FirestoreRest
from security.scenarios import NOW, conversation, listing_draft, money, saved_search, stored
from tests.listings.factories import sample_photo

ANA = ("ana", {"role": "buyer"})  # a buyer: owns searches, favourites, a conversation
BO = ("bo", {"role": "agent"})  # the agent of every arranged listing
CY = ("cy", {"role": "buyer"})  # another buyer, outside everything arranged
DI = ("di", {"role": "agent"})  # another agent
ROOT = ("root", {"role": "admin"})
STAMP = {"updatedAt": SERVER_TIMESTAMP}


def arrange(admin: FirestoreRest, n: str) -> None:
    """Ana's and Bo's world, with ids made unique by ``n``."""
    docs: dict[str, dict[str, Any]] = {
        "users/ana": {"displayName": "Ana", "photoURL": None, "bio": "", "role": "buyer"},
        "users/ana/private/account": {
            "email": "ana@example.com",
            "phone": None,
            "notifications": None,
        },
        f"users/ana/notifications/n-{n}": {
            "kind": "system",
            "title": "Hi",
            "body": "",
            "createdAt": NOW,
            "read": False,
            "readAt": None,
        },
        f"users/ana/favorites/l-active-{n}": {"listingId": f"l-active-{n}", "createdAt": NOW},
        f"users/ana/devices/t-{n}": {
            "token": f"t-{n}",
            "ownerId": "ana",
            "platform": "ios",
            "appVersion": "1",
            "locale": None,
            "createdAt": NOW,
            "updatedAt": NOW,
        },
        f"savedSearches/s-{n}": stored(saved_search("ana")),
        f"conversations/l-active-{n}__ana": stored(conversation(f"l-active-{n}", "ana", "bo")),
        f"conversations/l-active-{n}__ana/messages/m-{n}": {
            "senderId": "ana",
            "text": "Hi",
            "createdAt": NOW,
        },
        f"viewings/v-{n}": {
            "listingId": f"l-active-{n}",
            "agentId": "bo",
            "requesterId": "ana",
            "status": "requested",
        },
        f"offers/o-{n}": {
            "listingId": f"l-active-{n}",
            "buyerId": "ana",
            "agentId": "bo",
            "amount": money(),
            "status": "submitted",
        },
        "customers/ana/subscriptions/sub-1": {"status": "active", "plan": "agent_pro"},
    }
    for status in ("draft", "pending_review", "active", "sold", "rejected"):
        docs[f"listings/l-{status}-{n}"] = stored({**listing_draft("bo"), "status": status})
    # Rejected once, then back to draft: it keeps its record.
    docs[f"listings/l-reviewed-{n}"] = stored(
        {**listing_draft("bo"), "status": "draft", "reviewedAt": NOW}
    )
    for path, data in docs.items():
        admin.set(path, data).expect_ok()


@dataclass(frozen=True)
class Write:
    """A legitimate write (``ok``) and the attack on it (``attack``)."""

    who: tuple[str, dict[str, Any]]
    op: str  # "create" or "update"
    path: str
    ok: dict[str, Any]
    attack: dict[str, Any]
    drop: tuple[str, ...] = ()
    """Fields the attack removes from the legitimate write."""

    def attacked(self) -> dict[str, Any]:
        return {k: v for k, v in {**self.ok, **self.attack}.items() if k not in self.drop}


def listing(**change: Any) -> dict[str, Any]:
    return {**listing_draft("bo"), **change}


def search(**change: Any) -> dict[str, Any]:
    return {**saved_search("ana"), **change}


def message(**change: Any) -> dict[str, Any]:
    return {"senderId": "ana", "text": "When can I view?", "createdAt": SERVER_TIMESTAMP, **change}


def new_conversation(**change: Any) -> dict[str, Any]:
    return {**conversation("l-sold-{n}", "cy", "bo"), **change}


READ_RECEIPT = {"lastReadAt.ana": SERVER_TIMESTAMP}
NEW_LISTING = "listings/new-{n}"
PROFILE_EDIT = {"displayName": "Ana B."}
EDIT_TITLE = {"title": "A better title", **STAMP}
TO_DRAFT = {"status": "draft", **STAMP}
MUTE = {"muted": True, **STAMP}

NEW_DEVICE = {
    "token": "new-{n}",
    "ownerId": "ana",
    "platform": "web",
    "appVersion": "2",
    "createdAt": SERVER_TIMESTAMP,
    "updatedAt": SERVER_TIMESTAMP,
}
"""An honest device registration of ana's."""

WRITE_ATTACKS: dict[str, Write] = {
    # -- raising one's own role, or other server-owned profile fields
    "profile: set own role to admin": Write(
        ANA, "update", "users/ana", PROFILE_EDIT, {"role": "admin"}
    ),
    "profile: set own role to agent": Write(
        ANA, "update", "users/ana", PROFILE_EDIT, {"role": "agent"}
    ),
    "profile: mark self verified": Write(
        ANA, "update", "users/ana", PROFILE_EDIT, {"verified": True}
    ),
    "profile: grant self the paid plan": Write(
        ANA, "update", "users/ana", PROFILE_EDIT, {"plan": "agent_pro"}
    ),
    "profile: write searchName": Write(
        ANA, "update", "users/ana", PROFILE_EDIT, {"searchName": "admin"}
    ),
    "profile: backdate createdAt": Write(
        ANA, "update", "users/ana", PROFILE_EDIT, {"createdAt": NOW}
    ),
    "profile: oversized displayName": Write(
        ANA, "update", "users/ana", PROFILE_EDIT, {"displayName": "x" * 81}
    ),
    "profile: oversized bio": Write(ANA, "update", "users/ana", PROFILE_EDIT, {"bio": "b" * 501}),
    "profile: non-https photo": Write(
        ANA, "update", "users/ana", PROFILE_EDIT, {"photoURL": "javascript:alert(1)"}
    ),
    "profile: unknown field": Write(ANA, "update", "users/ana", PROFILE_EDIT, {"isAdmin": True}),
    # -- private account
    "private: set own stripe customer id": Write(
        ANA,
        "update",
        "users/ana/private/account",
        {"phone": "+447700900123"},
        {"stripeCustomerId": "cus_someone_else"},
    ),
    "private: change own verified email": Write(
        ANA,
        "update",
        "users/ana/private/account",
        {"phone": "+447700900123"},
        {"email": "boss@example.com"},
    ),
    "private: malformed phone": Write(
        ANA, "update", "users/ana/private/account", {"phone": "+447700900123"}, {"phone": "call me"}
    ),
    # -- listings: server-owned fields
    "listing: create already active": Write(
        BO, "create", NEW_LISTING, listing(), {"status": "active"}
    ),
    "listing: create with a favourites count": Write(
        BO, "create", NEW_LISTING, listing(), {"favoritesCount": 9999}
    ),
    "listing: create with a geohash": Write(
        BO, "create", NEW_LISTING, listing(), {"geohash": "gcpvj0"}
    ),
    "listing: create featured": Write(BO, "create", NEW_LISTING, listing(), {"featuredUntil": NOW}),
    "listing: create with backdated createdAt": Write(
        BO, "create", NEW_LISTING, listing(), {"createdAt": NOW}
    ),
    "listing: publish own draft": Write(
        BO, "update", "listings/l-draft-{n}", EDIT_TITLE, {"status": "active"}
    ),
    "listing: approve own pending listing": Write(
        BO, "update", "listings/l-pending_review-{n}", TO_DRAFT, {"status": "active"}
    ),
    "listing: mark own draft sold": Write(
        BO, "update", "listings/l-draft-{n}", EDIT_TITLE, {"status": "sold"}
    ),
    "listing: reactivate rejected": Write(
        BO, "update", "listings/l-rejected-{n}", TO_DRAFT, {"status": "active"}
    ),
    "listing: bump favourites count": Write(
        BO, "update", "listings/l-draft-{n}", EDIT_TITLE, {"favoritesCount": 100}
    ),
    "listing: set search keys": Write(
        BO, "update", "listings/l-draft-{n}", EDIT_TITLE, {"searchKeys": ["city:leeds"]}
    ),
    "listing: clear rejection reason": Write(
        BO, "update", "listings/l-rejected-{n}", TO_DRAFT, {"rejectionReason": None}
    ),
    "listing: stale updatedAt": Write(
        BO, "update", "listings/l-draft-{n}", EDIT_TITLE, {"updatedAt": NOW}
    ),
    "listing: edit without stamping updatedAt": Write(
        BO, "update", "listings/l-draft-{n}", EDIT_TITLE, {}, drop=("updatedAt",)
    ),
    "listing: move address of an active listing": Write(
        BO,
        "update",
        "listings/l-active-{n}",
        {"price": money(300_000_00), **STAMP},
        {
            "address": {
                "line1": "1 Other St",
                "line2": None,
                "city": "York",
                "postcode": "YO1",
                "country": "GB",
            }
        },
    ),
    "listing: change kind of an active listing": Write(
        BO,
        "update",
        "listings/l-active-{n}",
        {"price": money(300_000_00), **STAMP},
        {"kind": "rent"},
    ),
    # -- forging ownership
    "listing: create in another agent's name": Write(
        BO, "create", NEW_LISTING, listing(), {"ownerId": "di"}
    ),
    "listing: hand own listing to another agent": Write(
        BO, "update", "listings/l-draft-{n}", EDIT_TITLE, {"ownerId": "di"}
    ),
    "search: create in another user's name": Write(
        ANA, "create", "savedSearches/new-{n}", search(), {"ownerId": "cy"}
    ),
    "search: hand own search to another user": Write(
        ANA, "update", "savedSearches/s-{n}", MUTE, {"ownerId": "cy"}
    ),
    "search: set its audience": Write(
        ANA, "update", "savedSearches/s-{n}", MUTE, {"audience": "sale|GBP|*"}
    ),
    "message: sent in the agent's name": Write(
        ANA,
        "create",
        "conversations/l-active-{n}__ana/messages/new-{n}",
        message(),
        {"senderId": "bo"},
    ),
    "conversation: opened in another buyer's name": Write(
        CY, "create", "conversations/l-sold-{n}__cy", new_conversation(), {"buyerId": "ana"}
    ),
    # -- type confusion
    "listing: price as a string": Write(BO, "create", NEW_LISTING, listing(), {"price": "350000"}),
    "listing: amount as a string": Write(
        BO, "create", NEW_LISTING, listing(), {"price": {"amount": "35000000", "currency": "GBP"}}
    ),
    "listing: amount as a float": Write(
        BO, "create", NEW_LISTING, listing(), {"price": {"amount": 350000.5, "currency": "GBP"}}
    ),
    "listing: unknown currency": Write(
        BO, "create", NEW_LISTING, listing(), {"price": {"amount": 1, "currency": "BTC"}}
    ),
    "listing: negative price": Write(
        BO, "create", NEW_LISTING, listing(), {"price": {"amount": -1, "currency": "GBP"}}
    ),
    "listing: bedrooms as a string": Write(BO, "create", NEW_LISTING, listing(), {"bedrooms": "3"}),
    "listing: bedrooms as a bool": Write(BO, "create", NEW_LISTING, listing(), {"bedrooms": True}),
    # Photos are function-owned: only processing records them (see request_photo_upload).
    "listing: a client writes a processed photo entry": Write(
        BO, "create", NEW_LISTING, listing(), {"photos": [sample_photo()]}
    ),
    "listing: its agent rewrites the photos of a live listing": Write(
        BO, "update", "listings/l-active-{n}", EDIT_TITLE, {"photos": [sample_photo()]}
    ),
    "listing: its agent clears the refusals shown": Write(
        BO, "update", "listings/l-draft-{n}", EDIT_TITLE, {"photoIssues": []}
    ),
    "profile: the owner sets an avatar that was never processed": Write(
        ANA, "update", "users/ana", PROFILE_EDIT, {"avatar": sample_photo()}
    ),
    "listing: a string where the feature list belongs": Write(
        BO, "create", NEW_LISTING, listing(), {"features": "garden"}
    ),
    "listing: latitude out of range": Write(
        BO, "create", NEW_LISTING, listing(), {"location": {"lat": 91.0, "lng": 0.0}}
    ),
    "listing: latitude as a string": Write(
        BO, "create", NEW_LISTING, listing(), {"location": {"lat": "53.8", "lng": -1.5}}
    ),
    "listing: unknown status": Write(BO, "create", NEW_LISTING, listing(), {"status": "hot"}),
    "search: muted as a string": Write(
        ANA, "update", "savedSearches/s-{n}", MUTE, {"muted": "true"}
    ),
    "search: a list where channels belong": Write(
        ANA, "create", "savedSearches/new-{n}", search(), {"channels": [True, True, False]}
    ),
    "search: radius beyond 50 km": Write(
        ANA,
        "create",
        "savedSearches/new-{n}",
        search(),
        {"near": {"lat": 53.8, "lng": -1.5, "radiusKm": 500.0}},
    ),
    # -- oversized strings and lists
    "listing: title over 120": Write(BO, "create", NEW_LISTING, listing(), {"title": "t" * 121}),
    "listing: description over 5000": Write(
        BO, "create", NEW_LISTING, listing(), {"description": "d" * 5001}
    ),
    "listing: 15 features": Write(
        BO, "create", NEW_LISTING, listing(), {"features": ["garden"] * 15}
    ),
    "search: name over 60": Write(
        ANA, "create", "savedSearches/new-{n}", search(), {"name": "n" * 61}
    ),
    "message: over 2000 characters": Write(
        ANA,
        "create",
        "conversations/l-active-{n}__ana/messages/new-{n}",
        message(),
        {"text": "m" * 2001},
    ),
    "message: empty": Write(
        ANA, "create", "conversations/l-active-{n}__ana/messages/new-{n}", message(), {"text": ""}
    ),
    # -- unknown extra fields
    "listing: extra field": Write(BO, "create", NEW_LISTING, listing(), {"isFeatured": True}),
    "search: extra field": Write(ANA, "create", "savedSearches/new-{n}", search(), {"priority": 1}),
    "device: extra field": Write(
        ANA,
        "create",
        "users/ana/devices/new-{n}",
        NEW_DEVICE,
        {"pushKey": "secret"},
    ),
    # The push fan-out finds devices by ownerId: a device filed under another user's id
    # would send that user's alerts to this phone.
    "device: another user's ownerId": Write(
        ANA,
        "create",
        "users/ana/devices/new-{n}",
        NEW_DEVICE,
        {"ownerId": "bo"},
    ),
    "message: extra field": Write(
        ANA,
        "create",
        "conversations/l-active-{n}__ana/messages/new-{n}",
        message(),
        {"pinned": True},
    ),
    "favorite: id not matching its listing": Write(
        ANA,
        "create",
        "users/ana/favorites/l-sold-{n}",
        {"listingId": "l-sold-{n}", "createdAt": SERVER_TIMESTAMP},
        {"listingId": "l-other"},
    ),
    # -- notifications: the owner may only mark them read
    "notification: rewrite its title": Write(
        ANA,
        "update",
        "users/ana/notifications/n-{n}",
        {"read": True, "readAt": SERVER_TIMESTAMP},
        {"title": "You won a prize"},
    ),
    # -- conversations: a participant's own read receipt and block, nothing else
    "conversation: clear one's unread count by hand": Write(
        ANA, "update", "conversations/l-active-{n}__ana", READ_RECEIPT, {"unread": {"ana": 0}}
    ),
    "conversation: forge the preview": Write(
        ANA, "update", "conversations/l-active-{n}__ana", READ_RECEIPT, {"lastMessage": None}
    ),
    "conversation: bump it to the top of the list": Write(
        ANA, "update", "conversations/l-active-{n}__ana", READ_RECEIPT, STAMP
    ),
    "conversation: mark the other side's messages read for them": Write(
        ANA,
        "update",
        "conversations/l-active-{n}__ana",
        READ_RECEIPT,
        {"lastReadAt.bo": SERVER_TIMESTAMP},
    ),
    "conversation: block on the other's behalf": Write(
        ANA,
        "update",
        "conversations/l-active-{n}__ana",
        {"blockedBy.ana": SERVER_TIMESTAMP},
        {"blockedBy.bo": SERVER_TIMESTAMP},
    ),
    # -- conversations: who may open one
    "conversation: a third party among the participants": Write(
        CY,
        "create",
        "conversations/l-sold-{n}__cy",
        new_conversation(),
        {"participantIds": ["cy", "di"]},
    ),
    "conversation: with someone who is not the listing's agent": Write(
        CY,
        "create",
        "conversations/l-sold-{n}__cy",
        new_conversation(),
        {"agentId": "di", "participantIds": ["cy", "di"]},
    ),
    "conversation: about a draft listing": Write(
        CY,
        "create",
        "conversations/l-sold-{n}__cy",
        new_conversation(),
        {"listingId": "l-draft-{n}"},
    ),
}


@dataclass(frozen=True)
class Denied:
    """An operation that must be denied outright (reads, queries, deletes, edits)."""

    who: tuple[str, dict[str, Any]] | None
    op: str  # get, query, delete, update, create
    path: str
    filters: tuple[Filter, ...] = ()
    data: dict[str, Any] | None = None


OTHERS_WORLD: dict[str, Denied] = {
    # -- reading other people's private documents
    "read another user's private account": Denied(CY, "get", "users/ana/private/account"),
    "admin reads a user's private account": Denied(ROOT, "get", "users/ana/private/account"),
    "an agent reads their listing's upload slots": Denied(
        BO, "get", "photoUploads/listing-l-draft-{n}"
    ),
    "an agent opens an upload slot themselves": Denied(
        BO, "create", "photoUploads/listing-l-draft-{n}", data={"slots": {}}
    ),
    "read another user's notification": Denied(CY, "get", "users/ana/notifications/n-{n}"),
    "list another user's notifications": Denied(CY, "query", "users/ana/notifications"),
    "read another user's favourite": Denied(CY, "get", "users/ana/favorites/l-active-{n}"),
    "list another user's favourites": Denied(BO, "query", "users/ana/favorites"),
    "list another user's devices": Denied(CY, "query", "users/ana/devices"),
    "read someone else's conversation": Denied(CY, "get", "conversations/l-active-{n}__ana"),
    "read messages of someone else's conversation": Denied(
        CY, "query", "conversations/l-active-{n}__ana/messages"
    ),
    "read another user's saved search": Denied(CY, "get", "savedSearches/s-{n}"),
    "read another agent's draft": Denied(DI, "get", "listings/l-draft-{n}"),
    "visitor reads a pending listing": Denied(None, "get", "listings/l-pending_review-{n}"),
    "read someone else's offer": Denied(CY, "get", "offers/o-{n}"),
    "read someone else's viewing": Denied(DI, "get", "viewings/v-{n}"),
    "read another user's subscription": Denied(CY, "get", "customers/ana/subscriptions/sub-1"),
    "visitor reads a profile": Denied(None, "get", "users/ana"),
    # -- list queries without the constraint the rules need
    "list every saved search": Denied(ANA, "query", "savedSearches"),
    "list saved searches of another user": Denied(
        CY, "query", "savedSearches", (("ownerId", "==", "ana"),)
    ),
    "list every listing (drafts included)": Denied(CY, "query", "listings"),
    "list another agent's listings by owner": Denied(
        DI, "query", "listings", (("ownerId", "==", "bo"),)
    ),
    "list drafts by status": Denied(DI, "query", "listings", (("status", "==", "draft"),)),
    "list every conversation": Denied(ANA, "query", "conversations"),
    "list conversations of another user": Denied(
        CY, "query", "conversations", (("participantIds", "array-contains", "ana"),)
    ),
    "list every offer": Denied(ANA, "query", "offers"),
    "list every viewing": Denied(ANA, "query", "viewings"),
    "list the audit log as an agent": Denied(BO, "query", "auditLog"),
    "list the core's event ledger as admin": Denied(ROOT, "query", "_eventLedger"),
    # -- deleting or editing other people's documents
    "delete another user's saved search": Denied(CY, "delete", "savedSearches/s-{n}"),
    "edit another user's saved search": Denied(
        CY, "update", "savedSearches/s-{n}", data={"muted": True, **STAMP}
    ),
    "delete another agent's draft": Denied(DI, "delete", "listings/l-draft-{n}"),
    "edit another agent's listing": Denied(
        DI, "update", "listings/l-draft-{n}", data={"title": "Mine now", **STAMP}
    ),
    "admin edits a listing directly": Denied(
        ROOT, "update", "listings/l-active-{n}", data={"title": "Admin title", **STAMP}
    ),
    "delete a submitted listing": Denied(BO, "delete", "listings/l-pending_review-{n}"),
    "delete another user's favourite": Denied(CY, "delete", "users/ana/favorites/l-active-{n}"),
    "delete another user's device": Denied(CY, "delete", "users/ana/devices/t-{n}"),
    "edit another user's profile": Denied(
        CY, "update", "users/ana", data={"displayName": "Hacked"}
    ),
    "delete one's own profile": Denied(ANA, "delete", "users/ana"),
    "delete a notification": Denied(ANA, "delete", "users/ana/notifications/n-{n}"),
    "edit a sent message": Denied(
        ANA,
        "update",
        "conversations/l-active-{n}__ana/messages/m-{n}",
        data={"text": "I never said that"},
    ),
    "delete a sent message": Denied(
        ANA, "delete", "conversations/l-active-{n}__ana/messages/m-{n}"
    ),
    "buyer accepts their own offer": Denied(
        ANA, "update", "offers/o-{n}", data={"status": "accepted"}
    ),
    "agent confirms a viewing directly": Denied(
        BO, "update", "viewings/v-{n}", data={"status": "confirmed"}
    ),
    "edit a conversation's unread counters": Denied(
        ANA, "update", "conversations/l-active-{n}__ana", data={"unread": {"bo": 0}}
    ),
    "edit a sold listing's price": Denied(
        BO, "update", "listings/l-sold-{n}", data={"price": money(1_00), **STAMP}
    ),
    # -- writing into conversations one is not part of
    "message into someone else's conversation": Denied(
        CY,
        "create",
        "conversations/l-active-{n}__ana/messages/x-{n}",
        data={"senderId": "cy", "text": "Hello", "createdAt": SERVER_TIMESTAMP},
    ),
    "agent messages into another agent's conversation": Denied(
        DI,
        "create",
        "conversations/l-active-{n}__ana/messages/x-{n}",
        data={"senderId": "di", "text": "Better deal here", "createdAt": SERVER_TIMESTAMP},
    ),
    "agent opens a conversation with themselves": Denied(
        BO,
        "create",
        "conversations/l-active-{n}__bo",
        data=conversation("l-active-{n}", "bo", "bo"),
    ),
    # -- favourites only of listings that exist and are public (each also a function run)
    "favourite a listing that does not exist": Denied(
        ANA,
        "create",
        "users/ana/favorites/nowhere-{n}",
        data={"listingId": "nowhere-{n}", "createdAt": SERVER_TIMESTAMP},
    ),
    "favourite someone's draft": Denied(
        ANA,
        "create",
        "users/ana/favorites/l-draft-{n}",
        data={"listingId": "l-draft-{n}", "createdAt": SERVER_TIMESTAMP},
    ),
    "delete a reviewed draft": Denied(BO, "delete", "listings/l-reviewed-{n}"),
    "write into the audit log": Denied(ROOT, "create", "auditLog/x-{n}", data={"action": "forged"}),
    "create a customer mirror": Denied(
        ANA, "create", "customers/ana/payments/pi-{n}", data={"status": "succeeded"}
    ),
}


def _fill(value: Any, n: str) -> Any:
    if isinstance(value, str):
        return value.replace("{n}", n)
    if isinstance(value, dict):
        return {k: _fill(v, n) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, n) for v in value]
    if isinstance(value, tuple):
        return tuple(_fill(v, n) for v in value)
    if isinstance(value, Denied):
        return Denied(
            value.who, value.op, _fill(value.path, n), _fill(value.filters, n), _fill(value.data, n)
        )
    return value


def _write(
    client: FirestoreRest, op: str, path: str, data: dict[str, Any], uid: str, admin: FirestoreRest
) -> Any:
    if op != "create":
        return client.update(path, data)
    cap = limits.capped(path)
    if cap is None:
        return client.create(path, data)
    # The caps are tested in tests/limits; here each create has its cap to itself.
    admin.delete(limits.USAGE.format(uid=uid)).expect_ok()
    return CappedClient(client, uid).create_capped(cap, path, data)


def test_there_are_at_least_sixty_attacks() -> None:
    assert len(WRITE_ATTACKS) + len(OTHERS_WORLD) >= 60


@pytest.mark.parametrize("name", list(WRITE_ATTACKS))
def test_write_attack_is_denied_and_the_honest_write_is_not(
    name: str, admin_rest: FirestoreRest, as_user: Callable[..., FirestoreRest]
) -> None:
    n = uuid.uuid4().hex[:8]
    arrange(admin_rest, n)
    case = WRITE_ATTACKS[name]
    client = as_user(*case.who, email=f"{case.who[0]}@example.com")  # verified: opens chats
    path = _fill(case.path, n)
    before = admin_rest.get(path).body

    uid = case.who[0]
    attacked = _write(client, case.op, path, _fill(case.attacked(), n), uid, admin_rest)
    assert attacked.denied, f"{name}: the attack got through ({attacked.status})"
    assert admin_rest.get(path).body == before, f"{name}: a denied write changed the document"
    honest = _write(client, case.op, path, _fill(case.ok, n), uid, admin_rest)
    assert honest.ok, f"{name}: the honest write failed: {honest.error_message}"


@pytest.mark.parametrize("name", list(OTHERS_WORLD))
def test_reaching_into_other_peoples_documents_is_denied(
    name: str,
    admin_rest: FirestoreRest,
    as_user: Callable[..., FirestoreRest],
    anonymous: FirestoreRest,
) -> None:
    n = uuid.uuid4().hex[:8]
    arrange(admin_rest, n)
    case = _fill(OTHERS_WORLD[name], n)
    client = as_user(*case.who, email=f"{case.who[0]}@example.com") if case.who else anonymous
    path = case.path

    if case.op == "get":
        result = client.get(path)
    elif case.op == "query":
        result = client.query(path, list(case.filters), limit=20)
    elif case.op == "delete":
        result = client.delete(path)
    else:
        uid = case.who[0] if case.who else "nobody"
        result = _write(client, case.op, path, case.data or {}, uid, admin_rest)

    assert result.denied, f"{name}: allowed ({result.status})"
