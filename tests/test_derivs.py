"""The derivatives layer (SPEC section 17): the derivs input kind, derivs_1m.jsonl and liquidations.jsonl.

Real pushes (tests/data/derivs/, cited in tests/data/README.md) are read and
checked against values computed by hand; generated streams with late,
repeated, foreign and bad pushes are checked against an independent plain
reading of SPEC 17 below (json + Decimal, no project code).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from bench.generate_derivs import okx_day, okx_window
from indicator_core.cli import main
from indicator_core.sources import derivs_lines
from tests.vaults import inst_dir, read_jsonl, run, trade_line, write_config

DATA = Path(__file__).parent / "data" / "derivs"
MIN = 60_000


def derivs_dir(vault: Path, inst: str, exchange: str = "okx", market: str = "perps") -> Path:
    d = vault / "raw" / "derivs" / exchange / market / inst
    d.mkdir(parents=True, exist_ok=True)
    return d


def out(vault: Path, name: str, inst: str, exchange: str = "okx", market: str = "perps",
        stream: str | None = None) -> list[dict]:
    path = vault / "derived" / name / exchange / market / inst / f"{stream or name}.jsonl"
    return read_jsonl(path) if path.exists() else []


def okx_oi(inst: str, ts: int, oi: str) -> bytes:
    return orjson.dumps({"arg": {"channel": "open-interest", "instId": inst},
                         "data": [{"instId": inst, "instType": "SWAP", "oi": oi, "oiCcy": "0", "ts": str(ts)}]})


def real_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- real pushes, line by line -----------------------------------------------------------------------------------

def test_okx_real_funding_open_interest_and_liquidation_lines() -> None:
    funding = real_lines(DATA / "okx" / "ws-funding-rate.jsonl")
    # the 2021 shape has no "ts": when it held is not known, so it is refused with the reason
    with pytest.raises(derivs_lines.BadItem, match="without \"ts\""):
        derivs_lines.okx_line(funding[0])
    with pytest.raises(derivs_lines.BadItem, match="without \"ts\""):
        derivs_lines.okx_line(funding[1])
    # the 2026 shape: the interval is nextFundingTime - fundingTime (8 h)
    assert derivs_lines.okx_line(funding[2]) == [
        ("funding", "BTC-USD_UM_XPERP-310404", 1785870855692, "-0.0004270396398519", 1785888000000, 8 * 3_600_000)]
    oi = real_lines(DATA / "okx" / "ws-open-interest.jsonl")
    assert derivs_lines.okx_line(oi[0]) == [("oi", "FIL-USDT-220325", 1640131202886, "236870", "23687")]
    assert derivs_lines.okx_line(oi[1]) == [("oi", "WNCG-USDT-SWAP", 1640131258756, "644195", "644195")]
    (liq,) = real_lines(DATA / "okx" / "ws-liquidation-orders.jsonl")
    # side "buy": the liquidation order buys back a short position
    assert derivs_lines.okx_line(liq) == [("liq", "XRP-USD-230929", 1680173247614, "short", "0.55205", "39")]
    assert derivs_lines.okx_line({"event": "subscribe", "arg": {"channel": "open-interest"}}) is None


def test_binance_real_force_order_and_mark_price_lines() -> None:
    (force,) = real_lines(DATA / "binance" / "ws-forceOrder.jsonl")
    # S BUY: the forced order buys, a short was liquidated; q is the order's quantity, ap its average price
    assert derivs_lines.binance_line(force) == [("liq", "BTCUSDT", 1584059031421, "short", "4706.04", "0.014")]
    mark = real_lines(DATA / "binance" / "ws-markPrice.jsonl")
    assert derivs_lines.binance_line(mark[0]) == [("funding", "BTCUSDT", 1569888003001, "0.00010000", 1569916800000, None)]
    assert derivs_lines.binance_line(mark[1]) == [("funding", "BTCUSDT", 1597536008000, "0.00015640", 1597564800000, None)]
    # a quarterly future: no funding (T is 0)
    assert derivs_lines.binance_line(mark[2]) == [("funding", "BTCBUSD_210129", 1609830121004, "0.00000000", None, None)]


def test_bybit_real_liquidation_and_ticker_lines() -> None:
    (liq,) = real_lines(DATA / "bybit" / "ws-allLiquidation-PIPPINUSDT-2025-02-25.jsonl")
    # "S" is the side of the liquidated position: Sell, a short one
    assert derivs_lines.bybit_line(liq) == [("liq", "PIPPINUSDT", 1740480207110, "short", "0.02456", "2846")]
    older = real_lines(DATA / "bybit" / "ws-liquidation-2021-2023.jsonl")
    assert derivs_lines.bybit_line(older[3]) == [("liq", "XRPUSD", 1680673944093, "short", "0.5149", "6949")]
    with pytest.raises(derivs_lines.BadItem, match="2021 shape"):
        derivs_lines.bybit_line(older[0])
    tickers = real_lines(DATA / "bybit" / "ws-tickers-2024-05-15.jsonl")
    assert derivs_lines.bybit_line(tickers[0]) == [
        ("oi", "BTCUSDT", 1715748762463, "58117.022", None),
        ("funding", "BTCUSDT", 1715748762463, "0.00008055", 1715760000000, None)]
    assert derivs_lines.bybit_line(tickers[1]) == []  # a delta without open interest or funding
    old = real_lines(DATA / "bybit" / "ws-tickers-2023-04-05.jsonl")
    # the BTCUSDU23 future: open interest, and an empty funding rate and time (no funding)
    assert derivs_lines.bybit_line(old[2]) == [("oi", "BTCUSDU23", 1680673822099, "4547176", None)]


# --- real pushes through the command line --------------------------------------------------------------------

def test_real_okx_inverse_liquidation_end_to_end(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    line = (DATA / "okx" / "ws-liquidation-orders.jsonl").read_bytes().strip()
    inst = "XRP-USD-230929"
    # an open-interest push 40 s into the next minute closes the liquidation's minute (10:47)
    later = okx_oi(inst, 1680173247614 + 60_000, "120000")
    (derivs_dir(vault, inst, market="futures") / "derivs_2023-03-30.jsonl").write_bytes(line + b"\n" + later + b"\n")
    cfg = write_config(tmp_path / "c.toml", '[plugins.liquidations]\nthreshold = "100"\n')
    assert run(vault, cfg) == 0
    (rec,) = out(vault, "derivs", inst, market="futures", stream="derivs_1m")
    quote = Decimal(39) * 10  # XRP-USD contracts are 10 USD each
    base = (quote / Decimal("0.55205")).quantize(Decimal("1e-12"))
    assert rec == {
        "timestamp_utc": "2023-03-30T10:47:00Z", "oi": None, "oi_base": None, "oi_quote": None, "oi_delta": None,
        "funding_rate": None, "funding_interval_h": None, "funding_8h": None, "next_funding_utc": None,
        "liq_long_count": 0, "liq_long_base": "0", "liq_long_quote": "0",
        "liq_short_count": 1, "liq_short_base": str(base), "liq_short_quote": "390",
        "largest_liq": {"side": "short", "px": "0.55205", "quote": "390"},
        "source": "okx", "tainted": True, "taint": ["no_oi", "no_funding"],
    }
    assert out(vault, "liquidations", inst, market="futures") == [
        {"ts_utc": "2023-03-30T10:47:27.614Z", "side": "short", "px": "0.55205", "sz": "39", "base": str(base),
         "quote": "390", "source": "okx"}]


def test_real_binance_and_bybit_liquidations_end_to_end(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    force = (DATA / "binance" / "ws-forceOrder.jsonl").read_bytes().strip()
    mark = orjson.dumps({"stream": "btcusdt@markPrice@1s", "data": {"e": "markPriceUpdate", "E": 1584059031421 + 70_000,
                         "s": "BTCUSDT", "p": "4700", "r": "0.0001", "T": 1584086400000}})
    (derivs_dir(vault, "BTCUSDT", "binance") / "derivs_2020-03-13.jsonl").write_bytes(force + b"\n" + mark + b"\n")
    liq = (DATA / "bybit" / "ws-allLiquidation-PIPPINUSDT-2025-02-25.jsonl").read_bytes().strip()
    tick = orjson.dumps({"topic": "tickers.PIPPINUSDT", "type": "snapshot", "ts": 1740480207578 + 90_000,
                         "data": {"symbol": "PIPPINUSDT", "openInterest": "1000", "fundingRate": "-0.0005",
                                  "nextFundingTime": "1740499200000"}})
    (derivs_dir(vault, "PIPPINUSDT", "bybit") / "derivs_2025-02-25.jsonl").write_bytes(liq + b"\n" + tick + b"\n")
    cfg = write_config(tmp_path / "c.toml", '[instruments.PIPPINUSDT]\nkind = "linear"\nct_val = "1"\n'
                       'ct_val_ccy = "PIPPIN"\n[plugins.liquidations]\nthreshold = "50"\n')
    assert run(vault, cfg) == 0
    (b,) = out(vault, "derivs", "BTCUSDT", "binance", stream="derivs_1m")
    assert (b["timestamp_utc"], b["liq_short_count"], b["liq_short_base"], b["liq_short_quote"]) == \
        ("2020-03-13T00:23:00Z", 1, "0.014", str(Decimal("0.014") * Decimal("4706.04")))
    assert b["source"] == "binance" and b["taint"] == ["no_oi", "no_funding"]
    assert out(vault, "liquidations", "BTCUSDT", "binance")[0]["quote"] == "65.88456"
    (y,) = out(vault, "derivs", "PIPPINUSDT", "bybit", stream="derivs_1m")
    assert (y["liq_short_count"], y["liq_short_quote"], y["largest_liq"]) == \
        (1, "69.89776", {"side": "short", "px": "0.02456", "quote": "69.89776"})
    assert out(vault, "liquidations", "PIPPINUSDT", "bybit")[0]["side"] == "short"


# --- an independent reading of SPEC 17 -----------------------------------------------------------------------

def plain_reading(lines: list[bytes], inst: str, ct_val: Decimal, late_ms: int = 10_000,
                  interval_default_h: int = 8) -> list[dict]:
    """derivs_1m of an OKX linear instrument without trades, from the SPEC's words: every item in line
    order; a minute closes once an item ``late_ms`` past its end was read, an item for a closed minute is
    dropped; per minute the newest open interest and funding, liquidations summed without repeats."""
    max_ts = None
    closed = None
    first = None
    per: dict[int, dict] = {}
    for raw in lines:
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        arg = doc.get("arg") or {}
        ch = arg.get("channel")
        for d in doc.get("data", []) if ch else []:
            if (d.get("instId") or arg.get("instId")) != inst:
                continue
            if ch == "liquidation-orders":
                items = [("liq", int(x["ts"]), x) for x in d["details"]]
            else:
                try:
                    Decimal(d.get("oi", "0"))
                    if d.get("oi") == "x":
                        raise ValueError
                except Exception:
                    continue
                items = [("oi" if ch == "open-interest" else "funding", int(d["ts"]), d)]
            for what, ts, x in items:
                if max_ts is None or ts > max_ts:
                    max_ts = ts
                    closed = max(closed or 0, (ts - late_ms) // MIN)
                m = ts // MIN
                first = m if first is None else first
                if m < closed:
                    continue
                acc = per.setdefault(m, {"oi": None, "f": None, "liqs": []})
                if what == "oi" and (acc["oi"] is None or ts >= acc["oi"][0]):
                    acc["oi"] = (ts, Decimal(x["oi"]))
                elif what == "funding" and (acc["f"] is None or ts >= acc["f"][0]):
                    # the rate is paid at fundingTime: the next funding; the interval is the one after it
                    acc["f"] = (ts, Decimal(x["fundingRate"]), int(x["fundingTime"]),
                                int(x["nextFundingTime"]) - int(x["fundingTime"]))
                elif what == "liq":
                    key = (ts, x["side"], x["bkPx"], x["sz"])
                    if key not in acc["liqs"]:
                        acc["liqs"].append(key)
    records = []
    oi = f = prev = None
    for m in range(first, closed):
        acc = per.get(m, {"oi": None, "f": None, "liqs": []})
        if acc["oi"] and (oi is None or acc["oi"][0] >= oi[0]):
            oi = acc["oi"]
        if acc["f"] and (f is None or acc["f"][0] >= f[0]):
            f = acc["f"]
        sides = {"long": [0, Decimal(0), Decimal(0)], "short": [0, Decimal(0), Decimal(0)]}
        largest = None
        # in time, longs first, then by price and size (SPEC 17's order of a minute's liquidations)
        for ts, side, px, sz in sorted(acc["liqs"], key=lambda k: (k[0], k[1] == "buy", Decimal(k[2]), Decimal(k[3]))):
            pos = "long" if side == "sell" else "short"
            base = Decimal(sz) * ct_val
            quote = Decimal(px) * base
            sides[pos][0] += 1
            sides[pos][1] += base
            sides[pos][2] += quote
            if largest is None or quote > largest[0]:
                largest = (quote, pos, Decimal(px))
        taint = []
        if oi is None:
            taint.append("no_oi")
        elif (m + 1) * MIN - oi[0] > 5 * MIN:
            taint.append("stale_oi")
        if f is None:
            taint.append("no_funding")
        hours = f[3] // 3_600_000 if f else None

        def s(d: Decimal) -> str:
            t = format(d, "f")
            return t.rstrip("0").rstrip(".") if "." in t else t

        records.append({
            "timestamp_utc": f"{__import__('time').strftime('%Y-%m-%dT%H:%M:00Z', __import__('time').gmtime(m * 60))}",
            "oi": s(oi[1]) if oi else None, "oi_base": s(oi[1] * ct_val) if oi else None, "oi_quote": None,
            "oi_delta": (("+" if oi[1] > prev else "-" if oi[1] < prev else "") + s(abs(oi[1] - prev)))
            if oi and prev is not None and records else None,
            "funding_rate": s(f[1]) if f else None, "funding_interval_h": hours,
            "funding_8h": s(f[1] * 8 / hours) if f else None,
            "next_funding_utc": __import__("time").strftime("%Y-%m-%dT%H:%M:00Z", __import__("time").gmtime(f[2] // 1000))
            if f else None,
            "liq_long_count": sides["long"][0], "liq_long_base": s(sides["long"][1]), "liq_long_quote": s(sides["long"][2]),
            "liq_short_count": sides["short"][0], "liq_short_base": s(sides["short"][1]),
            "liq_short_quote": s(sides["short"][2]),
            "largest_liq": {"side": largest[1], "px": s(largest[2]), "quote": s(largest[0])} if largest else None,
            "source": "okx", "tainted": bool(taint), "taint": taint,
        })
        prev = oi[1] if oi else prev
    return records


@pytest.mark.parametrize("batch", [300, 4096, 1 << 20])
def test_generated_stream_against_a_plain_reading(tmp_path: Path, batch: int) -> None:
    inst = "ETH-USDT-SWAP"
    lines = [line for _, line in okx_window(inst, 1723161300000, 900, seed=11)]
    vault = tmp_path / "v"
    (derivs_dir(vault, inst) / "derivs_2024-08-08.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    cfg = write_config(tmp_path / "c.toml", f"[run]\nbatch_bytes = {batch}\n")
    assert run(vault, cfg) == 0
    got = out(vault, "derivs", inst, stream="derivs_1m")
    expected = plain_reading(lines, inst, Decimal("0.1"))
    assert len(got) == len(expected) > 10
    for g, e in zip(got, expected):
        assert g == e
    late = read_jsonl(vault / "derived" / "quality" / "okx" / "perps" / inst / "derivs.jsonl")
    assert late and all(e["event"] == "late" for e in late)
    rejects = read_jsonl(vault / "derived" / "quality" / "okx" / "perps" / inst / "derivs_rejects.jsonl")
    assert rejects and all("'oi' is not a decimal number" in r["reason"] for r in rejects)


def test_funding_interval_changes_8h_4h_1h(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    folder = derivs_dir(vault, "BTC-USDT-SWAP")
    for d, day in enumerate(("2026-11-23", "2026-11-24", "2026-11-25")):
        (folder / f"derivs_{day}.jsonl").write_bytes(
            b"\n".join(okx_day("BTC-USDT-SWAP", day, d, oi_every=30, liquidations=50)) + b"\n")
    assert run(vault) == 0
    recs = out(vault, "derivs", "BTC-USDT-SWAP", stream="derivs_1m")
    by_day = {}
    for r in recs:
        by_day.setdefault(r["timestamp_utc"][:10], set()).add(r["funding_interval_h"])
        rate, h = Decimal(r["funding_rate"]), r["funding_interval_h"]
        assert Decimal(r["funding_8h"]) == rate * 8 / h
    assert by_day == {"2026-11-23": {8}, "2026-11-24": {4}, "2026-11-25": {1}}
    assert sum(r["liq_long_count"] + r["liq_short_count"] for r in recs) > 100


def test_inverse_open_interest_priced_by_volume_closes_and_held_for_them(tmp_path: Path) -> None:
    """The derivs minutes wait for volume_1m to pass them; an inverse contract's base is quote / close."""
    inst = "BTC-USD-SWAP"
    vault = tmp_path / "v"
    t0 = 1732320000000  # 2024-11-23 00:00
    trades = inst_dir(vault, inst) / "trades_2024-11-23.jsonl"
    trades.write_bytes(b"".join(trade_line(inst, 1000 + k, f"{60000 + k * 7}.5", "3", "buy", t0 + k * 20_000)
                                for k in range(10)))  # minutes 0..3 (the last, 00:03, stays open)
    derivs = derivs_dir(vault, inst) / "derivs_2024-11-23.jsonl"
    derivs.write_bytes(b"".join(okx_oi(inst, t0 + k * 15_000, str(5000 + k)) + b"\n" for k in range(40)))  # to 00:09:45
    assert run(vault) == 0
    recs = out(vault, "derivs", inst, stream="derivs_1m")
    vol = out(vault, "volume", inst, stream="volume_1m")
    assert [r["timestamp_utc"] for r in vol] == ["2024-11-23T00:00:00Z", "2024-11-23T00:01:00Z", "2024-11-23T00:02:00Z"]
    assert [r["timestamp_utc"] for r in recs] == [r["timestamp_utc"] for r in vol]  # held for the closes
    for r, v in zip(recs, vol):
        quote = Decimal(r["oi"]) * 100
        assert r["oi_quote"] == str(quote)
        assert r["oi_base"] == str((quote / Decimal(v["close"])).quantize(Decimal("1e-12")).normalize())
    # trades go on: the held minutes follow, priced
    with open(trades, "ab") as f:
        f.write(b"".join(trade_line(inst, 2000 + k, "61000", "1", "sell", t0 + 200_000 + k * 30_000) for k in range(20)))
    assert run(vault) == 0
    recs = out(vault, "derivs", inst, stream="derivs_1m")
    assert len(recs) == 9 and all(r["oi_quote"] is not None and r["oi_base"] is not None for r in recs)
    assert recs[1]["oi_delta"] == "+4"


def test_binance_funding_interval_from_the_next_funding_time(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    t0 = 1732320000000  # 2024-11-23 00:00
    lines = []
    for k in range(30):  # a push every 20 s; at 00:05 the next funding time moves from 04:00 to 08:00
        ts = t0 + k * 20_000
        nxt = t0 + (4 if ts < t0 + 5 * MIN else 8) * 3_600_000
        lines.append(orjson.dumps({"e": "markPriceUpdate", "E": ts, "s": "BTCUSDT", "p": "1", "r": "0.0002", "T": nxt}))
    (derivs_dir(vault, "BTCUSDT", "binance") / "derivs_2024-11-23.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    cfg = write_config(tmp_path / "c.toml", "[plugins.derivs]\nfunding_intervals = {BTCUSDT = 2}\n")
    assert run(vault, cfg) == 0
    recs = out(vault, "derivs", "BTCUSDT", "binance", stream="derivs_1m")
    assert [r["funding_interval_h"] for r in recs] == [2] * 5 + [4] * (len(recs) - 5)
    assert recs[0]["funding_8h"] == "0.0008" and recs[-1]["funding_8h"] == "0.0004"
    assert recs[-1]["next_funding_utc"] == "2024-11-23T08:00:00Z"


def test_stale_open_interest_duplicates_and_status(tmp_path: Path, capsys) -> None:
    inst = "BTC-USDT-SWAP"
    vault = tmp_path / "v"
    t0 = 1732320000000
    lines = [okx_oi(inst, t0, "100"), okx_oi(inst, t0, "100")]  # a repeated push
    liq = orjson.dumps({"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [{"instId": inst, "details": [
        {"side": "sell", "posSide": "long", "bkPx": "60000", "sz": "2000", "ts": str(t0 + 8 * MIN)}]}]})
    lines += [liq, liq, okx_oi("ETH-USDT-SWAP", t0 + 8 * MIN, "5"), okx_oi(inst, t0 + 9 * MIN + 30_000, "90")]
    (derivs_dir(vault, inst) / "derivs_2024-11-23.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert run(vault) == 0
    recs = out(vault, "derivs", inst, stream="derivs_1m")
    assert len(recs) == 9
    assert [r["taint"] for r in recs] == [["no_funding"]] * 5 + [["stale_oi", "no_funding"]] * 4
    assert recs[8]["liq_long_count"] == 1 and recs[8]["liq_long_quote"] == "1200000"  # not counted twice
    assert all(r["oi_delta"] in (None, "0") for r in recs)
    liqs = out(vault, "liquidations", inst)
    assert len(liqs) == 1 and liqs[0]["quote"] == "1200000"
    capsys.readouterr()
    assert main(["status", "--vault", str(vault)]) == 0
    text = capsys.readouterr().out
    assert "derivs" in text and "liquidations" in text
    assert main(["status", "--vault", str(vault), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    flat = json.dumps(rows)
    assert '"duplicates": 2' in flat and '"other_inst": 1' in flat


def test_liquidations_delivered_by_a_notifier(tmp_path: Path, capsys) -> None:
    inst = "BTC-USDT-SWAP"
    vault = tmp_path / "v"
    t0 = 1732320000000
    liq = orjson.dumps({"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [{"instId": inst, "details": [
        {"side": "buy", "posSide": "short", "bkPx": "60000", "sz": "3000", "ts": str(t0 + 5_000)}]}]})
    (derivs_dir(vault, inst) / "derivs_2024-11-23.jsonl").write_bytes(
        liq + b"\n" + okx_oi(inst, t0 + 2 * MIN, "1") + b"\n")
    cfg = write_config(tmp_path / "c.toml", '[notify.screen]\nkind = "stdout"\nstreams = ["liquidations"]\n')
    capsys.readouterr()
    assert run(vault, cfg) == 0
    printed = capsys.readouterr().out
    assert "2024-11-23T00:00:05.000Z" in printed and "1800000" in printed


def _traded_vault_with_derivs(tmp_path: Path, cfg: Path | None = None, name: str = "v") -> Path:
    """Three hours of generated BTC trades and, beside them, open interest every 10 s and liquidations."""
    import numpy as np

    from bench.generate import generate, write_days

    vault = tmp_path / name
    cols = generate(40_000, seed=3, mean_gap_ms=250.0, volatility=40)
    write_days(inst_dir(vault, "BTC-USDT-SWAP"), cols)
    t0, t1 = int(cols["ts"][0]), int(cols["ts"][-1])
    rng = np.random.default_rng(5)
    lines, oi = [], 2_000_000
    for ts in range(t0, t1, 10_000):
        oi += int(rng.integers(-50, 51)) + (5000 if rng.random() < 0.004 else 0)
        lines.append(okx_oi("BTC-USDT-SWAP", ts, str(oi)))
        if (ts - t0) % 60_000 < 10_000:  # a funding push a minute
            lines.append(orjson.dumps({"arg": {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"}, "data": [
                {"fundingRate": f"0.000{int(rng.integers(10, 99))}", "fundingTime": "1732348800000", "instId": "BTC-USDT-SWAP",
                 "nextFundingTime": "1732377600000", "ts": str(ts + 2)}]}))
        if rng.random() < 0.05:
            side = "sell" if rng.random() < 0.5 else "buy"
            lines.append(orjson.dumps({"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [
                {"instId": "BTC-USDT-SWAP", "details": [{"side": side, "bkPx": "95000", "sz": str(int(rng.integers(1, 400))),
                                                         "ts": str(ts + 1)}]}]}))
    (derivs_dir(vault, "BTC-USDT-SWAP") / "derivs_2024-11-23.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert run(vault, cfg) == 0
    return vault


def test_study_scores_liquidation_and_open_interest_signals(tmp_path: Path, capsys) -> None:
    vault = _traded_vault_with_derivs(tmp_path)
    recs = out(vault, "derivs", "BTC-USDT-SWAP", stream="derivs_1m")
    vol = {r["timestamp_utc"]: r for r in out(vault, "volume", "BTC-USDT-SWAP", stream="volume_1m")}
    assert len(recs) > 100 and all(r["oi_quote"] is not None for r in recs)
    capsys.readouterr()
    assert main(["study", "--vault", str(vault), "--signal", "liq_long", "--signal", "liq_short",
                 "--signal", "oi_surge", "--horizons", "1", "--json"]) == 0
    rows = {r["signal"]: r for r in json.loads(capsys.readouterr().out)}
    minutes = sorted(vol)
    last_ok = set(minutes[:-1])  # a 1-minute horizon needs the minute after
    longs = [r for r in recs if Decimal(r["liq_long_quote"]) >= 100000 and r["timestamp_utc"] in last_ok]
    shorts = [r for r in recs if Decimal(r["liq_short_quote"]) >= 100000 and r["timestamp_utc"] in last_ok]
    assert rows["liq_long"]["n"] == len(longs) > 0
    assert rows["liq_short"]["n"] == len(shorts) > 0
    deltas = [abs(Decimal(r["oi_delta"])) for r in recs if r["oi_delta"] is not None]
    assert rows["oi_surge"]["n"] + rows["oi_surge"]["skipped_no_direction"] >= 1
    assert rows["oi_surge"]["n"] <= max(1, len(deltas) // 50)


def test_confluence_derivs_layers_only_when_enabled(tmp_path: Path) -> None:
    wicks = '[plugins.wicks]\ntimeframe = "5m"\nmin_wick_pct = "0.01"\n[plugins.confluence]\nmin_score = 1\n'
    vault = _traded_vault_with_derivs(tmp_path, write_config(tmp_path / "a.toml", wicks), "plain")
    plain = out(vault, "confluence", "BTC-USDT-SWAP", stream="signals")
    assert plain and all(set(r["layers"]) == {"wick", "volume", "absorption", "wall", "imbalance"} for r in plain)
    cfg = write_config(tmp_path / "c.toml", wicks + 'layers = ["liquidations", "oi"]\nliq_min = "1000"\n')
    vault = _traded_vault_with_derivs(tmp_path, cfg)
    signals = out(vault, "confluence", "BTC-USDT-SWAP", stream="signals")
    derivs = {r["timestamp_utc"]: r for r in out(vault, "derivs", "BTC-USDT-SWAP", stream="derivs_1m")}
    assert len(signals) > 20
    seen = set()
    for s in signals:
        d = derivs.get(s["timestamp_utc"])
        liq = d and d["liq_short_quote" if s["level_side"] == "upper" else "liq_long_quote"]
        assert s["layers"]["liquidations"] == (None if not liq else Decimal(liq) >= 1000)
        assert s["layers"]["oi"] == (None if d is None or d["oi_delta"] is None else Decimal(d["oi_delta"]) >= 0)
        assert s["score"] == sum(v is True for v in s["layers"].values())
        seen.add(s["layers"]["liquidations"])
    assert True in seen and False in seen


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("path", ["kernel", "regex"])
def test_okx_bulk_reading_gives_the_reference_items(seed: int, path: str, monkeypatch) -> None:
    """The open-interest lines matched in bulk and folded into runs are, push for push, what the reference path
    (orjson and okx_line, line by line) reads; rejects and counts too.  Both bulk paths: the compiled kernel
    and the regular expression (what runs where no compiler built the kernel)."""
    from indicator_core.sources import derivs_lines
    from indicator_core.sources.derivs_lines import OiRun, okx_fast, okx_line, parse_lines
    from indicator_core.sources.files import Chunk, Cursor, TradeFile

    if path == "regex":
        monkeypatch.setattr(derivs_lines, "_KERNEL", None)
    elif derivs_lines._KERNEL is None:
        pytest.skip("the compiled kernel is not built here")

    lines = [line for _, line in okx_window("ETH-USDT-SWAP", 1723161300000, 700, seed=seed, oi_every=1)]
    lines.insert(40, lines[39])  # repeated pushes inside a run
    lines.insert(41, lines[39])
    lines.insert(300, lines[310])  # a push from the future of its minute, then its minute goes on
    lines.insert(500, b'{"arg":{"channel":"open-interest","instId":"ETH-USDT-SWAP"},"data":[{"instId":"ETH-USDT-SWAP",'
                      b'"instType":"SWAP","oi":"12","oiCcy":"1.2","oiUsd":"3100","ts":"1723161800000"}]}\r')
    lines.insert(501, okx_oi("BTC-USDT-SWAP", 1723161800000, "5"))
    # funding and liquidation pushes the kernel reads, and some it hands back (the reference path reads them)
    funding = b'{"arg":{"channel":"funding-rate","instId":"ETH-USDT-SWAP"},"data":[{"fundingRate":"%s",' \
              b'"fundingTime":"%s","instId":"ETH-USDT-SWAP","nextFundingTime":"%s","ts":"%d"}]}'
    liq = b'{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[%s],"instId":"%s"}]}'
    detail = b'{"bkPx":"%s","side":"%s","sz":"%s","ts":"%d"}'
    t = 1723161600000
    odd = [funding % (b"-0.00012", b"1723190400000", b"1723219200000", t),  # negative, read
           funding % (b"", b"0", b"", t + 1),  # no rate, no times: read
           funding % (b"-0", b"1723190400000", b"1723219200000", t + 2),  # "-0": handed back
           funding % (b"0.0001", b"0172319040000", b"1723219200000", t + 3),  # a leading zero: handed back
           funding % (b"1e-4", b"1723190400000", b"1723219200000", t + 4),  # not plain: a reject
           funding.replace(b'"ts":"%d"', b'"ts":"%d","ts":"1"') % (b"0.1", b"1", b"2", t + 5),  # a key twice
           liq % (detail % (b"2600.5", b"sell", b"3", t) + b"," + detail % (b"2600.50", b"buy", b"3", t), b"ETH-USDT-SWAP"),
           liq % (detail % (b"2601", b"sell", b"7", t + 9), b"BTC-USDT-SWAP"),  # another instrument's
           liq % (detail % (b"2601", b"hold", b"7", t + 9), b"ETH-USDT-SWAP"),  # a bad side: a reject
           liq % (detail % (b"02601", b"sell", b"7", t + 9), b"ETH-USDT-SWAP"),  # handed back, read
           liq % (b"", b"ETH-USDT-SWAP"),  # no details
           liq.replace(b'"data":[', b'"data":[{"details":[],"instId":"X"},') % (detail % (b"1.5", b"buy", b"2", t + 11),
                                                                              b"ETH-USDT-SWAP")]
    for k, line in enumerate(odd):
        lines.insert(600 + 2 * k, line)
    buf = b"\n".join(lines) + b"\n"
    chunk = Chunk(TradeFile("derivs_2024-08-08.jsonl", Path("x"), "2024-08-08", None), buf, 7, Cursor())
    fast = okx_fast(chunk, "ETH-USDT-SWAP", None)
    ref = parse_lines(chunk, "ETH-USDT-SWAP", None, okx_line, "okx")
    expected = ref.items
    if fast.columns is not None:  # the kernel's items in columns: as items, other instruments' left out
        assert fast.columns.reference(fast, True).items == ref.items  # kept: the chunk read the reference way
        fast = okx_fast(chunk, "ETH-USDT-SWAP", None)
        fast = fast.columns.reference(fast, False)
        expected = [i for i in ref.items if i[0] != "fliq"]
        assert len(expected) < len(ref.items)
    items = []
    for item in fast.items:
        items += item.members() if isinstance(item, OiRun) else [item]
    assert items == expected
    assert [(r.line, r.reason, r.text) for r in fast.rejects] == [(r.line, r.reason, r.text) for r in ref.rejects]
    assert (fast.lines, fast.other_inst, fast.other_channel) == (ref.lines, ref.other_inst, ref.other_channel)
    runs = [i for i in fast.items if isinstance(i, OiRun)]
    assert sum(r.n for r in runs) == sum(1 for i in ref.items if i[0] == "oi") and len(runs) < len(items) / 2
    for r in runs:  # a run's repeats are those equal to the push before them
        m = r.members()
        assert r.dups == sum(1 for a, b in zip(m, m[1:]) if a[:5] == b[:5])
        assert (r.first[:5], r.last[:5]) == (m[0][:5], m[-1][:5])


def test_coinalyze_history_replies(tmp_path: Path) -> None:
    """Saved replies of the three history endpoints (made up here: no real reply was found, see
    tests/data/README.md), one per line: values as given, a day's minutes closed once the next day's files
    are read."""
    vault = tmp_path / "v"
    folder = derivs_dir(vault, "BTC-USDT-SWAP")
    t0 = 1732320000  # 2024-11-23 00:00, seconds

    def reply(points: list[dict]) -> bytes:
        return json.dumps([{"symbol": "BTCUSDT_PERP.A", "history": points}]).encode() + b"\n"

    for d in range(2):
        day = ("2024-11-23", "2024-11-24")[d]
        base = t0 + d * 86400
        (folder / f"coinalyze-open-interest-history_{day}.jsonl").write_bytes(
            reply([{"t": base + 60 * k, "o": 1, "h": 2, "l": 0.5, "c": 51234.5 + k} for k in range(5)]))
        (folder / f"coinalyze-funding-rate-history_{day}.jsonl").write_bytes(
            reply([{"t": base + 60 * k, "o": 0.01, "h": 0.01, "l": 0.01, "c": 1e-05} for k in range(0, 5, 2)])
            + b'{"not": "a reply"}\n')
        (folder / f"coinalyze-liquidation-history_{day}.jsonl").write_bytes(
            reply([{"t": base + 60, "l": 125000.5, "s": 0}]) + reply([{"t": base + 60, "l": 125000.5, "s": 0}]))
    assert run(vault) == 0
    recs = out(vault, "derivs", "BTC-USDT-SWAP", stream="derivs_1m")
    day1 = [r for r in recs if r["timestamp_utc"].startswith("2024-11-23")]
    assert [r["oi"] for r in day1[:5]] == ["51234.5", "51235.5", "51236.5", "51237.5", "51238.5"]
    assert all(r["source"] == "coinalyze" for r in recs)
    assert day1[0]["funding_rate"] == "0.00001" and day1[0]["oi_base"] == "512.345"
    assert (day1[1]["liq_long_quote"], day1[1]["liq_long_count"], day1[1]["liq_long_base"]) == ("125000.5", None, None)
    assert day1[0]["liq_long_count"] is None and day1[0]["liq_long_quote"] == "0"
    # the whole first day is written (to its last minute, carrying the last values), the second waits for a third
    assert len(day1) == 1440 and not any(r["timestamp_utc"].startswith("2024-11-24") for r in recs)
    assert day1[-1]["taint"] == ["stale_oi"]
    rejects = read_jsonl(vault / "derived" / "quality" / "okx" / "perps" / "BTC-USDT-SWAP" / "derivs_rejects.jsonl")
    assert [r["reason"] for r in rejects] == ["not a Coinalyze history reply (a JSON array of {\"symbol\", \"history\"})"] * 2


def _shared_feed_days() -> dict[str, dict[str, list[bytes]]]:
    """Two days of BTC and ETH open interest, each in its own folder, and the whole liquidation-orders feed
    of the swaps (both instruments, some pushes a few seconds out of order, a few far out) in BTC's files."""
    import random

    rnd = random.Random(4)
    t0 = 1732320000000  # 2024-11-23 00:00
    files: dict[str, dict[str, list[bytes]]] = {"BTC-USDT-SWAP": {}, "ETH-USDT-SWAP": {}}
    for sec in range(0, 2 * 86400, 20):
        ts = t0 + sec * 1000
        day = ("2024-11-23", "2024-11-24")[sec // 86400]
        for inst in files:
            files[inst].setdefault(day, []).append(okx_oi(inst, ts, str(1000 + sec // 20 % 97)))
        if rnd.random() < 0.3:
            inst = rnd.choice(sorted(files))
            t = ts - (rnd.randrange(1000, 8000) if rnd.random() < 0.2 else 0) - (60_000 if rnd.random() < 0.02 else 0)
            files["BTC-USDT-SWAP"][day].append(orjson.dumps({"arg": {"channel": "liquidation-orders", "instType": "SWAP"},
                                                             "data": [{"instId": inst, "details": [
                {"side": rnd.choice(("buy", "sell")), "bkPx": "3000", "sz": str(rnd.randrange(1, 90)), "ts": str(t)}]}]}))
    return files


def _write_shared(vault: Path, files: dict, fraction: float = 1.0) -> None:
    """The first ``fraction`` of each instrument's stream of lines on disk (files only grow)."""
    for inst, days in files.items():
        lines = [(d, line) for d in sorted(days) for line in days[d]]
        keep = lines[:int(len(lines) * fraction)]
        for d in sorted(days):
            body = b"".join(line + b"\n" for day, line in keep if day == d)
            path = derivs_dir(vault, inst) / f"derivs_{d}.jsonl"
            if body and (not path.exists() or path.stat().st_size < len(body)):
                path.write_bytes(body)


def test_liquidations_routed_from_the_folder_holding_the_feed(tmp_path: Path) -> None:
    """OKX's liquidation-orders feed of the swaps recorded in BTC's folder: ETH takes its own from there
    ([derivs] liquidations_from), minute by minute once BTC's stream has passed it; cut into runs anywhere,
    the bytes of one run."""
    from tests.vaults import outputs

    files = _shared_feed_days()
    cfg = write_config(tmp_path / "c.toml", '[derivs]\nliquidations_from = ["okx/perps/BTC-USDT-SWAP"]\n')
    vault = tmp_path / "v"
    _write_shared(vault, files)
    assert run(vault, cfg) == 0
    eth = out(vault, "derivs", "ETH-USDT-SWAP", stream="derivs_1m")
    btc = out(vault, "derivs", "BTC-USDT-SWAP", stream="derivs_1m")
    assert len(eth) == len(btc) > 2800
    late = read_jsonl(vault / "derived/quality/okx/perps/BTC-USDT-SWAP/derivs.jsonl")
    assert any(e["channel"] == "fliq" for e in late) and any(e["channel"] == "liq" for e in late)  # judged by BTC
    eth_sent = sum(1 for d in files["BTC-USDT-SWAP"].values() for line in d
                   if b"liquidation-orders" in line and b"ETH-USDT-SWAP" in line)
    eth_late = sum(1 for e in late if e["channel"] == "fliq")
    assert sum(r["liq_long_count"] + r["liq_short_count"] for r in btc) > 400
    routed = read_jsonl(vault / "derived/quality/okx/perps/BTC-USDT-SWAP/derivs_routed.jsonl")
    assert routed and {r["inst_id"] for r in routed} == {"ETH-USDT-SWAP"}
    assert len(routed) + eth_late <= eth_sent and len(routed) > 400  # the rest: in minutes BTC has not closed yet
    assert sum(r["liq_long_count"] + r["liq_short_count"] for r in eth) == len(
        [r for r in routed if r["timestamp_utc"] <= eth[-1]["timestamp_utc"]])
    # by default each instrument reads its own files: ETH's liquidations are not there
    plain = tmp_path / "plain"
    _write_shared(plain, files)
    assert run(plain) == 0
    assert sum(r["liq_long_count"] + r["liq_short_count"]
               for r in out(plain, "derivs", "ETH-USDT-SWAP", stream="derivs_1m")) == 0
    expected = outputs(vault)
    for cuts in ([0.3, 0.55, 0.8], [0.52, 0.61]):
        cut = tmp_path / f"cut{cuts[0]}"
        for fraction in cuts:
            _write_shared(cut, files, fraction)
            assert run(cut, cfg) == 0
        _write_shared(cut, files)
        assert run(cut, cfg) == 0
        assert outputs(cut) == expected
