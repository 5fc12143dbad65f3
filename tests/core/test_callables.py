"""callable_function, called in-process through the SDK's real on_call path."""

from __future__ import annotations

import json
import re
import threading
import warnings
from typing import Any

import flask
import main
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from pydantic import BaseModel, ConfigDict, Field

from firekit import bootstrap, ratelimit
from firekit.callables import (
    MAX_BODY_BYTES,
    MAX_BODY_DEPTH,
    CallContext,
    Contract,
    MaybeSignedIn,
    UndeclaredRefusal,
    _rate_key,
    callable_function,
)
from firekit.errors import Conflict, FailedPrecondition, NotFound, Refusal, ResourceExhausted
from firekit.ratelimit import COLLECTION as RATE_LIMITS
from firekit.ratelimit import RateLimit
from pytest_firebase.callables import AnonymousCredential, call, call_raw
from pytest_firebase.tokens import encode_unsigned, id_token_claims, mint_id_token

from .conftest import LogReader

SECRET_TEXT = "db-password=hunter2 at 10.0.0.7"


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=20)
    quantity: int = Field(ge=1, le=100)
    tags: list[str] = []


class ItemResult(BaseModel):
    id: str
    owner: str | None


@callable_function(Item, roles={"admin", "editor"})
def create_item(call_: CallContext, data: Item) -> ItemResult:
    """Writes one document, so tests can prove that refused calls write nothing."""
    ref = bootstrap.db().collection("items").document(f"{call_.uid}-{data.name}")
    ref.set(data.model_dump())
    return ItemResult(id=ref.id, owner=call_.uid)


@callable_function(Item, allow_anonymous=True)
def echo_item(call_: MaybeSignedIn, data: Item) -> dict[str, Any]:
    return {"uid": call_.uid, "function": call_.function, "quantity": data.quantity}


@callable_function(Item)
def explode(call_: CallContext, data: Item) -> None:
    raise RuntimeError(SECRET_TEXT)


ITEM_EXISTS = Refusal(Conflict, "item_exists", "Item already exists.")
OUT_OF_STOCK = Refusal(FailedPrecondition, "out_of_stock", "No more of these.")


@callable_function(Item, refusals=(ITEM_EXISTS,))
def conflicting(call_: CallContext, data: Item) -> None:
    raise ITEM_EXISTS(name=data.name)


@callable_function(Item, refusals=(ITEM_EXISTS,))
def refuses_undeclared(call_: CallContext, data: Item) -> None:
    """Declares one refusal and gives another: the contract is out of date."""
    raise OUT_OF_STOCK()


@callable_function(Item, refusals=(ITEM_EXISTS,))
def refuses_without_reason(call_: CallContext, data: Item) -> None:
    """A bare AppError: a code a client cannot tell apart from any other NOT_FOUND."""
    raise NotFound("No such item.")


@callable_function(Item, rate_limit=RateLimit(max_calls=3, per_seconds=86_400))
def limited(call_: CallContext, data: Item) -> dict[str, str]:
    return {"ok": data.name}


@callable_function(Item, require_app_check=True)
def needs_app_check(call_: CallContext, data: Item) -> str:
    return "ok"


@callable_function(
    Item, allow_anonymous=True, rate_limit=RateLimit(max_calls=1, per_seconds=86_400)
)
def anonymous_limited(call_: MaybeSignedIn, data: Item) -> str:
    return "ok"


@callable_function(Item, roles={"owner"}, role_claim="roles", name="custom_name")
def claims_as_list(call_: CallContext, data: Item) -> str:
    return str(call_.claim("roles"))


GOOD = {"name": "chair", "quantity": 2}


def documents(db: firestore.Client, collection: str) -> list[dict[str, Any]]:
    return [snap.to_dict() or {} for snap in db.collection(collection).stream()]


def test_success_dumps_model_and_sees_caller(firestore_db: firestore.Client, unique: Any) -> None:
    uid = unique("admin")
    result = call(create_item, GOOD, uid=uid, claims={"role": "admin"})
    assert result.status == 200
    assert result.data == {"id": f"{uid}-chair", "owner": uid}
    assert documents(firestore_db, "items") == [{"name": "chair", "quantity": 2, "tags": []}]


def test_missing_auth_is_unauthenticated(firestore_db: firestore.Client) -> None:
    result = call(create_item, GOOD)
    assert (result.status, result.error_status) == (401, "UNAUTHENTICATED")
    assert result.error_details == {"reason": "signed_out"}
    assert documents(firestore_db, "items") == []


def test_invalid_token_is_refused_by_the_sdk_before_our_code_and_still_logged(
    read_logs: LogReader,
) -> None:
    wrong_audience = encode_unsigned({**id_token_claims("u1"), "aud": "another-project"})
    result = call(create_item, GOOD, token=wrong_audience)
    assert result.error_status == "UNAUTHENTICATED"
    # The SDK answered before our handler ran: the line reads the outcome from its answer.
    [line] = read_logs("callable")
    assert (line["outcome"], line["uid"], line["status"]) == ("UNAUTHENTICATED", None, 401)
    assert line["severity"] == "WARNING" and "reason" not in line


def test_wrong_role_is_permission_denied(firestore_db: firestore.Client, unique: Any) -> None:
    for claims in ({}, {"role": "buyer"}, {"role": ["buyer"]}):
        result = call(create_item, GOOD, uid=unique("buyer"), claims=claims)
        assert (result.status, result.error_status) == (403, "PERMISSION_DENIED")
        assert result.error_details == {"reason": "role"}
    assert documents(firestore_db, "items") == []


def test_role_claim_name_and_list_roles_are_configurable(unique: Any) -> None:
    result = call(claims_as_list, GOOD, uid=unique("u"), claims={"roles": ["viewer", "owner"]})
    assert result.data == "['viewer', 'owner']"
    assert claims_as_list.__name__ == "custom_name"


def test_anonymous_allowed_when_declared() -> None:
    result = call(echo_item, GOOD)
    assert result.data == {"uid": None, "function": "echo_item", "quantity": 2}


def test_malformed_input_names_every_bad_field_and_writes_nothing(
    firestore_db: firestore.Client, unique: Any
) -> None:
    bad = {"name": "", "quantity": "lots", "tags": ["ok", 7], "color": "red"}
    result = call(create_item, bad, uid=unique("admin"), claims={"role": "admin"})
    assert (result.status, result.error_status) == (400, "INVALID_ARGUMENT")
    issues = {d["field"]: d["issue"] for d in result.error_details}
    assert issues == {
        "name": "string_too_short",
        "quantity": "int_parsing",
        "tags.1": "string_type",
        "color": "extra_forbidden",
    }
    assert all(set(d) == {"field", "issue", "message"} for d in result.error_details)
    # Not even a rate-limit counter or any other document: validation comes first.
    assert list(firestore_db.collections()) == []


def test_missing_fields_are_reported(unique: Any) -> None:
    result = call(create_item, {}, uid=unique("admin"), claims={"role": "admin"})
    assert {d["field"]: d["issue"] for d in result.error_details} == {
        "name": "missing",
        "quantity": "missing",
    }


def test_non_object_data_is_invalid_argument(firestore_db: firestore.Client, unique: Any) -> None:
    for data in (None, [1, 2], "chair", 3):
        result = call(create_item, data, uid=unique("admin"), claims={"role": "admin"})
        assert result.error_status == "INVALID_ARGUMENT"
        assert result.error_details == [
            {"field": "__root__", "issue": "object_type", "message": "Expected an object."}
        ]
    assert list(firestore_db.collections()) == []


DEEP = b'{"data": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
MALFORMED_BODIES = {
    "body_json": [
        b"",
        b"not json",
        b'{"data": {"name": "chair"',
        b'{"data": NaN}',
        b'{"data": 1e400}',
    ],
    "body_encoding": [b'{"data": "\xff\xfe"}', b'{"data": {"name": "\\ud800"}}'],
    "body_shape": [b'"chair"', b"3", b"[]", b"null", b'{"nodata": 1}', b'{"data": 1, "x": 2}'],
    "body_too_deep": [DEEP, b'{"data": ' + b"[" * MAX_BODY_DEPTH + b"]" * MAX_BODY_DEPTH + b"}"],
    "body_too_large": [b'{"data": "' + b"x" * MAX_BODY_BYTES + b'"}'],
    "body_number": [b'{"data": {"quantity": 99999999999999999999}}'],
}


@pytest.mark.parametrize(
    ("issue", "body"),
    [(issue, body) for issue, bodies in MALFORMED_BODIES.items() for body in bodies],
    ids=lambda value: value if isinstance(value, str) else repr(value[:24]),
)
def test_a_malformed_body_is_invalid_argument_with_one_line_and_no_write(
    firestore_db: firestore.Client, read_logs: LogReader, issue: str, body: bytes
) -> None:
    token = mint_id_token("admin-1", claims={"role": "admin"})
    result = call_raw(create_item, body, headers={"Authorization": f"Bearer {token}"})
    assert (result.status, result.error_status) == (400, "INVALID_ARGUMENT")
    assert result.error_message == "Malformed request."
    assert [d["issue"] for d in result.error_details] == [issue]
    assert [(line["outcome"], line["reason"]) for line in read_logs("callable")] == [
        ("INVALID_ARGUMENT", issue)
    ]
    assert list(firestore_db.collections()) == []


def test_the_deepest_body_allowed_reaches_validation() -> None:
    depth = MAX_BODY_DEPTH - 1  # the body object is the first level, data the second
    nested = b'{"data": ' + b"[" * depth + b"]" * depth + b"}"
    result = call_raw(echo_item, nested)
    assert result.error_details[0]["issue"] == "object_type"  # past the body check


@pytest.mark.parametrize(
    ("method", "content_type", "issue"),
    [("GET", "application/json", "method"), ("POST", "text/plain", "content_type")],
)
def test_a_wrong_method_or_type_is_refused_by_us(
    read_logs: LogReader, method: str, content_type: str, issue: str
) -> None:
    result = call_raw(echo_item, b'{"data": {}}', method=method, content_type=content_type)
    assert (result.status, result.error_details[0]["issue"]) == (400, issue)
    assert [line["reason"] for line in read_logs("callable")] == [issue]


def test_a_charset_is_still_json() -> None:
    body = json.dumps({"data": GOOD}).encode()
    result = call_raw(echo_item, body, content_type="application/json; charset=utf-8")
    assert result.data["quantity"] == 2


def test_refusals_and_preflights_answer_browsers_with_cors_headers() -> None:
    origin = {"Origin": "https://app.example"}
    refused = call_raw(echo_item, b"nope", headers=origin)
    assert refused.headers.get("Access-Control-Allow-Origin") == "https://app.example"
    preflight_headers = {**origin, "Access-Control-Request-Method": "POST"}
    preflight = call_raw(echo_item, b"", method="OPTIONS", headers=preflight_headers)
    assert preflight.status == 200  # the SDK's own CORS answer, not a refusal
    assert preflight.headers.get("Access-Control-Allow-Origin") == "https://app.example"


def test_roles_and_allow_anonymous_together_are_refused_at_declaration() -> None:
    with pytest.raises(ValueError, match="signed-in caller"):
        callable_function(Item, roles={"admin"}, allow_anonymous=True)  # type: ignore[call-overload]


def test_a_signed_in_callable_hands_its_handler_a_uid_that_is_a_str(unique: Any) -> None:
    seen: list[MaybeSignedIn] = []

    @callable_function(Item, name="who")
    def who(call_: CallContext, data: Item) -> None:
        seen.append(call_)

    @callable_function(Item, allow_anonymous=True, name="who_maybe")
    def who_maybe(call_: MaybeSignedIn, data: Item) -> None:
        seen.append(call_)

    uid = unique("u")
    call(who, GOOD, uid=uid)
    call(who_maybe, GOOD, uid=uid)
    call(who_maybe, GOOD)
    assert [(type(c), c.uid) for c in seen] == [
        (CallContext, uid),
        (CallContext, uid),  # a signed-in caller of an open callable is one all the same
        (MaybeSignedIn, None),
    ]


def test_validation_details_never_echo_submitted_values(unique: Any) -> None:
    secret = "my-credit-card-4111111111111111"
    bad = {"name": secret * 2, "quantity": secret, "tags": secret, secret: secret}
    result = call(create_item, bad, uid=unique("admin"), claims={"role": "admin"})
    assert result.error_status == "INVALID_ARGUMENT"
    assert secret not in str(result.body)
    # An unknown key that does not look like a field name is not echoed either.
    assert {d["field"] for d in result.error_details} == {"name", "quantity", "tags", "*"}


def test_a_refusal_keeps_code_message_reason_and_details(unique: Any) -> None:
    result = call(conflicting, GOOD, uid=unique("u"))
    assert (result.status, result.error_status) == (409, "ALREADY_EXISTS")
    assert result.error_message == "Item already exists."
    assert result.error_details == {"reason": "item_exists", "name": "chair"}


@pytest.mark.parametrize(
    ("function", "status", "reason"),
    [
        (refuses_undeclared, "FAILED_PRECONDITION", "out_of_stock"),
        (refuses_without_reason, "NOT_FOUND", None),
    ],
)
def test_a_refusal_the_callable_does_not_declare_is_reported_with_the_answer_unchanged(
    unique: Any, read_logs: LogReader, function: Any, status: str, reason: str | None
) -> None:
    # This suite turns warnings into errors, so outside pytest.warns the same call fails
    # its test: that is what holds every callable's refusals= complete.
    with pytest.warns(UndeclaredRefusal, match=f"answered {status} with reason {reason!r}"):
        result = call(function, GOOD, uid=unique("u"))
    assert result.error_status == status
    assert (result.error_details or {}).get("reason") == reason
    [line] = [line for line in read_logs() if line["message"] == "undeclared refusal"]
    assert (line["severity"], line["code"], line["reason"]) == ("ERROR", status, reason)


def test_where_warnings_are_errors_an_undeclared_refusal_fails_the_call(unique: Any) -> None:
    # What this suite's filterwarnings = error does to any callable test that drives a
    # callable into a refusal it forgot to declare: the test sees INTERNAL, not its code.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndeclaredRefusal)
        result = call(refuses_undeclared, GOOD, uid=unique("u"))
    assert (result.error_status, result.error_details) == ("INTERNAL", None)


def test_declared_and_reasonless_by_design_answers_are_not_reported(
    unique: Any, read_logs: LogReader
) -> None:
    uid = unique("u")
    answers = [
        call(conflicting, GOOD, uid=uid),  # declared
        call(create_item, GOOD),  # the policy's own, signed_out
        call(create_item, {}, uid=uid, claims={"role": "admin"}),  # field issues
        call(explode, GOOD, uid=uid),  # INTERNAL
    ]
    assert [a.error_status for a in answers] == [
        "ALREADY_EXISTS",
        "UNAUTHENTICATED",
        "INVALID_ARGUMENT",
        "INTERNAL",
    ]
    assert [line for line in read_logs() if line["message"] == "undeclared refusal"] == []


def deployed_contracts() -> list[Contract[Any]]:
    return [
        getattr(main, name).__contract__
        for name in main.__all__
        if hasattr(getattr(main, name), "__contract__")
    ]


def test_every_deployed_callable_keeps_its_contract() -> None:
    names = {contract.function for contract in deployed_contracts()}
    assert {"set_user_role", "approve_listing", "search_near", "start_agent_plan"} <= names
    for contract in deployed_contracts():
        assert getattr(main, contract.function).__contract__ is contract


def test_a_reason_means_one_thing_across_every_deployed_callable() -> None:
    meanings: dict[str, set[tuple[str, str]]] = {}
    for contract in deployed_contracts():
        declared = [*contract.refusals, *contract.policy_refusals]
        reasons = [refusal.reason for refusal in declared]
        assert len(reasons) == len(set(reasons)), f"{contract.function} lists one twice"
        for refusal in declared:
            meanings.setdefault(refusal.reason, set()).add((refusal.error.code.name, refusal.when))
    assert {reason: found for reason, found in meanings.items() if len(found) > 1} == {}
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", reason) for reason in meanings)


def test_unexpected_exception_is_internal_generic_and_logged(
    unique: Any, read_logs: LogReader
) -> None:
    result = call(explode, GOOD, uid=unique("u"))
    assert (result.status, result.error_status) == (500, "INTERNAL")
    assert result.error_message == "Internal error."
    assert result.error_details is None
    assert "hunter2" not in str(result.body) and "RuntimeError" not in str(result.body)
    # One line: the call's own, an ERROR carrying the traceback for Error Reporting.
    [line] = read_logs()
    assert (line["kind"], line["outcome"], line["severity"]) == ("callable", "INTERNAL", "ERROR")
    assert line["errorType"] == "RuntimeError"
    assert line["stack_trace"].startswith("Traceback (most recent call last)")
    assert SECRET_TEXT in line["stack_trace"]  # the log keeps what the client must not see


def test_exactly_one_structured_line_per_call(unique: Any, read_logs: LogReader) -> None:
    uid = unique("admin")
    call(create_item, GOOD, uid=uid, claims={"role": "admin"})
    call(create_item, {"name": 1}, uid=uid, claims={"role": "admin"})
    call(create_item, GOOD)
    lines = read_logs("callable")
    assert [(line["function"], line["uid"], line["outcome"]) for line in lines] == [
        ("create_item", uid, "ok"),
        ("create_item", uid, "INVALID_ARGUMENT"),
        ("create_item", None, "UNAUTHENTICATED"),
    ]
    assert all(isinstance(line["latency_ms"], float) for line in lines)
    assert [line["severity"] for line in lines] == ["INFO", "WARNING", "WARNING"]


def test_rate_limit_trips_with_resource_exhausted(
    firestore_db: firestore.Client, unique: Any
) -> None:
    uid = unique("u")
    statuses = [call(limited, GOOD, uid=uid).error_status for _ in range(5)]
    assert statuses == [None, None, None, "RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED"]
    refused = call(limited, GOOD, uid=uid)
    assert refused.status == 429
    assert refused.error_details["reason"] == "rate_limited"
    assert refused.error_details["retryAfterSeconds"] > 0
    # Another caller has a budget of their own.
    assert call(limited, GOOD, uid=unique("other")).ok
    counters = documents(firestore_db, RATE_LIMITS)
    # The first refusal is counted; later ones in the window are refused without a write.
    assert sorted(c["count"] for c in counters) == [1, 4]


def test_concurrent_calls_never_exceed_the_limit(
    firestore_db: firestore.Client, unique: Any
) -> None:
    uid = unique("u")
    barrier = threading.Barrier(8)
    statuses: list[str | None] = []

    def caller() -> None:
        barrier.wait()
        statuses.append(call(limited, GOOD, uid=uid).error_status)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(None) == 3
    assert statuses.count("RESOURCE_EXHAUSTED") == 5
    # Calls already in flight when the first refusal came back still wrote.
    assert 4 <= documents(firestore_db, RATE_LIMITS)[0]["count"] <= 8


def test_returns_the_real_sdk_function() -> None:
    endpoint = create_item.__firebase_endpoint__  # type: ignore[attr-defined]
    assert endpoint.entryPoint == "create_item"
    assert endpoint.callableTrigger is not None


def test_app_check_is_required_in_production_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert call(needs_app_check, GOOD, uid="u-1").data == "ok"  # emulators: not enforced
    monkeypatch.delenv("FUNCTIONS_EMULATOR", raising=False)
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    result = call(needs_app_check, GOOD, uid="u-1")
    assert (result.error_status, result.error_message, result.error_details) == (
        "UNAUTHENTICATED",
        "App Check token missing or invalid.",
        {"reason": "app_check"},
    )


def test_anonymous_callers_are_limited_per_client_address(
    firestore_db: firestore.Client, unique: Any
) -> None:
    first, second = unique("10.0.0.1"), unique("10.0.0.2")
    assert call(anonymous_limited, GOOD, headers={"X-Forwarded-For": first}).ok
    again = call(anonymous_limited, GOOD, headers={"X-Forwarded-For": first})
    assert again.error_status == "RESOURCE_EXHAUSTED"
    # The address Google's front end appends is the last entry; earlier ones are the client's.
    proxied = {"X-Forwarded-For": f"{first}, {second}"}
    assert call(anonymous_limited, GOOD, headers=proxied).ok


def test_a_forged_first_hop_does_not_buy_a_fresh_budget(
    firestore_db: firestore.Client, unique: Any
) -> None:
    real = unique("192.0.2.10")
    statuses = [
        call(
            anonymous_limited, GOOD, headers={"X-Forwarded-For": f"198.51.100.{n}, {real}"}
        ).error_status
        for n in range(3)
    ]
    assert statuses == [None, "RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED"]


def test_a_huge_forwarded_header_is_rate_limited_not_internal(
    firestore_db: firestore.Client, unique: Any
) -> None:
    huge = {"X-Forwarded-For": unique("203.0.113.") + "9" * 10_000}
    assert len(huge["X-Forwarded-For"]) > 10_000
    assert call(anonymous_limited, GOOD, headers=huge).ok
    assert call(anonymous_limited, GOOD, headers=huge).error_status == "RESOURCE_EXHAUSTED"
    [counter] = firestore_db.collection(RATE_LIMITS).get()
    assert len(counter.id) < 120  # hashed key: bounded whatever the caller sends
    assert len((counter.to_dict() or {})["key"]) == ratelimit.KEY_LABEL_CHARS


def test_without_forwarded_header_the_peer_address_is_the_key() -> None:
    app = flask.Flask(__name__)
    environ = {"REMOTE_ADDR": "192.0.2.77"}
    with app.test_request_context("/", environ_base=environ):
        anonymous = MaybeSignedIn(None, {}, flask.request, "f")
        assert _rate_key(anonymous) == "ip:192.0.2.77"
        assert _rate_key(CallContext("u-1", {}, flask.request, "f")) == "u-1"
    with app.test_request_context("/", environ_base=environ, headers={"X-Forwarded-For": " "}):
        assert _rate_key(MaybeSignedIn(None, {}, flask.request, "f")) == "ip:192.0.2.77"


def test_counter_ids_are_bounded_and_distinct() -> None:
    ids = {ratelimit.counter_id("f", key, 0) for key in ("a", "b", "a" * 10_000, "é/ü")}
    assert len(ids) == 4
    assert all(len(doc_id) == len("f__") + ratelimit.KEY_HASH_CHARS + len("__0") for doc_id in ids)


def test_refused_callers_stop_writing_until_the_window_ends(
    firestore_db: firestore.Client, unique: Any
) -> None:
    client, key, limit = bootstrap.db(), unique("k"), RateLimit(max_calls=1, per_seconds=60)
    start = 6_000_000.0  # a window boundary (a multiple of 60)
    assert ratelimit.consume(client, "scope", key, limit, now=start) == 0
    for offset in (1, 2, 59):
        with pytest.raises(ResourceExhausted) as refused:
            ratelimit.consume(client, "scope", key, limit, now=start + offset)
    assert refused.value.details == {"reason": "rate_limited", "retryAfterSeconds": 1}
    [counter] = documents(firestore_db, RATE_LIMITS)
    assert counter["count"] == 2  # the first refusal wrote; the other two did not
    # The next window is a new budget (and a new counter).
    assert ratelimit.consume(client, "scope", key, limit, now=start + 60) == 0


def test_the_refusal_memo_is_bounded(
    firestore_db: firestore.Client, unique: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "MEMO_SIZE", 2)
    client, limit = bootstrap.db(), RateLimit(max_calls=1, per_seconds=3600)
    keys = [unique(f"k{n}") for n in range(3)]
    for key in keys:
        ratelimit.consume(client, "scope", key, limit, now=0)
        with pytest.raises(ResourceExhausted):
            ratelimit.consume(client, "scope", key, limit, now=0)
    assert len(ratelimit._refused_until) == 2
    # The forgotten one is still refused: Firestore's counter stays authoritative.
    with pytest.raises(ResourceExhausted):
        ratelimit.consume(client, "scope", keys[0], limit, now=0)


def test_harness_credential_is_anonymous() -> None:
    assert isinstance(AnonymousCredential().get_credential(), AnonymousCredentials)
