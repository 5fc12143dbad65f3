"""The agent plan: a Stripe subscription mirrored under ``customers/{uid}/subscriptions``,
a ``plan`` custom claim and the profile's ``plan`` (being built: issue 5)."""

from __future__ import annotations

from firekit import webhooks

HANDLERS: dict[str, webhooks.Handler] = {}
"""Stripe event types this module applies, by type."""
