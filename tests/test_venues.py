"""Binance USDⓈ-M and Bybit v5 trade files beside OKX ones (SPEC section 15), through the command line.

The oracle for Binance: the real raw ``trade`` frames of ETHUSDT (``binance-raw/``) and the same trades
rewritten as OKX lines (``binance-as-okx/``) give the same volume, CVD, VWAP and candles; only the
contract unit differs (OKX sizes are 0.1-ETH contracts, Binance's are ETH).  Bybit: generated
``publicTrade`` pushes with repeated pushes, out-of-order ids and a midnight crossing, and its archive.
Every venue: cut into runs, the bytes of one clean run.
"""

from __future__ import annotations

import gzip
import sys
import json
import random
import shutil
import uuid
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from tests.vaults import ETH_PERP, outputs, run, write_config
from indicator_core.cli import main

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
RAW = SHARED / "binance-raw" / "hftbacktest_usdm_ethusdt_20240808.gz"
MIDNIGHT = 1723161600000  # 2024-08-09T00:00:00Z


def binance_days() -> dict[str, bytes]:
    """The recording's raw ``trade`` frames, one frame a line, by UTC day (as a recorder writes them)."""
    if not RAW.is_file():
        pytest.skip("no shared/data beside this checkout")
    days: dict[str, list[bytes]] = {}
    with gzip.open(RAW, "rb") as f:
        for line in f:
            _, frame = line.rstrip(b"\n").split(b" ", 1)
            if b'"e":"trade"' in frame:
                t = orjson.loads(frame)["data"]["T"]
                days.setdefault("2024-08-08" if t < MIDNIGHT else "2024-08-09", []).append(frame + b"\n")
    return {d: b"".join(v) for d, v in days.items()}


def folder(vault: Path, exchange: str, inst: str) -> Path:
    d = vault / "raw" / "trades" / exchange / "perps" / inst
    d.mkdir(parents=True, exist_ok=True)
    return d


def records(vault: Path, path: str) -> list[dict]:
    return [json.loads(x) for x in (vault / "derived" / path).read_text().splitlines()]


def test_binance_raw_trades_equal_their_okx_rewrite_in_every_indicator(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    for day, data in binance_days().items():
        (folder(vault, "binance", "ETHUSDT") / f"trades_{day}.jsonl").write_bytes(data)
    for f in ETH_PERP.iterdir():
        shutil.copy(f, folder(vault, "okx", "ETH-USDT-SWAP") / f.name)
    assert run(vault) == 0
    for path in ("cvd/{}/cvd_1m.jsonl", "vwap/{}/vwap_1m.jsonl", "candles/{}/candles_1m.jsonl"):
        okx = (vault / "derived" / path.format("okx/perps/ETH-USDT-SWAP")).read_bytes()
        assert okx and (vault / "derived" / path.format("binance/perps/ETHUSDT")).read_bytes() == okx, path
    okx = records(vault, "volume/okx/perps/ETH-USDT-SWAP/volume_1m.jsonl")
    bn = records(vault, "volume/binance/perps/ETHUSDT/volume_1m.jsonl")
    assert len(bn) == len(okx) == 6 and [{**r, "inst_id": "ETH-USDT-SWAP"} for r in bn] == okx
    okx_whales = records(vault, "whales/okx/perps/ETH-USDT-SWAP/whales.jsonl")
    bn_whales = records(vault, "whales/binance/perps/ETHUSDT/whales.jsonl")
    assert okx_whales and [{**w, "sz": str((Decimal(w["sz"]) / Decimal("0.1")).normalize())} for w in bn_whales] == [
        {**w, "sz": str(Decimal(w["sz"]).normalize())} for w in okx_whales]


def test_binance_cut_into_runs_equals_one_run_and_status_lists_it(tmp_path: Path, capsys) -> None:
    days = binance_days()
    whole = tmp_path / "whole"
    for day, data in days.items():
        (folder(whole, "binance", "ETHUSDT") / f"trades_{day}.jsonl").write_bytes(data)
    assert run(whole) == 0
    cut = tmp_path / "cut"
    d = folder(cut, "binance", "ETHUSDT")
    first = days["2024-08-08"]
    cfg = write_config(tmp_path / "c.toml", "[run]\nbatch_bytes = 65536\n")
    for end in (1000, 333_333, len(first) // 2 + 17, len(first)):
        (d / "trades_2024-08-08.jsonl").write_bytes(first[:end])
        assert run(cut, cfg) == 0
    (d / "trades_2024-08-09.jsonl").write_bytes(days["2024-08-09"])
    assert run(cut, cfg) == 0
    assert outputs(cut) == outputs(whole)
    assert main(["status", "--vault", str(cut), "--json"]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out) if r.get("indicator") == "volume"]
    assert rows[0]["instrument"] == "binance/perps/ETHUSDT" and rows[0]["trades"] == 14_076 and rows[0]["gaps"] == 0


def test_binance_archive_csv_with_and_without_header_and_a_raw_file_after_aggregated_ones(tmp_path: Path, capsys) -> None:
    vault = tmp_path / "v"
    d = folder(vault, "binance", "BTCUSDT")
    t0 = 1732320000000  # 2024-11-23
    rows = [f"{100 + k},{90000 + k}.5,0.{k + 1:03d},{1000 + k},{1000 + k},{t0 + k * 7000},{'true' if k % 3 else 'false'}"
            for k in range(40)]
    header = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
    (d / "BTCUSDT-aggTrades-2024-11-23.csv").write_text(header + "\n".join(rows[:20]) + "\n")
    (d / "BTCUSDT-aggTrades-2024-11-24.csv").write_text("\n".join(r.replace(str(t0), str(t0 + 86_400_000), 1) for r in rows[20:]) + "\n")
    assert run(vault) == 0
    vol = records(vault, "volume/binance/perps/BTCUSDT/volume_1m.jsonl")
    assert sum(r["trade_count"] for r in vol) > 0 and all(not r["tainted"] for r in vol if not r["empty"])
    # a raw-trade file in the same instrument: refused with a message, nothing else changes
    before = outputs(vault)
    raw = {"e": "trade", "E": 1, "T": t0 + 2 * 86_400_000, "s": "BTCUSDT", "t": 5, "p": "1", "q": "1", "X": "MARKET",
           "m": False}
    (d / "trades_2024-11-25.jsonl").write_bytes(orjson.dumps(raw) + b"\n")
    capsys.readouterr()
    assert run(vault) == 1
    assert "'trade' trades after 'aggTrade' trades" in capsys.readouterr().err
    assert outputs(vault) == before


def bybit_pushes(seed: int, start_ms: int, n: int, symbol: str = "BTCUSDT") -> tuple[list[bytes], list[dict]]:
    """Pushes as Bybit sends them (1-5 trades each), some sent twice (a reconnect's replay); and the trades."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    trades: list[dict] = []
    ts, px = start_ms, 90000.0
    while len(trades) < n:
        items = []
        for _ in range(rng.randint(1, 5)):
            ts += rng.randint(0, 4000)
            px = round(px + rng.choice((-0.5, 0, 0.5)), 1)
            item = {"T": ts, "s": symbol, "S": rng.choice(("Buy", "Sell")), "v": f"{rng.randint(1, 4000) / 1000:.3f}",
                    "p": f"{px:.2f}", "L": "PlusTick", "i": str(uuid.UUID(int=rng.getrandbits(128))), "BT": False}
            items.append(item)
        trades += items
        line = orjson.dumps({"topic": f"publicTrade.{symbol}", "type": "snapshot", "ts": ts, "data": items}) + b"\n"
        lines.append(line)
        if rng.random() < 0.05:
            lines.append(line)  # the same push again
    return lines, trades


def test_bybit_pushes_across_midnight_with_repeats_cut_into_runs_equal_one_run(tmp_path: Path, capsys) -> None:
    lines, trades = bybit_pushes(3, 1732406000000, 3000)  # 2024-11-23 23:53 UTC on
    by_day: dict[str, list[bytes]] = {}
    for line in lines:
        t = orjson.loads(line)["data"][0]["T"]
        by_day.setdefault("2024-11-23" if t < 1732406400000 else "2024-11-24", []).append(line)
    whole = tmp_path / "whole"
    for day, ls in by_day.items():
        (folder(whole, "bybit", "BTCUSDT") / f"trades_{day}.jsonl").write_bytes(b"".join(ls))
    assert run(whole) == 0
    vol = records(whole, "volume/bybit/perps/BTCUSDT/volume_1m.jsonl")
    # every trade once, whatever was sent twice: the counts per minute of an independent reading
    per_minute: dict[int, int] = {}
    for t in trades:
        per_minute[t["T"] // 60000] = per_minute.get(t["T"] // 60000, 0) + 1
    closed = sorted(per_minute)[:-1]
    got = {r["timestamp_utc"]: r["trade_count"] for r in vol if not r["empty"]}
    from indicator_core.timeutil import iso_minute
    assert got == {iso_minute(m): per_minute[m] for m in closed}
    assert all("gap" not in r["taint"] for r in vol)
    cut = tmp_path / "cut"
    d = folder(cut, "bybit", "BTCUSDT")
    cfg = write_config(tmp_path / "c.toml", "[run]\nbatch_bytes = 4096\n")
    first = b"".join(by_day["2024-11-23"])
    for end in (5000, 5001, len(first) // 3, len(first)):
        (d / "trades_2024-11-23.jsonl").write_bytes(first[:end])
        assert run(cut, cfg) == 0
    (d / "trades_2024-11-24.jsonl").write_bytes(b"".join(by_day["2024-11-24"]))
    assert run(cut, cfg) == 0
    assert outputs(cut) == outputs(whole)
    capsys.readouterr()
    assert main(["status", "--vault", str(cut)]) == 0
    assert "bybit/perps/BTCUSDT: its trade ids are not integers (Bybit)" in capsys.readouterr().out


def test_bybit_inverse_archive_and_whale_ids_as_written(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    d = folder(vault, "bybit", "BTCUSD")
    rows = ["timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional"]
    t0 = 1732320000.0  # 2024-11-23 00:00 UTC, in seconds
    ids = [str(uuid.UUID(int=k + 1)) for k in range(6)]
    for k in range(6):
        size = 250000 if k == 2 else 100 + k  # USD: one whale of $250,000
        rows.append(f"{t0 + 20 * k + 0.0647:.4f},BTCUSD,{'Buy' if k % 2 else 'Sell'},{size},9000{k}.5,PlusTick,{ids[k]},1,1,1")
    rows.append(rows[3])  # a row twice
    with gzip.open(d / "BTCUSD2024-11-23.csv.gz", "wt") as f:
        f.write("\n".join(rows) + "\n")
    assert run(vault) == 0
    whales = records(vault, "whales/bybit/perps/BTCUSD/whales.jsonl")
    assert [(w["trade_id"], w["notional"], w["ts_utc"]) for w in whales] == [(ids[2], "250000", "2024-11-23T00:00:40.064Z")]
    vol = records(vault, "volume/bybit/perps/BTCUSD/volume_1m.jsonl")
    assert vol[0]["trade_count"] == 3 and vol[0]["total_volume"] == str(100 + 101 + 250000)


def test_an_exchange_folder_no_format_reads_is_reported_not_guessed(tmp_path: Path, capsys) -> None:
    vault = tmp_path / "v"
    (folder(vault, "kraken", "XBTUSD") / "trades_2024-11-23.jsonl").write_text("{}\n")
    for f in ETH_PERP.iterdir():
        shutil.copy(f, folder(vault, "okx", "ETH-USDT-SWAP") / f.name)
    (folder(vault, "binance", "ETHUSDT") / "trades_2024-11-23.parquet").write_text("x")
    assert run(vault) == 0
    err = capsys.readouterr().err
    assert "raw/trades/kraken/: no installed venue format reads trades files of 'kraken'" in err
    assert "installed: binance, bybit, okx" in err
    assert not (vault / "derived" / "volume" / "kraken").exists()


def test_book_files_of_a_venue_without_a_book_format_are_reported_not_read(tmp_path: Path, capsys) -> None:
    vault = tmp_path / "v"
    for f in ETH_PERP.iterdir():
        shutil.copy(f, folder(vault, "okx", "ETH-USDT-SWAP") / f.name)
    books = vault / "raw" / "books" / "kraken" / "perps" / "XBTUSD"
    books.mkdir(parents=True)
    (books / "books_2024-08-08.jsonl").write_text('{"event":"book"}\n')
    assert run(vault) == 0
    err = capsys.readouterr().err
    assert "raw/books/kraken/: no installed venue format reads books files of 'kraken'" in err
    assert "installed: binance, bybit, okx" in err
    assert not (vault / "state" / "quality" / "kraken").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("venue", ["binance", "bybit"])
def test_venue_runs_killed_mid_pass_equal_one_clean_run(tmp_path: Path, venue: str) -> None:
    """Binance and Bybit days of generated trades, runs SIGKILLed inside their pass, then one run: one clean run."""
    import signal
    import time

    from bench.venues import write_vaults
    from tests.resume_cases import _wait_until_working
    from tests.vaults import run_subprocess

    vaults = write_vaults(tmp_path / "gen", 60_000, 4)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    shutil.copytree(vaults[venue] / "raw", whole / "raw")
    shutil.copytree(vaults[venue] / "raw", killed / "raw")
    cfg = write_config(tmp_path / "c.toml", "[run]\nbatch_bytes = 16384\ncommit_seconds = 0.02\n")
    assert run(whole, cfg) == 0
    t0 = time.perf_counter()
    assert run(tmp_path / "gen" / venue, cfg) == 0  # how long a pass takes here
    duration = time.perf_counter() - t0
    landed = 0
    for fraction in (0.3, 0.6, 0.9):
        proc = run_subprocess(killed, cfg)
        _wait_until_working(killed, proc)
        time.sleep(fraction * duration * 0.5)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        landed += proc.returncode == -signal.SIGKILL
    assert landed >= 1  # a kill landed inside a run
    assert run(killed, cfg) == 0
    assert outputs(killed) == outputs(whole)


def test_real_bybit_inverse_trades_give_the_volumes_of_an_independent_reading(tmp_path: Path) -> None:
    """Real BTCUSD (inverse, sizes in USD) trades in the v5 shape: each minute's USD volumes, deltas and counts
    equal the sums of the frames as Bybit recorded them."""
    from tests.vaults import DATA
    from indicator_core.timeutil import iso_minute

    src = DATA / "bybit-as-v5"
    vault = tmp_path / "v"
    for sym in ("BTCUSD", "EOSUSD"):
        data = (src / sym / "trades_2021-04-17.jsonl").read_bytes()
        # the recording is half a minute long: one made-up trade a minute later closes its minute
        closing = {"topic": f"publicTrade.{sym}", "type": "snapshot", "ts": 1618677900000, "data": [
            {"T": 1618677900000, "s": sym, "S": "Buy", "v": "1", "p": "1", "L": "PlusTick", "i": "close", "BT": False}]}
        (folder(vault, "bybit", sym) / "trades_2021-04-17.jsonl").write_bytes(data + orjson.dumps(closing) + b"\n")
    cfg = write_config(tmp_path / "c.toml", "[run]\nfill_empty_bars = false\n")
    assert run(vault, cfg) == 0
    for sym in ("BTCUSD", "EOSUSD"):
        per: dict[int, list[Decimal]] = {}
        for line in (src / "v2-frames" / f"{sym}.jsonl").read_bytes().splitlines():
            for t in json.loads(line, parse_float=Decimal)["data"]:
                acc = per.setdefault(t["trade_time_ms"] // 60000, [Decimal(0), Decimal(0), 0])
                acc[0 if t["side"] == "Buy" else 1] += Decimal(t["size"])
                acc[2] += 1
        got = records(vault, f"volume/bybit/perps/{sym}/volume_1m.jsonl")
        want = [(iso_minute(m), b, s, b - s, n) for m, (b, s, n) in sorted(per.items())][:len(got)]
        assert got and [(r["timestamp_utc"], Decimal(r["buy_volume"]), Decimal(r["sell_volume"]), Decimal(r["delta"]),
                         r["trade_count"]) for r in got] == want
        assert all(not r["tainted"] for r in got)
