"""The benchmarks cannot rot: every bench module imports, and the near-search one runs
small against the emulator (``make bench`` runs them at full size; ``make test`` never)."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import pytest
from google.cloud import firestore

import bench
from bench import common, near_search


def test_every_bench_module_imports() -> None:
    names = [module.name for module in pkgutil.iter_modules(bench.__path__)]

    for name in names:
        importlib.import_module(f"bench.{name}")
    assert {"common", "near_search"} <= set(names)


def test_percentiles_interpolate_between_ranks() -> None:
    assert common.percentiles([4, 1, 3, 2], 50, 95) == {"p50": 2.5, "p95": pytest.approx(3.85)}
    assert common.percentiles([7], 50) == {"p50": 7}
    assert common.ratio(3, 2) == 1.5 and common.ratio(3, 0) is None


def test_the_near_search_bench_runs_small(firestore_db: firestore.Client, tmp_path: Path) -> None:
    outcome = near_search.run(
        firestore_db, listings=300, reps=1, points=[("London", 51.5074, -0.1278)], radii=(1, 10)
    )
    path = near_search.write(outcome, directory=tmp_path)

    written = json.loads(path.read_text())
    figures = written["figures"]
    assert figures["searches"] == 2 and figures["refused"] == 0
    assert figures["documentsRead"]["max"] >= figures["matched"]["p95"] > 0
    assert figures["readsPerMatch"] >= 1
    assert written["baseline"]["latencyMs"]["p50"] > 0
    assert written["ratio"]["latencyP50"] > 0
    assert [row["radiusKm"] for row in written["rows"]] == [1, 10]
