"""Poor highs and lows (SPEC section 12): ``poor_levels.jsonl``.

A session (daily, from ``session_anchor`` UTC, as for CVD) ends with a *poor*
high when trades printed at exactly its high in at least ``min_periods``
distinct 30-minute periods of the session: the auction was stopped there
several times without trading through, a level the market tends to revisit.
The same holds for the low.  The level stays open until the first later
trade trades through it (px above a poor high, below a poor low), which
writes a ``repaired`` event with that trade's time.

When things happen:

* A session is closed when the stream enters a later session: in
  :meth:`on_advance` (every bar of the session has closed and the stream is
  now in a minute of a later session), or, should a batch of a later session
  arrive without it, at the start of :meth:`on_trades`.  A session whose
  last trade is the last of the input stays open in the state; the wall
  clock never closes it, so follow mode and batch runs write the same bytes.
* The 30-minute periods are counted from the session start (with an anchor
  on the hour or half-hour they are the clock's half-hours).
* Repairs are looked for in every batch of trades, the first batch of the
  next session included: the first trade after the close can repair a level
  the close has just found.  A session cannot repair its own levels (no
  trade of it is above its high or below its low).
* Events of one trade are ordered by session, high before low; events of
  different trades follow the trades' stream order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from pydantic import Field

from indicator_core import (
    ceil_scaled, floor_scaled,
    MINUTE_MS, Emit, Indicator, Params, SessionAnchor, TradeBatch, fmt, hookimpl, iso_minute,
    iso_ms, parse_anchor, session_start, to_dec,
)

PERIOD_MINUTES = 30


class PoorLevelsParams(Params):
    session_anchor: SessionAnchor = "00:00"
    min_periods: int = Field(default=2, ge=1)


class Level:
    """An unrepaired poor high or low."""

    __slots__ = ("side", "level", "session", "_bounds")

    def __init__(self, side: str, level: Decimal, session: int) -> None:
        self.side = side  # "high" | "low"
        self.level = level
        self.session = session
        self._bounds: dict[int, int] = {}

    def bound(self, scale: int) -> int:
        """Integer bound at ``scale``: a trade repairs a high when px_int > bound, a low when px_int < bound."""
        b = self._bounds.get(scale)
        if b is None:
            b = self._bounds[scale] = (floor_scaled if self.side == "high" else ceil_scaled)(self.level, scale)
        return b

    def to_state(self) -> list[Any]:
        return [self.side, str(self.level), self.session]


class PoorLevels(Indicator):
    name = "poor_levels"
    version = "1"
    Params = PoorLevelsParams

    def __init__(self, instrument, params: PoorLevelsParams) -> None:
        super().__init__(instrument, params)
        self.anchor = parse_anchor(params.session_anchor)
        self.session: int | None = None  # start minute of the open session
        self.high: Decimal | None = None
        self.low: Decimal | None = None
        self.high_periods: set[int] = set()  # periods of the open session with a trade at exactly its high
        self.low_periods: set[int] = set()
        self.levels: list[Level] = []  # unrepaired, in creation order

    def outputs(self) -> list[str]:
        return ["poor_levels"]

    # --- session close -----------------------------------------------------------------
    def _close(self, emit: Emit) -> None:
        s = self.session
        if s is not None and self.high is not None and self.low is not None:
            for side, level, periods in (("high", self.high, self.high_periods), ("low", self.low, self.low_periods)):
                if len(periods) >= self.params.min_periods:
                    emit("poor_levels", {
                        "event": f"poor_{side}", "level": fmt(level), "session_start": iso_minute(s),
                        "periods": len(periods),
                    })
                    self.levels.append(Level(side, level, s))
        self.session = None
        self.high = self.low = None
        self.high_periods = set()
        self.low_periods = set()

    def on_advance(self, minute: int, emit: Emit) -> None:
        if self.session is not None and session_start(minute, self.anchor) != self.session:
            self._close(emit)

    # --- trades ------------------------------------------------------------------------
    def on_trades(self, trades: TradeBatch, emit: Emit) -> None:
        minute = int(trades.ts[0]) // MINUTE_MS
        s = session_start(minute, self.anchor)
        if self.session is not None and s != self.session:
            self._close(emit)
        px, scale = trades.px, trades.px_scale
        top, bottom = int(px.max()), int(px.min())
        if self.levels:
            self._repairs(trades, top, bottom, emit)
        if self.session is None:
            self.session = s
        period = (minute - s) // PERIOD_MINUTES
        hi, lo = to_dec(top, scale), to_dec(bottom, scale)
        if self.high is None or hi > self.high:
            self.high, self.high_periods = hi, {period}
        elif hi == self.high:
            self.high_periods.add(period)
        if self.low is None or lo < self.low:
            self.low, self.low_periods = lo, {period}
        elif lo == self.low:
            self.low_periods.add(period)

    def _repairs(self, trades: TradeBatch, top: int, bottom: int, emit: Emit) -> None:
        px, scale = trades.px, trades.px_scale
        hits: list[tuple[int, int, int, int]] = []  # (trade index, session, 0 high | 1 low, level index)
        for k, lv in enumerate(self.levels):
            b = lv.bound(scale)
            if lv.side == "high":
                if top <= b:
                    continue
                i = int(np.flatnonzero(px > b)[0])
            else:
                if bottom >= b:
                    continue
                i = int(np.flatnonzero(px < b)[0])
            hits.append((i, lv.session, 0 if lv.side == "high" else 1, k))
        if not hits:
            return
        hits.sort()
        for i, _, _, k in hits:
            lv = self.levels[k]
            emit("poor_levels", {
                "event": "repaired", "side": lv.side, "level": fmt(lv.level),
                "session_start": iso_minute(lv.session), "repaired_utc": iso_ms(int(trades.ts[i])),
            })
        done = {k for *_, k in hits}
        self.levels = [lv for k, lv in enumerate(self.levels) if k not in done]

    # --- state -------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "high": None if self.high is None else str(self.high),
            "low": None if self.low is None else str(self.low),
            "high_periods": sorted(self.high_periods),
            "low_periods": sorted(self.low_periods),
            "levels": [lv.to_state() for lv in self.levels],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.session = state["session"]
        self.high = None if state["high"] is None else Decimal(state["high"])
        self.low = None if state["low"] is None else Decimal(state["low"])
        self.high_periods = set(state["high_periods"])
        self.low_periods = set(state["low_periods"])
        self.levels = [Level(side, Decimal(v), int(s)) for side, v, s in state["levels"]]


@hookimpl
def register_indicators(register) -> None:
    register(PoorLevels)
