"""``firestore.indexes.json`` holds exactly the indexes the declared queries need.

The emulator serves any query without an index, so this reasons as production Firestore
(Standard edition, native mode) does:

- Every field has automatic single-field indexes (ascending, descending, array-contains)
  scoped to its collection. They serve a query on one field (filter and order on the same
  field) and, merged, a query made only of equality filters on several fields.
- Anything else needs a composite index: the equality fields (ascending, in any order),
  the array-contains field, then the order-by fields in order and direction (range fields
  lead the order). We count array-contains with any other clause as needing one: it is
  what Firestore asks for when an order follows, and with equalities a composite is what
  keeps a hot matching query from merge-joining over a low-cardinality field.
- Automatic indexes are never collection-group scoped: a collection-group query needs a
  composite of that scope, or, if one field does, a single-field index of that scope,
  declared as a field override (which must keep the automatic collection-scope ones).

The queries then run for real against the seeded emulator database, compared with the
same filters evaluated in Python over every stored document of the collection.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from google.cloud import firestore
from pydantic import BaseModel

from firekit.push import MAX_DEVICES
from marketplace import alerts, queries
from marketplace.models import Listing
from marketplace.queries import QUERIES, Query
from pytest_firebase.auth import AuthEmulator
from seed.load import SeedSummary, load_all

INDEXES = Path(__file__).resolve().parents[1] / "firestore.indexes.json"
Field = tuple[str, str]
"""``(fieldPath, mode)`` with mode ``ASCENDING``, ``DESCENDING`` or ``CONTAINS``."""
COLLECTION_DEFAULTS = {
    ("ASCENDING", "COLLECTION"),
    ("DESCENDING", "COLLECTION"),
    ("CONTAINS", "COLLECTION"),
}


@dataclass(frozen=True)
class Composite:
    """A composite index a query needs; the prefix's order is free, the suffix's is not."""

    collection: str
    scope: str
    prefix: frozenset[Field]
    suffix: tuple[Field, ...]

    def served_by(self, index: dict[str, Any]) -> bool:
        """Does the declared ``index`` (a firestore.indexes.json entry) serve this need?"""
        fields = [_field(f) for f in index["fields"]]
        n = len(self.prefix)
        return (
            (index["collectionGroup"], index["queryScope"]) == (self.collection, self.scope)
            and len(fields) == n + len(self.suffix)
            and frozenset(fields[:n]) == self.prefix
            and tuple(fields[n:]) == self.suffix
        )


def _field(entry: dict[str, str]) -> Field:
    return entry["fieldPath"], entry.get("order") or entry["arrayConfig"]


def _mode(direction: str) -> str:
    return "DESCENDING" if direction == "desc" else "ASCENDING"


def composite_needed(query: Query) -> Composite | None:
    """The composite index ``query`` needs, or None if single-field indexes serve it."""
    prefix = {(f, "ASCENDING") for f in query.equals}
    if query.contains:
        prefix.add((query.contains, "CONTAINS"))
    suffix = tuple((o.field, _mode(o.direction)) for o in query.order)
    only_equalities = not suffix and not query.contains
    if only_equalities or len(query.fields()) == 1:
        return None
    scope = "COLLECTION_GROUP" if query.group else "COLLECTION"
    return Composite(query.collection, scope, frozenset(prefix), suffix)


def group_fields_needed(query: Query) -> set[tuple[str, str, str]]:
    """``(collection, field, mode)`` single-field indexes of collection-group scope."""
    if not query.group or composite_needed(query) is not None:
        return set()
    needed = {(query.collection, f, "ASCENDING") for f in (*query.equals, *query.ranges)}
    needed |= {(query.collection, o.field, _mode(o.direction)) for o in query.order}
    if query.contains:
        needed.add((query.collection, query.contains, "CONTAINS"))
    return needed


def _config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(INDEXES.read_text())
    return config


def _overrides() -> list[dict[str, Any]]:
    """The overrides that add indexes (not TTL policies, not exemptions)."""
    return [o for o in _config()["fieldOverrides"] if not o.get("ttl") and o["indexes"]]


def test_the_exempt_fields_are_exactly_the_declared_ones_and_no_query_uses_them() -> None:
    exempt = {
        (o["collectionGroup"], o["fieldPath"])
        for o in _config()["fieldOverrides"]
        if not o.get("ttl") and not o["indexes"]
    }
    assert exempt == set(queries.UNINDEXED)
    assert alerts.SEARCH_INDEX.collection == "_searchIndex"
    for collection, field in exempt:
        for query in QUERIES:
            if query.collection == collection:
                assert not any(f.split(".")[0] == field for f in query.fields()), query.name


# -- the derivation, on cases whose answer Firestore's documentation spells out -------


def test_the_derivation_agrees_with_firestores_documented_cases() -> None:
    assert composite_needed(queries.INBOX) is None  # one field: order only
    assert composite_needed(queries.OPEN_OFFERS) is None  # equalities only: merged
    assert composite_needed(queries.AGENT_LISTINGS) == Composite(
        "listings",
        "COLLECTION",
        frozenset({("ownerId", "ASCENDING")}),
        (("updatedAt", "DESCENDING"),),
    )
    assert composite_needed(queries.MY_CONVERSATIONS) == Composite(
        "conversations",
        "COLLECTION",
        frozenset({("participantIds", "CONTAINS")}),
        (("updatedAt", "DESCENDING"),),
    )
    assert composite_needed(queries.FAVOURITED_BY) is None
    assert group_fields_needed(queries.FAVOURITED_BY) == {("favorites", "listingId", "ASCENDING")}


# -- the file against the declarations --------------------------------------------------


def test_the_file_is_in_the_format_firebase_deploy_reads() -> None:
    config = _config()
    assert set(config) == {"indexes", "fieldOverrides"}
    for index in config["indexes"]:
        assert set(index) == {"collectionGroup", "queryScope", "fields"}
        assert index["queryScope"] in ("COLLECTION", "COLLECTION_GROUP")
        for field in index["fields"]:
            assert set(field) in ({"fieldPath", "order"}, {"fieldPath", "arrayConfig"})
    keys = [json.dumps(i, sort_keys=True) for i in config["indexes"]]
    assert len(keys) == len(set(keys)), "an index is declared twice"


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_every_query_has_the_index_it_needs(query: Query) -> None:
    need = composite_needed(query)
    if need is not None:
        assert any(need.served_by(i) for i in _config()["indexes"]), need
    declared = {
        (o["collectionGroup"], o["fieldPath"], i.get("order") or i["arrayConfig"])
        for o in _overrides()
        for i in o["indexes"]
        if i["queryScope"] == "COLLECTION_GROUP"
    }
    assert group_fields_needed(query) <= declared


def test_every_declared_index_is_needed_by_some_query() -> None:
    needs = [n for n in map(composite_needed, QUERIES) if n is not None]
    dead = [i for i in _config()["indexes"] if not any(n.served_by(i) for n in needs)]
    assert dead == []
    group_needs = set().union(*map(group_fields_needed, QUERIES))
    for override in _overrides():
        modes = {(i.get("order") or i["arrayConfig"], i["queryScope"]) for i in override["indexes"]}
        # An override replaces the automatic indexes: it must keep them or break queries.
        assert modes >= COLLECTION_DEFAULTS, override
        for mode, _ in modes - COLLECTION_DEFAULTS:
            assert (override["collectionGroup"], override["fieldPath"], mode) in group_needs


def test_the_cores_ttl_policies_are_kept() -> None:
    ttl = {
        (o["collectionGroup"], o["fieldPath"]) for o in _config()["fieldOverrides"] if o.get("ttl")
    }
    assert ttl == {
        ("_eventLedger", "expiresAt"),
        ("_rateLimits", "expiresAt"),
        ("_fanoutChunks", "expiresAt"),
        ("_webhookEvents", "expiresAt"),
        ("_paymentLocks", "expiresAt"),
        ("_tombstones", "expiresAt"),
        ("_erasures", "expiresAt"),
        ("_metrics", "expiresAt"),  # the functions' metrics windows (2 and 8 days)
    }


# -- the declarations against the models ----------------------------------------------


def _model_class(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((c for c in map(_model_class, get_args(annotation)) if c), None)


def _field_type(model: type[BaseModel], dotted: str) -> Any:
    annotation: Any = model
    for part in dotted.split("."):
        owner = _model_class(annotation)
        assert owner is not None and part in owner.model_fields, f"{model.__name__}.{dotted}"
        annotation = owner.model_fields[part].annotation
    return annotation


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) is list or any(map(_is_list, get_args(annotation)))


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_every_query_field_exists_on_its_model(query: Query) -> None:
    for field in query.fields():
        annotation = _field_type(query.model, field)
        assert _is_list(annotation) == (field == query.contains), field


def test_the_push_token_sync_runs_the_declared_devices_query(
    firestore_db: firestore.Client,
) -> None:
    # firekit builds it itself (the core knows no declarations): it must be this one.
    declared = queries.USER_DEVICES.build(firestore_db, path={"uid": "u1"}, limit=MAX_DEVICES)
    run = alerts.DEVICES.devices_of(firestore_db, "u1")
    assert run._parent._path == declared._parent._path
    assert run._to_protobuf() == declared._to_protobuf()


def test_names_are_unique_and_building_refuses_undeclared_filters() -> None:
    assert len({q.name for q in QUERIES}) == len(QUERIES)
    with pytest.raises(ValueError, match="declared filters"):
        queries.AGENT_LISTINGS.build(None, equals={"ownerId": "u", "status": "active"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lead the order"):
        Query("bad", Listing, "nobody", ranges=("price.amount",))


@pytest.mark.parametrize("limit", [None, 0, 51])
def test_a_paged_query_refuses_a_page_the_rules_would(limit: int | None) -> None:
    # The rules allow listing conversations in pages of at most 50 (request.query.limit).
    with pytest.raises(ValueError, match="pages of 1 to 50"):
        queries.MY_CONVERSATIONS.build(None, contains="u1", limit=limit)  # type: ignore[arg-type]


# -- the queries, run on the seed ---------------------------------------------------------

Anchors = dict[str, Any]
DERIVED_ONLY = {
    "digest_items_due",
    "digest_items_of_day",
    "calendar_feed_of",
    "audit_log",
    "audit_by_actor",
    "audit_by_action",
    "audit_of_target",
}
"""Queries the seed leaves empty: the seed's inbox documents are in no email digest, a
calendar token is made on a user's first ``calendar_link`` call, and the audit log holds
what admins did (the seed does nothing as an admin; tests/admin runs these queries on
the entries admin calls write)."""


def _anchors(summary: SeedSummary) -> Anchors:
    """Ids in the seed worth querying for: ones the queries should find documents for."""
    docs = summary.documents
    chat = next(
        d for d in docs if d.collection == "conversations" and d.data["buyerId"] == "seed-buyer"
    )
    offer = next(d for d in docs if d.collection == "offers" and d.data["status"] == "open")
    unread = next(d for d in docs if d.collection == "notifications" and not d.data["read"])
    favourites = Counter(d.data["listingId"] for d in docs if d.collection == "favorites")
    listing = next(d for d in docs if d.collection == "listings")
    place = next(d for d in docs if d.collection == "viewingHolds")
    return {
        "waiting": place.data["requesterId"],
        "postcode": listing.data["address"]["postcode"],
        "conversation": chat.path.split("/")[1],
        "offer": offer.data,
        "unread_uid": unread.path.split("/")[1],
        "favourite": favourites.most_common(1)[0][0],
    }


def _values(a: Anchors, now: Any) -> dict[str, dict[str, Any]]:
    """The values each query runs with: what a client or function would pass."""
    browse = {"status": "active", "address.city": "London", "kind": "sale"}
    price = {"price.amount": [(">=", 300_000_00), ("<=", 900_000_00)]}
    london = {"geohash": [(">=", "gcpv"), ("<", "gcpw")]}  # one cell range of central London
    upcoming = {"slotStart": [(">=", now)]}
    return {
        "browse_by_price": {"equals": browse, "ranges": price},
        "browse_by_price_desc": {"equals": browse, "ranges": price},
        "browse_by_bedrooms": {"equals": browse, "ranges": {"bedrooms": [(">=", 3)]}},
        "browse_newest": {"equals": browse},
        "featured": {"equals": {"status": "active"}, "ranges": {"featuredUntil": [(">", now)]}},
        "near": {"equals": {"status": "active"}, "ranges": london},
        "agent_listings": {"equals": {"ownerId": "seed-agent"}},
        "agent_listings_by_status": {"equals": {"ownerId": "seed-agent", "status": "active"}},
        "moderation_queue": {"equals": {"status": "pending_review"}},
        "open_reports": {"equals": {"status": "open"}},
        "audit_log": {"limit": 50},
        "audit_by_actor": {"equals": {"actorUid": "seed-admin"}, "limit": 50},
        "audit_by_action": {"equals": {"action": "listing.approved"}, "limit": 50},
        "audit_of_target": {"equals": {"target": "users/seed-buyer"}, "limit": 50},
        "duplicate_address": {"equals": {"address.postcode": a["postcode"]}},
        "favourite_shards_changed": {"ranges": {"updatedAt": [(">=", now)]}},
        "digest_items_due": {"ranges": {"emailDay": [("<", "2999-01-01")]}},
        "digest_items_of_day": {
            "path": {"uid": "seed-buyer"},
            "equals": {"emailDay": "2026-11-24"},
        },
        "inbox": {"path": {"uid": "seed-agent"}},
        "inbox_unread": {"path": {"uid": a["unread_uid"]}, "equals": {"read": False}},
        "favourites": {"path": {"uid": "seed-buyer"}},
        "favourited_by": {"equals": {"listingId": a["favourite"]}},
        "my_saved_searches": {"equals": {"ownerId": "seed-buyer"}},
        "user_devices": {"path": {"uid": "seed-buyer"}},
        "my_conversations": {"contains": "seed-agent", "limit": 50},
        "chat_email_due": {"ranges": {"emailAfter": [("<=", now)]}, "limit": 200},
        "messages": {"path": {"conversationId": a["conversation"]}},
        "buyer_offers": {"equals": {"buyerId": "seed-buyer"}},
        "agent_offers": {"equals": {"agentId": "seed-agent"}},
        "listing_offers": {"equals": {k: a["offer"][k] for k in ("agentId", "listingId")}},
        "open_offers": {"equals": {"listingId": a["offer"]["listingId"], "status": "open"}},
        # The offer clock's query, three weeks on: every open offer is due by then.
        "offers_to_lapse": {
            "equals": {"status": "open"},
            "ranges": {"expiresAt": [("<=", now + dt.timedelta(days=21))]},
        },
        # The offer clock's deposit queries, a week and a day on: the renter's held deposit.
        "holds_ending": {
            "equals": {"deposit.state": "held"},
            "ranges": {"deposit.captureBefore": [("<=", now + dt.timedelta(days=8))]},
        },
        "holds_to_check": {
            "equals": {"deposit.state": "held", "deposit.captureBeforeChecked": True}
        },
        "deposits_asked": {
            "equals": {"deposit.asked": "authorise", "deposit.state": ["held"]},
            "ranges": {"deposit.askedAt": [("<=", now + dt.timedelta(days=1))]},
        },
        "buyer_viewings": {"equals": {"requesterId": "seed-buyer"}, "ranges": upcoming},
        "agent_viewings": {"equals": {"agentId": "seed-agent"}, "ranges": upcoming},
        # The viewing clock's queries, two days and two weeks on: what it would find then.
        "viewings_to_lapse": {
            "equals": {"status": "requested"},
            "ranges": {"expiresAt": [("<=", now + dt.timedelta(days=2))]},
        },
        "viewings_to_complete": {
            "equals": {"status": "confirmed"},
            "ranges": {"slotEnd": [("<=", now + dt.timedelta(days=15))]},
        },
        "viewings_to_remind": {
            "equals": {"status": "confirmed"},
            "ranges": {"nextReminderAt": [("<=", now + dt.timedelta(days=15))]},
        },
        "calendar_feed_of": {"equals": {"uid": "seed-buyer"}},
        "places_held": {"equals": {"requesterId": a["waiting"]}},
        "plan_subscriptions": {
            "path": {"uid": "seed-agent"},
            "equals": {"status": ["active", "trialing"]},
        },
    }


MISSING = object()
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _get(data: dict[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def _matches(query: Query, data: dict[str, Any], values: dict[str, Any]) -> bool:
    """``query`` with ``values``, evaluated in Python, as Firestore defines it."""
    for f, v in values.get("equals", {}).items():
        if (_get(data, f) not in v) if f in query.members else (_get(data, f) != v):
            return False
    if query.contains:
        array = _get(data, query.contains)
        wanted = values["contains"] if query.contains_any else [values["contains"]]
        if not isinstance(array, list) or not any(w in array for w in wanted):
            return False
    for field, bounds in values.get("ranges", {}).items():
        value = _get(data, field)
        if value is MISSING or not all(COMPARE[op](value, bound) for op, bound in bounds):
            return False
    return all(_get(data, o.field) is not MISSING for o in query.order)  # no field, no entry


def _in_order(query: Query, rows: list[dict[str, Any]]) -> bool:
    for before, after in pairwise(rows):
        for order in query.order:
            a, b = _get(before, order.field), _get(after, order.field)
            if a != b:
                if (a > b) if order.direction == "asc" else (a < b):
                    return False
                break
    return True


def test_every_query_runs_on_the_seed_and_finds_what_it_should(
    auth_emulator: AuthEmulator, firestore_db: firestore.Client
) -> None:
    summary = load_all()
    values = _values(_anchors(summary), summary.now)
    assert set(values) == {q.name for q in QUERIES}
    problems = []
    for query in QUERIES:
        given = values[query.name]
        parent = None if query.group else query.parent.format(**given.get("path", {}))
        stored = {
            s.reference.path: s.to_dict()
            for s in firestore_db.collection_group(query.collection).stream()
            if parent is None or s.reference.path.rsplit("/", 1)[0] == parent
        }
        expected = {p for p, data in stored.items() if _matches(query, data, given)}
        found = list(query.build(firestore_db, **given).stream())
        paths = [s.reference.path for s in found]
        if set(paths) != expected or len(paths) != len(expected):
            problems.append(f"{query.name}: found {len(paths)}, expected {len(expected)}")
        elif not _in_order(query, [s.to_dict() or {} for s in found]):
            problems.append(f"{query.name}: not in the declared order")
        elif (not expected) != (query.name in DERIVED_ONLY):
            problems.append(f"{query.name}: {len(expected)} results on the seed")
    assert problems == []
