"""Payments tests run against localstripe, emptied before each test."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
import stripe
from google.cloud import firestore

from marketplace.payments import stripe_api


@pytest.fixture
def stripe_client(firebase_stack: Any, firestore_db: firestore.Client) -> stripe.StripeClient:
    """The functions' own Stripe client, on an empty localstripe (webhooks stay registered)."""
    base = stripe_api.api_base()
    request = urllib.request.Request(f"{base}/_config/data", method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return stripe_api.client()
