"""An agent who leaves (demoted, or their profile deleted) takes their listings off the
market: every one archived once, whatever order and however often the events arrive.

In-process against the Firestore emulator through real CloudEvents, plus one end-to-end
test through the Functions emulator and the real role callable.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from api.listings import (
    approve_listing,
    on_agent_profile_changed,
    on_listing_updated,
    set_listing_status,
)
from marketplace import listings
from marketplace.models.listings import Listing
from pytest_firebase.auth import AuthEmulator
from pytest_firebase.callables import CallResult
from pytest_firebase.events import deliver, redelivery
from pytest_firebase.wait import wait_for
from seed.load import load_users

from .factories import Event, audit_entries, listing, stored, submit, uid

Call = Callable[..., CallResult]
ALL_STATUSES = (
    "draft",
    "pending_review",
    "active",
    "under_offer",
    "sold",
    "let",
    "archived",
    "rejected",
)
DEPARTED = {"status": "archived", "archivedReason": "agent_departed"}


def put_listings(db: Any, owner: str, statuses: Iterable[str]) -> dict[str, str]:
    """One listing of ``owner``'s per status given; returns ``{listing id: status}``."""
    made: dict[str, str] = {}
    batch = db.batch()
    for count, status in enumerate(statuses, start=1):
        listing_id = uid("home")
        kind = "rent" if status == "let" else "sale"  # only a rental is let
        price = {"amount": 1_500_00, "currency": "GBP"} if kind == "rent" else None
        data = listing(owner, status=status, kind=kind, **({"price": price} if price else {}))
        batch.set(db.document(f"listings/{listing_id}"), data)
        made[listing_id] = status
        if count % 400 == 0:  # under Firestore's 500 writes per commit
            batch.commit()
            batch = db.batch()
    batch.commit()
    return made


def rewrite(db: Any, firestore_event: Event, who: str, after: dict[str, Any] | None) -> Any:
    """Store the profile as ``after`` (None: delete it); return the event that write sends."""
    ref = db.document(f"users/{who}")
    before = ref.get().to_dict()
    if after is None:
        ref.delete()
    else:
        ref.set(after)
    return firestore_event(f"users/{who}", before=before, after=after)


def set_role(db: Any, firestore_event: Event, who: str, role: str | None) -> Any:
    """Change the stored role (None: delete the profile); return the event."""
    if role is None:
        return rewrite(db, firestore_event, who, None)
    return rewrite(db, firestore_event, who, {**profile_of(db, who), "role": role})


def profile_of(db: Any, who: str) -> dict[str, Any]:
    result: dict[str, Any] = db.document(f"users/{who}").get().to_dict()
    return result


def departure_ledger(db: Any, who: str) -> dict[str, str]:
    """``{event id: state}`` of the departure trigger's ledger records for ``who``."""
    records = (d.to_dict() for d in db.collection("_eventLedger").stream())
    return {
        r["eventId"]: r["state"]
        for r in records
        if r["function"] == "on_agent_profile_changed" and r["document"] == f"users/{who}"
    }


def archived_once(db: Any, made: dict[str, str]) -> None:
    """Every listing in ``made`` is archived; those that were not have one audit entry."""
    for listing_id, status in made.items():
        doc = stored(db, listing_id)
        assert doc["status"] == "archived"
        # An agent's own earlier archiving keeps no reason: the system did not do it.
        assert doc.get("archivedReason") == (None if status == "archived" else "agent_departed")
    swept = {f"listings/{i}": s for i, s in made.items() if s != "archived"}
    entries = audit_entries(db)
    assert sorted(e["target"] for e in entries) == sorted(swept)
    for entry in entries:
        assert entry["action"] == "listing.archived"
        assert entry["actorUid"] == listings.SYSTEM_ACTOR
        assert entry["change"] == {
            "before": {"status": swept[entry["target"]], "archivedReason": None},
            "after": {"status": "archived", "archivedReason": "agent_departed"},
        }


def snapshot(db: Any, made: Iterable[str]) -> dict[str, dict[str, Any]]:
    return {listing_id: stored(db, listing_id) for listing_id in made}


# --- the graph ------------------------------------------------------------------------


def test_the_departure_move_archives_from_anywhere_without_loosening_the_agents_moves() -> None:
    assert set(listings.DEPARTURE_MOVES) == set(ALL_STATUSES) - {"archived"}
    assert all(moves == {"archived"} for moves in listings.DEPARTURE_MOVES.values())
    # An agent still cannot archive what was never on the market.
    assert not {"draft", "pending_review", "rejected"} & set(listings.AGENT_MOVES)
    assert listings.DEPARTURE_PAGE * 2 <= 500  # a page's updates and audit entries


# --- the sweep ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["buyer", "admin"])
def test_a_demotion_archives_every_listing_of_the_agent_and_nobody_elses(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str], role: str
) -> None:
    leaving, staying = agent(verified=True), agent(verified=True)
    mine = put_listings(firestore_db, leaving, ALL_STATUSES)
    theirs = put_listings(firestore_db, staying, ALL_STATUSES)
    mine_before, theirs_before = snapshot(firestore_db, mine), snapshot(firestore_db, theirs)

    deliver(on_agent_profile_changed, set_role(firestore_db, firestore_event, leaving, role))

    archived_once(firestore_db, mine)
    for listing_id, before in mine_before.items():
        doc = stored(firestore_db, listing_id)
        Listing.model_validate(doc)
        # Nothing but the status and its reason: not even updatedAt, so the submission
        # trigger's loop guard skips the write as the system's own.
        assert {k: v for k, v in doc.items() if k not in DEPARTED} == {
            k: v for k, v in before.items() if k not in DEPARTED
        }
    assert snapshot(firestore_db, theirs) == theirs_before


def test_deleting_an_agents_profile_archives_their_listings(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str]
) -> None:
    leaving = agent()
    mine = put_listings(firestore_db, leaving, ALL_STATUSES)

    deliver(on_agent_profile_changed, set_role(firestore_db, firestore_event, leaving, None))

    archived_once(firestore_db, mine)


def test_deleting_any_profile_sweeps_what_a_lost_demotion_left_behind(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str]
) -> None:
    leaving = agent()
    mine = put_listings(firestore_db, leaving, ("active", "draft"))
    # Demoted, but that event's sweep never completed (its retries ran out).
    firestore_db.document(f"users/{leaving}").update({"role": "buyer"})

    deliver(on_agent_profile_changed, set_role(firestore_db, firestore_event, leaving, None))

    archived_once(firestore_db, mine)


def deliver_until_acknowledged(event: Any) -> None:
    """Deliver ``event``, redelivered while the trigger raises (it has ``retry=True``).

    As the platform does: a delivery that finds another one's claim live raises to be
    redelivered later, and two sweeps of one agent lock the same listings, so the emulator
    may abort one of them ("Transaction lock timeout"), which raises too.
    """

    def acknowledged() -> bool:
        try:
            deliver(on_agent_profile_changed, event)
        except Exception:
            return False
        return True

    wait_for(acknowledged, timeout=90, interval=0.5, what="an acknowledged delivery")


@pytest.mark.parametrize("concurrently", [False, True], ids=["one-by-one", "concurrently"])
def test_duplicated_and_shuffled_events_archive_and_audit_each_listing_once(
    firestore_db: firestore.Client,
    firestore_event: Event,
    agent: Callable[..., str],
    concurrently: bool,
) -> None:
    leaving = agent(verified=True)
    mine = put_listings(firestore_db, leaving, ALL_STATUSES * 3)
    # The agent's last days: a profile edit, the demotion, then the account's deletion.
    edited = rewrite(
        firestore_db, firestore_event, leaving, {**profile_of(firestore_db, leaving), "bio": "Bye"}
    )
    demoted = set_role(firestore_db, firestore_event, leaving, "buyer")
    deleted = set_role(firestore_db, firestore_event, leaving, None)
    deliveries = [copy for e in (edited, demoted, deleted) for copy in (e, redelivery(e))]
    deliveries.append(redelivery(demoted))
    random.Random(11).shuffle(deliveries)

    if concurrently:
        with ThreadPoolExecutor(max_workers=len(deliveries)) as pool:
            list(pool.map(deliver_until_acknowledged, deliveries))
    else:
        for event in deliveries:
            deliver(on_agent_profile_changed, event)

    archived_once(firestore_db, mine)
    # The edit left the role alone: skipped before the ledger, so it left no record.
    assert departure_ledger(firestore_db, leaving) == {demoted["id"]: "DONE", deleted["id"]: "DONE"}


@pytest.mark.parametrize("order", ["demotion first", "promotion first"])
def test_a_re_promotion_before_the_sweep_runs_leaves_the_listings_alone(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str], order: str
) -> None:
    returning = agent()
    mine = put_listings(firestore_db, returning, ALL_STATUSES)
    before = snapshot(firestore_db, mine)
    demoted = set_role(firestore_db, firestore_event, returning, "buyer")
    promoted = set_role(firestore_db, firestore_event, returning, "agent")

    events = [demoted, promoted] if order == "demotion first" else [promoted, demoted]
    for event in events:
        deliver(on_agent_profile_changed, event)

    assert snapshot(firestore_db, mine) == before
    assert audit_entries(firestore_db) == []


def test_a_re_promotion_after_the_sweep_restores_nothing(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str]
) -> None:
    returning = agent()
    mine = put_listings(firestore_db, returning, ALL_STATUSES)
    deliver(on_agent_profile_changed, set_role(firestore_db, firestore_event, returning, "buyer"))

    deliver(on_agent_profile_changed, set_role(firestore_db, firestore_event, returning, "agent"))

    # Decided: archived is terminal. Whether each home is still for sale is the agent's
    # to say; the audit entries keep the status each listing had.
    archived_once(firestore_db, mine)


def test_more_listings_than_a_page_are_all_archived(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str]
) -> None:
    leaving = agent(verified=True)
    many = 2 * listings.DEPARTURE_PAGE + 50
    mine = put_listings(firestore_db, leaving, ["active"] * many + ["draft"] * 3)

    deliver(on_agent_profile_changed, set_role(firestore_db, firestore_event, leaving, "buyer"))

    mine_now = firestore_db.collection("listings").where(
        filter=FieldFilter("ownerId", "==", leaving)
    )
    assert [d.get("status") for d in mine_now.stream()] == ["archived"] * (many + 3)
    assert len(audit_entries(firestore_db)) == len(mine) == many + 3


def test_an_edit_that_leaves_the_role_alone_is_skipped_before_the_ledger(
    firestore_db: firestore.Client, firestore_event: Event, agent: Callable[..., str]
) -> None:
    someone = agent()
    mine = put_listings(firestore_db, someone, ("active",))
    profile = {**profile_of(firestore_db, someone), "role": "buyer"}  # demoted long ago
    firestore_db.document(f"users/{someone}").set(profile)
    edit = rewrite(firestore_db, firestore_event, someone, {**profile, "displayName": "Al"})

    deliver(on_agent_profile_changed, edit)

    assert departure_ledger(firestore_db, someone) == {}  # no claim paid for
    assert [stored(firestore_db, i)["status"] for i in mine] == ["active"]


# --- the paths back onto the market ---------------------------------------------------


@pytest.mark.parametrize("role", ["buyer", None], ids=["demoted", "deleted"])
@pytest.mark.parametrize("first", ["submission", "departure"])
def test_a_submission_whose_agent_has_left_is_archived_not_published(
    firestore_db: firestore.Client,
    firestore_event: Event,
    agent: Callable[..., str],
    role: str | None,
    first: str,
) -> None:
    owner = agent(verified=True)  # would be published at once
    listing_id, submission = submit(firestore_db, firestore_event, listing(owner))
    departure = set_role(firestore_db, firestore_event, owner, role)

    if first == "submission":
        deliver(on_listing_updated, submission)
        deliver(on_agent_profile_changed, departure)
    else:
        deliver(on_agent_profile_changed, departure)
        deliver(on_listing_updated, submission)

    doc = stored(firestore_db, listing_id)
    assert {k: doc.get(k) for k in DEPARTED} == DEPARTED
    assert doc.get("publishedAt") is None and doc.get("searchKeys") is None
    [entry] = audit_entries(firestore_db)
    change = entry["change"]
    assert (change["before"]["status"], change["after"]["status"]) == ("pending_review", "archived")


def test_an_admin_cannot_approve_a_listing_whose_agent_has_left(
    firestore_db: firestore.Client, call_function: Call, agent: Callable[..., str]
) -> None:
    owner = agent()
    listing_id = next(iter(put_listings(firestore_db, owner, ("pending_review",))))
    firestore_db.document(f"users/{owner}").update({"role": "buyer"})

    result = call_function(
        approve_listing, {"listingId": listing_id}, uid="mod", claims={"role": "admin"}
    )

    assert (result.error_status, result.error_details) == (
        "FAILED_PRECONDITION",
        {"reason": "agent_departed"},
    )
    assert stored(firestore_db, listing_id)["status"] == "pending_review"


def test_a_demoted_agents_stale_token_cannot_move_a_listing(
    firestore_db: firestore.Client, call_function: Call, agent: Callable[..., str]
) -> None:
    owner = agent()
    listing_id = next(iter(put_listings(firestore_db, owner, ("under_offer",))))
    firestore_db.document(f"users/{owner}").update({"role": "buyer"})

    # The ID token still says agent (claims refresh within the hour); the profile does not.
    result = call_function(
        set_listing_status,
        {"listingId": listing_id, "status": "active"},
        uid=owner,
        claims={"role": "agent"},
    )

    assert (result.error_status, result.error_details) == (
        "PERMISSION_DENIED",
        {"reason": "no_longer_agent"},
    )
    assert stored(firestore_db, listing_id)["status"] == "under_offer"


# --- end to end -----------------------------------------------------------------------


@pytest.mark.e2e
def test_a_demotion_through_the_role_callable_archives_the_agents_listings(
    auth_emulator: AuthEmulator,
    firestore_db: firestore.Client,
    call_emulated: Call,
    wait_for: Callable[..., Any],
) -> None:
    load_users()
    mine = put_listings(firestore_db, "seed-agent-2", ("draft", "pending_review", "active", "let"))
    theirs = put_listings(firestore_db, "seed-agent", ("active",))
    admin = auth_emulator.sign_in("admin@homefront.test", "seed-admin-pass")

    done = call_emulated("set_user_role", {"uid": "seed-agent-2", "role": "buyer"}, admin.id_token)

    assert done.data["role"] == "buyer", done.body
    wait_for(
        lambda: all(stored(firestore_db, i)["status"] == "archived" for i in mine),
        timeout=60,
        what="the departure trigger archiving the demoted agent's listings",
    )
    for listing_id in mine:
        assert stored(firestore_db, listing_id)["archivedReason"] == "agent_departed"
    assert [stored(firestore_db, i)["status"] for i in theirs] == ["active"]
    actions = sorted(e["action"] for e in audit_entries(firestore_db))
    assert actions == ["listing.archived"] * len(mine) + ["user.role_changed"]
