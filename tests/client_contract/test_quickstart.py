"""The README's first ten minutes (examples/quickstart.ts), run as a new user runs it:
the official JS SDK against the emulators, signed in as a seeded account."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from google.cloud import firestore

from pytest_firebase.auth import AuthEmulator
from pytest_firebase.stack import EmulatorStack
from seed.accounts import load_users

pytestmark = pytest.mark.e2e  # the listing goes live through the real review trigger

ROOT = Path(__file__).resolve().parents[2]
COMPILED = ROOT / ".cache" / "examples" / "examples" / "quickstart.js"


def test_the_quickstart_runs_against_the_seeded_accounts(
    firebase_stack: EmulatorStack, firestore_db: firestore.Client, auth_emulator: AuthEmulator
) -> None:
    load_users()  # the accounts `make dev` seeds (agent@ is a verified agent)
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is missing: install Node.js 20 or newer", pytrace=False)
    built = subprocess.run(
        [str(ROOT / "node_modules/.bin/tsc"), "-p", str(ROOT / "examples")],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    env = {
        **os.environ,
        **firebase_stack.client_env(),
        "FUNCTIONS_EMULATOR_HOST": firebase_stack.host("functions"),
    }
    ran = subprocess.run(
        [node, str(COMPILED)], env=env, capture_output=True, text=True, check=False, timeout=180
    )
    said = ran.stdout + ran.stderr
    assert ran.returncode == 0, said
    lines = ran.stdout.splitlines()
    assert lines[0] == "signed in as agent@homefront.test (role: agent)", said
    assert "listing is active" in lines, said
    assert "search_near found it" in lines, said
    assert lines[-1] == "refused: invalid-argument on lat", said
