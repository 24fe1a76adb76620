"""The aggregated tape (SPEC section 16): the members' ``volume_1m`` added minute by minute, per ``[aggregates.NAME]``.

Runs for each aggregate of the config (``scope = "aggregate"``): the runtime
sets ``members`` and hands it the members' committed ``volume_1m`` records of
each minute once every member has passed it.  Volumes, deltas, whale figures
and trade counts are summed exactly; the prices are the first listed member's
that has the minute (a member without a record for a minute is left out of
``members`` and taints it ``member_missing``); the median, tier, absorption and
divergence are section 4's on the summed series (the same parameters as the
volume analyzer's, window in the state).  ``buy_base``/``sell_base`` are the
sums of the members' (written by the volume analyzer with ``base_volumes =
true``), ``null`` while a member present in the minute has none.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from indicator_core import RATIO_PLACES, Emit, Input, div_round, fmt, fmt_signed

from .analyzer import VolumeAnalyzer, VolumeParams

SUMMED = ("total_volume", "buy_volume", "sell_volume", "whale_volume", "whale_buy_volume", "whale_sell_volume")
ZERO = Decimal(0)


class AggregateVolumeParams(VolumeParams):
    members: tuple[str, ...] = ()  # set by the runtime from [aggregates.NAME] members


class AggregateVolume(VolumeAnalyzer):
    name = "aggregate_volume"
    version = "1"
    Params = AggregateVolumeParams
    consumes = "records"
    scope = "aggregate"
    folder = "volume"  # derived/volume/aggregate/all/{NAME}/volume_1m.jsonl, where study and chart read volume
    trades_by_minute = True

    @classmethod
    def inputs(cls, params: AggregateVolumeParams) -> list[Input]:
        return [Input("volume", "volume_1m", key=m, instrument=m) for m in params.members]

    @classmethod
    def resolve_params(cls, params: Any, others: dict[str, Any]) -> Any:
        """The volume analyzer's settings (unit, thresholds, window): the summed series is judged as one of its."""
        volume = others.get("volume")
        if volume is None:
            return params
        return cls.Params(**{**volume.model_dump(), "members": params.members})

    def on_records(self, minute: int, records: dict[str, list[dict[str, Any]]], emit: Emit) -> None:
        members = self.params.members
        present = [(m, records[m][-1]) for m in members if records.get(m)]
        if not present:
            return
        sums = {f: sum((Decimal(r[f]) for _, r in present), ZERO) for f in SUMMED}
        delta = sum((Decimal(r["delta"]) for _, r in present), ZERO)
        bases = [r.get("buy_base") for _, r in present]
        has_base = all(b is not None for b in bases)
        price = present[0][1]  # the first listed member that has the minute
        open_, close = Decimal(price["open"]), Decimal(price["close"])
        move = close - open_
        med, ratio, tier = self._against_median(sums["total_volume"])
        taint = [t for _, r in present for t in r["taint"]]
        if len(present) < len(members):
            taint.append("member_missing")
        p = self.params
        emit("volume_1m", {
            "timestamp_utc": price["timestamp_utc"],
            "inst_id": self.instrument.inst_id,
            "open": price["open"], "high": price["high"], "low": price["low"], "close": price["close"],
            "total_volume": fmt(sums["total_volume"]),
            "buy_volume": fmt(sums["buy_volume"]),
            "sell_volume": fmt(sums["sell_volume"]),
            "buy_base": fmt(sum((Decimal(r["buy_base"]) for _, r in present), ZERO)) if has_base else None,
            "sell_base": fmt(sum((Decimal(r["sell_base"]) for _, r in present), ZERO)) if has_base else None,
            "delta": fmt_signed(delta),
            "trade_count": sum(r["trade_count"] for _, r in present),
            "whale_volume": fmt(sums["whale_volume"]),
            "whale_count": sum(r["whale_count"] for _, r in present),
            "whale_buy_volume": fmt(sums["whale_buy_volume"]),
            "whale_sell_volume": fmt(sums["whale_sell_volume"]),
            "volume_median": med, "volume_ratio": ratio, "volume_tier": tier,
            "price_change_pct": fmt_signed(div_round(move * 100, open_, RATIO_PLACES)) if move else "0",
            "absorption": tier == "T4" and abs(move) < p.absorption_max_move * open_,
            "divergence": move != 0 and delta != 0 and (move > 0) != (delta > 0),
            "empty": all(r["empty"] for _, r in present),
            "tainted": bool(taint),
            "taint": list(dict.fromkeys(taint)),
            "members": [m for m, _ in present],
            "by_member": {m: {"buy_volume": r["buy_volume"], "sell_volume": r["sell_volume"]} for m, r in present},
        })
        self._remember(sums["total_volume"])

    def get_state(self) -> dict[str, Any]:
        return {"window": [str(v) for v in self.window], "whales": {}}
