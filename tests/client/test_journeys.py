"""The client journeys: TypeScript on the official Firebase JS SDK, against this session's
emulators, as a mobile or web app talks to the backend.

The journeys (``tests/client/*.test.ts``) are type-checked once against the generated
client contract (``contract/``) by ``tsc -p tests/client``, which also compiles them to
``tests/client/build/``; then each journey file runs as one test, in its own
``node --test`` process, with the stack's addresses in its environment. Node's own
output is the failure message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from google.cloud import firestore

from pytest_firebase.auth import AuthEmulator
from pytest_firebase.stack import EmulatorStack

pytestmark = pytest.mark.e2e  # the journeys wait for real triggers

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUILD = HERE / "build"
JOURNEYS = sorted(path.name.removesuffix(".test.ts") for path in HERE.glob("*.test.ts"))
JOURNEY_TIMEOUT_S = 240


def _tool(path: Path | None, name: str, install: str) -> str:
    if path is None or not path.exists():
        pytest.fail(f"{name} is missing: {install}", pytrace=False)
    return str(path)


@pytest.fixture(scope="session")
def compiled_journeys() -> Path:
    """The journeys, type-checked and compiled (once per session); tsc's output on failure."""
    install = "run `npm ci` in the project root (make bootstrap does)"
    tsc = _tool(
        ROOT / "node_modules" / ".bin" / "tsc", "TypeScript (node_modules/.bin/tsc)", install
    )
    shutil.rmtree(BUILD, ignore_errors=True)
    checked = subprocess.run(
        [tsc, "-p", str(HERE)], check=False, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    if checked.returncode != 0:
        pytest.fail(f"tsc -p tests/client failed:\n{checked.stdout}{checked.stderr}", pytrace=False)
    return BUILD / HERE.relative_to(ROOT)


def test_every_journey_is_type_checked_and_compiled(compiled_journeys: Path) -> None:
    compiled = sorted(p.name.removesuffix(".test.js") for p in compiled_journeys.glob("*.test.js"))
    assert compiled == JOURNEYS


@pytest.mark.parametrize("journey", JOURNEYS)
def test_journey(
    journey: str,
    compiled_journeys: Path,
    firebase_stack: EmulatorStack,
    firestore_db: firestore.Client,
    auth_emulator: AuthEmulator,
) -> None:
    # firestore_db and auth_emulator start the journey on an empty database and no users.
    node = shutil.which("node")
    _tool(Path(node) if node else None, "Node.js (node)", "install Node.js 20 or newer")
    env = {
        **os.environ,
        **firebase_stack.client_env(),
        "FUNCTIONS_EMULATOR_HOST": firebase_stack.host("functions"),
    }
    started = time.monotonic()
    ran, log_from = _run_journey(str(node), journey, compiled_journeys, env, firebase_stack)
    output = f"{ran.stdout}{ran.stderr}"
    if ran.returncode != 0 and _emulator_dropped_a_run(firebase_stack, log_from):
        # The Functions emulator lost a trigger run (its log says "Request to function
        # failed: Error: socket hang up", seen in full runs on 2 cores) and, unlike Cloud
        # Functions, never retries it: the journey waits for an effect that cannot come.
        # Only then, once, the journey runs again; a failure with no such line fails.
        print(f"{journey}: the emulator dropped a trigger run; running the journey again")
        ran, _ = _run_journey(str(node), journey, compiled_journeys, env, firebase_stack)
        output += "\n--- run again after the emulator dropped a trigger run ---\n"
        output += f"{ran.stdout}{ran.stderr}"
    if ran.returncode != 0:
        output += "\n--- the emulators' log since the journey began ---\n"
        output += _log_since(firebase_stack, log_from)
    assert ran.returncode == 0, f"node --test {journey}.test.js failed:\n{output}"
    print(f"{journey}: {time.monotonic() - started:.1f} s\n{output}")  # each test's time (-rA)


DROPPED_RUN = b"Request to function failed: Error: socket hang up"


def _run_journey(
    node: str, journey: str, cwd: Path, env: dict[str, str], stack: EmulatorStack
) -> tuple[subprocess.CompletedProcess[str], int]:
    """The journey's run, and where the emulator's log stood when it began."""
    # Start after the events of earlier tests have run: the emulator delivers them one
    # at a time, and a backlog would delay this journey's triggers behind them.
    # Bounded: the rerun below covers a run the emulator dropped meanwhile.
    stack.settle_triggers(quiet=1.0, timeout=20)
    log_from = stack.emulator_log.stat().st_size
    ran = subprocess.run(
        [node, "--test", "--test-reporter=spec", f"{journey}.test.js"],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=JOURNEY_TIMEOUT_S,
    )
    return ran, log_from


def _emulator_dropped_a_run(stack: EmulatorStack, log_from: int) -> bool:
    with stack.emulator_log.open("rb") as log:
        log.seek(log_from)
        return DROPPED_RUN in log.read()


def _log_since(stack: EmulatorStack, log_from: int, lines: int = 120) -> str:
    """The emulators' last lines since ``log_from``: which triggers ran, failed or waited."""
    with stack.emulator_log.open("rb") as log:
        log.seek(log_from)
        tail = log.read().decode(errors="replace").splitlines()
    return "\n".join(tail[-lines:])
