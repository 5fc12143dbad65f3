"""Hypothesis profiles for the rules suite, chosen with ``HYPOTHESIS_PROFILE``.

``thorough`` (the default, what ``make test`` runs): 100 examples per property, which
keeps the test command inside its 15 minutes on a 2-core machine. ``deep``: 1,000, for a
run before a release or after a change to the generator (``HYPOTHESIS_PROFILE=deep``).
``fast``: 30, for a quick local loop (``HYPOTHESIS_PROFILE=fast``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    # Every example is a round trip to the emulator: wall time says nothing about the code.
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
}
settings.register_profile("thorough", max_examples=100, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("deep", max_examples=1000, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("fast", max_examples=30, **_COMMON)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "thorough"))
