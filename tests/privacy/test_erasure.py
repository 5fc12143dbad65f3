"""Erasing an account against the real emulators, localstripe and the storage stand-in:
the map holds every model's personal fields; after the cascade a scan of the whole
database, every Storage object and localstripe finds nothing of the user but what the
map says is kept; a crash at any step resumes without doing anything twice; the other
users keep their conversations, deals and counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import stripe
from firebase_admin import auth
from google.cloud import firestore

from firekit import ownership
from firekit.ownership import Cascade, Delete, Page, Step, StepContext
from marketplace import erasure, favorites
from marketplace.ownership import MAP, MODELS
from marketplace.payments import stripe_api
from tests.privacy import world as w

ALLOWED: dict[str, set[str]] = {
    # What the map keeps (each entry says why), and which of the user's things stay there.
    "conversations/{conversationId}/messages/{messageId}": {"message"},
    "conversations/{conversationId}": {"message"},
    "users/{uid}/notifications/{notificationId}": {"message"},  # the other side's preview
    "reports/{reportId}": {"report note"},
    "_eventLedger/{record}": {"uid"},
    "_tombstones/{uid}": {"uid"},
    "_fanoutChunks/{chunk}": {"uid", "push token"},
    "_pushOutbox/{id}": {"uid", "name", "message", "push token", "notification"},
}


def test_the_map_names_every_personal_field_of_every_model() -> None:
    assert MAP.uncovered(MODELS) == []


def test_a_new_personal_field_fails_the_map_check() -> None:
    from firekit.docmodel import Document
    from marketplace.models.common import Uid

    class Favorite2(Document):
        path = "users/{uid}/favorites/{listingId}"
        sharedWith: Uid  # noqa: N815 (a Firestore field name)
        ownerEmail: str  # noqa: N815

    assert MAP.uncovered([Favorite2]) == [
        "Favorite2.sharedWith (uid) at users/{uid}/favorites/{listingId}",
        "Favorite2.ownerEmail (name?) at users/{uid}/favorites/{listingId}",
    ]


def test_every_step_the_map_names_is_a_step_of_the_cascade() -> None:
    cascade = [step.name for step in erasure.CASCADE.steps]
    assert set(MAP.steps()) <= set(cascade)
    assert cascade[-1] == "report" and cascade[-2] == "auth"  # the Auth user goes last


def erase(db: firestore.Client, uid: str, cascade: Cascade = erasure.CASCADE) -> str:
    erasure_id = erasure.begin(db, uid, requested_by="self", now=dt.datetime.now(dt.UTC))
    assert cascade.run(db, erasure_id).outcome == "done"
    return erasure_id


@pytest.fixture
def leaver(
    firebase_stack: Any, firestore_db: firestore.Client, stripe_client: stripe.StripeClient
) -> w.World:
    world = w.build(firestore_db, stripe_client, dt.datetime.now(dt.UTC))
    firebase_stack.settle_triggers(quiet=1.0, timeout=60)
    return world


def test_after_erasure_nothing_of_the_user_is_left_but_what_the_map_keeps(
    firebase_stack: Any, firestore_db: firestore.Client, leaver: w.World
) -> None:
    erasure_id = erase(firestore_db, leaver.uid)
    firebase_stack.settle_triggers(quiet=1.0, timeout=60)

    needles = leaver.needles()
    found = sorted(w.firestore_hits(firestore_db, needles))
    unexpected = [
        (path, what)
        for path, what in found
        if what not in ALLOWED.get(getattr(w.entry_of(path), "path", ""), set())
    ]
    assert unexpected == []
    assert list(w.storage_hits(needles)) == []
    assert list(w.stripe_hits(stripe_api.api_base(), needles)) == []
    with pytest.raises(auth.UserNotFoundError):
        auth.get_user(leaver.uid)
    assert erasure.leftovers(firestore_db, leaver.uid) == {}

    report = firestore_db.document(f"_erasures/{erasure_id}").get().to_dict() or {}
    assert report["state"] == "done" and "uid" not in report
    assert {k for k, v in report["steps"].items() if v["done"]} == {
        s.name for s in erasure.CASCADE.steps
    }
    assert {k["what"] for k in report["kept"]} >= {"reports/{reportId}", "_eventLedger/{record}"}
    counted = {step: state["counts"] for step, state in report["steps"].items()}
    assert counted["conversations"]["conversations"] == 2
    assert counted["favorites"]["favorites"] == 1
    assert counted["stripe"]["stripeCustomers"] == 1


NOT_EXPORTED = {"report note": "reports name their reporter: moderation records stay out"}


def test_the_export_holds_every_canary_of_what_the_map_exports(
    firestore_db: firestore.Client, leaver: w.World
) -> None:
    import io
    import zipfile

    from firekit import storage
    from marketplace import export

    now = dt.datetime.now(dt.UTC)
    made = export.build(firestore_db, leaver.uid, export.start(firestore_db, leaver.uid, now), now)
    assert made is not None
    with storage.open_read(storage.default_bucket_name(), made.objectName) as archive:
        data = archive.read()
    with zipfile.ZipFile(io.BytesIO(data)) as unzipped:
        text = " ".join(
            unzipped.read(name).decode("utf-8", "replace") for name in unzipped.namelist()
        )
    missing = {what for needle, what in leaver.needles().items() if needle not in text} - set(
        NOT_EXPORTED
    )
    assert missing == set()
    # The other users' words and addresses are not the leaver's to take.
    assert f"{leaver.agent}@example.test" not in text and f"{leaver.buyer}@example.test" not in text


def test_the_other_users_keep_their_conversations_deals_and_counts(
    firebase_stack: Any, firestore_db: firestore.Client, leaver: w.World
) -> None:
    db = firestore_db
    erasure_id = erase(db, leaver.uid)
    firebase_stack.settle_triggers(quiet=1.0, timeout=60)
    alias = (db.document(f"_erasures/{erasure_id}").get().to_dict() or {})["pseudonym"]

    # The agent's conversation with the former buyer: re-keyed, every message kept.
    kept = db.document(f"conversations/{leaver.agents_listing}__{alias}")
    messages = {m.id: m.to_dict() for m in kept.collection("messages").stream()}
    assert sorted(messages) == ["m0", "m1", "m2"]
    assert [messages[m]["senderId"] for m in ("m0", "m1", "m2")] == [alias, leaver.agent, alias]
    conversation = kept.get().to_dict() or {}
    assert conversation["participantIds"] == [alias, leaver.agent]
    assert alias in conversation["blockedBy"]  # nobody posts to a former user
    assert not db.document(f"conversations/{leaver.buyer_conversation}").get().exists
    # The buyer's conversation with the former agent: in place.
    mine = db.document(f"conversations/{leaver.agent_conversation}").get().to_dict() or {}
    assert mine["agentId"] == alias and mine["buyerId"] == leaver.buyer
    # Their inbox entries now come from a former user, and their badges are as they were.
    for other, conversation_id in (
        (leaver.agent, kept.id),
        (leaver.buyer, leaver.agent_conversation),
    ):
        entries = [
            e.to_dict() or {}
            for e in db.collection(f"users/{other}/notifications").stream()
            if (e.to_dict() or {}).get("kind") == "message"
        ]
        assert entries and all(e["title"] == "New message from a former user" for e in entries)
        assert all(e["data"]["conversationId"] == conversation_id for e in entries)
        badge = db.document(f"users/{other}/counters/unread").get().to_dict() or {}
        assert badge.get("messages") == 1

    # The favourite left the agent's listing's count; the buyer's offer on the former
    # agent's listing lapsed with the listing, and the former buyer's offer was withdrawn.
    assert favorites.exact_count(db, leaver.agents_listing) == 0
    statuses = {
        (o.get("buyerId"), o.get("agentId")): o["status"]
        for o in (s.to_dict() or {} for s in db.collection("offers").stream())
    }
    assert statuses == {(alias, leaver.agent): "withdrawn", (leaver.buyer, alias): "lapsed"}
    viewings = [v.to_dict() or {} for v in db.collection("viewings").stream()]
    assert sorted(v["status"] for v in viewings) == ["cancelled", "cancelled"]
    assert not list(db.collection("viewingLocks").stream())
    assert not list(db.collection("viewingHolds").stream())


STEPS = [step.name for step in erasure.CASCADE.steps]


class BoomError(RuntimeError):
    pass


def crashing_at(names: set[str]) -> Cascade:
    """The cascade, each step in ``names`` crashing once after its first page's work (the
    page's own batch never committed), as a process dying there would."""
    left = set(names)

    def wrap(name: str, run: Callable[[StepContext], Page]) -> Callable[[StepContext], Page]:
        def crashing(ctx: StepContext) -> Page:
            page = run(ctx)
            if name in left:
                left.discard(name)
                raise BoomError(name)
            return page

        return crashing

    return Cascade(tuple(Step(s.name, wrap(s.name, s.run)) for s in erasure.CASCADE.steps))


@pytest.mark.parametrize(
    "crashes",
    [STEPS[::2], STEPS[1::2]],
    ids=["even-steps", "odd-steps"],
)
def test_a_crash_at_any_step_resumes_and_does_nothing_twice(
    firebase_stack: Any, firestore_db: firestore.Client, leaver: w.World, crashes: list[str]
) -> None:
    # Each run crashes in the next step of ``crashes`` after that step's page did its work
    # (outside effects made, the page's batch lost); the next run resumes there. Every
    # step crashes once over the two cases, and each erasure survives eight crashes.
    db = firestore_db
    erasure_id = erasure.begin(db, leaver.uid, requested_by="self", now=dt.datetime.now(dt.UTC))
    crashing = crashing_at(set(crashes))
    for step in crashes:
        with pytest.raises(BoomError, match=step):
            crashing.run(db, erasure_id)
        progress = db.document(f"_erasures/{erasure_id}").get().to_dict() or {}
        assert progress["state"] == "running"
        assert not progress["steps"][step]["done"]
    assert crashing.run(db, erasure_id).outcome == "done"
    firebase_stack.settle_triggers(quiet=1.0, timeout=60)

    assert erasure.leftovers(db, leaver.uid) == {}
    assert favorites.exact_count(db, leaver.agents_listing) == 0
    report = db.document(f"_erasures/{erasure_id}").get().to_dict() or {}
    assert report["state"] == "done"
    # The former buyer's offer withdrawn once (one revision more), the other one lapsed.
    moves = sorted(
        ((o.get("lastChange") or {}).get("move"), o.get("revision"))
        for o in (s.to_dict() or {} for s in db.collection("offers").stream())
    )
    assert moves == [("lapse", 2), ("withdraw", 2)]
    # Each counterparty told of each change once: notices have one id per revision.
    told = [
        n.id
        for other in (leaver.agent, leaver.buyer)
        for n in db.collection(f"users/{other}/notifications").stream()
    ]
    assert len(told) == len(set(told))
    alias = report["pseudonym"]
    kept = db.document(f"conversations/{leaver.agents_listing}__{alias}")
    assert len(list(kept.collection("messages").stream())) == 3
    with pytest.raises(auth.UserNotFoundError):
        auth.get_user(leaver.uid)


def test_a_second_request_is_the_same_erasure_and_running_it_twice_is_harmless(
    firestore_db: firestore.Client, leaver: w.World
) -> None:
    db = firestore_db
    now = dt.datetime.now(dt.UTC)
    first = erasure.begin(db, leaver.uid, requested_by="self", now=now)
    assert erasure.begin(db, leaver.uid, requested_by="self", now=now) == first
    assert erasure.CASCADE.run(db, first).outcome == "done"
    assert erasure.CASCADE.run(db, first).outcome == "done"
    assert ownership.is_closed(db, leaver.uid)


def test_every_map_entry_a_cascade_deletes_has_a_finder_or_a_step_that_owns_it() -> None:
    without = [
        e.path
        for e in MAP.entries
        if e.where == "firestore" and isinstance(e.erase, Delete) and e.find is None
    ]
    # Swept through their owner rather than found by uid (see their entries).
    assert without == ["_chatPush/{conversationId}__{uid}", "_searchIndex/{shard}"]


def test_the_readmes_table_is_the_map() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    start = readme.index("<!-- ownership-map")
    table = readme[readme.index("\n", start) + 1 : readme.index("<!-- /ownership-map -->")]
    assert table == MAP.markdown(), "regenerate the README's table from MAP.markdown()"
