"""Seed data for the emulators: accounts for every role and a lived-in marketplace.

The seed runs outside the functions' own environment (from ``make dev`` and the tests),
so importing it puts ``functions/`` on the path, where the domain it reuses lives.
"""

import sys
from pathlib import Path

_FUNCTIONS = str(Path(__file__).resolve().parents[1] / "functions")
if _FUNCTIONS not in sys.path:
    sys.path.insert(0, _FUNCTIONS)
