"""An agent's viewing hours (``users/{uid}/availability/{scope}``), case by case, against the
real ``firestore.rules`` on the emulator.

Only an agent writes hours, only their own, for all their listings (scope ``all``) or for
one listing of theirs (scope: its id), in the shape the model allows, and at most
``limits.AVAILABILITY.cap`` scopes, each listed in their usage document in the same batch.
Nobody but the owner reads them: buyers see free slots through a callable.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from limits.client import CappedClient
from security.scenarios import availability, listing_draft, stored

from firekit.docmodel import REQUEST_TIME, check_create, check_update
from marketplace import limits
from marketplace.models.viewings import WEEKDAYS, Availability
from pytest_firebase.rest import SERVER_TIMESTAMP, FirestoreRest

AsUser = Callable[..., FirestoreRest]
HOURS = limits.AVAILABILITY
EARLIER = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Agents:
    """An agent with a listing, another agent with theirs, and a buyer."""

    def __init__(self, admin: FirestoreRest, as_user: AsUser) -> None:
        tag = uuid.uuid4().hex[:10]
        self.admin = admin
        self.agent, self.rival, self.buyer = f"a{tag}", f"r{tag}", f"b{tag}"
        self.listing, self.rivals_listing = f"l{tag}", f"rl{tag}"
        for listing_id, owner in ((self.listing, self.agent), (self.rivals_listing, self.rival)):
            data = stored({**listing_draft(owner), "status": "active"})
            admin.set(f"listings/{listing_id}", data).expect_ok()
        roles = {self.agent: "agent", self.rival: "agent", self.buyer: "buyer"}
        self.clients = {uid: as_user(uid, {"role": role}) for uid, role in roles.items()}

    def path(self, scope: str, uid: str | None = None) -> str:
        return f"users/{uid or self.agent}/availability/{scope}"

    def capped(self, uid: str) -> CappedClient:
        return CappedClient(self.clients[uid], uid)

    def write(self, scope: str, data: dict[str, Any] | None = None, uid: str | None = None) -> bool:
        """``uid`` (the agent) creates hours at its own path, listing the scope in its usage."""
        writer = uid or self.agent
        document = availability() if data is None else data
        result = self.capped(writer).create_held(HOURS, self.path(scope, writer), document)
        assert result.status in (200, 403), result.error_message
        return result.ok

    def update(self, scope: str, changes: dict[str, Any]) -> bool:
        result = self.clients[self.agent].update(self.path(scope), changes)
        assert result.status in (200, 403), result.error_message
        return result.ok


@pytest.fixture
def agents(admin_rest: FirestoreRest, as_user: AsUser) -> Agents:
    return Agents(admin_rest, as_user)


def test_an_agent_writes_hours_for_all_their_listings_and_for_one_of_them(agents: Agents) -> None:
    assert agents.write("all")
    assert agents.write(agents.listing)

    stored_hours = agents.admin.get(agents.path(agents.listing)).data
    assert stored_hours is not None and stored_hours["slotMinutes"] == 30


def test_an_agent_cannot_write_hours_for_another_agents_listing(agents: Agents) -> None:
    assert not agents.write(agents.rivals_listing)
    assert agents.admin.get(agents.path(agents.rivals_listing)).status == 404


def test_an_agent_cannot_write_hours_for_a_listing_that_does_not_exist(agents: Agents) -> None:
    assert not agents.write(f"no-such-{uuid.uuid4().hex[:8]}")


def test_an_agent_writes_hours_only_under_their_own_user(agents: Agents) -> None:
    # The rival's own listing, at the rival's path, written by the agent: not theirs.
    document = availability()
    path = agents.path(agents.rivals_listing, agents.rival)
    result = agents.capped(agents.agent).create_held(HOURS, path, document)
    assert result.denied
    assert agents.write(agents.rivals_listing, uid=agents.rival), "the rival may"


@pytest.mark.parametrize("claims", [{"role": "buyer"}, {}], ids=["buyer", "no-role"])
def test_a_buyer_cannot_write_hours(
    claims: dict[str, Any], agents: Agents, as_user: AsUser
) -> None:
    uid = f"b-{uuid.uuid4().hex[:10]}"
    buyer = CappedClient(as_user(uid, claims), uid)

    result = buyer.create_held(HOURS, f"users/{uid}/availability/all", availability())

    assert result.denied


def _twin(document: dict[str, Any]) -> dict[str, Any]:
    return {k: REQUEST_TIME if v is SERVER_TIMESTAMP else v for k, v in document.items()}


def twin_allows(document: dict[str, Any]) -> bool:
    """Does the model (the Python twin of the rules) allow creating ``document``?"""
    return check_create(Availability, _twin(document), uid="a-uid", doc_id="all") == []


def twin_updates(before: dict[str, Any], changes: dict[str, Any]) -> bool:
    """Does the model allow ``changes`` to the stored ``before``?"""
    return check_update(Availability, before, _twin(changes), uid="a-uid") == []


FOUR_RANGES = "00:00-06:00,08:15-12:30,13:45-17:00,18:00-24:00"
"""The most one day may hold: four ranges, touching both ends of the day."""
WHOLE_WEEK = dict.fromkeys(WEEKDAYS, FOUR_RANGES)
DATES_OFF = [f"2026-12-{day:02d}" for day in range(1, 21)]
"""As many dates off as the model allows (20)."""

BAD_SHAPES = {
    "slot-of-20-minutes": {"slotMinutes": 20},
    "slot-of-75-minutes": {"slotMinutes": 75},
    "end-at-25:00": {"weekly": {"mon": "09:00-25:00"}},
    "end-at-24:15": {"weekly": {"mon": "09:00-24:15"}},
    "start-off-the-15-minute-grid": {"weekly": {"mon": "09:10-12:00"}},
    "an-hour-of-one-digit": {"weekly": {"mon": "9:00-12:00"}},
    "day-key-mon2": {"weekly": {"mon2": "09:00-12:00"}},
    "day-key-day8": {"weekly": {"day8": "09:00-12:00"}},
    "five-ranges-in-one-day": {"weekly": {"tue": f"{FOUR_RANGES},06:00-07:00"}},
    "separator-to": {"weekly": {"wed": "09:00 to 12:00"}},
    "separator-semicolon": {"weekly": {"wed": "09:00-12:00;14:00-15:00"}},
    "space-after-comma": {"weekly": {"wed": "09:00-12:00, 14:00-15:00"}},
    "trailing-comma": {"weekly": {"wed": "09:00-12:00,"}},
    "an-empty-day": {"weekly": {"thu": ""}},
    "a-day-as-a-number": {"weekly": {"fri": 9}},
    "a-day-as-a-list": {"weekly": {"fri": ["09:00-12:00"]}},
    "weekly-as-the-old-list": {"weekly": [{"day": 1, "start": "09:00", "end": "12:00"}]},
    "weekly-null": {"weekly": None},
    "21-dates-off": {"datesOff": [*DATES_OFF, "2026-12-21"]},
    "a-date-off-not-iso": {"datesOff": ["25/12/2026"]},
    "a-date-off-not-a-string": {"datesOff": [20261225]},
    "an-unknown-key": {"listingId": "l1"},
    "no-time-zone": {"timeZone": ...},
    "a-time-zone-with-spaces": {"timeZone": "Europe/Lon don"},
    "created-before-the-request": {"createdAt": EARLIER},
    "updated-before-the-request": {"updatedAt": EARLIER},
}


@pytest.mark.parametrize("changes", BAD_SHAPES.values(), ids=BAD_SHAPES.keys())
def test_hours_of_a_bad_shape_are_refused(changes: dict[str, Any], agents: Agents) -> None:
    document = {k: v for k, v in availability(**changes).items() if v is not ...}

    assert not twin_allows(document), "the model refuses it"
    assert not agents.write("all", document)


@pytest.mark.parametrize(
    "changes",
    [
        {"weekly": {"mon": "09:00-12:00", "mon2": "09:00-12:00"}},
        {"weekly": {"sun": "10:00-13:00,14:00-15:00,15:00-16:00,16:00-17:00,17:00-18:00"}},
        {"weekly": {"sat": "10:00-25:00"}},
        {"datesOff": ["2026-13-01"]},
    ],
    ids=["unknown-day-key", "five-ranges", "end-at-25:00", "month-13"],
)
def test_an_update_to_a_bad_shape_is_refused(changes: dict[str, Any], agents: Agents) -> None:
    assert agents.write("all")
    before = agents.admin.get(agents.path("all")).data
    assert before is not None
    update = {**changes, "updatedAt": SERVER_TIMESTAMP}

    assert not twin_updates(before, update), "the model refuses it"
    assert not agents.update("all", update)


def test_the_edges_of_a_good_shape_are_allowed(agents: Agents) -> None:
    edges = availability(
        weekly={
            "mon": "00:00-24:00",
            "tue": "23:45-24:00",
            "wed": "12:00-09:00",  # an end not after its start: offers nothing, but allowed
            "sun": None,
        },
        slotMinutes=60,
        timeZone="America/Argentina/Buenos_Aires",
        datesOff=[],
    )
    assert twin_allows(edges)
    assert agents.write("all", edges), "the whole day, an hour's slots, a three-part zone"
    bare = {
        k: v
        for k, v in availability(weekly={}, slotMinutes=15).items()
        if k not in ("datesOff", "autoConfirm")
    }
    assert twin_allows(bare)
    assert agents.write(agents.listing, bare), "closed all week; datesOff and autoConfirm default"


def test_the_largest_hours_the_model_allows_fit_the_rules_expression_budget(
    agents: Agents,
) -> None:
    # Seven days of four ranges and 20 dates off: the costliest document the model allows.
    # Created with the usage document in the same batch (its checks count too), then
    # written again over smaller hours in an update of every field.
    largest = availability(
        weekly=WHOLE_WEEK,
        datesOff=DATES_OFF,
        timeZone="America/Argentina/Buenos_Aires",
        autoConfirm=True,
    )
    assert twin_allows(largest), "the model allows it"
    assert agents.write("all", largest), "create"

    assert agents.write(agents.listing)
    before = agents.admin.get(agents.path(agents.listing)).data
    assert before is not None
    changes = {k: v for k, v in largest.items() if k != "createdAt"}
    changes["slotMinutes"] = 45
    assert twin_updates(before, changes), "the model allows it"
    assert agents.update(agents.listing, changes), "update"


def test_an_update_may_change_hours_auto_confirm_and_time_zone_but_not_created_at(
    agents: Agents,
) -> None:
    assert agents.write("all")

    assert agents.update(
        "all",
        {
            "weekly": {"sat": "09:00-12:30"},
            "autoConfirm": True,
            "timeZone": "Europe/Dublin",
            "slotMinutes": 45,
            "datesOff": ["2026-12-24", "2026-12-26"],
            "updatedAt": SERVER_TIMESTAMP,
        },
    )
    assert not agents.update("all", {"createdAt": SERVER_TIMESTAMP, "updatedAt": SERVER_TIMESTAMP})
    assert not agents.update("all", {"createdAt": EARLIER, "updatedAt": SERVER_TIMESTAMP})
    assert not agents.update("all", {"autoConfirm": False}), "updatedAt is the request time"
    assert not agents.update("all", {"slotMinutes": 20, "updatedAt": SERVER_TIMESTAMP})
    assert not agents.update("all", {"listingId": "l1", "updatedAt": SERVER_TIMESTAMP})

    hours = agents.admin.get(agents.path("all")).data
    assert hours is not None
    assert (hours["autoConfirm"], hours["timeZone"], hours["slotMinutes"]) == (
        True,
        "Europe/Dublin",
        45,
    )


def test_nobody_else_updates_or_deletes_an_agents_hours(agents: Agents, as_user: AsUser) -> None:
    assert agents.write("all")
    path = agents.path("all")
    admin = as_user(f"ad-{uuid.uuid4().hex[:8]}", {"role": "admin"})

    for client in (agents.clients[agents.rival], agents.clients[agents.buyer], admin):
        assert client.update(path, {"autoConfirm": True, "updatedAt": SERVER_TIMESTAMP}).denied
        assert client.delete(path).denied
    assert agents.admin.get(path).status == 200


def test_nobody_else_reads_an_agents_hours(
    agents: Agents, as_user: AsUser, anonymous: FirestoreRest
) -> None:
    assert agents.write("all")
    path, collection = agents.path("all"), agents.path("all").rsplit("/", 1)[0]
    admin = as_user(f"ad-{uuid.uuid4().hex[:8]}", {"role": "admin"})

    owner = agents.clients[agents.agent]
    assert owner.get(path).ok
    assert owner.query(collection, [], limit=10).ok
    for client in (agents.clients[agents.rival], agents.clients[agents.buyer], admin, anonymous):
        assert client.get(path).denied
        assert client.query(collection, [], limit=10).denied


def test_hours_need_their_scope_listed_in_the_usage_in_the_same_batch(agents: Agents) -> None:
    path = agents.path("all")
    assert agents.clients[agents.agent].create(path, availability()).denied, "no usage written"
    listed_elsewhere = [
        agents.capped(agents.agent).create_write(path, availability()),
        agents.capped(agents.agent).hold(HOURS, agents.listing),
    ]
    assert agents.clients[agents.agent].commit(listed_elsewhere).denied, "another scope listed"
    assert agents.write("all")


def test_an_agent_holds_hours_for_at_most_200_scopes(agents: Agents) -> None:
    usage = limits.USAGE.format(uid=agents.agent)
    already = [f"old-{i}" for i in range(HOURS.cap - 1)]  # no documents need exist for these
    agents.admin.set(usage, {HOURS.key: {"ids": already}}).expect_ok()

    assert agents.write("all"), "the 200th is allowed"
    assert not agents.write(agents.listing), "the 201st is refused"

    assert agents.admin.get(agents.path(agents.listing)).status == 404
    assert len((agents.admin.get(usage).data or {})[HOURS.key]["ids"]) == HOURS.cap


def test_deleting_hours_frees_their_place(agents: Agents) -> None:
    usage = limits.USAGE.format(uid=agents.agent)
    already = [f"old-{i}" for i in range(HOURS.cap - 1)]
    agents.admin.set(usage, {HOURS.key: {"ids": already}}).expect_ok()
    assert agents.write("all")

    agents.capped(agents.agent).delete_held(HOURS, agents.path("all")).expect_ok()

    assert agents.write(agents.listing)
