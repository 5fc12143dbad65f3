"""Accounts: the sign-up blocking function and the admin role callable."""

from __future__ import annotations

from firebase_functions import identity_fn

from firekit import bootstrap, claims, observe
from firekit.callables import CallContext, callable_function
from firekit.errors import BUSY, AppError, to_https_error
from firekit.events import DocumentChange, Effects, document_trigger
from firekit.ratelimit import RateLimit
from marketplace import accounts, profiles, signup
from marketplace.models.users import Profile
from marketplace.roles import DEFAULT_ROLE, ROLE_CLAIM, Role


@identity_fn.before_user_created()
def before_user_created(event: identity_fn.AuthBlockingEvent) -> identity_fn.BeforeCreateResponse:
    """Refuse bad sign-ups; give everyone else the default role and a profile."""
    user = event.data
    observe.annotate(uid=user.uid)
    provider = event.additional_user_info.provider_id if event.additional_user_info else None
    try:
        signup.check_sign_up(signup.SignUp(user.uid, user.email, user.display_name, provider))
        profiles.create_profile(
            bootstrap.db(),
            user.uid,
            email=user.email,
            display_name=user.display_name,
            photo_url=signup.usable_photo_url(user.photo_url),
        )
    except AppError as refused:
        observe.annotate(reason=refused.message)
        raise to_https_error(refused) from None
    except Exception as exc:  # one mapping: its traceback on the line, INTERNAL to Auth
        raise to_https_error(exc) from exc
    # Merge, never replace: an import or an earlier function may have set other claims.
    return identity_fn.BeforeCreateResponse(
        custom_claims={**(user.custom_claims or {}), ROLE_CLAIM: DEFAULT_ROLE.value}
    )


# Admins change roles by hand; 60 a minute stops a runaway script, not a person.
@callable_function(
    accounts.SetRoleRequest,
    roles={Role.ADMIN.value},
    rate_limit=RateLimit(60, per_seconds=60),
    refusals=(accounts.OWN_ROLE, claims.NO_SUCH_USER, claims.CLAIMS_FULL, BUSY),
)
def set_user_role(call: CallContext, data: accounts.SetRoleRequest) -> accounts.SetRoleResult:
    """Admin only: change a user's role (claim merged, profile mirrored, audit logged)."""
    return accounts.set_role(bootstrap.db(), actor_uid=call.uid, request=data)


@document_trigger("users/{uid}", model=Profile, on="updated", owned_fields=profiles.DERIVED_FIELDS)
def on_profile_updated(change: DocumentChange[Profile], effects: Effects) -> None:
    """Recompute a profile's server-owned fields after its owner (or a function) edits it."""
    # Derive from the document as it is now, read in the effect's transaction, not from
    # the event's copy: events arrive out of order, and a stale one applied last would
    # leave a stale searchName that its own (skipped) write could never correct.
    profiles.refresh_derived_fields(effects.db, effects.tx, change.params["uid"])
