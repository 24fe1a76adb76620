"""The column-wise Bybit reader gives what the reference reader gives, line for line, trade for trade."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from indicator_core.sources import bybit, bybit_fast, columnar
from indicator_core.sources.parsed import LazyKeys
from indicator_core.sources.timecheck import TimeWindow
from tests.kernel_paths import on_both_paths
from tests.test_venues import bybit_pushes
from tests.vaults import DATA

# the pushes are cut into trades and the trades read by the compiled kernel (Side, skip_word and id kinds) and by numpy
kernel_path = on_both_paths("trades", columnar, bybit_fast)


def same(a, b) -> None:
    for name in ("ts", "trade_id", "count", "is_buy", "px_m", "px_s", "sz_m", "sz_s"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist(), name
    assert list(a.keys.tolist()) == list(b.keys.tolist())
    assert [(r.line, r.reason) for r in a.rejects] == [(r.line, r.reason) for r in b.rejects]
    assert a.lines == b.lines


def test_generated_pushes_of_one_to_five_trades() -> None:
    lines, trades = bybit_pushes(9, 1732320000000, 5000)
    buf = b"".join(lines)
    fast, ref = bybit_fast.parse_chunk(buf, 3, "BTCUSDT"), bybit.parse_lines(buf, 3, "BTCUSDT")
    same(fast, ref)
    assert isinstance(fast.keys, LazyKeys)  # read column-wise, not by the reference
    assert len(fast) == len(ref) >= 5000 and [fast.keys[k] for k in (0, 7)] == [trades[0]["i"], trades[7]["i"]]
    assert bybit.id_key(trades[7]["i"]) == int(fast.trade_id[7])


@pytest.mark.parametrize("odd", ["side", "symbol", "order", "escape", "window", "json", "long_id", "bt", "control", "empty", "push_ts"])
def test_a_chunk_with_an_odd_line_reads_as_the_reference_reads_it(odd: str) -> None:
    lines, _ = bybit_pushes(4, 1732320000000, 400)
    doc = orjson.loads(lines[10])
    item = doc["data"][0]
    if odd == "side":
        item["S"] = "buy?"
    elif odd == "symbol":
        item["s"] = "ETHUSDT"
    elif odd == "order":
        doc["data"][0] = dict(reversed(list(item.items())))
    elif odd == "escape":
        item["i"] = 'a"b'
    elif odd == "window":
        item["T"] = 1732320000000 + 3 * 86_400_000
    elif odd == "long_id":  # longer than either fast reader takes (64 bytes): the reference reads it
        item["i"] = "7" * 65
    elif odd == "bt":
        item["BT"] = "no"
    elif odd == "control":
        item["i"] = "ab\tc"
    elif odd == "empty":  # a push with no trade
        doc["data"] = []
    elif odd == "push_ts":  # the push's own time not a number
        doc["ts"] = "soon"
    lines[10] = b"not json\n" if odd == "json" else orjson.dumps(doc) + b"\n"
    buf = b"".join(lines)
    window = TimeWindow.for_day("2024-11-23", 0, 10, None)
    same(bybit_fast.parse_chunk(buf, 1, "BTCUSDT", window), bybit.parse_lines(buf, 1, "BTCUSDT", window))


def test_real_bybit_pushes() -> None:
    buf = (DATA / "bybit-as-v5" / "BTCUSD" / "trades_2021-04-17.jsonl").read_bytes()
    fast, ref = bybit_fast.parse_chunk(buf, 1, "BTCUSD"), bybit.parse_lines(buf, 1, "BTCUSD")
    same(fast, ref)
    assert isinstance(fast.keys, LazyKeys)
    assert len(fast) == 131 and Decimal(int(fast.px_m[0])).scaleb(-int(fast.px_s[0])) == Decimal("60621.5")
