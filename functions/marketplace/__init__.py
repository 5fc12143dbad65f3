"""The property marketplace: business rules built only on the integration core.

Modules here never import ``firebase_functions``; the adapters in ``api/`` turn triggers
and callables into calls of these functions.
"""

__version__ = "0.1.0"
