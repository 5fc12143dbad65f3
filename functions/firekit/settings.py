"""Settings and secrets through ``firebase_functions.params``.

The pattern: declare every param once, at import, in one module of the app (declaring
reads nothing, and firebase-tools reads the declarations at deploy time); list each
secret in the ``secrets=[...]`` option of every function that uses it (an unlisted
secret reads as ``""``); read values only inside handlers::

    # config.py
    API_BASE_URL = define_string("API_BASE_URL", default="http://127.0.0.1:12111")
    API_KEY = define_secret("API_KEY", description="Key for the payment provider")

    # a handler module
    @callable_function(ChargeInput, secrets=[config.API_KEY])
    def charge(call, data):
        key = require_secret(config.API_KEY)  # refuses "" or "changeme" in production

Declaring is idempotent here (the SDK itself refuses a second declaration of a name), so
re-importing a config module in tests is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from firebase_functions import params

from firekit.bootstrap import is_emulated

_P = TypeVar("_P", params.StringParam, params.IntParam, params.BoolParam, params.SecretParam)
_AnyParam = params.StringParam | params.IntParam | params.BoolParam | params.SecretParam
_declared: dict[str, _AnyParam] = {}

# Values that mean "nobody set this yet"; compared case-insensitively.
PLACEHOLDER_VALUES = frozenset(
    {"changeme", "change-me", "change_me", "changethis", "placeholder", "todo", "xxx", "dummy"}
)


class MissingSecret(RuntimeError):  # noqa: N818
    """A secret is empty or a placeholder outside the emulators: a deployment mistake.

    Deliberately not an ``AppError``: callers get ``INTERNAL``, the log gets the name.
    """


def define_string(
    name: str, default: str | None = None, description: str | None = None
) -> params.StringParam:
    """Declare (once) a string param read from the environment / ``.env`` files."""
    return _declare(
        name, params.StringParam, lambda: params.StringParam(name, default, description=description)
    )


def define_int(
    name: str, default: int | None = None, description: str | None = None
) -> params.IntParam:
    """Declare (once) an integer param."""
    return _declare(
        name, params.IntParam, lambda: params.IntParam(name, default, description=description)
    )


def define_bool(
    name: str, default: bool | None = None, description: str | None = None
) -> params.BoolParam:
    """Declare (once) a boolean param."""
    return _declare(
        name, params.BoolParam, lambda: params.BoolParam(name, default, description=description)
    )


def define_secret(name: str, description: str | None = None) -> params.SecretParam:
    """Declare (once) a Secret Manager secret; list it in ``secrets=[...]`` where used."""
    return _declare(
        name, params.SecretParam, lambda: params.SecretParam(name, description=description)
    )


def _declare(name: str, kind: type[_P], make: Callable[[], _P]) -> _P:
    # The first declaration wins; a later one with another type is a programming error.
    existing = _declared.get(name)
    if existing is None:
        created = make()
        _declared[name] = created
        return created
    if not isinstance(existing, kind):
        raise ValueError(f"Param {name} is already declared as {type(existing).__name__}.")
    return existing


def require_secret(secret: params.SecretParam) -> str:
    """Read a secret inside a handler, refusing an empty or placeholder value in production.

    Under the emulators any value is accepted, so local runs work with dummy keys.
    """
    value = secret.value
    if not is_emulated() and is_placeholder(value):
        # Name only: the value itself never goes to a log or an error.
        raise MissingSecret(f"Secret {secret.name} is empty or a placeholder.")
    return value


def is_placeholder(value: str) -> bool:
    """True for values that are obviously not a real secret."""
    text = value.strip().lower()
    return not text or text in PLACEHOLDER_VALUES or (text.startswith("<") and text.endswith(">"))
