"""Every deployed function of the marketplace backend, on one screen."""

from firekit.bootstrap import ensure_initialized

# Before anything else: the SDK verifies callers' ID tokens on the default app.
ensure_initialized()

from api.accounts import before_user_created, on_profile_updated, set_user_role  # noqa: E402
from api.health import health  # noqa: E402

__all__ = [
    "before_user_created",
    "health",
    "on_profile_updated",
    "set_user_role",
]
