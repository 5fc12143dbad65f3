"""The cold-start benchmark cannot rot: one round of each configuration, as ``make bench``
runs nine, in the functions' own interpreter (no emulators: nothing is contacted at
import)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import cold_start


def test_the_cold_start_bench_times_main_against_the_sdk_alone(tmp_path: Path) -> None:
    outcome = cold_start.run(runs=1)
    written = json.loads(cold_start.write(outcome, directory=tmp_path).read_text())

    assert written["source"]["commit"]
    assert isinstance(written["source"]["dirty"], bool)
    assert written["figures"]["main"]["cpuMs"]["median"] > 0
    for baseline in ("sdk", "packages"):
        assert written["baseline"][baseline]["cpuMs"]["median"] > 0
        assert written["ratio"][baseline]["cpuMs"] > 0
        assert written["ratio"][baseline]["wallMs"] > 0
    # main.py adds our own modules to the SDK's: the heaviest are named, with a total.
    added = written["figures"]["heaviestAdded"]
    assert added[-1]["module"] == "(all added)" and added[-1]["selfMs"] > 0
    assert len(added) > 1 and all(row["selfMs"] >= 0 for row in added)
    assert [row["config"] for row in written["rows"]] == ["main", "sdk", "packages"]
    # What only some families need stays out of every function's cold start...
    assert written["figures"]["lazyLoadedAtImport"] == []


def test_what_main_leaves_out_still_imports_in_the_functions_runtime() -> None:
    # ...and is importable there, where a handler imports it.
    env = cold_start.worker_environment()
    modules = [*cold_start.LAZY_MODULES, "api.stripe_errors", "firekit.push"]
    code = "import main; import " + ", ".join(modules)

    cpu_ms, _, _ = cold_start.spawn(code, env)

    assert cpu_ms > 0


def test_the_worker_environment_is_the_functions_emulators() -> None:
    env = cold_start.worker_environment()

    assert env["FUNCTIONS_EMULATOR"] == "true"
    assert env["GCLOUD_PROJECT"] == cold_start.PROJECT
    assert env["MARKETPLACE_NAME"] == "Homefront"  # functions/.env, as firebase-tools loads it
    assert "PYTHONPATH" not in env
