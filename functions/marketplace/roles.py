"""Who a user is to the marketplace. The role lives in a custom claim; profiles mirror it."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

ROLE_CLAIM = "role"


class Role(StrEnum):
    """A user's role. Everyone starts as a buyer (buyers also rent)."""

    BUYER = "buyer"
    AGENT = "agent"
    ADMIN = "admin"


DEFAULT_ROLE = Role.BUYER
RoleName = Literal["buyer", "agent", "admin"]
"""The role as stored in documents (strict models take plain strings, not enum members)."""


def role_of(claims: dict[str, object]) -> Role:
    """The role a token's claims grant; unknown or missing means the default role."""
    value = claims.get(ROLE_CLAIM)
    try:
        return Role(str(value)) if value is not None else DEFAULT_ROLE
    except ValueError:
        return DEFAULT_ROLE
