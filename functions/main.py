"""Every deployed function of the marketplace backend, on one screen."""

import os

from firekit.bootstrap import ensure_initialized

ensure_initialized()  # before anything else: the SDK verifies ID tokens on the default app

# fmt: off
from api.accounts import before_user_created, on_profile_updated, set_user_role
from api.alerts import (
    deliverAlerts, on_device_written, on_listing_alerts, on_saved_search_written,
    send_email_digests,
)
from api.chat import (
    notify_new_message, on_conversation_read, on_report_created, queue_unread_chat_emails,
    summarize_conversation,
)
from api.favorites import on_favorite_written, roll_up_favorites
from api.featured import feature_listing
from api.health import health
from api.listings import (
    approve_listing, on_agent_profile_changed, on_listing_reviewed, on_listing_updated,
    reject_listing, set_listing_status,
)
from api.payments import reconcile_stripe_events, stripe_webhook
from api.plans import start_agent_plan
from api.search import search_near

__all__ = [
    "approve_listing", "before_user_created", "deliverAlerts", "feature_listing", "health",
    "notify_new_message", "on_agent_profile_changed", "on_conversation_read",
    "on_device_written", "on_favorite_written", "on_listing_alerts", "on_listing_reviewed",
    "on_listing_updated", "on_profile_updated", "on_report_created", "on_saved_search_written",
    "queue_unread_chat_emails", "reconcile_stripe_events", "reject_listing",
    "roll_up_favorites", "search_near", "send_email_digests", "set_listing_status",
    "set_user_role", "start_agent_plan", "stripe_webhook", "summarize_conversation",
]
# fmt: on
DEPLOYED = tuple(__all__)

# Development aids, never deployed: only the Functions emulator sets FUNCTIONS_EMULATOR
# (not is_emulated(): `firebase deploy` loads this file in the deployer's shell, which may
# export FIRESTORE_EMULATOR_HOST). tests/security/test_explain_e2e.py proves it.
if os.environ.get("FUNCTIONS_EMULATOR") == "true":
    from api.dev import explain_refusal

    __all__ += ["explain_refusal"]
