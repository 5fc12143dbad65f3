"""pytest plugin: the Firebase Local Emulator Suite as fixtures.

Installing pytest-firebase registers it (entry point ``pytest11``, name ``firebase``).
Settings (ini or env; the package's README has the whole list):

- ``firebase_project_root``: folder holding ``firebase.json`` (default: pytest's rootdir)
- ``firebase_project_id``: default from ``.firebaserc``
- ``firebase_emulators``: emulators to start (default auth, firestore, functions, pubsub,
  hosting)
- ``firebase_cli`` or ``PYTEST_FIREBASE_CLI``: the ``firebase`` executable (default: the
  project's ``node_modules/.bin/firebase``, then ``firebase`` on PATH)
- ``PYTEST_FIREBASE_PORT_OFFSET``: shift every port, to run beside another suite
- ``firebase_worker_port_shift``: under pytest-xdist, worker ``gw<n>`` runs a stack of its
  own on the offset plus n times this (default 10000); see ``pytest_firebase.parallel``

Without a ``firebase.json`` the plugin stays out of the way: nothing is configured, and
only a test that asks for the emulators fails, saying why.

The suite starts once per session on first use, or is reused if one already runs on our
ports, and its whole process tree is stopped at the end. Override the session fixture
``firebase_stack_config`` in a conftest to add sidecar servers or environment.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from cloudevents.http import CloudEvent

from pytest_firebase import (
    callables,
    events,
    parallel,
    procs,
    rest,
    schedules,
    tokens,
    toolchain,
    wait,
    webhooks,
)
from pytest_firebase.auth import AuthEmulator
from pytest_firebase.stack import (
    DEFAULT_EMULATORS,
    EmulatorStack,
    StackConfig,
    StackError,
    functions_discovery,
)
from pytest_firebase.toolchain import ToolchainError

if TYPE_CHECKING:  # imported late at run time: the environment must point at the emulator
    from google.cloud import firestore

OFFSET_VAR = "PYTEST_FIREBASE_PORT_OFFSET"
DEFAULT_WORKER_PORT_SHIFT = 10000
"""Wider than the CLI's default ports span (4000-9499), so no two workers' stacks share a
port; it also keeps a worker's stack off the Functions emulator's worker ports
(8081-9081) and the ports Node's fetch refuses (this repository's
tests/harness/test_parallel.py checks its own ports)."""
_FIREBASE_PROJECT = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("firebase_project_root", "folder with firebase.json", default="")
    parser.addini("firebase_project_id", "project id (default: .firebaserc)", default="")
    parser.addini(
        "firebase_triggers_marker",
        "marker of tests that need background triggers (others run with them paused)",
        default="e2e",
    )
    parser.addini(
        "firebase_emulators", "emulators to start", type="args", default=list(DEFAULT_EMULATORS)
    )
    parser.addini(
        "firebase_cli",
        f"the firebase executable (${toolchain.CLI_VAR} wins; default: the project's "
        "node_modules/.bin/firebase, then firebase on PATH)",
        default="",
    )
    parser.addini(
        "firebase_worker_port_shift",
        "under pytest-xdist, worker gw<n> runs its own stack on the port offset plus n "
        f"times this (default {DEFAULT_WORKER_PORT_SHIFT})",
        default=str(DEFAULT_WORKER_PORT_SHIFT),
    )


def _default_config(config: pytest.Config) -> StackConfig:
    root_opt = str(config.getini("firebase_project_root"))
    root = Path(root_opt) if root_opt else Path(config.rootpath)
    root = root if root.is_absolute() else Path(config.rootpath) / root
    project = str(config.getini("firebase_project_id")) or _project_from_firebaserc(root)
    cli = str(config.getini("firebase_cli"))
    base = StackConfig(
        project_root=root,
        project_id=project,
        emulators=tuple(config.getini("firebase_emulators")),
        firebase_cli=Path(cli) if cli else None,
    )
    return base.with_offset(int(os.environ.get(OFFSET_VAR, "0")))


def _project_from_firebaserc(root: Path) -> str:
    rc = root / ".firebaserc"
    if rc.exists():
        return str(json.loads(rc.read_text())["projects"]["default"])
    return "demo-test"


def pytest_configure(config: pytest.Config) -> None:
    # A pytest-xdist worker runs on the ports its controller chose for it (see
    # pytest_configure_node); set in the environment, the offset reaches every stack
    # configuration of this process and of its children, a conftest's override included.
    worker = getattr(config, "workerinput", None)
    if worker is not None and parallel.OFFSET_KEY in worker:
        os.environ[OFFSET_VAR] = str(worker[parallel.OFFSET_KEY])
    # Point every SDK at the emulators before any test module is imported, so code that
    # initialises clients at import time can never reach a real project.
    try:
        stack = EmulatorStack(_default_config(config))
    except StackError:
        return  # not a Firebase project (installed plugins load everywhere): stay out of it
    config.stash[_FIREBASE_PROJECT] = True
    os.environ.update(stack.client_env())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests that need background triggers first, in their collected order.

    The Firestore emulator delivers every event, one at a time and in order, even while
    the Functions emulator's triggers are paused (it answers each with a 204 and runs
    nothing; measured at ~1.2 ms a write, ~2.7 ms a deleted document at a reset). Tests
    that run with triggers paused leave a backlog of such deliveries behind them, which
    a later trigger-driven test waits through before its own events arrive: tens of
    seconds after a seed load or a property test. Run first, those tests find the queue
    empty; the rest run after, with triggers paused, and nobody waits for their backlog.
    """
    marker = str(config.getini("firebase_triggers_marker"))
    wanted = [item for item in items if item.get_closest_marker(marker) is not None]
    if wanted and len(wanted) < len(items):
        rest = [item for item in items if item.get_closest_marker(marker) is None]
        items[:] = wanted + rest


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, in the controller: each worker gets ports and a stack marker of its
    own (``pytest_firebase.parallel``)."""
    config: pytest.Config = node.config
    if not config.stash.get(_FIREBASE_PROJECT, False):
        return
    shift = int(str(config.getini("firebase_worker_port_shift")))
    base = int(os.environ.get(OFFSET_VAR, "0"))
    node.workerinput[parallel.OFFSET_KEY] = parallel.worker_offset(base, node.gateway.id, shift)
    node.workerinput[parallel.MARKER_KEY] = procs.new_marker()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object | None) -> None:
    """pytest-xdist, in the controller: a worker that died never stopped its stack, so
    whatever carries its marker is ended here."""
    marker = getattr(node, "workerinput", {}).get(parallel.MARKER_KEY)
    if error is None or marker is None:
        return
    swept = procs.sweep(marker)
    reporter = node.config.pluginmanager.get_plugin("terminalreporter")
    if swept and reporter is not None:
        reporter.write_line(
            f"pytest_firebase: worker {node.gateway.id} died; swept its stack's {len(swept)} "
            f"processes: {swept}"
        )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist: ``--dist loadfile`` keeps the serial run's order
    (``parallel.serial_order_scheduling``)."""
    if config.getvalue("dist") == "loadfile" and config.stash.get(_FIREBASE_PROJECT, False):
        return parallel.serial_order_scheduling(config, log)
    return None


@pytest.fixture(scope="session")
def firebase_stack_config(pytestconfig: pytest.Config) -> StackConfig:
    """What the session's suite consists of; override to add sidecars."""
    return _default_config(pytestconfig)


@pytest.fixture(scope="session")
def firebase_stack(
    firebase_stack_config: StackConfig, pytestconfig: pytest.Config
) -> Iterator[EmulatorStack]:
    """The running emulator suite (started once, or reused), stopped at session end."""
    # Under pytest-xdist the controller chose the marker, to sweep the stack if we die.
    marker = getattr(pytestconfig, "workerinput", {}).get(parallel.MARKER_KEY)
    try:
        stack = EmulatorStack(firebase_stack_config, marker=marker)
    except StackError as err:
        pytest.fail(f"pytest-firebase: {err}", pytrace=False)
    try:
        stack.start()
    except (StackError, ToolchainError) as err:
        stack.stop()
        pytest.fail(f"The Firebase emulator suite could not start:\n{err}", pytrace=False)
    os.environ.update(stack.client_env())
    yield stack
    if stack.reused and stack.triggers_enabled is False:
        set_background_triggers(stack, True)  # hand a reused suite back as we found it
    # The session's data is thrown away: no reason to wait for a graceful stop (at the end
    # of a long session the CLI outlasts any short grace while its workers wind down).
    swept = stack.stop(grace=1.0)
    if swept:
        print(f"\npytest_firebase: swept {len(swept)} leftover emulator processes: {swept}")


@pytest.fixture(scope="session")
def firebase_project(firebase_stack_config: StackConfig) -> str:
    """The project id the emulators run under."""
    return firebase_stack_config.project_id


def reset_firestore(stack: EmulatorStack) -> None:
    """Delete every document in the emulator's default database."""
    empty_database(stack.host("firestore"), stack.config.project_id)


def empty_database(
    host: str, project: str, database: str = "(default)", *, timeout: float = 30
) -> None:
    """Delete every document of one database of the Firestore emulator at ``host``."""
    url = f"http://{host}/emulator/v1/projects/{project}/databases/{database}/documents"
    # The emulator answers 409 while a transaction (a trigger's, still running from the
    # test before) holds a lock: it ends within seconds, so ask again a few times.
    for attempt in range(5):
        response = requests.delete(url, timeout=timeout)
        if response.status_code != 409 or attempt == 4:
            response.raise_for_status()
            return
        time.sleep(0.5 * (attempt + 1))


@pytest.fixture(scope="session")
def _firestore_client(firebase_stack: EmulatorStack) -> firestore.Client:
    from google.cloud import firestore  # imported late: env must point at the emulator

    return firestore.Client(project=firebase_stack.config.project_id)


@pytest.fixture
def firestore_db(
    firebase_stack: EmulatorStack, _firestore_client: firestore.Client
) -> firestore.Client:
    """An admin ``google.cloud.firestore.Client`` (rules bypassed) on an empty database."""
    reset_firestore(firebase_stack)
    return _firestore_client


@pytest.fixture
def auth_emulator(firebase_stack: EmulatorStack) -> AuthEmulator:
    """The Auth emulator, emptied before the test."""
    client = AuthEmulator(firebase_stack.host("auth"), firebase_stack.config.project_id)
    client.reset()
    return client


@pytest.fixture
def as_user(firebase_stack: EmulatorStack) -> Callable[..., rest.FirestoreRest]:
    """``as_user(uid, claims=None, email=None)``: Firestore as that signed-in user."""

    def make(
        uid: str, claims: dict[str, Any] | None = None, email: str | None = None
    ) -> rest.FirestoreRest:
        token = tokens.mint_id_token(
            uid, claims=claims or {}, email=email, project=firebase_stack.config.project_id
        )
        return rest.FirestoreRest(
            firebase_stack.host("firestore"), firebase_stack.config.project_id, token
        )

    return make


@pytest.fixture
def anonymous(firebase_stack: EmulatorStack) -> rest.FirestoreRest:
    """Firestore as a visitor who is not signed in."""
    return rest.FirestoreRest(
        firebase_stack.host("firestore"), firebase_stack.config.project_id, None
    )


@pytest.fixture
def admin_rest(firebase_stack: EmulatorStack) -> rest.FirestoreRest:
    """Firestore REST as the emulator owner (rules bypassed), for arranging data."""
    return rest.FirestoreRest(
        firebase_stack.host("firestore"), firebase_stack.config.project_id, "owner"
    )


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    """``wait_for(probe, timeout=20, what=...)``: poll until an effect appears."""
    return wait.wait_for


@pytest.fixture
def sign_stripe_webhook() -> Callable[..., webhooks.SignedWebhook]:
    """``sign_stripe_webhook(event, secret, timestamp=None)``: a Stripe-signed delivery."""
    return webhooks.stripe_webhook


@pytest.fixture
def call_function(firebase_stack: EmulatorStack) -> Callable[..., callables.CallResult]:
    """``call_function(fn, data, uid=None, claims=None)``: a callable, in-process."""
    callables.ensure_default_app(firebase_stack.config.project_id)
    return callables.call


@pytest.fixture
def firestore_event() -> Callable[..., CloudEvent]:
    """``firestore_event(document, before=..., after=..., kind=..., event_id=...)``."""
    return events.firestore_event


@pytest.fixture
def call_emulated(firebase_stack: EmulatorStack) -> Callable[..., callables.CallResult]:
    """``call_emulated(name, data, id_token=None)``: a callable through the Functions
    emulator, over HTTP, exactly as a client SDK calls it."""

    def call(name: str, data: Any = None, id_token: str | None = None) -> callables.CallResult:
        headers = {"Authorization": f"Bearer {id_token}"} if id_token else {}
        response = requests.post(
            firebase_stack.functions_url(name), json={"data": data}, headers=headers, timeout=60
        )
        body = response.json() if response.content else {}
        return callables.CallResult(response.status_code, body, dict(response.headers))

    return call


@pytest.fixture
def run_schedule(firebase_stack: EmulatorStack) -> Callable[[str], schedules.RunResult]:
    """``run_schedule(name)``: run a scheduled function once through the Functions
    emulator, as Cloud Scheduler would, and return when it has finished.

    Fails the test when the function raised, or when the test runs with background
    triggers paused (the emulator runs scheduled functions only with them on): mark the
    test with the triggers marker (default: e2e).
    """

    def run(name: str) -> schedules.RunResult:
        host = firebase_stack.host("functions")
        function = schedules.find(host, name)
        if firebase_stack.triggers_enabled is False:
            raise schedules.ScheduleRunError(
                f"{name} cannot run: background triggers are paused for this test; mark it "
                "with the triggers marker (firebase_triggers_marker, default e2e)."
            )
        result = schedules.run_once(host, firebase_stack.config.project_id, function)
        return schedules.expect_ran(result)

    return run


def set_background_triggers(stack: EmulatorStack, enabled: bool) -> None:
    """Enable or pause the Functions emulator's event triggers (not blocking functions).

    Pausing also waits for triggers already running, so no effect of an earlier test
    lands in the next one.
    """
    verb = "enable" if enabled else "disable"
    url = f"http://{stack.host('hub')}/functions/{verb}BackgroundTriggers"
    if not enabled:
        requests.put(url, timeout=120).raise_for_status()
        return
    with functions_discovery():  # enabling reloads the triggers: a discovery
        requests.put(url, timeout=120).raise_for_status()


@pytest.fixture(autouse=True)
def _background_triggers(request: pytest.FixtureRequest) -> None:
    # Real triggers fire ~1 s after a write and would write into the next test's data;
    # only tests marked as needing them (default: e2e) run with them on.
    if "firebase_stack" not in request.fixturenames:
        return
    stack: EmulatorStack = request.getfixturevalue("firebase_stack")
    if "functions" not in stack.config.emulators:
        return
    marker = str(request.config.getini("firebase_triggers_marker"))
    wanted = request.node.get_closest_marker(marker) is not None
    if stack.triggers_enabled is not wanted:
        set_background_triggers(stack, wanted)
        stack.triggers_enabled = wanted
