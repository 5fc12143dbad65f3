"""What every benchmark shares: the emulator stack, a Firestore client, percentiles, results.

A benchmark module defines ``run(db, ...)`` (the measurement, given a Firestore client, so
a test can smoke-run it on a small input) and a ``main()`` that wraps it in
:func:`emulators` and :func:`write_result`.

The stack is the one the tests and ``make dev`` run (``scripts/devstack.py``), started
here or reused if one already answers on our ports (``PYTEST_FIREBASE_PORT_OFFSET``
shifts them). Like the tests, a benchmark empties the database it uses: beside a running
``make dev``, pick another offset.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
for _path in (ROOT, ROOT / "functions", ROOT / "scripts"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import devstack  # noqa: E402
from pytest_firebase.plugin import reset_firestore, set_background_triggers  # noqa: E402
from pytest_firebase.stack import EmulatorStack  # noqa: E402

Figures = Mapping[str, Any]
MEASURED_PATHS = ("functions", "bench", "pytest-firebase", "scripts")
"""What a benchmark runs: a change here and not committed makes its result "dirty"."""


@contextmanager
def emulators() -> Iterator[EmulatorStack]:
    """The dev stack, started or reused; on exit, whatever this call started is stopped.

    ``EmulatorStack.stop`` ends the process groups it started (and sweeps their detached
    children by marker), and leaves a reused suite running.
    """
    stack = EmulatorStack(devstack.stack_config())
    try:
        print(f"emulators: starting or reusing (port offset {stack.config.port_offset})...")
        stack.start()
        os.environ.update(stack.client_env())
        yield stack
    finally:
        swept = stack.stop()
        if swept:
            print(f"emulators: swept {len(swept)} leftover processes")


@contextmanager
def triggers_paused(stack: EmulatorStack) -> Iterator[None]:
    """The Functions emulator's background triggers paused (as tests without ``e2e`` run).

    Otherwise a benchmark's own writes fire them (a listing written active starts a real
    alert fan-out, every saved search runs its trigger) beside the measurement. A reused
    stack gets them back on exit.
    """
    if "functions" not in stack.config.emulators:
        yield
        return
    set_background_triggers(stack, False)
    try:
        yield
    finally:
        if stack.reused:
            set_background_triggers(stack, True)


def firestore_client(stack: EmulatorStack, *, empty: bool = True) -> Any:
    """An admin Firestore client on the stack's emulator, on an emptied database."""
    from google.cloud import firestore  # after client_env(): it reads the emulator host

    if empty:
        reset_firestore(stack)
    return firestore.Client(project=stack.config.project_id)


def percentiles(values: Sequence[float], *wanted: float) -> dict[str, float]:
    """``{"p50": ..., "p95": ...}`` for ``wanted=(50, 95)``, linearly interpolated."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    result = {}
    for pct in wanted:
        rank = (len(ordered) - 1) * pct / 100
        low, high = math.floor(rank), math.ceil(rank)
        value = ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
        result[f"p{pct:g}"] = value
    return result


def ratio(value: float, baseline: float) -> float | None:
    """``value / baseline``, rounded, or None when the baseline is zero."""
    return round(value / baseline, 2) if baseline else None


def write_result(
    name: str,
    *,
    figures: Figures,
    baseline: Figures,
    ratios: Figures,
    params: Figures,
    rows: Sequence[Mapping[str, Any]] = (),
    directory: Path = RESULTS,
) -> Path:
    """Write ``bench/results/<name>.json``: the figures, the baseline and their ratio, and
    the commit they were measured at (:data:`SOURCE`)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    document = {
        "name": name,
        "measuredAt": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source": SOURCE,
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "backend": "Firebase Local Emulator Suite (latencies are not production's)",
        },
        "params": params,
        "figures": figures,
        "baseline": baseline,
        "ratio": ratios,
        "rows": list(rows),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def write_outcome(name: str, outcome: Mapping[str, Any], directory: Path = RESULTS) -> Path:
    """A ``run()`` outcome (``figures``, ``baseline``, ``ratios``, ``params``, ``rows``) as
    :func:`write_result` writes it."""
    return write_result(
        name,
        figures=outcome["figures"],
        baseline=outcome["baseline"],
        ratios=outcome["ratios"],
        params=outcome["params"],
        rows=outcome["rows"],
        directory=directory,
    )


def source_revision() -> dict[str, Any]:
    """The commit the measured code is at, and whether the checkout differed from it.

    ``dirty``: a tracked file under :data:`MEASURED_PATHS` was changed and not committed
    (listed in ``changed``), so the result is not exactly that commit's.
    """

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], check=False, cwd=ROOT, capture_output=True, text=True)
        return done.stdout.rstrip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {"commit": None, "dirty": None, "changed": []}
    status = git("status", "--porcelain", "--untracked-files=no", "--", *MEASURED_PATHS)
    changed = sorted(line[3:] for line in status.splitlines() if line.strip())
    return {"commit": commit, "dirty": bool(changed), "changed": changed}


SOURCE = source_revision()
"""The source as the benchmark process found it when it started (before measuring: others
may commit while a long benchmark runs)."""


def report(name: str, outcome: Mapping[str, Any], columns: Sequence[str]) -> Path:
    """Write a ``run()`` outcome's results JSON and print the table of its rows."""
    path = write_outcome(name, outcome)
    print_table(outcome["rows"], columns)
    return path


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """A plain-text table of ``rows`` (dicts) in ``columns`` order."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return "-" if value is None else str(value)
