"""explain_refusal in-process, on the marketplace's own models and the real emulator.

Each case is a write the real rules refuse (sent first, over REST, as that user: the
test proves the refusal is real and hands its message to the explanation as the client
would) and the honest write beside it, which the rules accept and the explanation allows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from google.cloud import firestore
from limits.client import CappedClient
from security.scenarios import listing_draft

from api.dev import RULES_SOURCE, explain_refusal
from firekit import explain
from firekit.docmodel import REQUEST_TIME
from marketplace import limits
from pytest_firebase.callables import call
from pytest_firebase.rest import SERVER_TIMESTAMP, FirestoreRest, RestResult, encode_value

BO = ("bo", {"role": "agent"})
DI = ("di", {"role": "agent"})
ANA = ("ana", {"role": "buyer"})
STAMPED = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
DELETE = object()
"""``deleteField()`` in a test payload."""
STAMP = {"updatedAt": SERVER_TIMESTAMP}

Principal = tuple[str, dict[str, Any]]
UserRest = Callable[..., FirestoreRest]


def stored(status: str = "draft", owner: str = "bo", **overrides: Any) -> dict[str, Any]:
    """A listing as it reads once stored."""
    data = {**listing_draft(owner), "createdAt": STAMPED, "updatedAt": STAMPED}
    return {**data, "status": status, **overrides}


# ---- writes, as a client makes them -------------------------------------------------------


def wire(value: Any) -> Any:
    """A payload as contract/explain.ts encodes it for explain_refusal."""
    if value is SERVER_TIMESTAMP:
        return {"__fieldValue__": "serverTimestamp"}
    if value is DELETE:
        return {"__fieldValue__": "delete"}
    if isinstance(value, dt.datetime):
        return {"__timestamp__": value.isoformat()}
    if isinstance(value, Mapping):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value


def rest_write(rest: FirestoreRest, uid: str, op: str, path: str, data: Any) -> RestResult:
    """The write over REST, as the client SDK sends it (a capped create with its usage)."""
    if op == "delete":
        return rest.delete(path)
    if op == "update":
        return rest.commit([update_write(rest, path, data)])
    cap = limits.capped(path)
    if op == "create" and cap is not None:
        return CappedClient(rest, uid).create_capped(cap, path, data)
    return rest.create(path, data) if op == "create" else rest.set(path, data)


def update_write(rest: FirestoreRest, path: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``updateDoc``: field paths may be dotted; deleteField() and serverTimestamp()."""
    fields: dict[str, Any] = {}
    for dotted, value in data.items():
        if value is SERVER_TIMESTAMP or value is DELETE:
            continue
        *parents, leaf = dotted.split(".")
        inner = fields
        for part in parents:
            inner = inner.setdefault(part, {})
        inner[leaf] = value
    name = f"projects/{rest.project}/databases/(default)/documents/{path}"
    stamps = [k for k, v in data.items() if v is SERVER_TIMESTAMP]
    return {
        "update": {
            "name": name,
            "fields": {k: encode_value(v, rest.project) for k, v in fields.items()},
        },
        "updateMask": {"fieldPaths": [k for k in data if k not in stamps]},
        "currentDocument": {"exists": True},
        "updateTransforms": [{"fieldPath": k, "setToServerValue": "REQUEST_TIME"} for k in stamps],
    }


# ---- the cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A refused write, the check the explanation must name, and the honest write."""

    name: str
    who: Principal
    op: str
    path: str
    refused: dict[str, Any] | None
    check: str
    at: str | None
    """The field the check names."""
    says: str
    honest: dict[str, Any] | None = None
    arrange: dict[str, dict[str, Any]] = field(default_factory=dict)


def draft_without(*names: str, **changes: Any) -> dict[str, Any]:
    return {**{k: v for k, v in listing_draft("bo").items() if k not in names}, **changes}


L = "listings/l1"
ADDRESS = listing_draft("bo")["address"]
CASES = [
    Case("unknown field", BO, "create", L, draft_without(colour="red"), "unknown_field",
         "colour", "colour is not a field of Listing", honest=draft_without()),
    Case("missing field", BO, "create", L, draft_without("title"), "missing_field", "title",
         "title is required", honest=draft_without()),
    Case("type", BO, "create", L, draft_without(bedrooms="3"), "type", "bedrooms",
         "you sent the string '3'", honest=draft_without()),
    Case("bound", BO, "create", L, draft_without(bedrooms=51), "bound", "bedrooms",
         "less than or equal to 50", honest=draft_without()),
    Case("format", BO, "create", L, draft_without(address={**ADDRESS, "country": "gb"}),
         "format", "address.country", "address.country: String should match pattern",
         honest=draft_without()),
    Case("server owned", BO, "create", L, draft_without(favoritesCount=0), "server_owned",
         "favoritesCount", "favoritesCount of a Listing is written by functions only",
         honest=draft_without()),
    Case("a plain time, not serverTimestamp()", BO, "create", L,
         draft_without(createdAt=STAMPED), "request_time_expected", "createdAt",
         "createdAt must be serverTimestamp() (you sent a timestamp)", honest=draft_without()),
    Case("serverTimestamp() left out", BO, "create", L, draft_without("updatedAt"),
         "request_time_expected", "updatedAt",
         "updatedAt must be serverTimestamp() (you left it out)", honest=draft_without()),
    Case("someone else's uid", BO, "create", L, draft_without(ownerId="di"), "not_owner",
         "ownerId", "ownerId must be your uid (you sent 'di')", honest=draft_without()),
    Case("initial status", BO, "create", L, draft_without(status="active"), "initial_status",
         "status", "A new Listing must have status draft (you sent 'active')",
         honest=draft_without()),
    Case("status move", BO, "update", L, {"status": "active", **STAMP}, "transition", "status",
         "status cannot move from draft to active: a client may move draft -> pending_review",
         honest={"status": "pending_review", **STAMP}, arrange={L: stored()}),
    Case("status move out of a functions' status", BO, "update", L, {"status": "draft", **STAMP},
         "transition", "status", "a client may not move a Listing out of active",
         honest={"title": "A brighter title", **STAMP}, arrange={L: stored("active")}),
    Case("not editable now", BO, "update", L, {"bedrooms": 4, **STAMP}, "not_editable_now",
         "bedrooms", "bedrooms cannot change while status is active: only while status is "
         "draft or rejected", honest={"price.amount": 5, **STAMP},
         arrange={L: stored("active")}),
    Case("a bound, by field path", BO, "update", L, {"price.amount": -1, **STAMP}, "bound",
         "price.amount", "greater than or equal to 0", honest={"price.amount": 5, **STAMP},
         arrange={L: stored()}),
    Case("immutable", BO, "update", L, {"ownerId": "di", **STAMP}, "immutable", "ownerId",
         "ownerId is set once, at create", honest=STAMP, arrange={L: stored()}),
    Case("serverTimestamp() on every update", BO, "update", L, {"title": "A new title here"},
         "request_time_expected", "updatedAt",
         "updatedAt must be serverTimestamp() on every update (you left it out)",
         honest={"title": "A new title here", **STAMP}, arrange={L: stored()}),
    Case("deleted", BO, "update", L, {"description": DELETE, **STAMP}, "not_deletable",
         "description", "description cannot be deleted",
         honest={"description": "", **STAMP}, arrange={L: stored()}),
    Case("a set replaces the whole document", BO, "set", L, draft_without(), "server_owned",
         "geohash", "geohash of a Listing is written by functions only: a set without merge "
         "would delete it", arrange={L: stored(geohash="gcwcz")}),
    Case("not the owner", DI, "update", L, {"title": "Mine now, surely", **STAMP}, "not_owner",
         "ownerId", "listings/l1 belongs to another user: its ownerId is not your uid",
         arrange={L: stored()}),
    Case("deleting another's", DI, "delete", L, None, "not_owner", "ownerId",
         "listings/l1 belongs to another user", arrange={L: stored()}),
    Case("no such document", BO, "update", L, STAMP, "no_such_document", None,
         "listings/l1 does not exist: an update needs an existing document"),
    Case("no model", BO, "create", "mail/m1", {"to": "x"}, "no_model_for_path", None,
         "No document model matches mail/m1"),
    Case("clients never create", ANA, "create", "users/ana", {"displayName": "Ana"},
         "clients_never_write", None, "A client never creates Profile documents"),
    Case("clients never change", ANA, "update", "customers/ana", {"email": "a@example.com"},
         "clients_never_write", None, "A client never changes Customer documents",
         arrange={"customers/ana": {"stripeCustomerId": "cus_1", "email": "ana@example.com",
                                    "createdAt": STAMPED}}),
    Case("another's path", ANA, "create", "users/bo/devices/t1",
         {"token": "t1", "ownerId": "ana", "platform": "ios", "appVersion": "1",
          "locale": None, "createdAt": SERVER_TIMESTAMP, "updatedAt": SERVER_TIMESTAMP},
         "not_owner", None, "{uid} in the path is not your uid"),
    Case("doc id", ANA, "create", "users/ana/devices/t1",
         {"token": "t2", "ownerId": "ana", "platform": "ios", "appVersion": "1",
          "locale": None, "createdAt": SERVER_TIMESTAMP, "updatedAt": SERVER_TIMESTAMP},
         "doc_id", "token", "token must be the document's own id (you sent 't2')",
         honest={"token": "t1", "ownerId": "ana", "platform": "ios", "appVersion": "1",
                 "locale": None, "createdAt": SERVER_TIMESTAMP, "updatedAt": SERVER_TIMESTAMP}),
]  # fmt: skip


def explained(who: Principal, op: str, path: str, data: Any, denial: str | None) -> Any:
    uid, claims = who
    request = {"path": path, "op": op, "data": wire(data), "denial": denial}
    return call(explain_refusal, request, uid=uid, claims=claims).data


def arrange(db: firestore.Client, docs: Mapping[str, dict[str, Any]]) -> None:
    for path, data in docs.items():
        db.document(path).set(data)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_refused_write_is_explained_and_the_honest_one_allowed(
    case: Case, firestore_db: firestore.Client, as_user: UserRest
) -> None:
    arrange(firestore_db, case.arrange)
    uid, claims = case.who
    rest = as_user(uid, claims)

    refusal = rest_write(rest, uid, case.op, case.path, case.refused)
    answer = explained(case.who, case.op, case.path, case.refused, refusal.error_message)

    assert refusal.denied, refusal.body
    assert not answer["allowed"]
    named = [c for c in answer["checks"] if (c["check"], c["field"]) == (case.check, case.at)]
    assert named, answer["checks"]
    assert case.says in named[0]["message"]
    assert answer["rule"]["line"] > 0 and answer["rule"]["text"].startswith("allow ")
    if case.honest is not None:
        honest = explained(case.who, case.op, case.path, case.honest, None)
        assert honest == {"allowed": True, "model": answer["model"], "checks": [], "rule": None}
        rest_write(rest, uid, case.op, case.path, case.honest).expect_ok()


def test_a_role_the_rule_asks_for_is_compared_with_the_callers(
    firestore_db: firestore.Client, as_user: UserRest
) -> None:
    # The twin knows shapes, not who: the role comes from the line the emulator names.
    refusal = rest_write(as_user(*ANA), "ana", "create", L, listing_draft("ana"))
    answer = explained(ANA, "create", L, listing_draft("ana"), refusal.error_message)

    assert refusal.denied
    assert [c["check"] for c in answer["checks"]] == ["role"]
    assert "needs the role agent; your token's role is 'buyer'" in answer["checks"][0]["message"]
    assert answer["rule"]["text"].startswith("allow create: if hasRole('agent')")
    assert answer["rule"]["text"].endswith("&& counted('listings', listingId);")


def test_what_the_model_allows_but_a_rule_refuses_points_at_the_rule(
    firestore_db: firestore.Client, as_user: UserRest
) -> None:
    # A listing created without counting it against the caller's cap (no usage write).
    refusal = as_user(*BO).create(L, listing_draft("bo"))
    answer = explained(BO, "create", L, listing_draft("bo"), refusal.error_message)

    assert refusal.denied
    assert [c["check"] for c in answer["checks"]] == ["rule"]
    assert "The model's checks pass, but the rules refused at L" in answer["checks"][0]["message"]
    assert "counted('listings', listingId)" in answer["checks"][0]["message"]


def test_creating_over_a_document_is_not_the_rules_but_is_explained(
    firestore_db: firestore.Client, as_user: UserRest
) -> None:
    arrange(firestore_db, {L: stored()})
    refusal = rest_write(as_user(*BO), "bo", "create", L, draft_without())
    answer = explained(BO, "create", L, draft_without(), refusal.error_message)

    assert refusal.body["error"]["status"] == "ALREADY_EXISTS"  # the rules allowed it
    assert answer["checks"] == [
        {
            "check": "already_exists",
            "field": None,
            "message": "listings/l1 already exists: create needs a new id (or use update).",
        }
    ]
    assert answer["rule"] is None


def test_hand_written_rules_are_left_to_the_emulators_line(
    firestore_db: firestore.Client, as_user: UserRest
) -> None:
    # The caps' usage document: its rules (usageOk) are not generated from its model.
    usage = limits.USAGE.format(uid="ana")
    data = {"savedSearches": {"ids": ["s1"] * 21}}
    refusal = as_user(*ANA).create(usage, data)
    answer = explained(ANA, "create", usage, data, refusal.error_message)

    assert refusal.denied
    assert [c["check"] for c in answer["checks"]] == ["rule"]
    assert answer["checks"][0]["message"].startswith(
        "Usage's rules are hand-written, but the rules refused at L"
    )
    assert "usageOk(uid, {}, request.resource.data)" in answer["checks"][0]["message"]


def test_without_the_denial_there_is_no_rule_line(firestore_db: firestore.Client) -> None:
    answer = explained(BO, "create", L, draft_without(colour="red"), None)

    assert answer["rule"] is None
    assert [c["check"] for c in answer["checks"]] == ["unknown_field"]


def test_sentinels_of_the_client_sdk_decode_to_what_they_write() -> None:
    assert explain.decode({"a": {"__fieldValue__": "serverTimestamp"}}) == {"a": REQUEST_TIME}
    assert explain.decode({"__fieldValue__": "increment", "by": 2}) == explain.Increment(2)
    assert explain.decode(
        {"__fieldValue__": "arrayUnion", "elements": [{"__geoPoint__": [1, 2]}]}
    ) == explain.ArrayUnion((explain.GeoPoint(1.0, 2.0),))
    assert explain.decode({"__timestamp__": "2026-11-01T12:00:00.000Z"}) == STAMPED
    with pytest.raises(ValueError, match="unknown field value 'vector'"):
        explain.decode({"__fieldValue__": "vector"})


def test_an_unknown_sentinel_is_an_invalid_argument(firestore_db: firestore.Client) -> None:
    request = {"path": L, "op": "create", "data": {"x": {"__fieldValue__": "vector"}}}
    result = call(explain_refusal, request, uid="bo", claims={"role": "agent"})

    assert result.error_status == "INVALID_ARGUMENT"
    assert result.error_details == [
        {"field": "data", "issue": "sentinel", "message": "unknown field value 'vector'"}
    ]


def test_increments_and_array_unions_are_applied_to_the_stored_document(
    firestore_db: firestore.Client,
) -> None:
    arrange(firestore_db, {L: stored(features=["garden"])})
    union = {"__fieldValue__": "arrayUnion", "elements": ["garden", "pool"]}
    data = {"features": union, "bedrooms": {"__fieldValue__": "increment", "by": 48}}
    request = {"path": L, "op": "update", "data": {**data, **wire(STAMP)}}

    answer = call(explain_refusal, request, uid="bo", claims={"role": "agent"}).data

    # 3 bedrooms + 48 is over the bound; the union adds pool once and stays within its own.
    assert [(c["check"], c["field"]) for c in answer["checks"]] == [("bound", "bedrooms")]


JS_SDK_DENIAL = (
    "7 PERMISSION_DENIED: \nevaluation error at L{c}:24 for 'create' @ L{c}, false for "
    "'create' @ L{any}, Unable to evaluate the expression as the maximum of 1000 expressions "
    "to evaluate has been reached. for 'update' @ L{u}, Unable to evaluate the expression as "
    "the maximum of 1000 expressions to evaluate has been reached. for 'update' @ L{any}, "
    "false for 'create' @ L{c}, false for 'create' @ L{any}"
)
"""What the JS SDK's setDoc of a new listing with an unknown field was refused with
(measured by test_explain_e2e.py; then L423, L425, L510): a set is judged as a create and
as an update. The lines are filled in from today's rules."""


def line_of(statement: str) -> int:
    rules = RULES_SOURCE.read_text().splitlines()
    return next(n for n, text in enumerate(rules, 1) if text.strip().startswith(statement))


def test_the_line_for_the_operation_is_the_one_quoted() -> None:
    create = line_of("allow create: if hasRole('agent') && listingCreateOk")
    update = line_of("allow update: if hasRole('agent') && isUser(resource.data.ownerId)")
    denial = JS_SDK_DENIAL.format(c=create, u=update, any=line_of("allow read, write: if false"))

    as_create = explain.rule_line(denial, RULES_SOURCE, "create")
    as_update = explain.rule_line(denial, RULES_SOURCE, "update")
    as_delete = explain.rule_line(denial, RULES_SOURCE, "delete")

    assert as_create is not None and as_update is not None and as_delete is not None
    assert (as_create.line, as_create.emulator) == (create, f"evaluation error at L{create}:24")
    assert as_create.text.endswith("&& counted('listings', listingId);")
    assert as_update.line == update and as_update.emulator.startswith("Unable to evaluate")
    assert as_update.text.endswith("&& listingUpdateOk(resource.data, request.resource.data);")
    assert as_delete.line == create  # none named for it: the first line named


def test_a_line_is_quoted_from_the_rules_source_or_said_missing(tmp_path: Any) -> None:
    denial = "\nfalse for 'update' @ L3, false for 'update' @ L9"
    source = tmp_path / "firestore.rules"
    source.write_text("a\nb\n  allow update: if one()\n    && two();\nc\n")

    assert explain.named_lines(denial) == [(3, "false", "update"), (9, "false", "update")]
    quoted = explain.rule_line(denial, source)
    missing = explain.rule_line(denial, tmp_path / "absent.rules")

    assert quoted is not None and quoted.text == "allow update: if one() && two();"
    assert missing is not None and missing.text == "rules source not found"
    assert explain.rule_line("Missing or insufficient permissions.", source) is None
    assert RULES_SOURCE.is_file()  # where the emulated function looks for the real ones
