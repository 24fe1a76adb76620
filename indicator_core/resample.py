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
from typing import Any

from .bars import Bar
from .timeutil import iso_minute, period_start


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
