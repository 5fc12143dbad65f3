"""Every cell of rules/matrix.py against the real firestore.rules on the emulator, and
every cell a signed-in principal may do again with its account closed (and with the
others' closed)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator

import matrix  # rules/matrix.py: the expected matrix
import pytest
from limits.client import CappedClient

from marketplace import limits
from pytest_firebase.rest import FirestoreRest, RestResult
from security.scenarios import CLAIMS, OWNER, SCENARIOS, TOMBSTONES, UIDS, Scenario, tombstone

CELLS = [
    pytest.param(row, principal, op, id=f"{row.key}-{principal}-{op}")
    for row, principal, op in itertools.product(matrix.MATRIX, matrix.PRINCIPALS, matrix.OPERATIONS)
]
CLOSED_CELLS = [
    pytest.param(row, principal, op, id=f"{row.key}-{principal}-{op}")
    for row, principal, op in matrix.closed_cells()
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


ClosedCell = Callable[[matrix.Row, str, str, Iterable[str]], tuple[str, RestResult]]


@pytest.fixture
def closed_cell(
    admin_rest: FirestoreRest, as_user: Callable[..., FirestoreRest], anonymous: FirestoreRest
) -> Iterator[ClosedCell]:
    """``closed_cell(row, principal, op, closed)``: the cell's operation, with the accounts
    of the ``closed`` principals closed (phase one's tombstone, lifted after the test: the
    cells share their principals' uids, and nothing resets the database between them).
    The stored document and the request path, and the result."""
    tombstones: list[str] = []

    def run(
        row: matrix.Row, principal: str, op: str, closed: Iterable[str]
    ) -> tuple[str, RestResult]:
        scenario = SCENARIOS[row.key]
        suffix = uuid.uuid4().hex[:8]
        path = scenario.arrange(admin_rest, suffix)
        uid = UIDS[principal]
        if op == "create" and scenario.cap is not None:
            # The usage afresh: the batch is then one a live account would send (a closed
            # one cannot read its usage to learn whether its window is still open).
            admin_rest.delete(limits.USAGE.format(uid=uid)).expect_ok()
        for name in closed:
            tombstones.append(f"{TOMBSTONES}/{UIDS[name]}")
            admin_rest.set(tombstones[-1], tombstone()).expect_ok()
        client = client_for(principal, scenario, as_user, anonymous)
        return path, perform(op, client, scenario, path, suffix, uid)

    yield run
    for path in tombstones:
        admin_rest.delete(path).expect_ok()


@pytest.mark.parametrize(("row", "principal", "op"), CLOSED_CELLS)
def test_a_closed_account_keeps_only_what_a_stranger_may_read(
    row: matrix.Row, principal: str, op: str, closed_cell: ClosedCell
) -> None:
    # Its ID token is still valid (up to an hour after phase one): the tombstone alone
    # takes every write and every private read away, down to the public ones.
    path, result = closed_cell(row, principal, op, [principal])

    if op in row.allowed_closed(principal):
        assert result.ok, f"closed {principal} may still {op} {path}: {result.error_message}"
    else:
        assert result.denied, f"closed {principal} must not {op} {path}: {result.status}"


@pytest.mark.parametrize(("row", "principal", "op"), CLOSED_CELLS)
def test_closing_the_others_accounts_changes_nothing_for_a_live_one(
    row: matrix.Row, principal: str, op: str, closed_cell: ClosedCell
) -> None:
    # The other participant of a conversation, the agent of an offer, the admins: all
    # closed, and the live principal does what it did before.
    others = [other for other in matrix.SIGNED_IN if other != principal]
    path, result = closed_cell(row, principal, op, others)

    assert result.ok, f"{principal} should {op} {path}: {result.status} {result.error_message}"


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


def test_the_lookup_counter_counts_a_function_without_parameters_once() -> None:
    # Its paths can only use the request and the match: the same documents at every call,
    # and a document looked up twice in one request counts once (live() in isUser and in
    # hasRole). A function with parameters may look up other documents at each call.
    rules = """
    service cloud.firestore { match /databases/{database}/documents {
      function live() { return !exists(/databases/$(database)/documents/t/$(request.auth.uid)); }
      function mine(id) { return live() && get(/databases/$(database)/documents/x/$(id)).data.ok; }
      match /things/{id} {
        allow get: if live() && live();
        allow list: if mine('a') && mine('b');
      }
    } }"""
    assert matrix.rule_lookups(rules) == {"things/{id}": {"get": 1, "list": 3}}
