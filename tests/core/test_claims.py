"""Custom claims: merging, and the round trip through the Auth emulator."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from firebase_admin import _auth_utils, auth  # type: ignore[import-untyped, unused-ignore]

from firekit.bootstrap import firebase_app
from firekit.claims import (
    MAX_CLAIMS_SIZE,
    RESERVED_CLAIMS,
    ClaimsChange,
    claims_size,
    merge_claims,
    replace_claims_merged,
    update_claims,
)
from firekit.errors import FailedPrecondition, InvalidArgument, NotFound
from pytest_firebase.auth import AuthEmulator


def test_merge_keeps_other_claims_and_removes_given_keys() -> None:
    current = {"role": "buyer", "plan": "pro", "beta": True}
    merged = merge_claims(current, {"role": "agent"}, remove=["beta", "absent"])
    assert merged == {"role": "agent", "plan": "pro"}
    assert current == {"role": "buyer", "plan": "pro", "beta": True}  # not mutated


def test_merge_from_nothing() -> None:
    assert merge_claims(None, {"role": "admin"}) == {"role": "admin"}
    assert merge_claims({"role": "admin"}, remove=["role"]) == {}


def test_reserved_claim_names_are_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        merge_claims({}, {"sub": "x", "firebase": {}, "role": "a"})
    assert [d["field"] for d in caught.value.details] == ["firebase", "sub"]


def test_size_limit_is_enforced_as_the_admin_sdk_measures_it() -> None:
    filler = "x" * (MAX_CLAIMS_SIZE - len(json.dumps({"role": "a", "pad": ""})))
    at_limit = merge_claims({"role": "a"}, {"pad": filler})
    assert claims_size(at_limit) == MAX_CLAIMS_SIZE
    with pytest.raises(FailedPrecondition) as caught:
        merge_claims(at_limit, {"more": 1})
    assert caught.value.details == {
        "reason": "claims_full",
        "size": MAX_CLAIMS_SIZE + len(', "more": 1'),
        "limit": 1000,
    }


def test_non_ascii_counts_as_the_escaped_json() -> None:
    assert claims_size({"n": "é"}) == len('{"n": "\\u00e9"}')
    with pytest.raises(FailedPrecondition):
        merge_claims({}, {"name": "é" * 200})  # 200 characters, 1,200 bytes of JSON


def test_reserved_names_are_the_admin_sdks() -> None:
    assert RESERVED_CLAIMS == _auth_utils.RESERVED_CLAIMS
    assert {"sub", "aud", "iss", "exp", "iat", "auth_time", "firebase"} <= RESERVED_CLAIMS


def test_replace_claims_merged_returns_before_and_after(
    auth_emulator: AuthEmulator, unique: Callable[[str], str]
) -> None:
    app, uid = firebase_app(), unique("user")
    auth.create_user(uid=uid, app=app)
    auth.set_custom_user_claims(uid, {"plan": "pro", "beta": True}, app=app)
    change = replace_claims_merged(uid, {"role": "agent"}, remove=["beta"])
    assert change == ClaimsChange(
        before={"plan": "pro", "beta": True}, after={"plan": "pro", "role": "agent"}
    )
    assert change.changed
    assert auth.get_user(uid, app=app).custom_claims == change.after
    # update_claims keeps returning the merged claims alone.
    assert update_claims(uid, {"role": "agent"}) == {"plan": "pro", "role": "agent"}
    assert not replace_claims_merged(uid).changed


def test_replace_claims_merged_of_a_stranger_is_not_found(
    auth_emulator: AuthEmulator, unique: Callable[[str], str]
) -> None:
    with pytest.raises(NotFound):
        replace_claims_merged(unique("nobody"), {"role": "agent"})
