"""The Binance USDⓈ-M trade reader (SPEC section 15) on real recorded lines and on made-up faults.

The oracle: ``binance-raw/hftbacktest_usdm_ethusdt_20240808.gz`` holds 14,076 real raw ``trade``
frames of ETHUSDT; ``binance-as-okx/eth-perp-2024-08-08`` is the same trades rewritten as OKX lines
(size in 0.1 ETH contracts).  Read by each reader, the trades agree field by field.
"""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from indicator_core.sources import binance, columnar, okx_jsonl
from tests.kernel_paths import on_both_paths, rejects_of
from tests.vaults import ETH_PERP

# every test twice: Binance's layout read by the compiled kernel (its `m` flag a kernel kind), and by numpy
kernel_path = on_both_paths("trades", columnar)

RAW = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "binance-raw" / "hftbacktest_usdm_ethusdt_20240808.gz"
USDM = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "binance" / "ws-usdm-2021-07-22.jsonl"


def trade_frames() -> bytes:
    """The recording's ``trade`` frames as a recorder writes them (one frame a line, no receive time)."""
    if not RAW.is_file():
        pytest.skip("no shared/data beside this checkout")
    out = []
    with gzip.open(RAW, "rb") as f:
        for line in f:
            _, frame = line.rstrip(b"\n").split(b" ", 1)
            if b'"e":"trade"' in frame:
                out.append(frame + b"\n")
    return b"".join(out)


def columns(p) -> list[tuple]:
    return list(zip(p.ts.tolist(), p.trade_id.tolist(), p.is_buy.tolist(),
                    [Decimal(m).scaleb(-s) for m, s in zip(p.px_m.tolist(), p.px_s.tolist())],
                    [Decimal(m).scaleb(-s) for m, s in zip(p.sz_m.tolist(), p.sz_s.tolist())]))


def test_real_raw_trades_agree_with_their_okx_rewrite_field_by_field() -> None:
    frames = trade_frames()
    got = binance.parse_lines(frames, 1, "ETHUSDT", stream="trade")
    assert not got.rejects and got.skipped == 0 and len(got) == 14_076
    okx = b"".join(p.read_bytes() for p in sorted(ETH_PERP.glob("*.jsonl")))
    ref = okx_jsonl.parse_lines(okx, 1, "ETH-USDT-SWAP")
    ct_val = Decimal("0.1")
    want = [(ts, tid, buy, px, (sz * ct_val).normalize()) for ts, tid, buy, px, sz in columns(ref)]
    assert [(ts, tid, buy, px, sz.normalize()) for ts, tid, buy, px, sz in columns(got)] == want


def test_real_aggtrades_of_a_combined_stream_are_read_per_symbol() -> None:
    if not USDM.is_file():
        pytest.skip("no shared/data beside this checkout")
    lines = [x for x in USDM.read_bytes().splitlines(keepends=True) if b"@aggTrade" in x]
    ctk = b"".join(x for x in lines if b'"s":"CTKUSDT"' in x)
    got = binance.parse_lines(ctk, 1, "CTKUSDT")
    want = [orjson.loads(x)["data"] for x in ctk.splitlines()]
    assert len(got) == len(want) > 0 and not got.rejects
    assert got.trade_id.tolist() == [w["a"] for w in want]
    assert got.is_buy.tolist() == [not w["m"] for w in want]
    assert got.ts.tolist() == [w["T"] for w in want]
    # another symbol's line in this instrument's file is a reject naming it, not a trade
    mixed = binance.parse_lines(b"".join(lines[:5]), 1, "CTKUSDT")
    assert len(mixed) + len(mixed.rejects) == 5 and all("symbol" in r.reason for r in mixed.rejects)


def test_raw_trades_not_on_the_tape_are_skipped_and_counted_and_the_other_stream_is_refused() -> None:
    def raw(t: int, x: str) -> bytes:
        return orjson.dumps({"e": "trade", "E": 1, "T": 1723161256560 + t, "s": "ETHUSDT", "t": t, "p": "2681.62",
                             "q": "1.000", "X": x, "m": False}) + b"\n"

    agg = orjson.dumps({"e": "aggTrade", "E": 1, "a": 9, "s": "ETHUSDT", "p": "1", "q": "1", "f": 1, "l": 1,
                        "T": 1723161256560, "m": True}) + b"\n"
    got = binance.parse_lines(raw(1, "MARKET") + raw(2, "INSURANCE_FUND") + raw(3, "ADL") + agg + raw(4, "MARKET"), 1,
                              "ETHUSDT", stream="trade")
    assert got.trade_id.tolist() == [1, 4] and got.skipped == 2
    assert [r.line for r in got.rejects] == [4] and "either aggregated trades or raw trades" in got.rejects[0].reason


@pytest.mark.parametrize("header", [True, False])
def test_archive_rows_with_and_without_the_header(header: bool) -> None:
    rows = ("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n" if header else "")
    rows += "26129,0.01633102,4.70443515,27781,27781,1498793709153,true\n26130,0.01633,1,27782,27783,1498793709200,false\n"
    got = binance.parse_csv(rows.encode(), 1, None, binance.archive_stream("BTCUSDT-aggTrades-2017-06-30.csv"))
    assert got.trade_id.tolist() == [26129, 26130] and got.is_buy.tolist() == [False, True] and not got.rejects
    raw = "id,price,qty,quote_qty,time,is_buyer_maker\n5,100.5,0.2,20.1,1498793709153,false\n"
    got = binance.parse_csv(raw.encode(), 1, None, binance.archive_stream("BTCUSDT-trades-2017-06-30.csv"))
    assert got.trade_id.tolist() == [5] and got.is_buy.tolist() == [True]
    bad = binance.parse_csv(b"1,2,3\n", 7, None, "aggTrade")
    assert bad.rejects[0].line == 7 and "7 columns" not in bad.rejects[0].reason and "columns" in bad.rejects[0].reason


def _event(k: int, *, stream: str = "aggTrade", symbol: str = "BTCUSDT", x: str = "MARKET", wrap: bool = True,
           p: str | None = None, m: bool | None = None) -> bytes:
    if stream == "aggTrade":
        ev = {"e": "aggTrade", "E": 1732320000100 + k, "a": 1000 + k, "s": symbol, "p": p or f"{90000 + k % 7}.{k % 10}",
              "q": f"0.{k % 97 + 1:03d}", "f": 5000 + k, "l": 5000 + k, "T": 1732320000000 + 37 * k,
              "m": (k % 3 == 0) if m is None else m}
    else:
        ev = {"e": "trade", "E": 1732320000100 + k, "T": 1732320000000 + 37 * k, "s": symbol, "t": 1000 + k,
              "p": p or f"{90000 + k % 7}.{k % 10}", "q": f"0.{k % 97 + 1:03d}", "X": x,
              "m": (k % 3 == 0) if m is None else m}
    body = orjson.dumps(ev)
    return (b'{"stream":"%s@%s","data":' % (symbol.lower().encode(), stream.encode()) + body + b"}" if wrap
            else body) + b"\n"


@pytest.mark.parametrize("stream", ["aggTrade", "trade"])
@pytest.mark.parametrize("wrap", [True, False])
def test_the_fast_path_reads_what_the_reference_reads_line_for_line(stream: str, wrap: bool) -> None:
    from indicator_core.sources import binance_fast

    lines = [_event(k, stream=stream, wrap=wrap) for k in range(3000)]
    lines[17] = _event(17, stream=stream, wrap=not wrap)  # another layout
    lines[40] = _event(40, stream=stream, wrap=wrap, p="-1")  # a bad price
    lines[41] = _event(41, stream=stream, wrap=wrap, p="12345678901.123456789")  # a long decimal
    lines[99] = _event(99, stream=stream, wrap=wrap, symbol="ETHUSDT")  # another symbol
    lines[150] = b"not json\n"
    lines[151] = b"\n"
    if stream == "trade":
        lines[200] = _event(200, stream=stream, wrap=wrap, x="INSURANCE_FUND")
    lines[2999] = _event(2999, stream="trade" if stream == "aggTrade" else "aggTrade", wrap=wrap)  # the other stream
    buf = b"".join(lines)
    fast = binance_fast.parse_chunk(buf, 5, "BTCUSDT")
    ref = binance.parse_lines(buf, 5, "BTCUSDT")
    assert columns(fast) == columns(ref) and len(fast) > 2900
    assert [x[:2] for x in rejects_of(fast)] == [x[:2] for x in rejects_of(ref)]
    assert (fast.skipped, fast.id_space, fast.lines) == (ref.skipped, ref.id_space, ref.lines)


def test_the_fast_path_on_the_real_aggtrades() -> None:
    from indicator_core.sources import binance_fast

    if not USDM.is_file():
        pytest.skip("no shared/data beside this checkout")
    for symbol in ("CTKUSDT", "AKROUSDT", "SUSHIUSDT", "KEEPUSDT"):
        buf = b"".join(x + b"\n" for x in USDM.read_bytes().splitlines() if f'"s":"{symbol}"'.encode() in x
                       and b"@aggTrade" in x)
        if not buf:
            continue
        fast, ref = binance_fast.parse_chunk(buf, 1, symbol), binance.parse_lines(buf, 1, symbol)
        assert columns(fast) == columns(ref) and not ref.rejects
