"""What a user would write instead, with DuckDB: the volume analyzer's base columns per minute.

    python bench/duckdb_script.py INSTRUMENT_FOLDER

The same columns as bench/polars_script.py: one ``read_json`` over every
trades_*.jsonl with an explicit schema of strings (no type sniffing), the
casts, and one ``GROUP BY`` minute: OHLC (open and close by trade id, since
DuckDB's ``first`` follows no order under parallel scans), buy/sell volume (USD
notional), whale volume and count, trade count.  Floats, not exact; one shot,
not incremental.  DuckDB uses every core.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

CT_VAL = 0.01
WHALE = 100_000.0

QUERY = """
COPY (
  WITH t AS (
    SELECT CAST(tradeId AS BIGINT) AS id, CAST(px AS DOUBLE) AS px,
           CAST(px AS DOUBLE) * CAST(sz AS DOUBLE) * {ct_val} AS notional,
           side, CAST(ts AS BIGINT) // 60000 AS minute
    FROM read_json('{glob}', format = 'newline_delimited',
                   columns = {{instId: 'VARCHAR', tradeId: 'VARCHAR', px: 'VARCHAR', sz: 'VARCHAR',
                              side: 'VARCHAR', ts: 'VARCHAR'}})
  )
  SELECT minute, arg_min(px, id) AS open, max(px) AS high, min(px) AS low, arg_max(px, id) AS close,
         sum(notional) AS total_volume,
         sum(notional) FILTER (WHERE side = 'buy') AS buy_volume,
         sum(notional) FILTER (WHERE side = 'sell') AS sell_volume,
         coalesce(sum(notional) FILTER (WHERE notional > {whale}), 0) AS whale_volume,
         count(*) FILTER (WHERE notional > {whale}) AS whale_count,
         count(*) AS trade_count
  FROM t GROUP BY minute ORDER BY minute
) TO '{out}' (FORMAT JSON)
"""


def main(folder: Path) -> int:
    out = folder.parent / "duckdb_volume_1m.jsonl"
    glob = (folder / "trades_*.jsonl").as_posix()
    con = duckdb.connect()
    con.execute(QUERY.format(glob=glob, out=out.as_posix(), ct_val=CT_VAL, whale=WHALE))
    return sum(1 for _ in open(out, "rb"))


if __name__ == "__main__":
    print(main(Path(sys.argv[1])))
