"""The volume analyzer's per-bar logic; see the package docstring and SPEC section 4."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from decimal import Decimal
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from indicator_core import (
    RATIO_PLACES, Bar, BarRun, Emit, Indicator, LastText, Params, TradeBatch, Unit, div_round, fmt, fmt_signed,
    iso_minutes, split_decimal, to_dec,
)

from .columns import volume_records
from .numbers import ZERO



class VolumeParams(Params):
    unit: Unit = "quote"
    whale_threshold_usd: Decimal = Field(default=Decimal(100000), ge=0)
    median_window: int = Field(default=100, gt=0)
    median_min_bars: int = Field(default=20, gt=0)
    tier_t4_above: Decimal = Field(default=Decimal("2.0"), ge=0)
    tier_t3_above: Decimal = Field(default=Decimal("1.0"), ge=0)
    tier_t2_from: Decimal = Field(default=Decimal("0.5"), ge=0)
    absorption_max_move: Decimal = Field(default=Decimal("0.001"), ge=0)
    # also write buy_base and sell_base (base currency) after sell_volume: what an aggregate across venues sums
    # (SPEC section 16); off by default, so volume_1m stays section 4's record
    base_volumes: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> "VolumeParams":
        if self.median_min_bars > self.median_window:
            raise ValueError(
                f"median_min_bars ({self.median_min_bars}) cannot exceed median_window ({self.median_window})"
            )
        if not (self.tier_t2_from <= self.tier_t3_above <= self.tier_t4_above):
            raise ValueError("tiers must satisfy tier_t2_from <= tier_t3_above <= tier_t4_above")
        return self


def median(ordered: list[Decimal]) -> Decimal:
    """Exact median of an ascending list: the middle value, or half the sum of the two middle values."""
    k = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[k]
    return (ordered[k - 1] + ordered[k]) / 2  # halving a decimal is exact


class VolumeAnalyzer(Indicator):
    name = "volume"
    version = "1"
    Params = VolumeParams
    trades_by_minute = False  # it only sums whale trades into their minutes: a chunk's trades at once

    def __init__(self, instrument, params: VolumeParams) -> None:
        super().__init__(instrument, params)
        self.window: deque[Decimal] = deque()  # totals of the previous bars, oldest first
        self.ordered: list[Decimal] = []  # the same values, ascending, for the median
        # whale sums of the minutes not yet closed: minute -> [buy volume, sell volume, count, scale], the volumes
        # as integers at that scale (the largest of the batches that added to them)
        self.whales: dict[int, list[int]] = {}
        self._empty_price = LastText()
        self._empty_run = 0  # the last totals remembered that were an empty minute's, in a row
        # (window, scale, its totals as ints at that scale, each one's own scale), as the last run of bars left
        # the window (columns.volume_records); None once the window changed otherwise
        self.window_ints: tuple[deque[Decimal], int, list[int], list[int]] | None = None

    def outputs(self) -> list[str]:
        return ["volume_1m"]

    def on_trades(self, trades: TradeBatch, emit: Emit) -> None:
        # whales are rare: find their rows once per batch (many minutes, see trades_by_minute), then sum them by
        # minute in integers, exact
        rows = trades.rows_over(self.params.whale_threshold_usd)
        if not len(rows):
            return
        vol, scale = trades.volume(self.params.unit)
        minutes = trades.ts[rows] // 60_000
        order = np.argsort(minutes, kind="stable")
        minutes, v, buy = minutes[order], vol[rows][order], trades.is_buy[rows][order]
        starts = np.flatnonzero(np.concatenate(([True], minutes[1:] != minutes[:-1])))
        buys = np.add.reduceat(np.where(buy, v, 0), starts).tolist()
        totals = np.add.reduceat(v, starts).tolist()
        counts = np.diff(starts, append=len(v)).tolist()
        whales, added = self.whales, []
        for minute, b, t, count in zip(minutes[starts].tolist(), buys, totals, counts):
            whale = whales.get(minute)
            if whale is None:  # (a minute of this batch's: most are; added below in one go, in minute order)
                added.append((minute, [b, t - b, count, scale]))
                continue
            at = max(whale[3], scale)
            up, lift = 10 ** (at - whale[3]), 10 ** (at - scale)
            whales[minute] = [whale[0] * up + b * lift, whale[1] * up + (t - b) * lift, whale[2] + count, at]
        whales.update(added)

    def on_bar(self, bar: Bar, emit: Emit) -> None:
        p = self.params
        buy, sell = bar.buy_volume(p.unit), bar.sell_volume(p.unit)
        total = buy + sell
        delta = buy - sell
        move = bar.close - bar.open
        whale = self.whales.pop(bar.minute, None)
        if whale is None:  # most minutes of most instruments
            w_total = w_buy = w_sell = "0"
            w_count = 0
        else:
            w_buy_m, w_sell_m, w_count, w_scale = whale
            w_total = fmt(to_dec(w_buy_m + w_sell_m, w_scale))
            w_buy, w_sell = fmt(to_dec(w_buy_m, w_scale)), fmt(to_dec(w_sell_m, w_scale))
        med, ratio, tier = self._against_median(total)
        # 0 moved or 0 traded formats as "0" without the exact division (empty and flat minutes)
        change = fmt_signed(div_round(move * 100, bar.open, RATIO_PLACES)) if move else "0"
        emit("volume_1m", {
            "timestamp_utc": bar.timestamp_utc,
            "inst_id": bar.inst_id,
            "open": fmt(bar.open),
            "high": fmt(bar.high),
            "low": fmt(bar.low),
            "close": fmt(bar.close),
            "total_volume": fmt(total),
            "buy_volume": fmt(buy),
            "sell_volume": fmt(sell),
            **({"buy_base": fmt(bar.buy_volume("base")), "sell_base": fmt(bar.sell_volume("base"))}
               if p.base_volumes else {}),
            "delta": fmt_signed(delta),
            "trade_count": bar.trade_count,
            "whale_volume": w_total,
            "whale_count": w_count,
            "whale_buy_volume": w_buy,
            "whale_sell_volume": w_sell,
            "volume_median": med,
            "volume_ratio": ratio,
            "volume_tier": tier,
            "price_change_pct": change,
            "absorption": tier == "T4" and abs(move) < p.absorption_max_move * bar.open,
            "divergence": move != 0 and delta != 0 and (move > 0) != (delta > 0),
            "empty": bar.empty,
            "tainted": bool(bar.taint),
            "taint": list(bar.taint),
        })
        self._remember(total)

    def on_bars(self, bars: BarRun, emit: Emit) -> None:
        # the same records as on_bar and on_empty_bars minute by minute, written from columns (columns.py)
        emit("volume_1m", volume_records(self, bars))

    def on_empty_bars(self, first: int, count: int, price: Decimal, emit: Emit) -> None:
        # what on_bar writes for an empty minute (tests/test_empty_runs.py): the last close four times, no
        # volume, no whale, no move
        text = self._empty_price.of(price)
        inst_id = self.instrument.inst_id
        for minute, timestamp_utc in zip(range(first, first + count), iso_minutes(first, count)):
            self.whales.pop(minute, None)  # none can be there: a whale trade makes a minute traded
            # a window full of empty minutes' zeros (a long quiet stretch) stays so: median 0, no ratio, no tier
            quiet = self._empty_run >= self.params.median_window
            med, ratio, tier = ("0", None, None) if quiet else self._against_median(ZERO)
            emit("volume_1m", {
                "timestamp_utc": timestamp_utc, "inst_id": inst_id,
                "open": text, "high": text, "low": text, "close": text,
                "total_volume": "0", "buy_volume": "0", "sell_volume": "0",
                **({"buy_base": "0", "sell_base": "0"} if self.params.base_volumes else {}),
                "delta": "0", "trade_count": 0,
                "whale_volume": "0", "whale_count": 0, "whale_buy_volume": "0", "whale_sell_volume": "0",
                "volume_median": med, "volume_ratio": ratio, "volume_tier": tier, "price_change_pct": "0",
                "absorption": False, "divergence": False, "empty": True, "tainted": False, "taint": [],
            })
            if not quiet:
                self._remember(ZERO)

    def _against_median(self, total: Decimal) -> tuple[str | None, str | None, str | None]:
        """The median of the previous bars' totals (text), and ``total``'s ratio to it and tier."""
        p = self.params
        med = median(self.ordered) if len(self.window) >= p.median_min_bars else None
        if med is None or med == 0:
            return (fmt(med) if med is not None else None), None, None
        ratio = fmt(div_round(total, med, RATIO_PLACES)) if total else "0"
        if total > p.tier_t4_above * med:
            tier = "T4"
        elif total > p.tier_t3_above * med:
            tier = "T3"
        elif total >= p.tier_t2_from * med:
            tier = "T2"
        else:
            tier = "T1"
        return fmt(med), ratio, tier

    def _remember(self, total: Decimal) -> None:
        self.window_ints = None
        self._empty_run = self._empty_run + 1 if total is ZERO else 0  # ZERO itself: an empty minute's total
        self.window.append(total)
        insort(self.ordered, total)
        if len(self.window) > self.params.median_window:
            old = self.window.popleft()
            del self.ordered[bisect_left(self.ordered, old)]

    def get_state(self) -> dict[str, Any]:
        return {
            "window": [str(v) for v in self.window],
            "whales": {str(m): [str(to_dec(b, sc)), str(to_dec(v, sc)), n] for m, (b, v, n, sc) in self.whales.items()},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.window = deque()
        self.ordered = []
        self._empty_run = 0
        for v in state["window"]:
            self._remember(Decimal(v))
        self.whales = {}
        for m, (b, v, n) in state["whales"].items():
            (bm, bs), (vm, vs) = split_decimal(Decimal(b)), split_decimal(Decimal(v))
            at = max(bs, vs)
            self.whales[int(m)] = [bm * 10 ** (at - bs), vm * 10 ** (at - vs), int(n), at]
