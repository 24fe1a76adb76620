"""What a user would write instead: polars over the day files, the volume analyzer's base columns.

    python bench/polars_script.py INSTRUMENT_FOLDER

Reads every trades_*.jsonl with read_ndjson, casts the strings, and groups by
minute: OHLC, buy/sell volume (USD notional), whale volume and count.  Floats,
not exact; one shot, not incremental.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

CT_VAL = 0.01
WHALE = 100_000.0


def main(folder: Path) -> int:
    frames = [pl.read_ndjson(p) for p in sorted(folder.glob("trades_*.jsonl"))]
    df = pl.concat(frames).with_columns(
        pl.col("px").cast(pl.Float64), pl.col("sz").cast(pl.Float64),
        pl.col("ts").cast(pl.Int64), pl.col("tradeId").cast(pl.Int64),
    )
    df = df.with_columns(
        (pl.col("px") * pl.col("sz") * CT_VAL).alias("notional"),
        (pl.col("ts") // 60_000).alias("minute"),
    ).sort(["ts", "tradeId"])
    whale = pl.col("notional") > WHALE
    bars = df.group_by("minute", maintain_order=True).agg(
        pl.col("px").first().alias("open"), pl.col("px").max().alias("high"),
        pl.col("px").min().alias("low"), pl.col("px").last().alias("close"),
        pl.col("notional").sum().alias("total_volume"),
        pl.col("notional").filter(pl.col("side") == "buy").sum().alias("buy_volume"),
        pl.col("notional").filter(pl.col("side") == "sell").sum().alias("sell_volume"),
        pl.col("notional").filter(whale).sum().alias("whale_volume"),
        whale.sum().alias("whale_count"),
        pl.len().alias("trade_count"),
    )
    bars.write_ndjson(folder.parent / "polars_volume_1m.jsonl")
    return len(bars)


if __name__ == "__main__":
    print(main(Path(sys.argv[1])))
