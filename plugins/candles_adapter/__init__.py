"""Candles (SPEC section 5): ``candles_{tf}.jsonl`` for each configured timeframe.

1m candles are the one-minute bars themselves (empty filled minutes
included); higher timeframes aggregate them on UTC-aligned periods, see
:mod:`indicator_core.resample`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import Field, field_validator

from indicator_core import (
    TIMEFRAMES, Bar, BarRun, Candle, CandleBuilder, Emit, Indicator, JsonField, LastText, Params, Timeframe, fmt,
    hookimpl, iso_minutes, json_lines, period_start,
)

class CandlesParams(Params):
    timeframes: list[Timeframe] = Field(default_factory=lambda: ["1m"], min_length=1)

    @field_validator("timeframes")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"timeframes listed twice: {v}")
        return v


def _record(timestamp_utc: str, o: Decimal, h: Decimal, lo: Decimal, c: Decimal, volume: Decimal, quote: Decimal,
            trade_count: int) -> dict[str, Any]:
    return {"timestamp_utc": timestamp_utc, "open": fmt(o), "high": fmt(h), "low": fmt(lo), "close": fmt(c),
            "volume": fmt(volume), "quote_volume": fmt(quote), "trade_count": trade_count}


def candle_record(c: Candle) -> dict[str, Any]:
    return _record(c.timestamp_utc, c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trade_count)


def bar_record(bar: Bar) -> dict[str, Any]:
    """:func:`candle_record` of the one-minute candle of a bar with trades: the bar itself."""
    return _record(bar.timestamp_utc, bar.open, bar.high, bar.low, bar.close, bar.base_volume, bar.quote_volume,
                   bar.trade_count)


class Candles(Indicator):
    name = "candles"
    version = "1"
    Params = CandlesParams

    def __init__(self, instrument, params: CandlesParams) -> None:
        super().__init__(instrument, params)
        self.builders = {tf: CandleBuilder(TIMEFRAMES[tf]) for tf in params.timeframes}
        self._empty_price = LastText()

    def outputs(self) -> list[str]:
        return [f"candles_{tf}" for tf in self.params.timeframes]

    def on_bar(self, bar: Bar, emit: Emit) -> None:
        for tf, builder in self.builders.items():
            if builder.tf == 1 and builder.current is None and not bar.empty:  # the one-minute candle is the bar
                emit("candles_1m", bar_record(bar))
            else:
                self._add(tf, builder, bar, emit)

    def _add(self, tf: str, builder: CandleBuilder, bar: Bar, emit: Emit) -> None:
        for c in builder.add(bar):
            emit(f"candles_{tf}", candle_record(c))
        if builder.tf == 1:  # a one-minute candle is complete with its bar
            for c in builder.advance(bar.minute + 1):
                emit(f"candles_{tf}", candle_record(c))

    def on_empty_bars(self, first: int, count: int, price: Decimal, emit: Emit) -> None:
        for tf, builder in self.builders.items():
            if builder.tf == 1 and builder.current is None:
                self._empty_minutes(first, count, price, emit)
            else:
                self._empty_period_starts(tf, builder, first, count, price, emit)

    def _empty_period_starts(self, tf: str, builder: CandleBuilder, first: int, count: int, price: Decimal,
                             emit: Emit) -> None:
        # only the first minute of a period can close a candle or open one; the others keep time
        minute, end = first, first + count
        while minute < end:
            self._add(tf, builder, Bar.empty_at(self.instrument.inst_id, minute, price), emit)
            minute = period_start(minute, builder.tf) + builder.tf

    def on_bars(self, bars: BarRun, emit: Emit) -> None:
        # the one-minute candles are the run's rows, written from columns; a longer timeframe takes the bars
        items = None
        for tf, builder in self.builders.items():
            if builder.tf == 1 and builder.current is None:
                emit("candles_1m", json_lines([
                    JsonField("timestamp_utc", "text", bars.timestamps()),
                    bars.open.field("open"), bars.high.field("high"), bars.low.field("low"),
                    bars.close.field("close"),
                    bars.buy_volume("base").plus(bars.sell_volume("base")).field("volume"),
                    bars.buy_volume("quote").plus(bars.sell_volume("quote")).field("quote_volume"),
                    JsonField("trade_count", "int", bars.trade_count, quoted=False),
                ], len(bars)))
                continue
            if builder.tf > 1:  # a period at a time
                for c in builder.add_run(bars):
                    emit(f"candles_{tf}", candle_record(c))
            else:
                items = bars.items() if items is None else items
                for item in items:
                    if type(item) is tuple:
                        self._empty_period_starts(tf, builder, *item, emit)
                    else:
                        self._add(tf, builder, item, emit)
            for c in builder.advance(int(bars.minute[-1]) + 1):  # what the run implies
                emit(f"candles_{tf}", candle_record(c))

    def _empty_minutes(self, first: int, count: int, price: Decimal, emit: Emit) -> None:
        """The one-minute candles of empty minutes, as :meth:`_add` makes them (tests/test_empty_runs.py): all
        four prices the last close, no volume."""
        text = self._empty_price.of(price)  # a run of empty minutes shares its price object
        for timestamp_utc in iso_minutes(first, count):
            emit("candles_1m", {"timestamp_utc": timestamp_utc, "open": text, "high": text, "low": text,
                                "close": text, "volume": "0", "quote_volume": "0", "trade_count": 0})

    def on_advance(self, minute: int, emit: Emit) -> None:
        for tf, builder in self.builders.items():
            for c in builder.advance(minute):
                emit(f"candles_{tf}", candle_record(c))

    def get_state(self) -> dict[str, Any]:
        return {tf: b.to_state() for tf, b in self.builders.items()}

    def set_state(self, state: dict[str, Any]) -> None:
        for tf, b in self.builders.items():
            b.set_state(state[tf])


@hookimpl
def register_indicators(register) -> None:
    register(Candles)
