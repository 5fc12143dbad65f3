"""Security-rules tests: the generator's output, and the real rules against the models.

pytest imports this package as ``rules`` (``tests/`` is no package), which hides the
top-level ``rules/`` folder inside the test run: import siblings relatively, and reach
``rules/`` by path (:func:`load_rules_module`) or through a subprocess.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


def load_rules_module(name: str) -> ModuleType:
    """``rules/<name>.py`` as module ``rules_src.<name>``, loaded once."""
    qualified = f"rules_src.{name}"
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, RULES_DIR / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module  # dataclasses look their module up while built
        spec.loader.exec_module(module)
    return sys.modules[qualified]
