"""Every Firestore document of the marketplace, as a model (see ``firekit.docmodel``).

The names here (each model, and ``DOCUMENTS``: see :mod:`marketplace.models.documents`)
are imported on first use, by :func:`__getattr__`, not with the package: importing one
model module (``marketplace.models.users``) runs this file first, and a function's cold
start should build the models its own modules need, not every model of the marketplace.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as the type checker sees them; at run time, __getattr__
    from marketplace.models.documents import *  # noqa: F403


def __getattr__(name: str) -> Any:
    """A name of :mod:`marketplace.models.documents`, importing every model the first time."""
    if name.startswith("_"):  # dunders asked by tools (copy, inspect) load nothing
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # import_module, not `from . import`: that would ask this very function for the module.
    documents = importlib.import_module("marketplace.models.documents")
    if name not in documents.__all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(documents, name)
