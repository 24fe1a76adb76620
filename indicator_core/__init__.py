"""indicator_core: run trade-tick indicators together in one exact, resumable pass.

Public API for indicator authors::

    from indicator_core import hookimpl, Indicator, Params, Bar, TradeBatch
"""

from .bars import Bar
from .hookspecs import hookimpl
from .indicator import Emit, Indicator, Input, Params
from .instruments import Instrument
from .trades import TradeBatch, column_sum

__version__ = "0.1.0"

__all__ = [
    "Bar", "Emit", "Indicator", "Input", "Instrument", "Params", "TradeBatch", "column_sum", "hookimpl",
    "__version__",
]
