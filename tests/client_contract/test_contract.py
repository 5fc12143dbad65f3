"""The generated client contract: fresh, caught when stale, and as strict as the rules."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Annotated

import pydantic
import pytest

from contract import build
from firekit.docmodel import Client
from marketplace.models import documents
from marketplace.models.listings import Listing

ROOT = Path(__file__).resolve().parents[2]


def test_the_written_contract_is_current() -> None:
    assert build.main(["--check"]) == 0


def test_a_model_changed_without_regenerating_fails_the_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A new client-writable field on listings, as a developer would add it.
    changed = pydantic.create_model(
        "Listing",
        __base__=Listing,
        viewingNotes=(Annotated[str, pydantic.Field(max_length=200), Client()], ""),
    )
    before = (ROOT / "contract" / "firestore.ts").read_text()
    monkeypatch.setattr(
        documents, "DOCUMENTS", tuple(changed if m is Listing else m for m in documents.DOCUMENTS)
    )

    assert build.main(["--check"]) == 1
    assert "the client contract is stale" in capsys.readouterr().err
    assert (ROOT / "contract" / "firestore.ts").read_text() == before  # a check writes nothing
    generated = build.outputs()[ROOT / "contract" / "firestore.ts"]
    assert "viewingNotes?: string;" in generated.split("export type ListingUpdate = ")[1]


def test_every_exported_callable_is_in_the_contract_with_its_refusals() -> None:
    index = json.loads((ROOT / "contract" / "schema" / "index.json").read_text())
    main_callables = {c.name for c in build.callable_contracts()}
    assert set(index["callables"]) == main_callables
    assert {"search_near", "set_user_role", "feature_listing"} <= main_callables
    for name, entry in index["callables"].items():
        reasons = {(r["code"], r["reason"]) for r in entry["refusals"]}
        assert ("UNAUTHENTICATED", "signed_out") in reasons, name
        assert ("INVALID_ARGUMENT", "invalid_argument") in reasons, name
        if entry["roles"]:
            assert ("PERMISSION_DENIED", "role") in reasons, name


def test_the_types_refuse_what_the_rules_refuse() -> None:
    # typed_writes.ts holds valid writes and, under @ts-expect-error, an unknown field, a
    # client clock where serverTimestamp() is required, a missing one, a live status at
    # create, a function's status move and a wrong request: tsc fails on any of them
    # that type-checks ("unused directive") and on any valid one that does not.
    done = subprocess.run(
        [str(ROOT / "node_modules/.bin/tsc"), "-p", str(ROOT / "tests" / "client_contract")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
