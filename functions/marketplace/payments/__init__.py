"""Payments with Stripe: one customer per user, the agent plan, featured listings.

Stripe is the source of truth for money; Firestore keeps a mirror under
``customers/{uid}/...`` that only functions write. Every call that creates something in
Stripe carries an idempotency key derived from our ids, and every webhook event is
applied once, in one transaction, never over newer state (``firekit.webhooks``).
"""
