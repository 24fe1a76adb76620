"""The buckets indicator (SPEC section 11) and the book stream in the engine: CLI, files, config, follow."""

from __future__ import annotations

import decimal
import json
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from pathlib import Path

import orjson
import pytest

from bench.generate_books import book_lines, write_days
from indicator_core.streams import order_book as book_module
from indicator_core.streams import book_stream, okx_books
from indicator_core.cli import main
from indicator_core.config import load_config
from indicator_core.runtime.follow import Follower
from indicator_core.runtime.host import Host
from indicator_core.instruments import InstrumentTable
from indicator_core.numbers import EXACT
from indicator_core_plugins.buckets import auto_step
from tests.test_books import REAL, SNAP, T0, push
from tests.kernel_paths import on_both_paths
from tests.vaults import ETH_PERP, inst_dir, outputs, read_jsonl, run, write_config

# every test here runs with the compiled book kernel and with the pure Python it stands in for
book_path = on_both_paths("books", okx_books, book_stream, book_module)


M0 = T0 // 60000


def book_dir(vault: Path, inst_id: str, exchange: str = "okx", market: str = "perps") -> Path:
    d = vault / "raw" / "books" / exchange / market / inst_id
    d.mkdir(parents=True, exist_ok=True)
    return d


def buckets(vault: Path, inst: str, market: str = "perps") -> list[dict]:
    return read_jsonl(vault / "derived" / "buckets" / "okx" / market / inst / "buckets_1m.jsonl")


# --- an independent computation of a record -----------------------------------------------
def _oracle(lines: list[bytes], inst_id: str, band_pct: Decimal = Decimal(1)) -> dict:
    """Replay the pushes with plain dicts and compute the record of SPEC section 11 from scratch."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    ts = None
    for line in lines:
        doc = orjson.loads(line)
        for item in doc["data"]:
            if doc.get("action") == "snapshot":
                bids.clear()
                asks.clear()
            for side, key in ((bids, "bids"), (asks, "asks")):
                for px, sz, *_ in item[key]:
                    if Decimal(sz) == 0:
                        side.pop(Decimal(px), None)
                    else:
                        side[Decimal(px)] = Decimal(sz)
            ts = int(item["ts"])
    inst = InstrumentTable().get(inst_id)
    with decimal.localcontext() as ctx:
        ctx.prec = 100
        bb, ba = max(bids), min(asks)
        mid = (bb + ba) / 2
        x = mid / 10000
        k = x.adjusted()
        cands = [Decimal(m) * Decimal(10) ** k for m in (1, 2, 5, 10)]
        lo = max(c for c in cands if c <= x)
        hi = min(c for c in cands if c > x)
        step = lo if x * x < lo * hi else hi

        def notional(px: Decimal, sz: Decimal) -> Decimal:
            if inst.kind == "inverse":
                return sz * inst.ct_val
            return px * sz * inst.ct_val

        out = {}
        for name, side, rnd in (("bids", bids, ROUND_FLOOR), ("asks", asks, ROUND_CEILING)):
            groups: dict[Decimal, Decimal] = {}
            for px, sz in side.items():
                if abs(px - mid) <= mid * band_pct / 100:
                    b = (px / step).to_integral_value(rounding=rnd) * step
                    groups[b] = groups.get(b, Decimal(0)) + notional(px, sz)
            order = sorted(groups, reverse=(name == "bids"))
            out[name] = [[b, groups[b]] for b in order]
        bd = sum((n for _, n in out["bids"]), Decimal(0))
        ad = sum((n for _, n in out["asks"]), Decimal(0))
        q4 = Decimal("0.0001")
        return {
            "bb": bb, "ba": ba, "mid": mid, "step": step, "ts": ts,
            "spread": ((ba - bb) / mid * 10000).quantize(q4, ROUND_HALF_EVEN),
            "bid_depth": bd, "ask_depth": ad,
            "imbalance": ((bd - ad) / (bd + ad)).quantize(q4, ROUND_HALF_EVEN),
            "bids": out["bids"], "asks": out["asks"],
        }


def _real_vault(vault: Path) -> dict[str, list[bytes]]:
    """The 290 real pushes, one folder per instrument, each closed by an empty push of the next minute."""
    by_inst: dict[str, list[bytes]] = {}
    for line in REAL.read_bytes().splitlines():
        by_inst.setdefault(orjson.loads(line)["arg"]["instId"], []).append(line)
    for inst, lines in by_inst.items():
        last_ts = int(orjson.loads(lines[-1])["data"][0]["ts"])
        closer = push("update", ts=(last_ts // 60000 + 1) * 60000 + 10, inst=inst)
        market = "spot" if inst.count("-") == 1 else "perps"
        (book_dir(vault, inst, market=market) / "books_2022-05-13.jsonl").write_bytes(b"\n".join([*lines, closer]) + b"\n")
    return by_inst


def test_real_books_give_the_independently_computed_record(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    by_inst = _real_vault(vault)
    assert run(vault) == 0  # books only: no trades folder at all
    assert not (vault / "derived" / "volume").exists()
    for inst, lines in by_inst.items():
        market = "spot" if inst.count("-") == 1 else "perps"
        (rec,) = buckets(vault, inst, market)
        o = _oracle(lines, inst)
        assert list(rec) == ["timestamp_utc", "valid", "book_ts", "best_bid", "best_ask", "mid", "spread_bps", "step",
                             "bid_depth", "ask_depth", "imbalance", "bids", "asks", "bid_wall", "ask_wall",
                             "tainted", "taint"]
        assert rec["timestamp_utc"] == "2022-05-13T16:27:00Z" and rec["valid"] is True
        assert rec["tainted"] is False and rec["taint"] == []
        assert Decimal(rec["best_bid"]) == o["bb"] and Decimal(rec["best_ask"]) == o["ba"]
        assert Decimal(rec["mid"]) == o["mid"] and Decimal(rec["step"]) == o["step"]
        assert Decimal(rec["spread_bps"]) == o["spread"]
        assert Decimal(rec["bid_depth"]) == o["bid_depth"] and Decimal(rec["ask_depth"]) == o["ask_depth"]
        assert Decimal(rec["imbalance"]) == o["imbalance"]
        assert rec["imbalance"][0] in "+-"
        assert [[Decimal(a), Decimal(b)] for a, b in rec["bids"]] == o["bids"]
        assert [[Decimal(a), Decimal(b)] for a, b in rec["asks"]] == o["asks"]
        assert len(rec["bids"]) > 3 and len(rec["asks"]) > 3
        for side in ("bids", "asks"):
            wall = max(o[side], key=lambda r: r[1])
            assert Decimal(rec[side[:3] + "_wall"]["notional"]) == wall[1]
        assert rec["book_ts"].endswith("Z") and len(rec["book_ts"]) == 24
    quality = vault / "derived" / "quality" / "okx" / "spot" / "BTC-USDT"
    assert not (quality / "books.jsonl").exists() or (quality / "books.jsonl").read_bytes() == b""


def test_auto_step_nearest_by_ratio() -> None:
    with decimal.localcontext(EXACT):
        assert auto_step(Decimal("30236.15")) == Decimal(2)  # 1 bp = 3.02: 3.02² = 9.1 < 2 × 5
        assert auto_step(Decimal("35000")) == Decimal(5)  # 3.5² = 12.25 > 10
        assert auto_step(Decimal("60000")) == Decimal(5)
        assert auto_step(Decimal("75000")) == Decimal(10)  # 7.5² = 56.25 > 50
        assert auto_step(Decimal("5.141")) == Decimal("0.0005")
        assert auto_step(Decimal("10000")) == Decimal(1)
        assert auto_step(Decimal("14142")) == Decimal(1)  # 1.4142² < 2
        assert auto_step(Decimal("14143")) == Decimal(2)


def _write(vault: Path, lines: list[bytes], inst: str = "BTC-USDT-SWAP", name: str = "books_2024-08-08.jsonl") -> Path:
    path = book_dir(vault, inst) / name
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def test_invalid_stale_and_fixed_step_records(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    _write(vault, [
        push("update", bids=[("1", "1")], ts=T0 + 1),  # before any snapshot
        push("snapshot", **SNAP, ts=T0 + 60_500),
        push("update", bids=[("100", "1")], ts=T0 + 61_000),
        push("update", bids=[("100.5", "1")], ts=T0 + 300_000),  # crossed: invalid
        push("update", ts=T0 + 360_000),
    ])
    cfg = write_config(tmp_path / "c.toml", '[plugins.buckets]\nsteps = {"BTC-USDT-SWAP" = "0.5"}\nstale_seconds = 60\n')
    assert run(vault, cfg) == 0
    recs = buckets(vault, "BTC-USDT-SWAP")
    assert [r["timestamp_utc"][11:16] for r in recs] == ["00:00", "00:01", "00:02", "00:03", "00:04", "00:05"]
    assert [(r["valid"], r["taint"]) for r in recs] == [
        (False, ["no_book"]), (True, []), (True, ["stale"]), (True, ["stale"]), (True, ["stale"]), (False, ["crossed"])]
    none = recs[0]
    assert none["book_ts"] is None and none["step"] == "0.5" and none["bids"] == [] and none["bid_wall"] is None
    assert none["mid"] is None and none["imbalance"] is None and none["tainted"] is True
    r = recs[1]
    # 100 x 1 + 99.5 x 2 contracts of 0.01 BTC; asks 100.5 x 3, 101 x 4
    assert (r["best_bid"], r["best_ask"], r["mid"], r["step"]) == ("100", "100.5", "100.25", "0.5")
    assert r["spread_bps"] == "49.8753"  # 0.5 / 100.25 x 10000 = 49.87531...
    assert r["bids"] == [["100", "1"], ["99.5", "1.99"]] and r["asks"] == [["100.5", "3.015"], ["101", "4.04"]]
    assert (r["bid_depth"], r["ask_depth"], r["imbalance"]) == ("2.99", "7.055", "-0.4047")
    assert r["bid_wall"] == {"price": "99.5", "notional": "1.99"} and r["ask_wall"] == {"price": "101", "notional": "4.04"}
    assert r["book_ts"] == "2024-08-08T00:01:01.000Z"
    assert recs[5]["book_ts"] == "2024-08-08T00:05:00.000Z" and recs[5]["best_bid"] is None
    events = read_jsonl(vault / "derived" / "quality" / "okx" / "perps" / "BTC-USDT-SWAP" / "books.jsonl")
    assert events == [{"event": "crossed", "ts_utc": "2024-08-08T00:05:00.000Z", "seqId": None, "prevSeqId": None,
                       "expected_prev": None}]
    rejects = read_jsonl(vault / "derived" / "quality" / "okx" / "perps" / "BTC-USDT-SWAP" / "books_rejects.jsonl")
    assert [(x["file"], x["line"]) for x in rejects] == [("raw/books/okx/perps/BTC-USDT-SWAP/books_2024-08-08.jsonl", 1)]


def test_auto_step_is_chosen_once_and_kept(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    path = _write(vault, [
        push("snapshot", bids=[("60000", "1")], asks=[("60000.1", "1")], ts=T0),
        push("snapshot", bids=[("90000", "1")], asks=[("90000.1", "1")], ts=T0 + 60_000),
    ])
    assert run(vault) == 0
    with open(path, "ab") as f:
        f.write(push("update", ts=T0 + 120_000) + b"\n")
    assert run(vault) == 0  # a second run: the step comes from the state
    recs = buckets(vault, "BTC-USDT-SWAP")
    assert [r["step"] for r in recs] == ["5", "5"]  # 9 would round to 10 were it chosen again
    assert recs[1]["bids"] == [["90000", "900"]] and recs[1]["asks"] == [["90005", "900.001"]]


def test_other_channels_are_skipped_and_the_channel_is_configurable(tmp_path: Path, capsys) -> None:
    vault = tmp_path / "v"
    five = [orjson.dumps({"arg": {"channel": "books5", "instId": "BTC-USDT-SWAP"}, "data": [
        {"asks": [["101", "1", "0", "1"]], "bids": [["100", str(k + 1), "0", "1"]], "ts": str(T0 + 40_000 * k)}]})
        for k in range(4)]
    _write(vault, [push("snapshot", **SNAP, ts=T0), *five, push("update", ts=T0 + 200_000)])
    assert run(vault) == 0
    state = json.loads((vault / "state" / "buckets" / "okx" / "perps" / "BTC-USDT-SWAP.state.json").read_text())
    assert state["stream"]["counters"]["other_channel"] == 4 and state["stream"]["channel"] == "books"
    cfg = write_config(tmp_path / "c.toml", '[books]\nchannels = {"BTC-USDT-SWAP" = "books5"}\n')
    assert main(["reset", "--vault", str(vault), "--indicator", "all"]) == 0
    assert run(vault, cfg) == 0
    recs = buckets(vault, "BTC-USDT-SWAP")
    assert [r["bids"][0][1] for r in recs] == ["2", "3"]  # minute 0 ends with the 2nd books5 push, minute 1 the 3rd
    # the channel is part of the output's definition: changing it back is refused, with what changed
    capsys.readouterr()
    assert run(vault) == 1
    err = capsys.readouterr().err
    assert 'input before: {"channel":"books5"}' in err and 'input now:    {"channel":"books"}' in err


def test_bad_config_is_a_clear_error(tmp_path: Path, capsys) -> None:
    vault = tmp_path / "v"
    _write(vault, [push("snapshot", **SNAP)])
    for text, words in (('[books]\nchannel = "books400"\n', "books.channel"),
                        ('[plugins.buckets]\nstep = "wide"\n', "plugins.buckets.step"),
                        ('[plugins.buckets]\nband_pct = 0\n', "plugins.buckets.band_pct")):
        assert run(vault, write_config(tmp_path / "c.toml", text)) == 2
        assert words in capsys.readouterr().err


def test_stalled_book_does_not_hold_back_trades_and_status_shows_both(tmp_path: Path, capsys) -> None:
    vault = tmp_path / "v"
    trades = (ETH_PERP / "trades_2024-08-08.jsonl").read_bytes()
    (inst_dir(vault, "ETH-USDT-SWAP") / "trades_2024-08-08.jsonl").write_bytes(trades)
    first_ts = int(orjson.loads(trades.split(b"\n", 1)[0])["ts"])
    start = first_ts // 60000 * 60000
    lines = [line for _, line in book_lines("ETH-USDT-SWAP", start, minutes=1.5, interval_ms=1000, levels=50, mid=2600.0)]
    path = _write(vault, lines[:70], inst="ETH-USDT-SWAP")  # the recorder stalls after 70 s
    assert run(vault) == 0
    volume = read_jsonl(vault / "derived" / "volume" / "okx" / "perps" / "ETH-USDT-SWAP" / "volume_1m.jsonl")
    assert len(volume) == 5  # every closed bar of the trades
    assert len(buckets(vault, "ETH-USDT-SWAP")) == 1
    assert main(["status", "--vault", str(vault), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    book_rows = [r for r in rows if r["kind"] == "books"]
    assert {r["indicator"] for r in book_rows} == {"buckets", "quality"}
    assert all(r["pushes"] == 70 and r["last_minute_utc"] == volume[0]["timestamp_utc"] for r in book_rows)
    assert {r["indicator"] for r in rows if r["kind"] == "trades"} >= {"volume", "quality"}
    assert main(["status", "--vault", str(vault)]) == 0
    assert "last minute" in capsys.readouterr().out
    with open(path, "ab") as f:
        f.write(b"".join(lines[70:]))
    assert run(vault) == 0
    assert len(buckets(vault, "ETH-USDT-SWAP")) == 1  # the last minute is still open
    # reset of the quality log removes the books' quality state too, and the next run rebuilds it identically
    before = outputs(vault)
    assert main(["reset", "--vault", str(vault), "--indicator", "quality", "--inst", "ETH-USDT-SWAP"]) == 0
    assert not list((vault / "state" / "quality").rglob("*.state.json"))
    assert run(vault) == 0
    assert outputs(vault) == before


def test_follow_closes_a_book_minute_by_the_clock(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    path = _write(vault, [push("snapshot", **SNAP, ts=T0 + 1000), push("update", bids=[("100", "2")], ts=T0 + 2000)])
    host = Host.load(load_config(None))
    follower = Follower(host, vault)
    now = [T0 + 60_000 + 4_999]
    previous = decimal.getcontext()
    decimal.setcontext(EXACT.copy())
    try:
        follower.step(lambda: now[0], 5_000, commit=True)
        assert not (vault / "derived" / "buckets").exists()  # within the grace period
        now[0] += 1
        follower.step(lambda: now[0], 5_000, commit=True)
        assert len(buckets(vault, "BTC-USDT-SWAP")) == 1
        with open(path, "ab") as f:
            f.write(push("update", bids=[("100", "3")], ts=T0 + 190_000) + b"\n")
        now[0] = T0 + 250_000
        follower.step(lambda: now[0], 5_000, commit=True)
        follower.commit()
    finally:
        decimal.setcontext(previous)
    recs = buckets(vault, "BTC-USDT-SWAP")
    # minutes 1 and 2 had no push: filled when the push of minute 3 came; minute 3 then closed by the clock
    assert [(r["timestamp_utc"][11:16], r["bids"][0][1]) for r in recs] == [
        ("00:00", "2"), ("00:01", "2"), ("00:02", "2"), ("00:03", "3")]


def test_generated_day_in_folders_per_date(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    start = T0 + 86_400_000 - 120_000  # two minutes before midnight
    files = write_days(book_dir(vault, "BTC-USDT-SWAP"),
                       book_lines(start_ms=start, minutes=4, interval_ms=500, levels=80, gap_every=150))
    assert [f.name for f in files] == ["books_2024-08-08.jsonl", "books_2024-08-09.jsonl"]
    assert run(vault) == 0
    recs = buckets(vault, "BTC-USDT-SWAP")
    assert [r["timestamp_utc"][11:16] for r in recs] == ["23:58", "23:59", "00:00"]
    assert all(r["bids"] and r["asks"] for r in recs if r["valid"])
    events = read_jsonl(vault / "derived" / "quality" / "okx" / "perps" / "BTC-USDT-SWAP" / "books.jsonl")
    assert [e["event"] for e in events][:2] == ["seq_gap", "resync"]


@pytest.mark.parametrize("unit, expected", [("contracts", "3"), ("base", "0.03"), ("quote", "3.015")])
def test_units(tmp_path: Path, unit: str, expected: str) -> None:
    vault = tmp_path / "v"
    _write(vault, [push("snapshot", **SNAP, ts=T0), push("update", ts=T0 + 60_000)])
    assert run(vault, write_config(tmp_path / "c.toml", f'[plugins.buckets]\nunit = "{unit}"\n')) == 0
    assert buckets(vault, "BTC-USDT-SWAP")[0]["asks"][0][1] == expected


def test_inverse_base_notional_is_rounded_per_level(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    _write(vault, [push("snapshot", bids=[("30000", "3")], asks=[("30001", "7")], ts=T0, inst="BTC-USD-SWAP"),
                   push("update", ts=T0 + 60_000, inst="BTC-USD-SWAP")], inst="BTC-USD-SWAP")
    assert run(vault, write_config(tmp_path / "c.toml", '[plugins.buckets]\nunit = "base"\n')) == 0
    (r,) = buckets(vault, "BTC-USD-SWAP")
    # 3 contracts of 100 USD at 30000: 0.01 BTC; 700 USD at 30001: 0.023332555581... rounded to 12 places
    assert r["bids"] == [["30000", "0.01"]] and r["asks"] == [["30002", "0.023332555581"]]  # step 2: ceil to 30002


def test_the_readme_book_indicator_installed_as_a_package(tmp_path: Path) -> None:
    """The example of the README's "Write a book indicator", pip-installed, runs beside the trade indicators."""
    import os
    import subprocess
    import sys

    from tests.test_host import _install
    from tests.vaults import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Write a book indicator", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    site = _install(tmp_path, "top-size", "top_size", code, "top_size")
    vault = tmp_path / "v"
    trades = (ETH_PERP / "trades_2024-08-08.jsonl").read_bytes()
    (inst_dir(vault, "ETH-USDT-SWAP") / "trades_2024-08-08.jsonl").write_bytes(trades)
    start = int(orjson.loads(trades.split(b"\n", 1)[0])["ts"]) // 60000 * 60000
    _write(vault, [line for _, line in book_lines("ETH-USDT-SWAP", start, minutes=3, interval_ms=1000, levels=20,
                                                  mid=2600.0)], inst="ETH-USDT-SWAP")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    done = subprocess.run([sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--quiet"], env=env,
                          capture_output=True)
    assert done.returncode == 0, done.stderr
    top = read_jsonl(vault / "derived" / "top_size" / "okx" / "perps" / "ETH-USDT-SWAP" / "top_size_1m.jsonl")
    assert len(top) == 2 and all(r["valid"] and Decimal(r["bid_size"]) > 0 and r["taint"] == [] for r in top)
    assert (vault / "derived" / "volume" / "okx" / "perps" / "ETH-USDT-SWAP" / "volume_1m.jsonl").stat().st_size
    assert not (vault / "derived" / "top_size" / "okx" / "perps" / "ETH-USDT-SWAP" / "volume_1m.jsonl").exists()
