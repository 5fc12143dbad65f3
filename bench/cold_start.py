"""Cold start: importing ``functions/main.py`` in a fresh process, against importing only
the Firebase SDK it is built on.

Every Cloud Functions instance (and every Functions-emulator worker, and the deploy's
manifest discovery) starts by importing ``main.py``; whatever that import pulls in, each
cold instance pays before its first request. Each measured run is a fresh interpreter of
``functions/venv`` (the runtime the emulator runs), started in ``functions/`` with the
environment the Functions emulator gives a worker (``FUNCTIONS_EMULATOR=true``,
``FIREBASE_CONFIG``, the emulator hosts, the params of ``functions/.env``...). The
emulators themselves are not needed: nothing is contacted at import.

- **Figures** (``main``): ``import main``.
- **Baseline** (``sdk``): ``firebase_functions`` with the decorator modules ``main.py``'s
  functions are declared with (``https_fn``, ``firestore_fn``, ``scheduler_fn``,
  ``tasks_fn``, ``identity_fn``, ``options``, ``params``), ``firebase_admin`` and
  ``firebase_admin.firestore``: what any Python backend of these functions imports before
  it adds its own code. ``packages`` (bare ``import firebase_functions, firebase_admin,
  firebase_admin.firestore``, which loads none of the decorator modules) is reported too.
- Per run: CPU time of the child (user + system, from ``wait4``) and wall time from spawn
  to exit. The configurations are interleaved, their order rotating each round, after
  one untimed warm-up each (bytecode caches written). Ratios are of the medians.
  Goal: CPU ratio ≤ 1.20 against ``sdk``.
- **What main adds**: one ``-X importtime`` run of each of ``sdk`` and ``main``; the
  modules only ``main`` loads, by self time, heaviest first (``figures.heaviestAdded``).

Run: ``python -m bench.cold_start [--runs N]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import common

NAME = "cold_start"
RUNS = 9
FUNCTIONS = common.ROOT / "functions"
PYTHON = FUNCTIONS / "venv" / "bin" / "python"
PROJECT = "demo-homefront"
SDK_MODULES = (
    "firebase_functions",
    "firebase_functions.https_fn",
    "firebase_functions.firestore_fn",
    "firebase_functions.scheduler_fn",
    "firebase_functions.tasks_fn",
    "firebase_functions.identity_fn",
    "firebase_functions.options",
    "firebase_functions.params",
    "firebase_admin",
    "firebase_admin.firestore",
)
PACKAGES = ("firebase_functions", "firebase_admin", "firebase_admin.firestore")
CONFIGS: Mapping[str, str] = {
    "main": "import main",
    "sdk": "import " + ", ".join(SDK_MODULES),
    "packages": "import " + ", ".join(PACKAGES),
}
BASELINE = "sdk"
HEAVIEST = 15
LAZY_MODULES = (
    "stripe",
    "firebase_admin.functions",
    "firebase_admin.messaging",
    "firekit.fanout.engine",
    "marketplace.alerts",
    "marketplace.nearby",
    "marketplace.payments.featured",
    "marketplace.payments.plans",
    "firekit.webhooks",
    "marketplace.queries",
    "marketplace.models.documents",
    "marketplace.payments.events",
    "marketplace.erasure",
    "marketplace.export",
    "marketplace.ownership",
    "marketplace.health",
    "marketplace.payments.reconcile",
    "firekit.explain",
)
"""What only some function families need, imported by their handlers: ``import main``
should load none of them (``figures.lazyLoadedAtImport`` lists any that it does)."""


@dataclass
class Runs:
    """One configuration's timed runs."""

    config: str
    cpu_ms: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)


def worker_environment(functions_dir: Path = FUNCTIONS) -> dict[str, str]:
    """The environment the Functions emulator gives a Python worker (ports of offset 0).

    The user's params (``.env``, ``.env.local``) as firebase-tools loads them, then the
    system and emulator variables (``functionsEmulator.getRuntimeEnvs``). Nothing from
    this process leaks in but ``PATH``, ``HOME`` and the locale.
    """
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL") if k in os.environ}
    for name in (".env", ".env.local"):
        env.update(_dotenv(functions_dir / name))
    env.update(
        GCLOUD_PROJECT=PROJECT,
        GOOGLE_CLOUD_QUOTA_PROJECT=PROJECT,
        K_REVISION="1",
        PORT="80",
        FUNCTIONS_EMULATOR="true",
        TZ="UTC",
        FIREBASE_DEBUG_MODE="true",
        FIREBASE_DEBUG_FEATURES=json.dumps({"skipTokenVerification": True, "enableCors": True}),
        FIRESTORE_EMULATOR_HOST="127.0.0.1:8080",
        FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099",
        CLOUD_TASKS_EMULATOR_HOST="127.0.0.1:9499",
        FIREBASE_CONFIG=json.dumps({"projectId": PROJECT}),
    )
    return env


def _dotenv(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def spawn(code: str, env: Mapping[str, str], *flags: str) -> tuple[float, float, str]:
    """Run ``code`` in a fresh interpreter; ``(cpu_ms, wall_ms, stderr)`` of the child."""
    started = time.perf_counter()
    with subprocess.Popen(
        [str(PYTHON), *flags, "-c", code],
        cwd=FUNCTIONS,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        stderr = child.stderr.read() if child.stderr else ""
        _, status, usage = os.wait4(child.pid, 0)  # the child's own rusage, not the sum
        wall_ms = (time.perf_counter() - started) * 1000
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
    if child.returncode != 0:
        raise RuntimeError(f"{code!r} exited with {child.returncode}:\n{stderr[-2000:]}")
    return (usage.ru_utime + usage.ru_stime) * 1000, wall_ms, stderr


def self_times(importtime: str) -> dict[str, int]:
    """Module -> self import time in µs, from ``-X importtime`` output."""
    times = {}
    for line in importtime.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            own, _, module = line.removeprefix("import time:").split("|")
            times[module.strip()] = int(own)
    return times


def heaviest_added(env: Mapping[str, str], limit: int = HEAVIEST) -> list[dict[str, Any]]:
    """The modules ``main`` loads beyond the baseline, by self import time (one run each)."""
    base = self_times(spawn(CONFIGS[BASELINE], env, "-X", "importtime")[2])
    main = self_times(spawn(CONFIGS["main"], env, "-X", "importtime")[2])
    added = sorted(((us, m) for m, us in main.items() if m not in base), reverse=True)
    return [{"module": m, "selfMs": round(us / 1000, 1)} for us, m in added[:limit]] + [
        {"module": "(all added)", "selfMs": round(sum(us for us, _ in added) / 1000, 1)}
    ]


def loaded_at_import(env: Mapping[str, str], modules: Sequence[str] = LAZY_MODULES) -> list[str]:
    """Which of ``modules`` a fresh ``import main`` loads."""
    code = f"import sys, main; print(','.join(m for m in {list(modules)!r} if m in sys.modules))"
    done = subprocess.run(
        [str(PYTHON), "-c", code],
        check=False,
        cwd=FUNCTIONS,
        env=dict(env),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import main failed:\n{done.stderr[-2000:]}")
    return [m for m in done.stdout.strip().split(",") if m]


def measure(runs: int, env: Mapping[str, str], configs: Sequence[str]) -> dict[str, Runs]:
    """Warm up each configuration once, then ``runs`` rounds, interleaved and rotated."""
    for config in configs:
        spawn(CONFIGS[config], env)
    measured = {config: Runs(config) for config in configs}
    for round_ in range(runs):
        shift = round_ % len(configs)
        for config in [*configs[shift:], *configs[:shift]]:
            cpu_ms, wall_ms, _ = spawn(CONFIGS[config], env)
            measured[config].cpu_ms.append(cpu_ms)
            measured[config].wall_ms.append(wall_ms)
    return measured


def _stats(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def run(runs: int = RUNS, *, configs: Sequence[str] = tuple(CONFIGS)) -> dict[str, Any]:
    """Measure, then summarise: medians per configuration, ratios of ``main`` to each other."""
    env = worker_environment()
    measured = measure(runs, env, configs)
    stats = {
        c: {"cpuMs": _stats(m.cpu_ms), "wallMs": _stats(m.wall_ms)} for c, m in measured.items()
    }
    ratios = {
        other: {
            kind: common.ratio(stats["main"][kind]["median"], stats[other][kind]["median"])
            for kind in ("cpuMs", "wallMs")
        }
        for other in configs
        if other != "main"
    }
    rows = [
        {
            "config": c,
            "runs": len(measured[c].cpu_ms),
            "cpu ms": stats[c]["cpuMs"]["median"],
            "cpu min": stats[c]["cpuMs"]["min"],
            "wall ms": stats[c]["wallMs"]["median"],
            "wall min": stats[c]["wallMs"]["min"],
        }
        for c in configs
    ]
    return {
        "figures": {
            "main": stats["main"],
            "heaviestAdded": heaviest_added(env),
            "lazyLoadedAtImport": loaded_at_import(env),
        },
        "baseline": {c: s for c, s in stats.items() if c != "main"}
        | {"what": {c: CONFIGS[c] for c in configs if c != "main"}},
        "ratios": ratios,
        "params": {
            "runs": runs,
            "python": str(PYTHON.relative_to(common.ROOT)),
            "cwd": str(FUNCTIONS.relative_to(common.ROOT)),
            "configs": {c: CONFIGS[c] for c in configs},
            "goal": "ratio.sdk.cpuMs <= 1.20",
        },
        "rows": rows,
    }


def write(outcome: Mapping[str, Any], directory: Path = common.RESULTS) -> Path:
    """The outcome of :func:`run` as ``<directory>/cold_start.json``."""
    return common.write_outcome(NAME, outcome, directory)


def main() -> None:
    """Run the benchmark (no emulators needed), write and print its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    outcome = run(args.runs)
    path = common.report(
        NAME, outcome, ("config", "runs", "cpu ms", "cpu min", "wall ms", "wall min")
    )
    for other, kinds in outcome["ratios"].items():
        print(f"main / {other}: cpu {kinds['cpuMs']}x, wall {kinds['wallMs']}x")
    common.print_table(outcome["figures"]["heaviestAdded"], ("module", "selfMs"))
    print(f"written to {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
