"""Higher-timeframe candles from one-minute bars, shared by the candles and wicks indicators.

A candle of ``tf`` minutes covers the UTC-aligned period holding its minutes
(1d opens at 00:00 UTC).  Its open, high, low and close are trade prices: the
bars with trades set them, filled empty bars only keep time.  A period that
only saw empty bars gives an empty candle at the previous close.  The candle
closes when the stream advances past its period.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from .bars import Bar, Rows
from .numbers import decimal_at
from .timeutil import iso_minute, period_start

if TYPE_CHECKING:
    from .bar_run import BarRun

# a run's periods are taken a few numpy calls each (add_run) from this many minutes a candle; shorter candles
# go a bar at a time
RUN_PERIOD_MINUTES = 5


@dataclass
class Candle:
    start: int  # first minute of the period
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal  # base
    quote_volume: Decimal
    trade_count: int
    traded: bool  # at least one bar with trades

    @property
    def timestamp_utc(self) -> str:
        return iso_minute(self.start)

    def to_state(self) -> dict[str, Any]:
        return {
            "start": self.start, "open": str(self.open), "high": str(self.high), "low": str(self.low),
            "close": str(self.close), "volume": str(self.volume), "quote_volume": str(self.quote_volume),
            "trade_count": self.trade_count, "traded": self.traded,
        }

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> "Candle":
        return cls(
            int(d["start"]), Decimal(d["open"]), Decimal(d["high"]), Decimal(d["low"]), Decimal(d["close"]),
            Decimal(d["volume"]), Decimal(d["quote_volume"]), int(d["trade_count"]), bool(d["traded"]),
        )


class CandleBuilder:
    """Aggregates one-minute bars into candles of ``tf_minutes``."""

    def __init__(self, tf_minutes: int) -> None:
        self.tf = tf_minutes
        self.current: Candle | None = None

    def add(self, bar: Bar) -> list[Candle]:
        """Add a closed bar; returns the candles it closed (a bar of a later period closes the current one)."""
        closed = self.advance(bar.minute)
        start = period_start(bar.minute, self.tf)
        c = self.current
        if c is None:
            p = bar.close if bar.empty else bar.open
            c = self.current = Candle(start, p, p, p, p, Decimal(0), Decimal(0), 0, False)
        if bar.empty:
            return closed
        if not c.traded:
            c.open, c.high, c.low = bar.open, bar.high, bar.low
            c.traded = True
        else:
            c.high = max(c.high, bar.high)
            c.low = min(c.low, bar.low)
        c.close = bar.close
        c.volume += bar.base_volume
        c.quote_volume += bar.quote_volume
        c.trade_count += bar.trade_count
        return closed

    def add_empty(self, inst_id: str, first: int, count: int, price: Decimal) -> list[Candle]:
        """:meth:`add` of the empty bars of ``count`` filled minutes from ``first`` at ``price``: only a period's
        first minute can close the candle before it or open an untraded one, so only those are added."""
        closed: list[Candle] = []
        minute, end = first, first + count
        while minute < end:
            closed += self.add(Bar.empty_at(inst_id, minute, price))
            minute = period_start(minute, self.tf) + self.tf
        return closed

    def add_run(self, run: "BarRun") -> list[Candle]:
        """:meth:`add` of each of ``run``'s minutes in turn (a filled minute as the empty bar at the run's price),
        a period at a time: the candles closed on the way, equal in value to those :meth:`add` makes.

        Within a period only its first minute can close the candle before it or open one, and its traded
        minutes only move the open (the first), high and low (the first at the extreme, as ``max`` keeps the
        first of equals), close (the last) and the sums.  The run's own ``on_advance`` (to the minute after its
        last) is the caller's to make.
        """
        n = len(run)
        if self.tf < RUN_PERIOD_MINUTES or n == 0:
            closed: list[Candle] = []
            for item in run.items():
                closed += self.add_empty(run.inst_id, *item) if type(item) is tuple else self.add(item)
            return closed
        periods = run.minute - run.minute % self.tf
        bounds = [0, *(np.flatnonzero(periods[1:] != periods[:-1]) + 1).tolist(), n]
        traded = ~run.empty
        ps = run.px_scales
        base_buy, base_sell, base_scales = run.volumes["base"]
        quote_buy, quote_sell, quote_scales = run.volumes["quote"]

        items = run.source
        if items is not None:  # the Decimals the bars hold (a merged bar's prices may show different exponents)
            sizes = [item[1] if type(item) is tuple else len(item) if type(item) is Rows else 1 for item in items]
            item_of = np.repeat(np.arange(len(items)), sizes)

        def price(name: str, i: int) -> Decimal:
            item = items[item_of[i]] if items is not None else None
            if item is None or type(item) is Rows:  # rows of one chunk's parts: the four prices at one scale
                col = getattr(run, name)
                return decimal_at(int(col.m[i]), col.scale, int(ps[i]))
            return item[2] if type(item) is tuple else getattr(item, name)

        def total(buy: Any, sell: Any, scales: np.ndarray, rows: np.ndarray) -> Decimal:
            # the exact sum of the rows' buy and sell volumes, shown with the most decimals among them (as a sum of
            # their Decimals would be); Python ints, so no sum of a long run can overflow
            m = sum(buy.m[rows].tolist()) + sum(sell.m[rows].tolist())
            return decimal_at(m, buy.scale, int(scales[rows].max()))

        closed = []
        for a, b in zip(bounds, bounds[1:]):
            start = int(periods[a])
            c = self.current
            if c is not None and start >= c.start + self.tf:
                closed.append(c)
                c = self.current = None
            if c is None:
                p = price("close", a) if run.empty[a] else price("open", a)
                c = self.current = Candle(start, p, p, p, p, Decimal(0), Decimal(0), 0, False)
            rows = a + np.flatnonzero(traded[a:b])
            if not len(rows):
                continue
            high = price("high", int(rows[np.argmax(run.high.m[rows])]))
            low = price("low", int(rows[np.argmin(run.low.m[rows])]))
            if not c.traded:
                c.open, c.high, c.low = price("open", int(rows[0])), high, low
                c.traded = True
            else:
                c.high = max(c.high, high)
                c.low = min(c.low, low)
            c.close = price("close", int(rows[-1]))
            c.volume += total(base_buy, base_sell, base_scales, rows)
            c.quote_volume += total(quote_buy, quote_sell, quote_scales, rows)
            c.trade_count += int(run.trade_count[rows].sum())
        return closed

    def advance(self, minute: int) -> list[Candle]:
        """The stream reached ``minute``: close the candle if its period has ended."""
        c = self.current
        if c is not None and minute >= c.start + self.tf:
            self.current = None
            return [c]
        return []

    def to_state(self) -> dict[str, Any]:
        return {"current": self.current.to_state() if self.current else None}

    def set_state(self, d: dict[str, Any]) -> None:
        self.current = Candle.from_state(d["current"]) if d.get("current") else None
