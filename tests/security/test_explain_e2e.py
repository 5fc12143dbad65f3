"""explain_refusal end to end: a user's write the real rules refuse, then the callable,
through the Functions emulator as that user, names the exact reason and the rule line;
and proof that ``firebase deploy`` never finds the callable."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from core.test_explain import wire  # as contract/explain.ts encodes a payload
from google.cloud import firestore
from limits.client import CappedClient

from bench import cold_start
from marketplace import limits
from pytest_firebase.auth import AuthEmulator
from pytest_firebase.callables import CallResult
from pytest_firebase.rest import SERVER_TIMESTAMP, FirestoreRest
from pytest_firebase.stack import EmulatorStack
from pytest_firebase.tokens import mint_id_token
from security.scenarios import listing_draft

BO = ("bo", {"role": "agent"})
DI = ("di", {"role": "agent"})
LISTING = "listings/l-explained"
STAMPED = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parents[2]
TSC_OPTIONS = ("--strict", "--module", "nodenext", "--moduleResolution", "nodenext",
               "--target", "es2022", "--types", "node", "--skipLibCheck")  # fmt: skip


@pytest.mark.e2e
def test_a_refused_write_is_explained_by_the_emulated_callable(
    firebase_stack: EmulatorStack,
    firestore_db: firestore.Client,
    as_user: Callable[..., FirestoreRest],
    call_emulated: Callable[..., CallResult],
) -> None:
    project = firebase_stack.config.project_id
    bo = CappedClient(as_user(*BO), "bo")
    unknown = {**listing_draft("bo"), "colour": "red"}
    plain_time = {**listing_draft("bo"), "createdAt": STAMPED}
    firestore_db.document(LISTING).set(
        {**listing_draft("bo"), "createdAt": STAMPED, "updatedAt": STAMPED}
    )
    not_mine = {"title": "Di's listing now", "updatedAt": SERVER_TIMESTAMP}

    def explained(
        who: tuple[str, dict[str, Any]], op: str, path: str, data: Any, denial: str
    ) -> Any:
        token = mint_id_token(who[0], claims=who[1], project=project)
        request = {"path": path, "op": op, "data": wire(data), "denial": denial}
        return call_emulated("explain_refusal", request, token).data

    refusals = {
        "unknown": bo.create_capped(limits.LISTINGS, "listings/l-new", unknown),
        "plain_time": bo.create_capped(limits.LISTINGS, "listings/l-new", plain_time),
        "not_mine": as_user(*DI).update(LISTING, not_mine),
    }
    assert {k: r.denied for k, r in refusals.items()} == dict.fromkeys(refusals, True)
    answers = {
        "unknown": explained(
            BO, "create", "listings/l-new", unknown, refusals["unknown"].error_message
        ),
        "plain_time": explained(
            BO, "create", "listings/l-new", plain_time, refusals["plain_time"].error_message
        ),
        "not_mine": explained(DI, "update", LISTING, not_mine, refusals["not_mine"].error_message),
    }

    assert answers["unknown"]["checks"] == [
        {
            "check": "unknown_field",
            "field": "colour",
            "message": "colour is not a field of Listing.",
        }
    ]
    assert answers["plain_time"]["checks"] == [
        {
            "check": "request_time_expected",
            "field": "createdAt",
            "message": "createdAt must be serverTimestamp() (you sent a timestamp).",
        }
    ]
    assert answers["not_mine"]["checks"] == [
        {
            "check": "not_owner",
            "field": "ownerId",
            "message": f"{LISTING} belongs to another user: its ownerId is not your uid.",
        }
    ]
    rules = (ROOT / "firestore.rules").read_text().splitlines()
    for name, answer in answers.items():
        line = answer["rule"]["line"]
        assert not answer["allowed"] and answer["model"] == "Listing"
        assert f"@ L{line}" in refusals[name].error_message
        assert answer["rule"]["text"].startswith(rules[line - 1].strip())
    assert answers["not_mine"]["rule"]["text"].startswith("allow update: if hasRole('agent')")


@pytest.mark.e2e
def test_the_js_helper_explains_the_sdks_own_refusals(
    firebase_stack: EmulatorStack,
    firestore_db: firestore.Client,
    auth_emulator: AuthEmulator,
    tmp_path: Path,
) -> None:
    # contract/explain.ts and its journey, compiled as the contract's own check runs tsc,
    # then run on the official JS SDK against this session's emulators.
    tsc, node = ROOT / "node_modules" / ".bin" / "tsc", shutil.which("node")
    if not tsc.exists() or node is None:
        pytest.fail("TypeScript and Node.js are needed: run `npm ci` (make bootstrap)")
    script = Path(__file__).with_name("explain_client.ts")
    compiled = subprocess.run(
        [str(tsc), *TSC_OPTIONS, "--outDir", str(tmp_path), "--rootDir", str(ROOT), str(script)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    env = {
        **os.environ,
        **firebase_stack.client_env(),
        "FUNCTIONS_EMULATOR_HOST": firebase_stack.host("functions"),
        "NODE_PATH": str(ROOT / "node_modules"),  # the compiled files live outside the tree
    }
    ran = subprocess.run(
        [node, str(tmp_path / script.relative_to(ROOT).with_suffix(".js"))],
        env=env, capture_output=True, text=True, check=False, timeout=240,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    print("the JS SDK's denial:", repr(report["denial"]))
    assert re.search(r"for 'create' @ L\d+", report["denial"])


def discovered(env: Mapping[str, str]) -> list[str]:
    """The functions firebase-tools finds in main.py, by the SDK's own discovery (what its
    admin server reports to `firebase deploy`), run in ``env``."""
    code = "from firebase_functions.private import serving; print(*sorted(serving.get_functions()))"
    done = subprocess.run(
        [str(cold_start.PYTHON), "-c", code],
        cwd=cold_start.FUNCTIONS,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_firebase_deploy_never_finds_explain_refusal() -> None:
    emulated = cold_start.worker_environment()
    # A deploy runs in the developer's shell, where an emulator host may well be exported;
    # only the Functions emulator sets FUNCTIONS_EMULATOR.
    deploying = {k: v for k, v in emulated.items() if k != "FUNCTIONS_EMULATOR"}

    served, deployed = discovered(emulated), discovered(deploying)

    assert "explain_refusal" in served
    assert "explain_refusal" not in deployed
    assert set(served) - set(deployed) == {"explain_refusal"}
    assert "set_listing_status" in deployed
