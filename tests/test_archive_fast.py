"""The column-wise reading of Binance's and Bybit's daily archives gives what the reference readers give,
row for row, on both kernel paths."""

from __future__ import annotations

import random
import uuid

import pytest

from indicator_core.sources import archive_fast, binance, bybit, columnar
from indicator_core.sources.parsed import LazyKeys
from indicator_core.sources.timecheck import TimeWindow
from tests.kernel_paths import on_both_paths, rejects_of

kernel_path = on_both_paths("trades", columnar)

DAY = "2024-11-23"
T0 = 1732320000000  # 2024-11-23 00:00 UTC
WINDOW = TimeWindow.for_day(DAY, 0, 10, None)


def same(a, b) -> None:
    for name in ("ts", "trade_id", "count", "is_buy", "px_m", "px_s", "sz_m", "sz_s"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist(), name
    assert rejects_of(a) == rejects_of(b)
    assert a.lines == b.lines and a.id_space == b.id_space
    if b.keys is not None or a.keys is not None:
        assert list(a.keys.tolist() if a.keys is not None else []) == list(b.keys.tolist())


def binance_rows(stream: str, n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    rows, t = [], T0 + 5
    for k in range(n):
        t += rng.choice((0, 0, 3, 250))
        px, qty = f"{90000 + rng.randrange(2000) / 10:.1f}", f"{rng.randrange(1, 5000) / 1000:.3f}"
        maker = rng.choice(("true", "false"))
        if stream == "aggTrade":
            rows.append(f"{1000 + k},{px},{qty},{5000 + 2 * k},{5001 + 2 * k},{t},{maker}")
        else:
            rows.append(f"{1000 + k},{px},{qty},{float(px) * float(qty):.8f},{t},{maker}")
    return rows


ODD_BINANCE = {
    "capital_true": lambda r: r.rsplit(",", 1)[0] + ",True",
    "quoted": lambda r: '"' + r.split(",", 1)[0] + '",' + r.split(",", 1)[1],
    "bad_price": lambda r: r.replace(",", ",x", 1),
    "short": lambda r: r.rsplit(",", 1)[0],
    "late_day": lambda r: r.replace(str(T0)[:6], str(T0 + 3 * 86_400_000)[:6]),
    "empty": lambda r: "",
}


@pytest.mark.parametrize("stream", ["aggTrade", "trade"])
@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("crlf", [False, True])
def test_binance_archives(stream: str, header: bool, crlf: bool) -> None:
    rows = binance_rows(stream, 3000)
    columns = binance.AGG_COLUMNS if stream == "aggTrade" else binance.RAW_COLUMNS
    for k, odd in enumerate(ODD_BINANCE.values()):
        rows[100 + 37 * k] = odd(rows[100 + 37 * k])
    text = (",".join(columns) + "\n" if header else "") + "\n".join(rows) + "\n"
    buf = text.replace("\n", "\r\n").encode() if crlf else text.encode()
    fast = archive_fast.binance_chunk(buf, 1, WINDOW, stream)
    same(fast, binance.parse_csv(buf, 1, WINDOW, stream))
    assert len(fast) >= 2990


def bybit_rows(n: int, symbol: str = "BTCUSDT", rpi: bool = True, seed: int = 2) -> list[str]:
    rng = random.Random(seed)
    rows, t = [], T0 / 1000 + 0.0647
    for k in range(n):
        t += rng.choice((0, 0, 0.003, 0.25))
        size = f"{rng.randrange(1, 5000) / 1000:.3f}"
        px = f"{90000 + rng.randrange(2000) / 10:.2f}"
        gross = f"{rng.randrange(1, 10**9)}e+0{rng.randrange(1, 9)}"
        row = (f"{t:.4f},{symbol},{rng.choice(('Buy', 'Sell'))},{size},{px},ZeroMinusTick,{uuid.UUID(int=k + 7)},"
               f"{gross},{size},{float(size) * float(px):.10f}")
        rows.append(row + (f",{rng.choice((0, 1))}" if rpi else ""))
    return rows


ODD_BYBIT = {
    "no_fraction": lambda r: str(T0 // 1000 + 9) + r[r.index(","):],
    "long_fraction": lambda r: r.split(",", 1)[0] + "123456," + r.split(",", 1)[1],
    "other_symbol": lambda r: r.replace("BTCUSDT", "ETHUSDT"),
    "lower_side": lambda r: r.replace(",Buy,", ",buy,").replace(",Sell,", ",sell,"),
    "quoted_cell": lambda r: r.replace("ZeroMinusTick", '"ZeroMinusTick"'),
    "long_id": lambda r: r.replace(r.split(",")[6], "9" * 70),
    "next_day": lambda r: str(T0 // 1000 + 86_400 * 2) + ".5" + r[r.index(","):],
    "few_columns": lambda r: ",".join(r.split(",")[:5]),
    "empty": lambda r: "",
}


@pytest.mark.parametrize("rpi", [False, True])
@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("odd", [None, *ODD_BYBIT])
def test_bybit_archives(rpi: bool, crlf: bool, odd: str | None) -> None:
    rows = bybit_rows(2000, rpi=rpi)
    if odd is not None:
        rows[500] = ODD_BYBIT[odd](rows[500])
    header = "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional"
    text = header + (",RPI" if rpi else "") + "\n" + "\n".join(rows) + "\n"
    buf = text.replace("\n", "\r\n").encode() if crlf else text.encode()
    fast = archive_fast.bybit_chunk(buf, 1, "BTCUSDT", WINDOW)
    same(fast, bybit.parse_csv(buf, 1, "BTCUSDT", WINDOW))
    if odd in (None, "other_symbol", "next_day", "few_columns", "empty"):  # rejects only: read column-wise
        assert isinstance(fast.keys, LazyKeys)


def test_bybit_archive_times_round_down_to_the_millisecond() -> None:
    rows = [f"{s},BTCUSD,Buy,100,90000.5,PlusTick,id-{k},1,1,1" for k, s in
            enumerate(("1732320000.0001", "1732320000.9999", "1732320001", "1732320001.5", "1732320002.12345678"))]
    buf = ("\n".join(rows) + "\n").encode()
    fast = archive_fast.bybit_chunk(buf, 1, "BTCUSD", WINDOW)
    assert fast.ts.tolist() == [1732320000000, 1732320000999, 1732320001000, 1732320001500, 1732320002123]
    same(fast, bybit.parse_csv(buf, 1, "BTCUSD", WINDOW))


def test_the_real_bybit_archive_row_shape() -> None:
    """A row as Bybit's inverse archive of 2026-09-01 writes it (RPI column, a long foreignNotional), as
    quoted in a public format note (see tests/data/README.md)."""
    row = ("1788220801.0925,BTCUSD,Sell,79,78513.00,PlusTick,e94f18f9-4bc4-5530-87ee-d067f8267a62,"
           "100620.27944416848,79,0.0010062027944416848,0")
    header = "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional,RPI"
    buf = f"{header}\n{row}\n".encode()
    window = TimeWindow.for_day("2026-09-01", 0, 10, None)
    fast = archive_fast.bybit_chunk(buf, 1, "BTCUSD", window)
    same(fast, bybit.parse_csv(buf, 1, "BTCUSD", window))
    assert fast.ts.tolist() == [1788220801092] and fast.is_buy.tolist() == [False]
    assert fast.keys[0] == "e94f18f9-4bc4-5530-87ee-d067f8267a62" and isinstance(fast.keys, LazyKeys)
