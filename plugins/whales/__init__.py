"""Whale trades (SPEC section 12): ``whales.jsonl``, one record per big trade.

A trade is a whale when its quote notional is strictly greater than
``threshold`` (default 100000, the volume analyzer's whale threshold).  The
candidates of a minute are found with one integer comparison on the notional
column; only those rows are formatted.  Records follow the stream order of the
trades (duplicates and late trades are never seen by an indicator).
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from indicator_core import Emit, Indicator, Params, Signal, TradeBatch, fmt, hookimpl, iso_ms, to_dec


class WhalesParams(Params):
    threshold: Decimal = Field(default=Decimal("100000"), ge=0)


class Whales(Indicator):
    name = "whales"
    version = "1"
    Params = WhalesParams
    # every whale trade is a signal: delivered by notifiers as stream "whales", id {inst_id}|{trade_id}
    signals = (Signal("whales", "ts_utc", ("trade_id",)),)

    def outputs(self) -> list[str]:
        return ["whales"]

    def on_trades(self, trades: TradeBatch, emit: Emit) -> None:
        quote = trades.quote
        for i in trades.rows_over(self.params.threshold).tolist():
            emit("whales", {
                "ts_utc": iso_ms(int(trades.ts[i])),
                "trade_id": trades.id_text(i),
                "side": "buy" if trades.is_buy[i] else "sell",
                "px": fmt(to_dec(int(trades.px[i]), trades.px_scale)),
                "sz": fmt(to_dec(int(trades.sz[i]), trades.sz_scale)),
                "notional": fmt(to_dec(int(quote[i]), trades.quote_scale)),
                "base": fmt(to_dec(int(trades.base[i]), trades.base_scale)),
            })


@hookimpl
def register_indicators(register) -> None:
    register(Whales)
