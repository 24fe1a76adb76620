"""indicator_core: run trade-tick indicators together in one exact, resumable pass.

Public API for indicator authors::

    from indicator_core import hookimpl, Indicator, Params, Bar, TradeBatch

The names are imported at first use (PEP 562), so that ``import
indicator_core`` alone loads nothing heavy: the ``indicators`` command sets up
its process (command.py) before numpy is loaded.
"""

from __future__ import annotations

from importlib import import_module as _import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that defines it
_HOME = {
    "Bar": "bars", "Emit": "indicator", "Indicator": "indicator", "Input": "indicator", "Instrument": "instruments",
    "Params": "indicator", "StreamKind": "streams.base", "TradeBatch": "trades", "column_sum": "trades", "hookimpl": "hookspecs",
}

__all__ = [*sorted(_HOME), "__version__"]


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_import_module(f".{home}", __name__), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return list(__all__)


if TYPE_CHECKING:
    from .bars import Bar
    from .hookspecs import hookimpl
    from .indicator import Emit, Indicator, Input, Params
    from .instruments import Instrument
    from .streams.base import StreamKind
    from .trades import TradeBatch, column_sum
