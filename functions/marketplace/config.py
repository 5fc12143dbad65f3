"""Every setting and secret of the marketplace, declared once (read only inside handlers).

Values come from ``functions/.env`` (all environments), ``functions/.env.local`` (the
emulators only) and, for secrets, Secret Manager or ``functions/.secret.local`` locally.
"""

from __future__ import annotations

from firekit.settings import define_secret, define_string

# No default on purpose: the value must come from functions/.env, so a deploy without it
# is refused by the CLI instead of silently using a baked-in name.
MARKETPLACE_NAME = define_string("MARKETPLACE_NAME", description="The product name users see.")

# Stripe. The keys are SecretParams bound to the functions that use them; the API base
# is Stripe's own unless overridden (the dev stack and the tests point it at localstripe).
STRIPE_SECRET_KEY = define_secret("STRIPE_SECRET_KEY", description="Stripe secret API key.")
STRIPE_WEBHOOK_SECRET = define_secret(
    "STRIPE_WEBHOOK_SECRET", description="Signing secret of the Stripe webhook endpoint."
)
STRIPE_API_BASE = define_string(
    "STRIPE_API_BASE",
    default="https://api.stripe.com",
    description="Stripe's API (localstripe's address under the emulators).",
)

# Processed photos are served by plain URL from their own bucket, which grants everyone
# read (uploads stay in the private default bucket). Empty: ``<project>-photos``.
PHOTOS_BUCKET = define_string(
    "PHOTOS_BUCKET",
    default="",
    description="The public bucket processed photos are served from (default <project>-photos).",
)
