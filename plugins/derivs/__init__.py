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
from typing import Any

from pydantic import Field

from indicator_core import (
    EXACT, DerivsMinute, Emit, Indicator, Instrument, Liquidation, Params, Signal, div_round, fmt, fmt_signed, hookimpl,
    iso_minute, iso_ms,
)

INVERSE_BASE_PLACES = 12  # as a trade's base quantity (SPEC section 1)
FUNDING_8H_PLACES = 12  # only an interval that does not divide 8 h leaves a remainder
HOUR_MS = 3_600_000


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)


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

    def on_derivs(self, m: DerivsMinute, emit: Emit) -> None:
        inst = self.instrument
        taint: list[str] = []
        oi_base = oi_quote = oi_delta = None
        if m.oi is None:
            taint.append("no_oi")
        else:
            if m.end_ms - m.oi_ts > self.params.stale_oi_minutes * 60_000:
                taint.append("stale_oi")
            contracts = EXACT.multiply(m.oi, inst.ct_val)
            if inst.kind == "inverse":
                oi_quote = contracts
                if m.close:
                    oi_base = div_round(contracts, m.close, INVERSE_BASE_PLACES)
            else:
                oi_base = contracts
                if m.close is not None:
                    oi_quote = EXACT.multiply(contracts, m.close)
            if not self.first and self.prev_oi is not None:
                oi_delta = EXACT.subtract(m.oi, self.prev_oi)
        rate = interval_h = funding_8h = next_utc = None
        if m.funding_rate is None:
            taint.append("no_funding")
        else:
            rate = m.funding_rate
            interval_ms = m.funding_interval_ms or self.default_interval_ms
            hours = Decimal(interval_ms) / HOUR_MS
            interval_h = int(hours) if hours == hours.to_integral_value() else float(round(hours, 4))
            try:
                funding_8h = EXACT.divide(EXACT.multiply(rate, 8), hours)
            except ArithmeticError:  # 3 h, 6 h, 12 h: no exact quotient
                funding_8h = div_round(EXACT.multiply(rate, 8), hours, FUNDING_8H_PLACES)
        if m.next_funding_ms is not None:
            next_utc = _time(m.next_funding_ms)
        sides: dict[str, list[Any]] = {"long": [0, Decimal(0), Decimal(0)], "short": [0, Decimal(0), Decimal(0)]}
        largest: tuple[Decimal, Liquidation] | None = None
        for liq in m.liquidations:
            base, quote = liq.base, liq.quote  # the contract's terms applied by the stream (SPEC section 1)
            s = sides[liq.side]
            s[0] += 1
            s[1] = EXACT.add(s[1], base)
            s[2] = EXACT.add(s[2], quote)
            if largest is None or quote > largest[0]:
                largest = (quote, liq)
        counts: dict[str, int | None] = {side: v[0] for side, v in sides.items()}
        bases: dict[str, Decimal | None] = {side: v[1] for side, v in sides.items()}
        if m.liq_sums is not None:  # a history's sums (Coinalyze): quote as given
            for side, total in zip(("long", "short"), m.liq_sums):
                sides[side][2] = EXACT.add(sides[side][2], total)
        if m.source == "coinalyze":  # a history gives no count and no base of its liquidations
            counts = {"long": None, "short": None}
            bases = {"long": None, "short": None}
        emit("derivs_1m", {
            "timestamp_utc": m.timestamp_utc,
            "oi": None if m.oi is None else fmt(m.oi),
            "oi_base": None if oi_base is None else fmt(oi_base),
            "oi_quote": None if oi_quote is None else fmt(oi_quote),
            "oi_delta": None if oi_delta is None else fmt_signed(oi_delta),
            "funding_rate": None if rate is None else fmt(rate),
            "funding_interval_h": interval_h,
            "funding_8h": None if funding_8h is None else fmt(funding_8h),
            "next_funding_utc": next_utc,
            "liq_long_count": counts["long"], "liq_long_base": _opt(bases["long"]),
            "liq_long_quote": fmt(sides["long"][2]),
            "liq_short_count": counts["short"], "liq_short_base": _opt(bases["short"]),
            "liq_short_quote": fmt(sides["short"][2]),
            "largest_liq": None if largest is None else {"side": largest[1].side, "px": fmt(largest[1].px),
                                                          "quote": fmt(largest[0])},
            "source": m.source,
            "tainted": bool(taint),
            "taint": taint,
        })
        self.first = False
        if m.oi is not None:
            self.prev_oi = m.oi


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

    def on_derivs(self, m: DerivsMinute, emit: Emit) -> None:
        threshold = self.params.threshold
        for liq in m.liquidations:
            if liq.quote >= threshold:
                emit("liquidations", {"ts_utc": iso_ms(liq.ts), "side": liq.side, "px": fmt(liq.px),
                                      "sz": fmt(liq.sz), "base": fmt(liq.base), "quote": fmt(liq.quote),
                                      "source": m.source})


@hookimpl
def register_indicators(register) -> None:
    register(Derivs)
    register(Liquidations)
