"""Every cap of ``marketplace.limits`` at its limit (allowed) and one over (denied), through
the real ``firestore.rules`` on the emulator, acting as the user over REST.

A usage document is arranged just below a cap as an admin (what the rules count is the
usage document, so 499 favourites need not exist for the 500th to be the last allowed);
then the user's own batch writes the last allowed document and the first refused one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from security.scenarios import (
    DEVICE,
    availability,
    conversation,
    listing_draft,
    saved_search,
    stored,
)

from marketplace import limits
from marketplace.limits import Held, Rate
from pytest_firebase.rest import SERVER_TIMESTAMP, FirestoreRest, RestResult

from .client import CappedClient, message_key

AsUser = Callable[..., FirestoreRest]
AGENT = "cap-agent"


def _tag() -> str:
    return uuid.uuid4().hex[:10]


def _usage(uid: str) -> str:
    return limits.USAGE.format(uid=uid)


def _public_listing(
    admin: FirestoreRest, listing_id: str, status: str = "active", owner: str = AGENT
) -> None:
    admin.set(f"listings/{listing_id}", stored({**listing_draft(owner), "status": status}))


def _held_document(held: Held, uid: str, admin: FirestoreRest) -> tuple[str, dict[str, Any]]:
    """A new valid document of ``held`` for ``uid`` (its listing arranged, for a favourite
    or for viewing hours: the hours' scope is a listing of the user, an agent)."""
    doc_id = f"h-{_tag()}"
    if held is limits.SAVED_SEARCHES:
        return f"savedSearches/{doc_id}", saved_search(uid)
    if held is limits.DEVICES:
        return f"users/{uid}/devices/{doc_id}", {**DEVICE, "ownerId": uid, "token": doc_id}
    if held is limits.AVAILABILITY:
        _public_listing(admin, doc_id, owner=uid)
        return f"users/{uid}/availability/{doc_id}", availability()
    assert held is limits.FAVORITES, f"no document arranged for {held.key}"
    _public_listing(admin, doc_id)
    return f"users/{uid}/favorites/{doc_id}", {"listingId": doc_id, "createdAt": SERVER_TIMESTAMP}


@pytest.fixture
def user(as_user: AsUser) -> CappedClient:
    uid = f"u-{_tag()}"
    # A verified email: opening a conversation needs one.
    return CappedClient(as_user(uid, {"role": "agent"}, email=f"{uid}@example.com"), uid)


# ---- held: saved searches, devices, favourites, viewing hours ------------------------


def _one_below_the_cap(held: Held, user: CappedClient, admin: FirestoreRest) -> None:
    already = [f"old-{i}" for i in range(held.cap - 1)]  # no documents need exist for these
    admin.set(_usage(user.uid), {held.key: {"ids": already}}).expect_ok()


@pytest.mark.parametrize("held", limits.HELD, ids=lambda h: h.key)
def test_a_user_holds_up_to_the_cap_and_not_one_more(
    held: Held, user: CappedClient, admin_rest: FirestoreRest
) -> None:
    _one_below_the_cap(held, user, admin_rest)

    last = _held_document(held, user.uid, admin_rest)
    assert user.create_held(held, *last).ok, "the cap-th document is allowed"
    over = _held_document(held, user.uid, admin_rest)
    result = user.create_held(held, *over)

    assert result.denied, f"one over the cap of {held.cap} must be refused"
    assert admin_rest.get(over[0]).status == 404
    assert len((admin_rest.get(_usage(user.uid)).data or {})[held.key]["ids"]) == held.cap


@pytest.mark.parametrize("held", limits.HELD, ids=lambda h: h.key)
def test_deleting_a_held_document_frees_its_slot(
    held: Held, user: CappedClient, admin_rest: FirestoreRest
) -> None:
    _one_below_the_cap(held, user, admin_rest)
    first = _held_document(held, user.uid, admin_rest)
    user.create_held(held, *first).expect_ok()

    user.delete_held(held, first[0]).expect_ok()

    assert user.create_held(held, *_held_document(held, user.uid, admin_rest)).ok


@pytest.mark.parametrize("held", limits.HELD, ids=lambda h: h.key)
def test_an_id_is_released_only_once_its_document_is_gone(
    held: Held, user: CappedClient, admin_rest: FirestoreRest
) -> None:
    path, data = _held_document(held, user.uid, admin_rest)
    user.create_held(held, path, data).expect_ok()
    doc_id = path.rsplit("/", 1)[1]

    assert user.rest.commit([user.release(held, doc_id)]).denied, "still there: no release"
    admin_rest.delete(path).expect_ok()  # a function deleted it (say, a dead push token)
    assert user.rest.commit([user.release(held, doc_id)]).ok, "gone: the client prunes it"


@pytest.mark.parametrize("held", limits.HELD, ids=lambda h: h.key)
def test_a_held_document_needs_its_id_listed_in_the_same_batch(
    held: Held, user: CappedClient, admin_rest: FirestoreRest
) -> None:
    path, data = _held_document(held, user.uid, admin_rest)
    assert user.rest.create(path, data).denied, "no usage written"
    other_path, other = _held_document(held, user.uid, admin_rest)
    two_for_one = [
        user.create_write(path, data),
        user.create_write(other_path, other),
        user.hold(held, path.rsplit("/", 1)[1]),
    ]
    assert user.rest.commit(two_for_one).denied, "one listed id, two documents"


def test_releasing_two_ids_at_once_or_unnamed_is_refused(
    user: CappedClient, admin_rest: FirestoreRest
) -> None:
    held = limits.SAVED_SEARCHES
    admin_rest.set(_usage(user.uid), {held.key: {"ids": ["gone-1", "gone-2"]}}).expect_ok()

    both = user.usage_write(held.key, {"ids": [], "released": "gone-1"}, {})
    unnamed = user.usage_write(held.key, {"ids": ["gone-2"]}, {})
    assert user.rest.commit([both]).denied
    assert user.rest.commit([unnamed]).denied
    assert user.rest.commit([user.release(held, "gone-1")]).ok


# ---- favourites: only of a listing that exists and is public --------------------------


@pytest.mark.parametrize(
    ("status", "allowed"),
    [("active", True), ("under_offer", True), ("let", True), ("draft", False), (None, False)],
)
def test_a_favourite_is_only_of_an_existing_public_listing(
    status: str | None, allowed: bool, user: CappedClient, admin_rest: FirestoreRest
) -> None:
    listing_id = f"l-{_tag()}"
    if status is not None:
        _public_listing(admin_rest, listing_id, status)
    path = f"users/{user.uid}/favorites/{listing_id}"
    data = {"listingId": listing_id, "createdAt": SERVER_TIMESTAMP}

    result = user.create_held(limits.FAVORITES, path, data)

    assert result.ok is allowed, result.error_message


@pytest.mark.parametrize(("length", "allowed"), [(128, True), (129, False)])
def test_a_favourites_listing_id_keeps_its_128_character_bound(
    length: int, allowed: bool, user: CappedClient, admin_rest: FirestoreRest
) -> None:
    # Firestore stores ids of up to 1500 bytes; the model's DocRef stops at 128.
    listing_id = f"l-{_tag()}".ljust(length, "x")
    _public_listing(admin_rest, listing_id)
    path = f"users/{user.uid}/favorites/{listing_id}"
    data = {"listingId": listing_id, "createdAt": SERVER_TIMESTAMP}

    assert user.create_held(limits.FAVORITES, path, data).ok is allowed


# ---- rates: listings, conversations and reports per day, messages per minute ---------


def _window(count: int, opened_ago: dt.timedelta) -> dict[str, Any]:
    start = dt.datetime.now(dt.UTC) - opened_ago
    return {"start": start, "count": count, "at": start, "last": "earlier"}


def _listing(user: CappedClient, admin: FirestoreRest) -> tuple[str, dict[str, Any], str]:
    listing_id = f"l-{_tag()}"
    return f"listings/{listing_id}", listing_draft(user.uid), listing_id


def _conversation(user: CappedClient, admin: FirestoreRest) -> tuple[str, dict[str, Any], str]:
    listing_id = f"cl-{_tag()}"
    _public_listing(admin, listing_id)
    conversation_id = f"{listing_id}__{user.uid}"
    return (
        f"conversations/{conversation_id}",
        conversation(listing_id, user.uid, AGENT),
        (conversation_id),
    )


def _message(user: CappedClient, admin: FirestoreRest) -> tuple[str, dict[str, Any], str]:
    conversation_id = f"cl-{user.uid}__{user.uid}"  # one conversation per user, arranged once
    if admin.get(f"conversations/{conversation_id}").status == 404:
        data = stored(conversation(f"cl-{user.uid}", user.uid, AGENT))
        admin.set(f"conversations/{conversation_id}", data).expect_ok()
    message_id = f"m-{_tag()}"
    data = {"senderId": user.uid, "text": "Still available?", "createdAt": SERVER_TIMESTAMP}
    path = f"conversations/{conversation_id}/messages/{message_id}"
    return path, data, message_key(conversation_id, message_id)


def _report(user: CappedClient, admin: FirestoreRest) -> tuple[str, dict[str, Any], str]:
    path, _, _ = _message(user, admin)  # the user's arranged conversation, and no message
    report_id = f"r-{_tag()}"
    data = {
        "reporterId": user.uid,
        "conversationId": path.split("/")[1],
        "reason": "spam",
        "createdAt": SERVER_TIMESTAMP,
    }
    return f"reports/{report_id}", data, report_id


CREATIONS = {
    "listings": _listing,
    "conversations": _conversation,
    "messages": _message,
    "reports": _report,
}


@pytest.mark.parametrize("rate", limits.RATES, ids=lambda r: r.key)
def test_a_user_creates_up_to_the_cap_per_window_and_not_one_more(
    rate: Rate, user: CappedClient, admin_rest: FirestoreRest
) -> None:
    make = CREATIONS[rate.key]
    admin_rest.set(_usage(user.uid), {rate.key: _window(rate.cap - 1, rate.window / 2)})

    path, data, key = make(user, admin_rest)
    assert user.create_counted(rate, path, data, key).ok, "the cap-th in the window"
    over_path, over, over_key = make(user, admin_rest)
    result = user.create_counted(rate, over_path, over, over_key)

    assert result.denied, f"one over {rate.cap} per {rate.window} must be refused"
    assert admin_rest.get(over_path).status == 404


@pytest.mark.parametrize("rate", limits.RATES, ids=lambda r: r.key)
def test_a_new_window_opens_once_the_last_has_passed_and_not_before(
    rate: Rate, user: CappedClient, admin_rest: FirestoreRest
) -> None:
    make = CREATIONS[rate.key]
    admin_rest.set(_usage(user.uid), {rate.key: _window(rate.cap, rate.window / 2)})
    path, data, key = make(user, admin_rest)
    reopen = [user.create_write(path, data), user.count(rate, key, new_window=True)]
    assert user.rest.commit(reopen).denied, "a full window cannot be restarted early"

    admin_rest.set(_usage(user.uid), {rate.key: _window(rate.cap, rate.window * 1.01)})
    carry_on = [user.create_write(path, data), user.count(rate, key, new_window=False)]
    assert user.rest.commit(carry_on).denied, "a passed window is not counted on"
    assert user.create_counted(rate, path, data, key).ok


@pytest.mark.parametrize("rate", limits.RATES, ids=lambda r: r.key)
def test_a_creation_must_be_the_one_its_own_batch_counted(
    rate: Rate, user: CappedClient, admin_rest: FirestoreRest
) -> None:
    make = CREATIONS[rate.key]
    path, data, key = make(user, admin_rest)
    assert user.rest.create(path, data).denied, "not counted at all"

    user.rest.commit([user.count(rate, key, new_window=True)]).expect_ok()
    assert user.rest.create(path, data).denied, "counted by an earlier batch"

    other_path, other, _ = make(user, admin_rest)
    two_for_one = [
        user.create_write(path, data),
        user.create_write(other_path, other),
        user.count(rate, key, new_window=False),
    ]
    assert user.rest.commit(two_for_one).denied, "one count, two documents"


def test_counts_only_go_up_by_one_and_usage_is_nobody_elses(
    user: CappedClient, as_user: AsUser, admin_rest: FirestoreRest
) -> None:
    rate = limits.MESSAGES
    admin_rest.set(_usage(user.uid), {rate.key: _window(rate.cap, rate.window / 2)})
    stamp = {"setToServerValue": "REQUEST_TIME"}
    lower = user.usage_write(rate.key, {"count": 1, "last": "x"}, {"at": stamp})

    assert user.rest.commit([lower]).denied
    assert user.rest.delete(_usage(user.uid)).denied
    stranger = CappedClient(as_user(f"s-{_tag()}"), user.uid)  # writing user's usage
    assert stranger.rest.commit([stranger.count(rate, "x", new_window=True)]).denied
    assert stranger.rest.get(_usage(user.uid)).denied


@pytest.mark.parametrize("held", [limits.DEVICES], ids=lambda h: h.key)
def test_racing_batches_get_exactly_the_last_slot(
    held: Held, user: CappedClient, as_user: AsUser, admin_rest: FirestoreRest
) -> None:
    # The rules are checked within the commit: of batches racing for the last slot, each
    # is checked against the usage the others left, so exactly one wins.
    _one_below_the_cap(held, user, admin_rest)
    writes = [_held_document(held, user.uid, admin_rest) for _ in range(12)]
    phones = [CappedClient(as_user(user.uid, {"role": "agent"}), user.uid) for _ in writes]

    def register(phone: CappedClient, write: tuple[str, dict[str, Any]]) -> RestResult:
        return phone.create_held(held, *write)

    with ThreadPoolExecutor(len(writes)) as pool:
        results = list(pool.map(register, phones, writes))

    assert sum(r.ok for r in results) == 1, [r.status for r in results]
    usage = admin_rest.get(_usage(user.uid)).data or {}
    assert len(usage[held.key]["ids"]) == held.cap
