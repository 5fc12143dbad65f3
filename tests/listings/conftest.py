"""Fixtures shared by the listing tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google.cloud import firestore

from .factories import uid


@pytest.fixture
def agent(firestore_db: firestore.Client) -> Callable[..., str]:
    """``agent(verified=False, plan=None)``: a new agent profile; returns its uid."""

    def make(*, verified: bool = False, plan: str | None = None) -> str:
        who = uid("agent")
        profile = {"displayName": "Agent", "role": "agent", "verified": verified, "plan": plan}
        firestore_db.document(f"users/{who}").set(profile)
        return who

    return make
