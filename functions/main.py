"""Every deployed function of the marketplace backend, on one screen."""
# ruff: noqa: F401 (each import is re-exported: see DEPLOYED)

import os

from firekit.bootstrap import ensure_initialized

ensure_initialized()  # before anything else: the SDK verifies ID tokens on the default app

# fmt: off
from api.accounts import before_user_created, on_profile_updated, set_user_role
from api.admin import block_reported_user, disable_user, dismiss_report, find_user
from api.alerts import (
    deliverAlerts, on_device_written, on_listing_alerts, on_saved_search_written,
    send_email_digests,
)
from api.chat import (notify_new_message, on_conversation_read, on_report_created,
                      queue_unread_chat_emails, summarize_conversation)
from api.favorites import on_favorite_written, roll_up_favorites
from api.featured import feature_listing
from api.health import health
from api.listings import (
    approve_listing, on_agent_profile_changed, on_listing_reviewed, on_listing_updated,
    reject_listing, set_listing_status,
)
from api.offers import (accept_offer, counter_offer, follow_offer_move, make_offer, offer_clock,
                        on_listing_off_market, reject_offer, withdraw_offer)
from api.payments import reconcile_stripe_events, stripe_webhook
from api.photos import (
    arrange_listing_photos, process_photo_upload, remove_deleted_listing_photos,
    remove_deleted_user_photos, remove_listing_photos, remove_old_avatar, request_photo_upload,
)
from api.plans import start_agent_plan
from api.privacy import accountTasks, delete_my_account, erase_user, export_my_data, privacy_clock
from api.search import search_near
from api.viewings import (calendar_link, cancel_viewing, confirm_viewing, decline_viewing,
                          list_viewing_slots, notify_viewing_change, request_viewing,
                          reschedule_viewing, viewing_calendar, viewing_clock)
from firekit.observe import observe_deployed  # one log line and measurement per invocation
# fmt: on
DEPLOYED = observe_deployed(vars())  # what the SDK deploys: the imports above, each observed
__all__ = list(DEPLOYED)

# Development aids, never deployed: FUNCTIONS_EMULATOR, not is_emulated() (the deployer's
# shell may export FIRESTORE_EMULATOR_HOST). tests/security/test_explain_e2e.py proves it.
if os.environ.get("FUNCTIONS_EMULATOR") == "true":
    from api.dev import explain_refusal

    __all__ += ["explain_refusal"]
