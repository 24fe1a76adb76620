"""indicator_core: run trade-tick indicators together in one exact, resumable pass.

This package is the public API: an indicator (a built-in one under
``plugins/`` or a third-party package) imports what it needs from here and
nothing else (a contract checked in CI, see docs/ARCHITECTURE.md)::

    from indicator_core import hookimpl, Indicator, Params, Bar, TradeBatch

Extension points
    ``hookimpl`` marks a plugin's hooks (:mod:`indicator_core.hookspecs`);
    ``Indicator`` the base class, ``Params`` its settings model, ``Emit`` the
    writer it is handed, ``Input`` a record input (SPEC section 12), ``Signal``
    an output whose records are signals (notifiers deliver them);
    ``StreamKind`` the base class of an input kind; ``VenueFormat`` a venue's file
    format (its parser fills a ``ColumnBuilder`` into a ``ParsedChunk``, bad lines
    as ``Reject``); ``Instrument`` a contract.
Records from columns
    ``json_lines`` writes a batch of records from columns at once (``JsonField`` per
    field), the ``JsonLines`` it returns handed to ``Emit`` like one record: for an
    indicator that writes a record per trade or per liquidation; ``per_distinct`` works a
    value out once per distinct key of a column whose values repeat.
Events an indicator receives
    ``TradeBatch`` (trades in columns; ``column_sum`` sums one exactly),
    ``Bar`` (a closed minute), ``BarRun`` (a run of closed minutes as columns), ``BookMinute`` (the book at a minute's close),
    ``DerivsMinute`` (funding, open interest and liquidations at a minute's close; ``Liquidation``),
    ``DerivsMinutes`` (a run of them as columns; ``LiquidationColumns``, ``Decimals``: exact decimals in
    columns; ``split_decimal``, ``mantissa_at``, ``decimal_at``: a decimal to integers and back, exponent
    kept), ``LateTrades``, ``Gaps``, ``RejectedLines`` (blocks of late-trade, gap and reject quality events
    as columns, ``Indicator.on_quality_events``).
Exact numbers (SPEC section 3)
    ``EXACT`` the decimal context, ``ROUNDING``, ``PRICE_PLACES``,
    ``RATIO_PLACES``, ``to_dec``, ``div_round``, ``fmt``, ``fmt_signed``,
    ``floor_scaled``/``ceil_scaled`` (a price as an integer bound at a scale),
    ``parse_decimal`` (a decimal string as mantissa and scale, exactly),
    ``LastText`` (a value kept as its last printed text), ``step_125`` (the 1-2-5 value nearest to a
    width: bucket widths and footprint rows).
Time (SPEC section 2)
    ``MINUTE_MS``, ``TIMEFRAMES``, ``iso_minute``, ``iso_minutes``, ``iso_ms``,
    ``minute_of_iso``, ``period_start``, ``session_start``, ``parse_anchor``.
Settings types and helpers
    ``SessionAnchor``, ``Timeframe``, ``Unit``, ``PriceWidth`` (validated ``Params`` fields);
    ``Candle``, ``CandleBuilder`` (higher timeframes from minutes);
    ``InstrumentKey`` (exchange, market, instrument of a vault path).

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
    "Bar": "bars", "BarRun": "bar_run",
    "hookimpl": "hookspecs",
    "Emit": "indicator", "Indicator": "indicator", "Input": "indicator", "Params": "indicator",
    "Signal": "indicator",
    "Instrument": "instruments",
    "Gaps": "quality_events", "LateTrades": "quality_events", "RejectedLines": "quality_events",
    "JsonField": "jsonlines", "JsonLines": "jsonlines", "json_lines": "jsonlines", "per_distinct": "jsonlines",
    "EXACT": "numbers", "LastText": "numbers", "PRICE_PLACES": "numbers", "RATIO_PLACES": "numbers",
    "ROUNDING": "numbers", "ceil_scaled": "numbers", "div_round": "numbers", "floor_scaled": "numbers",
    "fmt": "numbers", "fmt_signed": "numbers", "parse_decimal": "numbers", "to_dec": "numbers",
    "step_125": "numbers",
    "PriceWidth": "params", "SessionAnchor": "params", "Timeframe": "params", "Unit": "params",
    "Candle": "resample", "CandleBuilder": "resample",
    "VenueFormat": "sources.formats",
    "ColumnBuilder": "sources.parsed", "ParsedChunk": "sources.parsed", "Reject": "sources.parsed",
    "InstrumentKey": "storage",
    "StreamKind": "streams.base",
    "BookMinute": "streams.book_stream",
    "DerivsMinute": "streams.derivs_events", "Liquidation": "streams.derivs_events",
    "DerivsMinutes": "streams.derivs_batch", "LiquidationColumns": "streams.derivs_batch",
    "Decimals": "decimal_columns", "decimal_at": "numbers", "mantissa_at": "decimal_columns",
    "split_decimal": "decimal_columns",
    "MINUTE_MS": "timeutil", "TIMEFRAMES": "timeutil", "iso_minute": "timeutil", "iso_minutes": "timeutil",
    "iso_ms": "timeutil", "minute_of_iso": "timeutil", "parse_anchor": "timeutil", "period_start": "timeutil",
    "session_start": "timeutil",
    "TradeBatch": "trade_batch", "column_sum": "trade_batch",
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
    from .indicator import Emit, Indicator, Input, Params, Signal
    from .instruments import Instrument
    from .numbers import (EXACT, PRICE_PLACES, RATIO_PLACES, ROUNDING, LastText, ceil_scaled, decimal_at, div_round,
                          floor_scaled, fmt, fmt_signed, to_dec)
    from .params import PriceWidth, SessionAnchor, Timeframe, Unit
    from .quality_events import Gaps, LateTrades, RejectedLines
    from .resample import Candle, CandleBuilder
    from .numbers import parse_decimal, step_125
    from .sources.formats import VenueFormat
    from .sources.parsed import ColumnBuilder, ParsedChunk, Reject
    from .storage import InstrumentKey
    from .streams.base import StreamKind
    from .streams.book_stream import BookMinute
    from .bar_run import BarRun
    from .decimal_columns import Decimals, mantissa_at, split_decimal
    from .streams.derivs_batch import DerivsMinutes, LiquidationColumns
    from .streams.derivs_events import DerivsMinute, Liquidation
    from .timeutil import (MINUTE_MS, TIMEFRAMES, iso_minute, iso_minutes, iso_ms, minute_of_iso, parse_anchor,
                           period_start, session_start)
    from .trade_batch import TradeBatch, column_sum
