"""Funding, open interest and liquidations (SPEC section 17): ``derivs_1m.jsonl`` and ``liquidations.jsonl``.

Two indicators of the ``derivs`` input kind (``consumes = "derivs"``), fed one
:class:`~indicator_core.DerivsMinute` per closed minute from the
instrument's first derivatives push on:

* ``derivs`` — one record per minute: open interest at the close (contracts,
  base, quote) and its change, the last known funding rate with its interval
  and 8-hour equivalent, the minute's liquidations by side of the liquidated
  position, the largest one, and taints (``stale_oi``, ``no_oi``, ``no_funding``);
* ``liquidations`` — one record per liquidation whose quote notional is at
  least ``threshold``, deliverable by notifiers as stream ``liquidations``.

Contract arithmetic is the trades' (SPEC section 1): linear ``base = sz ×
ctVal`` and ``quote = px × base``; inverse ``quote = sz × ctVal`` and ``base =
quote / px`` rounded half-even to 12 places.  Every sum is exact.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import Field

import numpy as np
import orjson

from indicator_core import (
    EXACT, Decimals, Emit, Indicator, Instrument, JsonField, Params, Signal, div_round, fmt, hookimpl, iso_minute,
    iso_minutes, iso_ms, json_lines, per_distinct, to_dec,
)

if TYPE_CHECKING:  # (the derivs stream's modules load when a vault has derivs, not with every command)
    from indicator_core import DerivsMinutes, LiquidationColumns


INVERSE_BASE_PLACES = 12  # as a trade's base quantity (SPEC section 1)
FUNDING_8H_PLACES = 12  # only an interval that does not divide 8 h leaves a remainder
HOUR_MS = 3_600_000


def _time(ms: int) -> str:
    return iso_minute(ms // 60_000) if ms % 60_000 == 0 else iso_ms(ms)


class DerivsParams(Params):
    # the funding interval until a push tells it (OKX's pushes always do; Binance's and Bybit's after the
    # funding time moves on once), by default and per instrument
    funding_interval_h: int = Field(default=8, ge=1, le=24)
    funding_intervals: dict[str, int] = Field(default_factory=dict)
    stale_oi_minutes: int = Field(default=5, ge=1)  # the open interest is `stale_oi` when older than this


class Derivs(Indicator):
    name = "derivs"
    version = "1"
    consumes = "derivs"
    Params = DerivsParams

    def __init__(self, inst: Instrument, params: DerivsParams) -> None:
        super().__init__(inst, params)
        self.prev_oi: Decimal | None = None
        self.first = True
        hours = params.funding_intervals.get(inst.inst_id, params.funding_interval_h)
        self.default_interval_ms = hours * HOUR_MS

    def outputs(self) -> list[str]:
        return ["derivs_1m"]

    def get_state(self) -> dict[str, Any]:
        return {"prev_oi": None if self.prev_oi is None else str(self.prev_oi), "first": self.first}

    def set_state(self, state: dict[str, Any]) -> None:
        self.prev_oi = None if state.get("prev_oi") is None else Decimal(state["prev_oi"])
        self.first = bool(state.get("first", True))

    def on_derivs_minutes(self, b: DerivsMinutes, emit: Emit) -> None:
        n = b.count
        if not n:
            return
        inst = self.instrument
        oi = b.oi
        no_oi = oi.is_null()
        stale = ~no_oi & (b.end_ms - b.oi_ts > self.params.stale_oi_minutes * 60_000)
        contracts = oi.times(inst.ct_val)
        no_close = b.close.is_null()
        if inst.kind == "inverse":
            oi_quote = contracts
            oi_base = _divided(contracts, b.close, ~no_oi & ~no_close & (b.close.m != 0), INVERSE_BASE_PLACES)
        else:
            oi_base = contracts
            oi_quote = contracts.times(b.close)
        # the minute before each: the one before the run first (none for the very first minute)
        before = Decimals.of_values([None if self.first else self.prev_oi])
        oi_delta = oi.minus(Decimals.concat([before, oi.take(slice(0, n - 1))]))
        funding_h, funding_8h = self._funding(b)
        no_funding = b.funding_rate.is_null()
        liq = b.liquidations
        starts = b.liq_starts
        long = liq.long
        counted = np.concatenate(([0], np.cumsum(long, dtype=np.int64)))
        long_count = counted[starts[1:]] - counted[starts[:-1]]
        short_count = np.diff(starts) - long_count
        long_base, short_base = liq.base.group_sums(starts, long), liq.base.group_sums(starts, ~long)
        long_quote, short_quote = liq.quote.group_sums(starts, long), liq.quote.group_sums(starts, ~long)
        if b.liq_sums:  # a history's sums (Coinalyze): quote as given
            long_quote = Decimals.of_values([EXACT.add(long_quote.at(i), b.liq_sums[i][0]) if i in b.liq_sums
                                             else long_quote.at(i) for i in range(n)])
            short_quote = Decimals.of_values([EXACT.add(short_quote.at(i), b.liq_sums[i][1]) if i in b.liq_sums
                                              else short_quote.at(i) for i in range(n)])
        no_count = np.full(n, b.source == "coinalyze")  # a history gives no count and no base of its liquidations
        taints = per_distinct(np.stack((no_oi, stale, no_funding), axis=1), lambda a, s, f: _TAINTS[(a, s, f)])
        next_ms = b.next_funding_ms
        emit("derivs_1m", json_lines([
            JsonField("timestamp_utc", "text", iso_minutes(b.first, n)),
            oi.field("oi"),
            oi_base.field("oi_base", null=no_oi),
            oi_quote.field("oi_quote", null=no_oi),
            oi_delta.field("oi_delta", plus=True),
            b.funding_rate.field("funding_rate"),
            JsonField("funding_interval_h", "raw", funding_h),
            JsonField("funding_8h", "text", funding_8h, null=no_funding),
            JsonField("next_funding_utc", "text", per_distinct(next_ms, lambda v: _time(int(v)) if v > 0 else ""),
                      null=next_ms == b.NONE),
            JsonField("liq_long_count", "int", long_count, quoted=False, null=no_count),
            long_base.field("liq_long_base", null=no_count),
            long_quote.field("liq_long_quote"),
            JsonField("liq_short_count", "int", short_count, quoted=False, null=no_count),
            short_base.field("liq_short_base", null=no_count),
            short_quote.field("liq_short_quote"),
            JsonField("largest_liq", "raw", _largest(liq, starts)),
            JsonField("source", "text", [b.source or ""] * n, null=np.full(n, b.source is None)),
            JsonField("tainted", "bool", no_oi | stale | no_funding),
            JsonField("taint", "raw", taints),
        ], n))
        self.first = False
        last = oi.at(n - 1)
        if last is not None:
            self.prev_oi = last

    def _funding(self, b: DerivsMinutes) -> tuple[list[bytes], list[str]]:
        """Per minute the funding interval in hours (JSON: an int, or a float where it is not whole; null
        without a rate) and the 8-hour equivalent (text; unread without a rate), each worked out once per
        distinct rate and interval."""
        rate = b.funding_rate
        interval = np.where(b.funding_interval_ms > 0, b.funding_interval_ms, self.default_interval_ms)
        if rate.m.dtype == object:
            keys = list(zip(rate.m.tolist(), interval.tolist()))
        else:
            keys = np.stack((rate.m, interval), axis=1)
        made = per_distinct(keys, lambda m, ms: _funding_values(to_dec(int(m), rate.scale), int(ms)))
        none = rate.is_null().tolist()
        return ([b"null" if no else got[0] for got, no in zip(made, none)],
                ["" if no else got[1] for got, no in zip(made, none)])


_TAINTS = {(no_oi, stale, no_funding): orjson.dumps(t) for no_oi in (False, True) for stale in (False, True)
           for no_funding in (False, True)
           for t in [(["no_oi"] if no_oi else ["stale_oi"] if stale else []) + (["no_funding"] if no_funding else [])]}


def _funding_values(rate: Decimal, interval_ms: int) -> tuple[bytes, str]:
    hours = Decimal(interval_ms) / HOUR_MS
    interval_h = int(hours) if hours == hours.to_integral_value() else float(round(hours, 4))
    try:
        funding_8h = EXACT.divide(EXACT.multiply(rate, 8), hours)
    except ArithmeticError:  # 3 h, 6 h, 12 h: no exact quotient
        funding_8h = div_round(EXACT.multiply(rate, 8), hours, FUNDING_8H_PLACES)
    return orjson.dumps(interval_h), fmt(funding_8h)


def _divided(num: Decimals, den: Decimals, where: np.ndarray, places: int) -> Decimals:
    """``num / den`` rounded half-even to ``places`` where ``where``, null elsewhere."""
    got = num.take(where).divided(den.take(where), places)
    m = np.zeros(len(where), dtype=got.m.dtype)
    m[where] = got.m
    return Decimals(m, places, ~where)


def _largest(liq: LiquidationColumns, starts: np.ndarray) -> list[bytes]:
    """Per minute its largest liquidation by quote (the first of equals) as a JSON object, or null."""
    n = len(starts) - 1
    out = [b"null"] * n
    if not len(liq):
        return out
    group = np.repeat(np.arange(n), np.diff(starts))
    order = np.lexsort((np.arange(len(liq)), -liq.quote.sort_key(), group))
    firsts = order[np.flatnonzero(np.diff(group[order], prepend=-1))]
    lines = json_lines([JsonField("side", "choice", liq.long[firsts], choices=("long", "short")),
                        liq.px.take(firsts).field("px"), liq.quote.take(firsts).field("quote")], len(firsts))
    for g, text in zip(group[firsts].tolist(), lines.splitlines()):
        out[g] = text
    return out


class LiquidationsParams(Params):
    threshold: Decimal = Field(default=Decimal("100000"), ge=0)


class Liquidations(Indicator):
    """``liquidations.jsonl``: every liquidation whose quote notional is at least ``threshold``, in time order."""

    name = "liquidations"
    version = "1"
    consumes = "derivs"
    Params = LiquidationsParams
    # delivered by notifiers as stream "liquidations"; a repeated push is dropped by the stream, so the
    # liquidation's own fields make its id
    signals = (Signal("liquidations", "ts_utc", ("ts_utc", "side", "px", "sz")),)

    def outputs(self) -> list[str]:
        return ["liquidations"]

    def on_derivs_minutes(self, b: DerivsMinutes, emit: Emit) -> None:
        liq = b.liquidations
        big = np.flatnonzero(liq.quote.at_least(self.params.threshold))
        if not len(big):
            return
        emit("liquidations", json_lines([
            JsonField("ts_utc", "iso_ms", liq.ts[big]),
            JsonField("side", "choice", liq.long[big], choices=("long", "short")),
            liq.px.take(big).field("px"), liq.sz.take(big).field("sz"),
            liq.base.take(big).field("base"), liq.quote.take(big).field("quote"),
            JsonField("source", "text", [b.source or ""] * len(big), null=np.full(len(big), b.source is None)),
        ], len(big)))


@hookimpl
def register_indicators(register) -> None:
    register(Derivs)
    register(Liquidations)
