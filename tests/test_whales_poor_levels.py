"""Whale trades and poor highs/lows (SPEC section 12) from hand-built trades, through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indicator_core.cli import main
from tests.vaults import ETH_PERP, inst_dir, outputs, read_jsonl, run, trade_line, write_config

BTC = "BTC-USDT-SWAP"
D0 = 1723075200000  # 2024-08-08 00:00 UTC, ms
MIN = 60_000
DAY = 1440 * MIN


def vault_with(tmp: Path, trades: list[tuple[int, str, str, str]], inst: str = BTC) -> Path:
    """Trades ``(ts, px, sz, side)`` with ids 1, 2, ... written to day files of ``inst``."""
    vault = tmp / "vault"
    folder = inst_dir(vault, inst)
    days: dict[int, list[bytes]] = {}
    for k, (ts, px, sz, side) in enumerate(trades):
        days.setdefault(ts // DAY, []).append(trade_line(inst, 1000 + k, px, sz, side, ts))
    for day, lines in days.items():
        name = "trades_%s.jsonl" % __import__("time").strftime("%Y-%m-%d", __import__("time").gmtime(day * 86400))
        (folder / name).write_bytes(b"".join(lines))
    return vault


def derived(vault: Path, indicator: str, stream: str, inst: str = BTC) -> list[dict]:
    path = vault / "derived" / indicator / "okx" / "perps" / inst / f"{stream}.jsonl"
    return read_jsonl(path) if path.exists() else []


# --- whales ---------------------------------------------------------------------------------------
def test_whales_strictly_above_threshold_in_stream_order(tmp_path: Path) -> None:
    trades = [
        (D0 + 5_000, "60000", "166.67", "buy"),     # 100002 USD: a whale
        (D0 + 6_000, "60000", "166.66", "sell"),    # 99996: not
        (D0 + 7_000, "50000", "200", "sell"),       # exactly 100000: not (strictly greater)
        (D0 + 3_000, "60000.5", "1000", "sell"),    # earlier ts, later in the stream: stream order
        (D0 + MIN + 1, "60001.25", "0.01", "buy"),  # small
    ]
    vault = vault_with(tmp_path, trades)
    assert run(vault) == 0
    text = (vault / "derived/whales/okx/perps/BTC-USDT-SWAP/whales.jsonl").read_text(encoding="utf-8")
    assert text == (
        '{"ts_utc":"2024-08-08T00:00:05.000Z","trade_id":"1000","side":"buy","px":"60000","sz":"166.67",'
        '"notional":"100002","base":"1.6667"}\n'
        '{"ts_utc":"2024-08-08T00:00:03.000Z","trade_id":"1003","side":"sell","px":"60000.5","sz":"1000",'
        '"notional":"600005","base":"10"}\n'
    )


def test_whales_threshold_from_config(tmp_path: Path) -> None:
    trades = [(D0 + k * 1000, "60000", sz, "buy") for k, sz in enumerate(["1", "0.84", "0.83"])]  # 600, 504, 498 USD
    vault = vault_with(tmp_path, trades)
    cfg = write_config(tmp_path / "c.toml", '[plugins.whales]\nthreshold = "500"\n')
    assert run(vault, cfg) == 0
    assert [r["notional"] for r in derived(vault, "whales", "whales")] == ["600", "504"]
    bad = write_config(tmp_path / "bad.toml", '[plugins.whales]\nthreshold = "-1"\n')
    assert run(vault, bad) == 2


def test_whales_on_real_eth_trades_match_the_volume_analyzer(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    folder = inst_dir(vault, "ETH-USDT-SWAP")
    for day in ("trades_2024-08-08.jsonl", "trades_2024-08-09.jsonl"):
        (folder / day).write_bytes((ETH_PERP / day).read_bytes())
    cfg = write_config(tmp_path / "c.toml", '[plugins.volume]\nwhale_threshold_usd = "20000"\n'
                                            '[plugins.whales]\nthreshold = "20000"\n')
    assert run(vault, cfg) == 0
    whales = derived(vault, "whales", "whales", "ETH-USDT-SWAP")
    bars = derived(vault, "volume", "volume_1m", "ETH-USDT-SWAP")
    closed = {b["timestamp_utc"][:16] for b in bars}
    in_closed = [w for w in whales if w["ts_utc"][:16] in closed]
    assert len(in_closed) == sum(b["whale_count"] for b in bars) > 10
    from decimal import Decimal
    for w in whales:
        assert Decimal(w["notional"]) == Decimal(w["px"]) * Decimal(w["sz"]) * Decimal("0.1") > 20000
        assert Decimal(w["base"]) == Decimal(w["sz"]) * Decimal("0.1")


# --- poor levels ----------------------------------------------------------------------------------
def t(day: int, hh: int, mm: int, sec: int = 0) -> int:
    return D0 + day * DAY + (hh * 60 + mm) * MIN + sec * 1000


def buy(ts: int, px: str) -> tuple[int, str, str, str]:
    return (ts, px, "1", "buy")


SESSIONS = [
    # session 1 (2024-08-08): high 105 printed in periods 00:00 and 00:30, low 95 at 01:00 and 02:00: both poor
    buy(t(0, 0, 5), "100"), buy(t(0, 0, 10), "105"), buy(t(0, 0, 40), "105"), buy(t(0, 1, 10), "95"),
    buy(t(0, 2, 0), "95"), buy(t(0, 2, 1), "99"),
    # session 2: the first trade repairs the high (106 > 105); its own high 106 twice but in ONE period
    buy(t(1, 0, 2, 30), "106"), buy(t(1, 0, 20), "106"), buy(t(1, 1, 0), "96"),
    buy(t(1, 3, 0, 7), "95"),   # at the poor low: not through it
    buy(t(1, 3, 5, 9), "94.9"),  # through it: repaired; session 2's low 94.9 in one period
    # session 3: one trade closes session 2, which has nothing poor
    buy(t(2, 0, 0), "100"),
]


def test_poor_high_and_low_found_then_repaired(tmp_path: Path) -> None:
    vault = vault_with(tmp_path, SESSIONS)
    assert run(vault) == 0
    text = (vault / "derived/poor_levels/okx/perps/BTC-USDT-SWAP/poor_levels.jsonl").read_text(encoding="utf-8")
    assert text == (
        '{"event":"poor_high","level":"105","session_start":"2024-08-08T00:00:00Z","periods":2}\n'
        '{"event":"poor_low","level":"95","session_start":"2024-08-08T00:00:00Z","periods":2}\n'
        '{"event":"repaired","side":"high","level":"105","session_start":"2024-08-08T00:00:00Z",'
        '"repaired_utc":"2024-08-09T00:02:30.000Z"}\n'
        '{"event":"repaired","side":"low","level":"95","session_start":"2024-08-08T00:00:00Z",'
        '"repaired_utc":"2024-08-09T03:05:09.000Z"}\n'
    )


def test_a_session_still_open_at_the_end_of_the_input_writes_nothing(tmp_path: Path) -> None:
    vault = vault_with(tmp_path, SESSIONS[:6])
    assert run(vault) == 0
    assert derived(vault, "poor_levels", "poor_levels") == []
    state = json.loads((vault / "state/poor_levels/okx/perps/BTC-USDT-SWAP.state.json").read_text())
    assert state["plugin"]["high"] == "105" and state["plugin"]["high_periods"] == [0, 1]
    assert state["plugin"]["low"] == "95" and state["plugin"]["low_periods"] == [2, 4]


def test_min_periods_and_session_anchor(tmp_path: Path) -> None:
    vault = vault_with(tmp_path, SESSIONS)
    # three periods needed: nothing in session 1; anchor 01:00 moves the sessions
    cfg = write_config(tmp_path / "c.toml", '[plugins.poor_levels]\nmin_periods = 3\n')
    assert run(vault, cfg) == 0
    assert derived(vault, "poor_levels", "poor_levels") == []
    vault2 = vault_with(tmp_path / "b", SESSIONS)
    cfg = write_config(tmp_path / "d.toml", '[plugins.poor_levels]\nsession_anchor = "01:00"\n')
    assert run(vault2, cfg) == 0
    got = derived(vault2, "poor_levels", "poor_levels")
    # the session from 2024-08-07 01:00 holds 00:05 .. 00:40 (high 105 in the periods from 00:00 and 00:30, low
    # 100 in one); the next, from 2024-08-08 01:00, holds 01:10 .. 2024-08-09 00:20: low 95 at 01:10 and 02:00
    # (periods 0 and 2), high 106 twice in the period from 00:00
    assert [(r["event"], r.get("side"), r["level"], r["session_start"], r.get("repaired_utc")) for r in got] == [
        ("poor_high", None, "105", "2024-08-07T01:00:00Z", None),
        ("repaired", "high", "105", "2024-08-07T01:00:00Z", "2024-08-09T00:02:30.000Z"),
        ("poor_low", None, "95", "2024-08-08T01:00:00Z", None),
        ("repaired", "low", "95", "2024-08-08T01:00:00Z", "2024-08-09T03:05:09.000Z"),
    ]
    bad = write_config(tmp_path / "e.toml", '[plugins.poor_levels]\nmin_periods = 0\n')
    assert run(vault2, bad) == 2


def test_one_trade_repairs_levels_of_two_sessions_in_session_order(tmp_path: Path) -> None:
    trades = [
        # session 1: poor high 105, poor low 90
        buy(t(0, 0, 0), "105"), buy(t(0, 0, 45), "105"), buy(t(0, 5, 0), "90"), buy(t(0, 6, 0), "90"),
        # session 2: poor high 103 (below 105, so 105 survives), poor low 92
        buy(t(1, 1, 0), "103"), buy(t(1, 2, 0), "103"), buy(t(1, 3, 0), "92"), buy(t(1, 3, 31), "92"),
        # session 3: one trade through both highs, then one through both lows
        buy(t(2, 0, 1, 1), "105.5"), buy(t(2, 0, 1, 2), "89"),
    ]
    vault = vault_with(tmp_path, trades)
    assert run(vault) == 0
    got = [(r["event"], r.get("side"), r["level"], r["session_start"][:10]) for r in derived(vault, "poor_levels", "poor_levels")]
    assert got == [
        ("poor_high", None, "105", "2024-08-08"), ("poor_low", None, "90", "2024-08-08"),
        ("poor_high", None, "103", "2024-08-09"), ("poor_low", None, "92", "2024-08-09"),
        ("repaired", "high", "105", "2024-08-08"), ("repaired", "high", "103", "2024-08-09"),
        ("repaired", "low", "90", "2024-08-08"), ("repaired", "low", "92", "2024-08-09"),
    ]


@pytest.mark.parametrize("batch", [64, 200, 1 << 20])
def test_cut_anywhere_gives_the_same_bytes(tmp_path: Path, batch: int) -> None:
    """Runs over growing prefixes (cut mid-line too) write what one run writes."""
    whole = vault_with(tmp_path / "whole", SESSIONS)
    cfg = write_config(tmp_path / "c.toml", f'[run]\nbatch_bytes = {batch}\n[plugins.whales]\nthreshold = "0.99"\n')
    assert run(whole, cfg) == 0
    expected = outputs(whole)
    assert expected["poor_levels/okx/perps/BTC-USDT-SWAP/poor_levels.jsonl"]
    assert expected["whales/okx/perps/BTC-USDT-SWAP/whales.jsonl"]
    files = sorted((whole / "raw/trades/okx/perps" / BTC).iterdir())
    stream = [(f.name, f.read_bytes()) for f in files]
    total = sum(len(b) for _, b in stream)
    vault = tmp_path / "cut"
    folder = inst_dir(vault, BTC)
    for cut in sorted({37, 400, 401, 900, total // 2, total - 5, total}):  # files only grow
        left = cut
        for name, body in stream:
            if left <= 0:
                break
            (folder / name).write_bytes(body[:left])
            left -= len(body)
        assert run(vault, cfg) == 0
    assert outputs(vault) == expected


def test_rows_over_compares_the_notional_exactly() -> None:
    """Strictly above, whatever the scales: equal is not over, a fraction of a unit above is."""
    from decimal import Decimal

    import numpy as np

    from indicator_core.instruments import Instrument
    from indicator_core.trade_batch import TradeBatch

    inst = Instrument("BTC-USDT-SWAP", "linear", Decimal("0.01"), "BTC")
    quote = np.array([100_000_000, 100_000_001, 99_999_999, 250_000_000], dtype=np.int64)  # scale 3
    z = np.zeros(4, dtype=np.int64)
    batch = TradeBatch(inst, z, z, z, np.zeros(4, dtype=bool), z, 0, z, 0, z, 0, quote, 3)
    assert batch.rows_over(Decimal("100000")).tolist() == [1, 3]
    assert batch.rows_over(Decimal("100000.0005")).tolist() == [1, 3]
    assert batch.rows_over(Decimal("99999.999")).tolist() == [0, 1, 3]
    assert batch.rows_over(Decimal("0")).tolist() == [0, 1, 2, 3]
