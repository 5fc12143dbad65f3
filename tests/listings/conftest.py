"""Fixtures shared by the listing tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .factories import uid


@pytest.fixture
def agent(firestore_db: Any) -> Callable[..., str]:
    """``agent(verified=False, plan=None)``: a new agent profile; returns its uid."""

    def make(*, verified: bool = False, plan: str | None = None) -> str:
        who = uid("agent")
        profile = {"displayName": "Agent", "role": "agent", "verified": verified, "plan": plan}
        firestore_db.document(f"users/{who}").set(profile)
        return who

    return make
