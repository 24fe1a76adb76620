"""Every field of every output, on real recorded and generated trades, against the independent oracle."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from tests import oracle
from tests.vaults import ETH_2023, ETH_PERP, OKX, inst_dir, read_jsonl, run, trade_line, write_config

CONFIG = """
[plugins.volume]
unit = "{unit}"
median_min_bars = {min_bars}
whale_threshold_usd = "{whale}"

[plugins.cvd]
unit = "{unit}"
session_anchor = "{anchor}"

[plugins.vwap]
windows = [3, 60]
session_anchor = "{anchor}"

[plugins.candles]
timeframes = ["1m", "5m", "15m", "1h"]

[plugins.wicks]
timeframe = "{wick_tf}"
min_wick_pct = "{wick_pct}"

[plugins.whales]
threshold = "{whale}"

[plugins.poor_levels]
session_anchor = "{anchor}"
min_periods = {poor_min}
[plugins.confluence]
tiers = ["T2", "T3", "T4"]
min_score = 2
"""


def load_trades(paths: list[Path]) -> list[dict[str, str]]:
    out = []
    for p in paths:
        for line in p.read_text().splitlines():
            obj = json.loads(line)
            out.extend(obj["data"] if "data" in obj else [obj])
    return out


def check_vault(tmp_path: Path, inst: str, kind: str, ct_val: str, trades: list[dict[str, str]], *,
                unit: str = "quote", min_bars: int = 20, whale: str = "100000", anchor: str = "00:00",
                wick_tf: str = "1h", wick_pct: str = "0.1", market: str = "perps",
                poor_min: int = 1, extra: str = "") -> dict[str, list[dict]]:
    vault = tmp_path / "vault"
    folder = inst_dir(vault, inst, market=market)
    by_day: dict[str, list[bytes]] = {}
    for t in trades:
        day = oracle.iso_minute(int(t["ts"]) // 60000)[:10]
        by_day.setdefault(day, []).append(json.dumps(t).encode() + b"\n")
    for day, lines in by_day.items():
        (folder / f"trades_{day}.jsonl").write_bytes(b"".join(lines))
    cfg = write_config(tmp_path / "c.toml", CONFIG.format(unit=unit, min_bars=min_bars, whale=whale, anchor=anchor,
                                                         wick_tf=wick_tf, wick_pct=wick_pct, poor_min=poor_min) + extra)
    assert run(vault, cfg) == 0
    derived = vault / "derived"
    got = {p.relative_to(derived).as_posix().split("/", 1)[0] + "/" + p.stem: read_jsonl(p)
           for p in derived.rglob("*.jsonl") if p.stat().st_size}
    bars, open_minute = oracle.build_bars(trades, kind, ct_val)
    expected = {
        "volume/volume_1m": oracle.volume(bars, inst, kind, ct_val, unit=unit, whale=whale, min_bars=min_bars),
        "cvd/cvd_1m": oracle.cvd(bars, unit=unit, anchor=anchor),
        "vwap/vwap_1m": oracle.vwap(bars, (3, 60), anchor=anchor),
        "wicks/wicks_" + wick_tf: oracle.wicks(trades, bars, open_minute, wick_tf, wick_pct),
        "whales/whales": oracle.whales(trades, kind, ct_val, whale),
        "poor_levels/poor_levels": oracle.poor_levels(trades, anchor, poor_min),
    }
    for tf in ("1m", "5m", "15m", "1h"):
        expected[f"candles/candles_{tf}"] = oracle.strip_private(oracle.candles(bars, open_minute, tf))
    # confluence reads the two above (SPEC section 12); no order books here: its book layers are null
    expected["confluence/signals"] = oracle.confluence(expected["volume/volume_1m"], expected["wicks/wicks_" + wick_tf],
                                                       "0.05", {"T2", "T3", "T4"}, 2, wick_tf)
    expected = {k: v for k, v in expected.items() if v}
    assert sorted(got) == sorted(expected), (set(got) ^ set(expected))
    for name in expected:
        assert len(got[name]) == len(expected[name]), name
        for k, (g, e) in enumerate(zip(got[name], expected[name])):
            assert g == e, f"{name} record {k}"
    return got


def test_real_eth_perp_across_midnight(tmp_path: Path) -> None:
    trades = load_trades(sorted(ETH_PERP.glob("*.jsonl")))
    got = check_vault(tmp_path, "ETH-USDT-SWAP", "linear", "0.1", trades, min_bars=2, whale="20000",
                      wick_tf="5m", wick_pct="0.01")
    assert any(r["whale_count"] for r in got["volume/volume_1m"])
    assert any(r["volume_tier"] for r in got["volume/volume_1m"])
    assert got["vwap/vwap_1m"][-1]["session_start"] == "2024-08-08T00:00:00Z"


@pytest.mark.parametrize("unit", ["quote", "base", "contracts"])
def test_real_eth_2023_units(tmp_path: Path, unit: str) -> None:
    trades = load_trades(sorted(ETH_2023.glob("*.jsonl")))
    check_vault(tmp_path, "ETH-USDT-SWAP", "linear", "0.1", trades, unit=unit, min_bars=1, whale="5000",
                wick_tf="1m", wick_pct="0.001")


@pytest.mark.parametrize("inst,kind,ct_val,market", [
    ("BTC-USDT", "spot", "1", "spot"),
    ("BTC-USD-220527", "inverse", "100", "futures"),
])
def test_real_okx_websocket_pushes(tmp_path: Path, inst: str, kind: str, ct_val: str, market: str) -> None:
    pushes = [json.loads(line) for line in (OKX / "ws-trades-2022-05-13.jsonl").read_text().splitlines()]
    trades = [t for p in pushes if p["arg"]["instId"] == inst for t in p["data"]]
    # one later trade closes the last minute, so every real trade is in a closed bar
    last = trades[-1]
    trades.append({**last, "tradeId": str(int(last["tradeId"]) + 1), "ts": str((int(last["ts"]) // 60000 + 1) * 60000)})
    check_vault(tmp_path, inst, kind, ct_val, trades, min_bars=1, whale="100", wick_tf="1m", wick_pct="0.001",
                market=market)


def test_okx_archive_csv_matches_okx_published_candle(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    folder = inst_dir(vault, "MATIC-USDT-SWAP")
    body = (OKX / "MATIC-USDT-SWAP-trades-2023-08-21.csv").read_bytes()
    body += b"MATIC-USDT-SWAP,104136707,buy,0.5750,1.0,1692547320001\n"  # next minute: closes 16:01
    (folder / "MATIC-USDT-SWAP-trades-2023-08-21.csv").write_bytes(body)
    assert run(vault) == 0
    (candle,) = read_jsonl(vault / "derived" / "candles" / "okx" / "perps" / "MATIC-USDT-SWAP" / "candles_1m.jsonl")
    # OKX's own 1-minute candle for 2023-08-20 16:01 UTC
    assert candle == {"timestamp_utc": "2023-08-20T16:01:00Z", "open": "0.5747", "high": "0.5748", "low": "0.5744",
                      "close": "0.5744", "volume": "11990", "quote_volume": "6889.352", "trade_count": 14}
    rows = list(csv.DictReader(body.decode().splitlines()))[:-1]
    trades = [{"instId": r["instrument_name"], "tradeId": r["trade_id"], "px": r["price"], "sz": r["size"],
               "side": r["side"], "ts": r["created_time"]} for r in rows]
    bars, _ = oracle.build_bars(trades + [{"instId": "MATIC-USDT-SWAP", "tradeId": "104136707", "px": "0.575",
                                           "sz": "1", "side": "buy", "ts": "1692547320001"}], "linear", "10")
    (vol,) = read_jsonl(vault / "derived" / "volume" / "okx" / "perps" / "MATIC-USDT-SWAP" / "volume_1m.jsonl")
    assert vol == oracle.volume(bars, "MATIC-USDT-SWAP", "linear", "10")[0]


def generated(seed: int, minutes: int = 420) -> list[dict[str, str]]:
    """Bursty trades from 21:00 UTC across midnight: quiet minutes, whales on both sides."""
    rng = random.Random(seed)
    start = 1723150800000  # 2024-08-08 21:00 UTC
    out = []
    tid = 5_000_000
    px = 60000.0
    for m in range(minutes):
        if rng.random() < 0.15:
            continue  # an empty minute
        n = rng.choice([1, 2, 5, 20, 60]) if rng.random() < 0.9 else 200
        times = sorted(rng.randrange(60000) for _ in range(n))
        for t in times:
            px = max(100.0, px * (1 + rng.gauss(0, 0.0006)))
            sz = round(rng.paretovariate(1.1) * 0.5, 2) if rng.random() < 0.97 else round(rng.uniform(170, 900), 2)
            tid += 1
            out.append(json.loads(trade_line("BTC-USDT-SWAP", tid, f"{px:.1f}", f"{max(sz, 0.01):.2f}",
                                             "buy" if rng.random() < 0.5 else "sell", start + m * 60000 + t)))
    return out


@pytest.mark.parametrize("seed,anchor", [(1, "00:00"), (2, "22:30")])
def test_generated_hours_with_whales_sessions_and_empty_minutes(tmp_path: Path, seed: int, anchor: str) -> None:
    trades = generated(seed)
    got = check_vault(tmp_path, "BTC-USDT-SWAP", "linear", "0.01", trades, anchor=anchor, wick_tf="15m",
                      wick_pct="0.05")
    vol = got["volume/volume_1m"]
    assert any(r["empty"] for r in vol) and any(r["whale_count"] for r in vol)
    assert {r["volume_tier"] for r in vol} >= {"T1", "T2", "T3", "T4"}
    assert any(e["event"] == "touch" for e in got["wicks/wicks_15m"])
    sessions = {r["session_start"] for r in got["vwap/vwap_1m"]}
    assert len(sessions) == 2  # the session restarted at the anchor
    assert [e["event"] for e in got["poor_levels/poor_levels"]][:2] == ["poor_high", "poor_low"]


@pytest.mark.parametrize("wick_tf", ["5m", "1h"])
def test_wicks_judge_trades_that_came_before_their_bars(tmp_path: Path, wick_tf: str) -> None:
    """Wicks takes a chunk's trades at once, ahead of the bars of their minutes (which come in runs of up to
    1,024 minutes): a day and more in small chunks, each trade judged against the levels of the candles
    closed before its minute, the touches and wicks in the order a minute at a time gives them."""
    trades = generated(5, minutes=1150)
    got = check_vault(tmp_path, "BTC-USDT-SWAP", "linear", "0.01", trades, wick_tf=wick_tf, wick_pct="0.01",
                      extra="\n[run]\nbatch_bytes = 30000\n")
    events = [e["event"] for e in got["wicks/wicks_" + wick_tf]]
    assert events.count("touch") > 20 and events.count("wick") > events.count("touch")
