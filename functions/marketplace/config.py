"""Every setting and secret of the marketplace, declared once (read only inside handlers).

Values come from ``functions/.env`` (all environments), ``functions/.env.local`` (the
emulators only) and, for secrets, Secret Manager or ``functions/.secret.local`` locally.
"""

from __future__ import annotations

from firekit.settings import define_string

# No default on purpose: the value must come from functions/.env, so a deploy without it
# is refused by the CLI instead of silently using a baked-in name.
MARKETPLACE_NAME = define_string("MARKETPLACE_NAME", description="The product name users see.")
