"""The optional compiled kernels, and the switch that turns them off.

Each kernel (``_native_*.c``, built by setup.py when a C compiler is at hand)
does one hot loop of a pure numpy/Python path faster and without the GIL; the
pure path stays, gives the same outputs, and is what runs where a kernel was
not built.  ``INDICATOR_CORE_PURE=1`` in the environment makes every run take
the pure paths (to compare both, or to rule a kernel out when chasing a bug).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

PURE_ENV = "INDICATOR_CORE_PURE"


def pure_requested() -> bool:
    return os.environ.get(PURE_ENV, "").strip() not in ("", "0")


def load(name: str) -> ModuleType | None:
    """The kernel ``indicator_core._native_<name>``, or ``None`` if it is not built or pure paths are asked for."""
    if pure_requested():
        return None
    try:
        return importlib.import_module(f"indicator_core._native_{name}")
    except ImportError:
        return None


def describe() -> str:
    """One line for ``indicators plugins``: which path the parsers take."""
    if pure_requested():
        return f"parsers: pure Python/numpy ({PURE_ENV} is set)"
    built = [name for name in ("trades", "books", "derivs", "json") if load(name) is not None]
    if not built:
        return "parsers: pure Python/numpy (the compiled kernels are not built: a C compiler was missing at install)"
    return "parsers: compiled kernels for " + ", ".join(built)
