"""Untouched wicks (SPEC section 5): ``wicks_{tf}.jsonl``.

When a candle of the timeframe closes, each wick at least ``min_wick_pct``
percent of the close long becomes a level (``high`` for an upper wick, ``low``
for a lower one) and a ``wick`` event.  The first later trade that reaches a
level (px >= level for upper, px <= level for lower) emits a ``touch`` event
and retires it; the untouched levels live in the state.

It takes its minutes in runs (:meth:`Wicks.on_bars`, candles a period at a time) and a chunk's trades at
once, and those come before the bars of their minutes: a trade is judged once every bar before its minute
has come (``known``), against the levels of the candles that closed by then, and the trades that arrive
earlier wait (``waiting``) until their candles are made.  The events come out in the order a minute at a
time would give them: the touches of a candle's earlier trades before its wick, its later ones after.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from pydantic import Field

from indicator_core import (
    ceil_scaled, floor_scaled,
    RATIO_PLACES, TIMEFRAMES, Bar, BarRun, Candle, CandleBuilder, Emit, Indicator, Params, Timeframe,
    TradeBatch, div_round, fmt, hookimpl, iso_ms,
)


class WicksParams(Params):
    timeframe: Timeframe = "1h"
    min_wick_pct: Decimal = Field(default=Decimal("0.1"), ge=0)


class Level:
    """An untouched wick level."""

    __slots__ = ("side", "level", "timestamp_utc", "wick_pct", "_scaled")

    def __init__(self, side: str, level: Decimal, timestamp_utc: str, wick_pct: str) -> None:
        self.side = side
        self.level = level
        self.timestamp_utc = timestamp_utc
        self.wick_pct = wick_pct
        self._scaled: dict[int, int] = {}

    def bound(self, scale: int) -> int:
        """The integer price bound at ``scale``: px_int >= bound (upper) or <= bound (lower), exactly."""
        b = self._scaled.get(scale)
        if b is None:
            b = self._scaled[scale] = (ceil_scaled if self.side == "upper" else floor_scaled)(self.level, scale)
        return b

    def event(self, kind: str) -> dict[str, Any]:
        return {
            "event": kind, "side": self.side, "level": fmt(self.level),
            "timestamp_utc": self.timestamp_utc, "wick_pct": self.wick_pct,
        }

    def to_state(self) -> list[str]:
        return [self.side, str(self.level), self.timestamp_utc, self.wick_pct]


class Wicks(Indicator):
    name = "wicks"
    version = "1"
    Params = WicksParams
    trades_by_minute = False  # a chunk's trades at once; each is judged when the bars before it have come

    def __init__(self, instrument, params: WicksParams) -> None:
        super().__init__(instrument, params)
        self.builder = CandleBuilder(TIMEFRAMES[params.timeframe])
        self.levels: list[Level] = []  # in creation order
        self.stream = f"wicks_{params.timeframe}"
        self._upper_min: Decimal | None = None
        self._lower_max: Decimal | None = None
        self._limits: dict[tuple[str, int], int] = {}
        # every bar before this minute has come, so every candle a trade of it could meet has closed (None: none
        # yet); trades of later minutes wait, in order: (ts, px, px scale) of each chunk's rest
        self.known: int | None = None
        self.waiting: list[tuple[np.ndarray, np.ndarray, int]] = []

    def outputs(self) -> list[str]:
        return [self.stream]

    # --- levels from closed candles ----------------------------------------------------
    def _close(self, candles: list[Candle], emit: Emit) -> None:
        if not candles:  # most minutes: no candle closed, the levels and their bounds stay
            return
        for c in candles:
            self._judge(c.start + self.builder.tf - 1, emit)  # the trades before its close meet the levels before it
            if not c.traded:
                continue
            body_top, body_bottom = max(c.open, c.close), min(c.open, c.close)
            made = False
            for side, length, level in (("upper", c.high - body_top, c.high), ("lower", body_bottom - c.low, c.low)):
                if length > 0 and length * 100 >= self.params.min_wick_pct * c.close:
                    lv = Level(side, level, c.timestamp_utc, fmt(div_round(length * 100, c.close, RATIO_PLACES)))
                    self.levels.append(lv)
                    emit(self.stream, lv.event("wick"))
                    made = True
            if made:
                self._bounds()

    def _bounds(self) -> None:
        uppers = [lv.level for lv in self.levels if lv.side == "upper"]
        lowers = [lv.level for lv in self.levels if lv.side == "lower"]
        self._upper_min = min(uppers) if uppers else None
        self._lower_max = max(lowers) if lowers else None
        self._limits = {}  # (side, price scale) -> the bound of the nearest level, made when first asked

    def _limit(self, side: str, scale: int) -> int:
        """The integer price bound of the nearest upper (lowest) or lower (highest) level at ``scale``."""
        bound = self._limits.get((side, scale))
        if bound is None:
            level = self._upper_min if side == "upper" else self._lower_max
            bound = self._limits[side, scale] = Level(side, level, "", "").bound(scale)
        return bound

    def on_bars(self, bars: BarRun, emit: Emit) -> None:
        self._close(self.builder.add_run(bars), emit)
        self.on_advance(int(bars.minute[-1]) + 1, emit)  # what the run implies

    def on_bar(self, bar: Bar, emit: Emit) -> None:
        self._close(self.builder.add(bar), emit)

    def on_empty_bars(self, first: int, count: int, price: Decimal, emit: Emit) -> None:
        # an empty minute can only close the candle before it and open an untraded one, at the first minute
        # of its period: the other minutes of a period change nothing (tests/test_empty_runs.py)
        self._close(self.builder.add_empty(self.instrument.inst_id, first, count, price), emit)

    def on_advance(self, minute: int, emit: Emit) -> None:
        self._close(self.builder.advance(minute), emit)
        if self.known is None or minute > self.known:
            self.known = minute
        self._judge(self.known, emit)

    # --- touches by trades ---------------------------------------------------------------
    def on_trades(self, trades: TradeBatch, emit: Emit) -> None:
        ts, px, scale = trades.ts, trades.px, trades.px_scale
        if not len(ts):
            return
        if not self.waiting and self.known is not None:  # (the rows of the minutes whose bars are in: now)
            k = _rows_until(ts, self.known)
            if k and self.levels:
                self._touches(ts[:k], px[:k], scale, emit)
            ts, px = ts[k:], px[k:]
        if len(ts):  # (a column that is a view of a larger block is copied: the block must not be kept for it)
            self.waiting.append((_own(ts, trades.ts), _own(px, trades.px), scale))

    def _judge(self, until: int | None, emit: Emit) -> None:
        """Look for touches in the waiting trades of minutes up to ``until``, in order."""
        waiting = self.waiting
        while waiting and until is not None:
            ts, px, scale = waiting[0]
            k = _rows_until(ts, until)
            if k and self.levels:
                self._touches(ts[:k], px[:k], scale, emit)
            if k < len(ts):
                waiting[0] = (ts[k:], px[k:], scale)
                return
            waiting.pop(0)

    def _touches(self, ts: np.ndarray, px: np.ndarray, scale: int, emit: Emit) -> None:
        """The first trade at or beyond each level, in the trades' order: a touch event each, the level retired."""
        top, bottom = int(px.max()), int(px.min())
        may_up = self._upper_min is not None and top >= self._limit("upper", scale)
        may_down = self._lower_max is not None and bottom <= self._limit("lower", scale)
        if not (may_up or may_down):
            return
        hits: list[tuple[int, int]] = []  # (trade index, level index)
        for k, lv in enumerate(self.levels):
            b = lv.bound(scale)
            if lv.side == "upper":
                if top < b:
                    continue
                i = int(np.argmax(px >= b))
            else:
                if bottom > b:
                    continue
                i = int(np.argmax(px <= b))
            hits.append((i, k))
        if not hits:
            return
        hits.sort()
        for i, k in hits:
            event = self.levels[k].event("touch")
            event["touched_utc"] = iso_ms(int(ts[i]))
            emit(self.stream, event)
        touched = {k for _, k in hits}
        self.levels = [lv for k, lv in enumerate(self.levels) if k not in touched]
        self._bounds()

    # --- state -------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        state = {"candle": self.builder.to_state(), "levels": [lv.to_state() for lv in self.levels],
                 "known": self.known}
        if self.waiting:  # only before the stream's first closed bar: the trades of its first minute
            state["waiting"] = [[ts.tolist(), px.tolist(), scale] for ts, px, scale in self.waiting]
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        self.builder.set_state(state["candle"])
        self.levels = [Level(s, Decimal(v), t, p) for s, v, t, p in state["levels"]]
        self._bounds()
        # (a state from before runs has no "known": its trades wait for the next bars)
        self.known = state.get("known")
        self.waiting = []
        for ts, px, scale in state.get("waiting", []):
            self.waiting.append((np.array(ts, dtype=np.int64), np.array(px, dtype=np.int64), int(scale)))


def _own(rows: np.ndarray, column: np.ndarray) -> np.ndarray:
    """``rows`` (the tail of ``column``) as they are where ``column`` holds its own memory, else a copy."""
    return rows if column.base is None else rows.copy()


def _rows_until(ts: np.ndarray, minute: int) -> int:
    """How many of the first rows are trades of ``minute`` or before (a stream's minutes never go back, though
    its times may within a minute)."""
    limit = (minute + 1) * 60_000
    if ts[-1] < limit:
        return len(ts)
    if ts[0] >= limit:
        return 0
    return int(np.argmax(ts >= limit))


@hookimpl
def register_indicators(register) -> None:
    register(Wicks)
