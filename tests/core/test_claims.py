"""Custom claims merging: the pure part (the Auth round trip is tested end to end)."""

from __future__ import annotations

import json

import pytest

from firekit.claims import MAX_CLAIMS_SIZE, claims_size, merge_claims
from firekit.errors import FailedPrecondition, InvalidArgument


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
    assert caught.value.details == {"size": MAX_CLAIMS_SIZE + len(', "more": 1'), "limit": 1000}


def test_non_ascii_counts_as_the_escaped_json() -> None:
    assert claims_size({"n": "é"}) == len('{"n": "\\u00e9"}')
    with pytest.raises(FailedPrecondition):
        merge_claims({}, {"name": "é" * 200})  # 200 characters, 1,200 bytes of JSON
