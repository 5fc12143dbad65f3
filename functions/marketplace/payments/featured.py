"""Featured listings: an agent pays to feature an active listing for some days (being
built: issue 5)."""

from __future__ import annotations

from firekit import webhooks

HANDLERS: dict[str, webhooks.Handler] = {}
"""Stripe event types this module applies, by type."""
