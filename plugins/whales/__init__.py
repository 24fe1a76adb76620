"""Whale trades (SPEC section 12): ``whales.jsonl``, one record per big trade.

A trade is a whale when its quote notional is strictly greater than
``threshold`` (default 100000, the volume analyzer's whale threshold).  The
candidates of a batch are found with one integer comparison on the notional
column, and their records are written from the columns in one go
(:func:`indicator_core.json_lines`): a day where one trade in ten is a whale
costs little more than one with none.  Records follow the stream order of the
trades (duplicates and late trades are never seen by an indicator).
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from indicator_core import Emit, Indicator, JsonField, Params, Signal, TradeBatch, hookimpl, json_lines


class WhalesParams(Params):
    threshold: Decimal = Field(default=Decimal("100000"), ge=0)


class Whales(Indicator):
    name = "whales"
    version = "1"
    trades_by_minute = False  # a record a trade: a chunk's trades at once, whatever minute they are in
    Params = WhalesParams
    # every whale trade is a signal: delivered by notifiers as stream "whales", id {inst_id}|{trade_id}
    signals = (Signal("whales", "ts_utc", ("trade_id",)),)

    def outputs(self) -> list[str]:
        return ["whales"]

    def on_trades(self, trades: TradeBatch, emit: Emit) -> None:
        rows = trades.rows_over(self.params.threshold)
        if not len(rows):
            return
        ids = (JsonField("trade_id", "text", [str(k) for k in trades.keys[rows].tolist()])
               if trades.keys is not None else JsonField("trade_id", "int", trades.trade_id[rows]))
        emit("whales", json_lines([
            JsonField("ts_utc", "iso_ms", trades.ts[rows]),
            ids,
            JsonField("side", "choice", trades.is_buy[rows], choices=("buy", "sell")),
            JsonField("px", "decimal", trades.px[rows], scale=trades.px_scale),
            JsonField("sz", "decimal", trades.sz[rows], scale=trades.sz_scale),
            JsonField("notional", "decimal", trades.quote[rows], scale=trades.quote_scale),
            JsonField("base", "decimal", trades.base[rows], scale=trades.base_scale),
        ], len(rows)))


@hookimpl
def register_indicators(register) -> None:
    register(Whales)
