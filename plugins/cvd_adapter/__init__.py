"""Cumulative volume delta (SPEC section 5): ``cvd_1m.jsonl``.

``cvd`` is the running sum of ``delta`` since the first trade ever processed
for the instrument; ``cvd_session`` the same since the session anchor (daily,
UTC).  Volumes are in the configured unit, as in the volume analyzer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from indicator_core import (
    Bar, BarRun, Emit, Indicator, Input, JsonField, LastText, Params, SessionAnchor, Unit, fmt, fmt_signed,
    decimal_at, hookimpl, iso_minutes, json_lines, mantissa_at, minute_of_iso, parse_anchor, session_start,
    split_decimal,
)


class CvdParams(Params):
    unit: Unit = "quote"
    session_anchor: SessionAnchor = "00:00"


class Cvd(Indicator):
    name = "cvd"
    version = "1"
    Params = CvdParams

    def __init__(self, instrument, params: CvdParams) -> None:
        super().__init__(instrument, params)
        self.anchor = parse_anchor(params.session_anchor)
        self.cvd = Decimal(0)
        self.cvd_session = Decimal(0)
        self.session: int | None = None
        self._cvd_text, self._session_text = LastText(fmt_signed), LastText(fmt_signed)

    def outputs(self) -> list[str]:
        return ["cvd_1m"]

    def _session(self, minute: int) -> None:
        session = session_start(minute, self.anchor)
        if session != self.session:
            self.session = session
            self.cvd_session = Decimal(0)

    def on_bar(self, bar: Bar, emit: Emit) -> None:
        self._session(bar.minute)
        unit = self.params.unit
        buy, sell = bar.buy_volume(unit), bar.sell_volume(unit)
        delta = buy - sell
        self.cvd += delta
        self.cvd_session += delta
        emit("cvd_1m", {
            "timestamp_utc": bar.timestamp_utc,
            "buy_volume": fmt(buy),
            "sell_volume": fmt(sell),
            "delta": fmt_signed(delta),
            "cvd": self._cvd_text.of(self.cvd),
            "cvd_session": self._session_text.of(self.cvd_session),
        })

    def on_empty_bars(self, first: int, count: int, price: Decimal, emit: Emit) -> None:
        # nothing traded: the sums stay (adding 0 would only make new objects), and so do their texts
        for minute, timestamp_utc in zip(range(first, first + count), iso_minutes(first, count)):
            self._session(minute)
            emit("cvd_1m", {
                "timestamp_utc": timestamp_utc,
                "buy_volume": "0",
                "sell_volume": "0",
                "delta": "0",
                "cvd": self._cvd_text.of(self.cvd),
                "cvd_session": self._session_text.of(self.cvd_session),
            })

    def on_bars(self, bars: BarRun, emit: Emit) -> None:
        # on_bar and on_empty_bars for a run of minutes, from columns: the running sums as integers at one scale,
        # and back to decimals at the end with the exponent the sums one by one would have
        unit = self.params.unit
        buy, sell = bars.buy_volume(unit), bars.sell_volume(unit)
        delta = buy.minus(sell)
        traded = ~bars.filled
        sessions, restart = bars.sessions(self.anchor, self.session)
        scale = max(delta.scale, split_decimal(self.cvd)[1], split_decimal(self.cvd_session)[1])
        delta = delta.rescaled(scale)
        cvd = delta.running(mantissa_at(self.cvd, scale))
        in_session = delta.running(mantissa_at(self.cvd_session, scale), restart)
        emit("cvd_1m", json_lines([
            JsonField("timestamp_utc", "text", bars.timestamps()),
            buy.field("buy_volume"), sell.field("sell_volume"), delta.field("delta", plus=True),
            cvd.field("cvd", plus=True), in_session.field("cvd_session", plus=True),
        ], len(bars)))
        # the exponent of a sum is the smallest of what was added to it: each traded minute's delta has its row's
        rows = bars.row_scales(unit)
        self.cvd = decimal_at(int(cvd.m[-1]), scale, max([split_decimal(self.cvd)[1], *rows[traded].tolist()]))
        last = int(np.flatnonzero(restart)[-1]) if restart.any() else 0
        since = rows[last:][traded[last:]].tolist()
        kept = 0 if restart.any() else split_decimal(self.cvd_session)[1]
        self.cvd_session = decimal_at(int(in_session.m[-1]), scale, max([kept, *since]))
        self.session = int(sessions[-1])

    def get_state(self) -> dict[str, Any]:
        return {"cvd": str(self.cvd), "cvd_session": str(self.cvd_session), "session": self.session}

    def set_state(self, state: dict[str, Any]) -> None:
        self.cvd = Decimal(state["cvd"])
        self.cvd_session = Decimal(state["cvd_session"])
        self.session = state["session"]


class AggregateCvdParams(CvdParams):
    members: tuple[str, ...] = ()  # set by the runtime from [aggregates.NAME] members


class AggregateCvd(Cvd):
    """An aggregate's CVD (SPEC section 16): section 5's sums over the aggregate's summed ``volume_1m`` delta."""

    name = "aggregate_cvd"
    version = "1"
    Params = AggregateCvdParams
    consumes = "records"
    scope = "aggregate"
    folder = "cvd"

    @classmethod
    def inputs(cls, params: AggregateCvdParams) -> list[Input]:
        return [Input("volume", "volume_1m")]  # the aggregate's own, written just before

    @classmethod
    def resolve_params(cls, params: Params, others: dict[str, Params]) -> Params:
        cvd = others.get("cvd")
        return cls.Params(**{**cvd.model_dump(), "members": params.members}) if cvd is not None else params

    def on_records(self, minute: int, records: dict[str, list[dict[str, Any]]], emit: Emit) -> None:
        for r in records["volume_1m"]:
            self._session(minute_of_iso(r["timestamp_utc"]))
            delta = Decimal(r["delta"])
            self.cvd += delta
            self.cvd_session += delta
            emit("cvd_1m", {
                "timestamp_utc": r["timestamp_utc"],
                "buy_volume": r["buy_volume"],
                "sell_volume": r["sell_volume"],
                "delta": r["delta"],
                "cvd": self._cvd_text.of(self.cvd),
                "cvd_session": self._session_text.of(self.cvd_session),
            })


@hookimpl
def register_indicators(register) -> None:
    register(Cvd)
    register(AggregateCvd)  # runs for each [aggregates.NAME] of the config (SPEC section 16)
