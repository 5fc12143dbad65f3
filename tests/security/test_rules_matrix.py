"""Every cell of rules/matrix.py against the real firestore.rules on the emulator."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable

import matrix  # rules/matrix.py: the expected matrix
import pytest
from limits.client import CappedClient

from pytest_firebase.rest import FirestoreRest, RestResult
from security.scenarios import CLAIMS, OWNER, SCENARIOS, UIDS, Scenario

CELLS = [
    pytest.param(row, principal, op, id=f"{row.key}-{principal}-{op}")
    for row, principal, op in itertools.product(matrix.MATRIX, matrix.PRINCIPALS, matrix.OPERATIONS)
]


def test_every_row_has_a_scenario_and_every_scenario_a_row() -> None:
    assert {row.key for row in matrix.MATRIX} == set(SCENARIOS)


def client_for(
    principal: str,
    scenario: Scenario,
    as_user: Callable[..., FirestoreRest],
    anonymous: FirestoreRest,
) -> FirestoreRest:
    uid = UIDS[principal]
    if uid is None:
        return anonymous
    claims = scenario.owner_claims if principal == "owner" else CLAIMS[principal]
    return as_user(uid, claims, email=f"{uid}@example.com")  # verified: may open a chat


def perform(
    op: str, client: FirestoreRest, scenario: Scenario, path: str, suffix: str, uid: str | None
) -> RestResult:
    if op == "get":
        return client.get(path)
    if op == "list":
        collection, filters = scenario.list_query(path, uid)
        return client.query(collection, filters, limit=10)
    if op == "create":
        if scenario.create is None:  # functions create these: try a plausible document
            return client.create(f"{path.rsplit('/', 1)[0]}/new-{suffix}", {"owner": OWNER})
        new_path, document = scenario.create(uid, suffix)
        if scenario.cap is None or uid is None:
            return client.create(new_path, document)
        return CappedClient(client, uid).create_capped(scenario.cap, new_path, document)
    if op == "update":
        edit = scenario.update(uid) if callable(scenario.update) else scenario.update
        return client.update(path, edit)
    return client.delete(path)


@pytest.mark.parametrize(("row", "principal", "op"), CELLS)
def test_rules_matrix_cell(
    row: matrix.Row,
    principal: str,
    op: str,
    admin_rest: FirestoreRest,
    as_user: Callable[..., FirestoreRest],
    anonymous: FirestoreRest,
) -> None:
    scenario = SCENARIOS[row.key]
    suffix = uuid.uuid4().hex[:8]  # no reset between cells: unique documents instead
    path = scenario.arrange(admin_rest, suffix)
    client = client_for(principal, scenario, as_user, anonymous)

    result = perform(op, client, scenario, path, suffix, UIDS[principal])

    expected = op in row.allowed(principal)
    if expected:
        assert result.ok, f"{principal} should {op} {path}: {result.status} {result.error_message}"
    else:
        assert result.denied, f"{principal} must not {op} {path}: got {result.status} {result.body}"


def test_rules_stay_within_their_budgets() -> None:
    text = matrix.RULES.read_text()
    costs = matrix.rule_lookups(text)

    assert len(text.encode()) < matrix.RULES_SIZE_LIMIT / 4  # "well under" the limit
    assert max(n for ops in costs.values() for n in ops.values()) <= matrix.RULE_LOOKUP_BUDGET
    for what, path, op, most in matrix.HOT_PATHS:
        assert costs[path][op] <= most, what


def test_the_lookup_counter_follows_function_calls() -> None:
    rules = """
    service cloud.firestore { match /databases/{database}/documents {
      function a() { return b() && exists(/databases/$(database)/documents/x/y); }
      function b() { return get(/databases/$(database)/documents/x/z).data.ok; }
      match /things/{id} { allow get: if a(); allow list: if true; }
    } }"""
    assert matrix.rule_lookups(rules) == {"things/{id}": {"get": 2, "list": 0}}
