"""Who may create an account: a sign-up policy checked before Firebase Auth creates it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from firekit.errors import InvalidArgument
from marketplace.models.users import MAX_DISPLAY_NAME

# Throwaway-inbox providers. Kept short on purpose: it stops casual abuse, and a listing
# marketplace needs reachable users; extend it from abuse reports, not from a scraped list.
DISPOSABLE_EMAIL_DOMAINS = frozenset(
    {
        "10minutemail.com",
        "discard.email",
        "dispostable.com",
        "fakeinbox.com",
        "getnada.com",
        "guerrillamail.com",
        "guerrillamail.net",
        "maildrop.cc",
        "mailinator.com",
        "mailnesia.com",
        "mintemail.com",
        "mohmal.com",
        "sharklasers.com",
        "spamgourmet.com",
        "temp-mail.org",
        "tempmail.com",
        "tempmailo.com",
        "throwawaymail.com",
        "trashmail.com",
        "yopmail.com",
    }
)

# Deliberately stricter than RFC 5322: the address must be deliverable by ordinary mail
# servers, because listing enquiries and receipts go to it.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"^[A-Za-z0-9._%+'-]{{1,64}}@(?P<domain>(?:{_LABEL}\.)+[A-Za-z]{{2,63}})$")


@dataclass(frozen=True)
class SignUp:
    """What Auth tells us about an account about to be created."""

    uid: str
    email: str | None
    display_name: str | None
    provider: str | None


def _refuse(field: str, issue: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, [{"field": field, "issue": issue, "message": message}])


def check_sign_up(sign_up: SignUp) -> None:
    """Refuse malformed or disposable sign-ups with a message the user can act on."""
    if sign_up.email is not None:
        match = _EMAIL.match(sign_up.email)
        if match is None:
            raise _refuse("email", "malformed", "Enter a valid email address.")
        domain = match.group("domain").lower()
        if any(domain == d or domain.endswith(f".{d}") for d in DISPOSABLE_EMAIL_DOMAINS):
            raise _refuse(
                "email",
                "disposable",
                "Disposable email addresses cannot be used; "
                "use an address you will keep, so agents can reach you.",
            )
    elif sign_up.provider in (None, "password"):
        raise _refuse("email", "missing", "An email address is required.")
    if sign_up.display_name is not None and len(sign_up.display_name) > MAX_DISPLAY_NAME:
        raise _refuse(
            "displayName", "too_long", f"Names are at most {MAX_DISPLAY_NAME} characters."
        )


def usable_photo_url(url: str | None) -> str | None:
    """The provider's photo URL if the profile may hold it (https, at most 2,048 long).

    Anything else is dropped rather than stored: a profile the rules consider invalid
    would refuse every later edit by its owner.
    """
    if url and url.startswith("https://") and len(url) <= 2048 and " " not in url:
        return url
    return None
