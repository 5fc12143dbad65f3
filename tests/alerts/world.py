"""Test data for alerts: agents, buyers with searches and devices, listings."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from google.cloud import firestore

from firekit.transactions import run_transaction
from marketplace import alerts
from pytest_firebase.wait import wait_for
from tests.listings.factories import sample_photo

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def listing(owner: str, status: str = "active", **overrides: Any) -> dict[str, Any]:
    """A London flat for sale at £350,000 that passes every submission check."""
    data: dict[str, Any] = {
        "ownerId": owner,
        "status": status,
        "kind": "sale",
        "propertyType": "flat",
        "title": "Bright two bed flat near the park",
        "description": "Light and quiet.",
        "price": {"amount": 350_000_00, "currency": "GBP"},
        "bedrooms": 2,
        "bathrooms": 1,
        "areaSqm": 70,
        "address": {
            "line1": f"{uuid.uuid4().int % 900 + 1} High Street",
            "line2": None,
            "city": "London",
            "postcode": f"SW{uuid.uuid4().int % 90 + 1} 1AA",
            "country": "GB",
        },
        "location": {"lat": 51.5014, "lng": -0.1419},
        "photos": [sample_photo()],
        "features": [],
        "createdAt": NOW,
        "updatedAt": NOW,
    }
    data.update(overrides)
    return data


def search(owner: str, **overrides: Any) -> dict[str, Any]:
    """Two-bed-plus flats or houses to buy in London up to £400,000, every channel."""
    data: dict[str, Any] = {
        "ownerId": owner,
        "name": "Two beds in London",
        "kind": "sale",
        "city": "London",
        "propertyTypes": ["flat", "house"],
        "currency": "GBP",
        "priceMin": None,
        "priceMax": 400_000_00,
        "bedroomsMin": 2,
        "near": None,
        "channels": {"inApp": True, "push": True, "email": True},
        "muted": False,
        "createdAt": NOW,
        "updatedAt": NOW,
    }
    data.update(overrides)
    return data


def index(db: Any, search_id: str) -> str | None:
    """Put a stored search in the alert index as the search trigger does; its audience."""

    def run(transaction: firestore.Transaction) -> str | None:
        return alerts.refresh_search_index(db, transaction, search_id)

    return run_transaction(db, run, busy_message="busy")


def device(owner: str, token: str) -> dict[str, Any]:
    return {
        "token": token,
        "ownerId": owner,
        "platform": "android",
        "appVersion": "2.5.0",
        "locale": "en-GB",
        "createdAt": NOW,
        "updatedAt": NOW,
    }


def account(email: str, **notifications: Any) -> dict[str, Any]:
    """A private account; ``notifications`` overrides the default settings if given."""
    data: dict[str, Any] = {"email": email, "createdAt": NOW}
    if notifications:
        data["notifications"] = {"push": True, "email": True, "quietHours": None} | notifications
    return data


class World:
    """Writes users, searches and devices with the admin client (rules are not the point).

    Searches are put in the alert index as the search trigger does, in process; with
    ``by_trigger`` (end-to-end tests) the real trigger does it, and a new buyer is ready
    once it has.
    """

    def __init__(self, db: Any, *, by_trigger: bool = False) -> None:
        self.db = db
        self.by_trigger = by_trigger

    def agent(self, *, verified: bool = True) -> str:
        agent = uid("agent")
        self.db.document(f"users/{agent}").set(
            {"displayName": "Agent", "role": "agent", "verified": verified}
        )
        return agent

    def buyer(
        self,
        *,
        tokens: int = 1,
        searches: tuple[dict[str, Any], ...] = ({},),
        synced: bool = True,
        **notifications: Any,
    ) -> str:
        """A buyer with ``tokens`` devices; ``synced``: their tokens are on the account,
        as the devices trigger keeps them (else: an account from before that trigger)."""
        buyer = uid("buyer")
        batch = self.db.batch()
        batch.set(self.db.document(f"users/{buyer}"), {"displayName": "Buyer", "role": "buyer"})
        names = [f"tok-{buyer}-{n}" for n in range(tokens)]
        kept = {"pushTokens": sorted(names, reverse=True)} if synced else {}
        batch.set(
            self.db.document(f"users/{buyer}/private/account"),
            account(f"{buyer}@example.test", **notifications) | kept,
        )
        for token in names:
            batch.set(self.db.document(f"users/{buyer}/devices/{token}"), device(buyer, token))
        for n, overrides in enumerate(searches):
            batch.set(self.db.document(f"savedSearches/{buyer}-{n}"), search(buyer, **overrides))
        batch.commit()
        for n, overrides in enumerate(searches):
            if not self.by_trigger:
                index(self.db, f"{buyer}-{n}")
            elif not overrides.get("muted"):
                ref = self.db.document(f"savedSearches/{buyer}-{n}")
                wait_for(
                    lambda ref=ref: (ref.get().to_dict() or {}).get("audience"),
                    timeout=30,
                    what=f"the search trigger indexing {ref.id}",
                )
        return buyer

    def inbox(self, who: str) -> dict[str, dict[str, Any]]:
        return {
            s.id: s.to_dict() or {}
            for s in self.db.collection(f"users/{who}/notifications").stream()
        }

    def pushes(self, who: str) -> list[dict[str, Any]]:
        return [
            s.to_dict() or {}
            for s in self.db.collection("_pushOutbox").stream()
            if str((s.to_dict() or {}).get("token", "")).startswith(f"tok-{who}-")
        ]
