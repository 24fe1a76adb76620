"""``indicators backtest`` (SPEC section 19) on hand-built vaults, against a plain-Decimal reading of the section.

The vault: trades of BTC-USDT-SWAP a second apart on a price path that reaches targets, stops and
neither; confluence signals written by hand (committed); a derivs_1m minute whose funding falls inside
one position.  Each exit reason, a signal skipped during an open position, a signal with no trade after it
(open), funding and the latency sweep are checked record by record.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from indicator_core.cli import main
from indicator_core.timeutil import iso_minute
from tests.study_vaults import bar, write_output, write_volume
from tests.vaults import inst_dir, read_jsonl, trade_line, write_config

INST = "BTC-USDT-SWAP"
M0 = 28_872_000  # 2024-11-23 00:00 UTC, in minutes
T0 = M0 * 60_000


def price_at(sec: int) -> Decimal:
    """Up 1 a second for 10 minutes, down 2 a second for 10, then flat: targets, stops and time exits."""
    if sec < 600:
        return Decimal(60000 + sec)
    if sec < 1200:
        return Decimal(60600 - 2 * (sec - 600))
    return Decimal(59400)


TRADES = [(T0 + s * 1000 + 7, price_at(s)) for s in range(0, 1800)]  # 30 minutes, a trade a second


def build(tmp: Path) -> Path:
    vault = tmp / "v"
    (inst_dir(vault, INST) / "trades_2024-11-23.jsonl").write_bytes(
        b"".join(trade_line(INST, 100 + k, str(px), "1", "buy", ts) for k, (ts, px) in enumerate(TRADES)))
    write_volume(vault, INST, [bar(i, 60000, inst=INST) for i in range(M0 - 28_870_000, M0 - 28_870_000 + 30)])
    signals = [  # (minute, direction, level)
        (0, "long", "60000"),    # known 00:01: long into the rise: the target
        (2, "short", "60150"),   # known 00:03, during the long: skipped
        (8, "short", "60500"),   # known 00:09: short, the rise goes on: the stop
        (12, "short", "60400"),  # known 00:13: short into the fall: the target
        (20, "long", "59400"),   # known 00:21: long in the flat: time
        (29, "long", "59400"),   # known 00:30: no trade after it: open
    ]
    write_output(vault, "confluence", INST, "signals", [
        {"timestamp_utc": iso_minute(M0 + m), "inst_id": INST, "direction": d, "level": lv, "level_side": "lower",
         "score": 3, "conviction": "normal"} for m, d, lv in signals])
    # a funding at 00:14 at +0.0001, known from the minute before (inside the 00:13 short)
    write_output(vault, "derivs", INST, "derivs_1m", [
        {"timestamp_utc": iso_minute(M0 + 13), "funding_rate": "0.0001", "next_funding_utc": iso_minute(M0 + 14)}])
    return vault


def plain_text(d: Decimal) -> str:
    t = format(d, "f")
    return t.rstrip("0").rstrip(".") if "." in t else t


def plain(latency: int, stop_bp: Decimal, target_bp: Decimal, hold_min: int, fee: Decimal = Decimal(5),
          size: Decimal = Decimal(10000), book=None) -> tuple[list[dict], int, int]:
    """SPEC 19 read plainly: (records, skipped, open)."""
    sigs = [(M0 + 1, 1, "00:00", "60000"), (M0 + 3, -1, "00:02", "60150"), (M0 + 9, -1, "00:08", "60500"),
            (M0 + 13, -1, "00:12", "60400"), (M0 + 21, 1, "00:20", "59400"), (M0 + 30, 1, "00:29", "59400")]
    out, skipped, open_, busy_until = [], 0, 0, None

    def q(x: Decimal, places: str = "0.0001") -> str:
        v = x.quantize(Decimal(places), rounding=ROUND_HALF_EVEN)
        t = format(abs(v) if not v else v, "f")
        return t.rstrip("0").rstrip(".") if "." in t else t

    def iso(ts: int) -> str:
        import time

        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts // 1000)) + f".{ts % 1000:03d}Z"

    for known_m, d, hhmm, level in sigs:
        start = known_m * 60_000 + latency
        if busy_until is not None and start <= busy_until:
            skipped += 1
            continue
        entry = next((k for k, (ts, _) in enumerate(TRADES) if ts >= start), None)
        if entry is None:
            open_ += 1
            continue
        ets, epx = TRADES[entry]
        fill = "trade"
        if book is not None and book(ets, d > 0) is not None:
            epx, fill = book(ets, d > 0), "book"
        stop = epx * (1 - d * stop_bp / 10000)
        target = epx * (1 + d * target_bp / 10000)
        exit_, reason = None, None
        for k in range(entry + 1, len(TRADES)):
            ts, px = TRADES[k]
            if (d > 0 and px <= stop) or (d < 0 and px >= stop):
                exit_, reason = k, "stop"
            elif (d > 0 and px >= target) or (d < 0 and px <= target):
                exit_, reason = k, "target"
            elif ts >= ets + hold_min * 60_000:
                exit_, reason = k, "time"
            if exit_ is not None:
                break
        if exit_ is None:
            open_ += 1
            busy_until = 10**18
            continue
        xts, xpx = TRADES[exit_]
        if book is not None and book(xts, d < 0) is not None:
            xpx = book(xts, d < 0)
        busy_until = xts
        after = [px for _, px in TRADES[entry + 1:exit_ + 1]]
        gross = d * (xpx / epx - 1) * 10000
        fees = fee * (1 + xpx / epx)
        fund = -d * (Decimal("0.0001") if ets < (M0 + 14) * 60_000 <= xts else Decimal(0)) * 10000
        net = gross - fees + fund
        best, worst = (max(after), min(after)) if d > 0 else (min(after), max(after))
        out.append({"signal_id": f"{INST}|2024-11-23T{hhmm}:00Z|{level}", "direction": "long" if d > 0 else "short",
                    "fill": fill, "entry_utc": iso(ets), "entry_px": plain_text(epx), "exit_utc": iso(xts),
                    "exit_px": plain_text(xpx), "exit_reason": reason, "gross_bp": q(gross), "fees_bp": q(fees),
                    "funding_bp": q(fund), "net_bp": q(net), "net_quote": q(size * net / 10000, "0.00000001"),
                    "mfe_bp": q(d * (best / epx - 1) * 10000), "mae_bp": q(d * (worst / epx - 1) * 10000)})
    return out, skipped, open_


def test_each_exit_reason_skips_open_funding_and_the_sweep(tmp_path: Path, capsys) -> None:
    vault = build(tmp_path)
    cfg = write_config(tmp_path / "c.toml", '[backtest.conf]\nsignal = "confluence"\nstop_bp = "5"\n'
                       'target_bp = "30"\nmax_hold_minutes = 5\nlatency_ms = 250\n')
    capsys.readouterr()
    assert main(["backtest", "--vault", str(vault), "--config", str(cfg), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    got = read_jsonl(vault / "derived" / "backtest" / "conf" / "okx" / "perps" / INST / "trades.jsonl")
    expected, skipped, open_ = plain(250, Decimal(5), Decimal(30), 5)
    assert got == expected
    assert {r["exit_reason"] for r in got} == {"stop", "target", "time"}
    assert any(r["funding_bp"] != "0" for r in got)
    own = next(r for r in rows if r["latency_ms"] == 250 and not r["sweep"])
    assert (own["n"], own["skipped"], own["open"]) == (len(expected), skipped, open_) == (4, 1, 1)
    assert own["win_rate"] == round(sum(1 for r in expected if Decimal(r["net_bp"]) > 0) / 4, 4)
    assert own["total_net_quote"] == round(float(sum(Decimal(r["net_quote"]) for r in expected)), 8)
    for lat in (0, 100, 1000, 5000):  # the sweep: each latency walked on its own
        exp, sk, op = plain(lat, Decimal(5), Decimal(30), 5)
        row = next(r for r in rows if r["latency_ms"] == lat)
        assert (row["n"], row["skipped"], row["open"]) == (len(exp), sk, op)
        assert row["mean_net_bp"] == round(sum(float(r["net_bp"]) for r in exp) / len(exp), 4)


def test_same_bytes_every_time_and_clear_config_errors(tmp_path: Path, capsys) -> None:
    vault = build(tmp_path)
    cfg = write_config(tmp_path / "c.toml", '[backtest.conf]\nsignal = "confluence"\nstop_bp = "20"\n')
    assert main(["backtest", "--vault", str(vault), "--config", str(cfg)]) == 0
    path = vault / "derived" / "backtest" / "conf" / "okx" / "perps" / INST / "trades.jsonl"
    first = path.read_bytes()
    assert main(["backtest", "--vault", str(vault), "--config", str(cfg)]) == 0
    assert path.read_bytes() == first
    bad = write_config(tmp_path / "bad.toml", '[backtest.x]\nsignal = "moonphase"\n')
    capsys.readouterr()
    assert main(["backtest", "--vault", str(vault), "--config", str(bad)]) == 2
    assert "backtest.x.signal: 'moonphase' is not a signal" in capsys.readouterr().err
    none = write_config(tmp_path / "none.toml", "")
    assert main(["backtest", "--vault", str(vault), "--config", str(none)]) == 2
    assert "no [backtest.NAME] table" in capsys.readouterr().err


@pytest.mark.parametrize("snap_s", [30, 400])
def test_fills_by_walking_the_recorded_book(tmp_path: Path, capsys, snap_s: int) -> None:
    """A book snapshot recorded at ``snap_s`` (asks 60050 x 5 and 60100 x 1000 contracts, bids 59990 x 1000): each
    fill takes $10,000 from the other side at its volume-weighted price (8 places); before it (no valid book
    yet), the trade's price."""
    from fractions import Fraction

    import orjson

    from tests.vaults import book_dir

    vault = build(tmp_path)
    snap = T0 + snap_s * 1000
    push = {"arg": {"channel": "books", "instId": INST}, "action": "snapshot", "data": [{
        "asks": [["60050", "5", "0", "1"], ["60100", "1000", "0", "3"]], "bids": [["59990", "1000", "0", "2"]],
        "ts": str(snap), "checksum": 0, "seqId": 10, "prevSeqId": -1}]}
    (book_dir(vault, INST) / "books_2024-11-23.jsonl").write_bytes(orjson.dumps(push) + b"\n")

    def vwap(levels: list[tuple[str, str]], size: Decimal = Decimal(10000)) -> Decimal:
        left, base = Fraction(size), Fraction(0)
        for px, contracts in levels:
            take = min(left, Fraction(Decimal(px)) * Fraction(Decimal(contracts)) / 100)  # 0.01 BTC a contract
            base += take / Fraction(Decimal(px))
            left -= take
        q = Fraction(size) / base
        return (Decimal(q.numerator) / Decimal(q.denominator)).quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN)

    asks = vwap([("60050", "5"), ("60100", "1000")])
    bids = vwap([("59990", "1000")])
    assert str(bids) == "59990.00000000"

    def book(ts: int, buy: bool):
        return None if ts < snap else (asks if buy else bids)

    cfg = write_config(tmp_path / "c.toml", '[backtest.conf]\nsignal = "confluence"\nstop_bp = "5"\n'
                       'target_bp = "30"\nmax_hold_minutes = 5\nfills = "book"\n')
    assert main(["backtest", "--vault", str(vault), "--config", str(cfg), "--json"]) == 0
    got = read_jsonl(vault / "derived" / "backtest" / "conf" / "okx" / "perps" / INST / "trades.jsonl")
    expected, _, _ = plain(250, Decimal(5), Decimal(30), 5, book=book)
    assert got == expected
    if snap_s == 30:
        assert got[0]["fill"] == "book" and got[0]["entry_px"] == plain_text(asks) == "60084.97875531"
    else:
        assert got[0]["fill"] == "trade" and any(r["fill"] == "book" for r in got)


def test_jobs_give_the_same_bytes(tmp_path: Path, capsys) -> None:
    """The sample vault's three instruments on two worker processes: the summaries and files of one."""
    import shutil

    from tests.vaults import outputs, run

    repo = Path(__file__).resolve().parent.parent
    cfg = write_config(tmp_path / "c.toml", '[backtest.fade]\nsignal = "absorption"\nstop_bp = "20"\n'
                       'target_bp = "30"\nmax_hold_minutes = 30\n[backtest.t4]\nsignal = "tier:T4"\n')
    got = {}
    for jobs in ("1", "2"):
        vault = tmp_path / f"v{jobs}"
        shutil.copytree(repo / "examples" / "vault" / "raw", vault / "raw")
        assert run(vault) == 0
        capsys.readouterr()
        assert main(["backtest", "--vault", str(vault), "--config", str(cfg), "--json", "--jobs", jobs]) == 0
        got[jobs] = (capsys.readouterr().out, {k: v for k, v in outputs(vault).items() if k.startswith("backtest/")})
    assert got["1"] == got["2"] and len(got["1"][1]) >= 4
    rows = json.loads(got["1"][0])
    assert {r["inst_id"] for r in rows} >= {"BTC-USDT-SWAP", "ETH-USDT-SWAP"}


def test_one_trade_at_once_past_the_stop_and_the_time_limit_is_a_stop(tmp_path: Path) -> None:
    """A long's stop lies below its entry and its target above, so one trade cannot reach both; what one trade
    can reach at once is a price level and the time limit: the price exit wins (the reason a trader acts on)."""
    vault = tmp_path / "v"
    t_sig = T0 + 60_000  # known: the signal of minute 00:00
    trades = [(T0 + 1_000, "60000"), (t_sig + 500, "60000"), (t_sig + 5_000, "60010"),
              (t_sig + 500 + 120_000, "59000")]  # two minutes after the entry, and 166 bp below it
    (inst_dir(vault, INST) / "trades_2024-11-23.jsonl").write_bytes(
        b"".join(trade_line(INST, 100 + k, px, "1", "buy", ts) for k, (ts, px) in enumerate(trades)))
    write_volume(vault, INST, [bar(i, 60000, inst=INST) for i in range(2000, 2004)])
    write_output(vault, "confluence", INST, "signals", [{"timestamp_utc": iso_minute(M0), "inst_id": INST,
                                                         "direction": "long", "level": "60000", "score": 3}])
    cfg = write_config(tmp_path / "c.toml", '[backtest.s]\nsignal = "confluence"\nstop_bp = "50"\ntarget_bp = "50"\n'
                       'max_hold_minutes = 2\nfills = "trade"\n')
    assert main(["backtest", "--vault", str(vault), "--config", str(cfg)]) == 0
    (r,) = read_jsonl(vault / "derived" / "backtest" / "s" / "okx" / "perps" / INST / "trades.jsonl")
    assert (r["exit_reason"], r["exit_px"], r["entry_px"]) == ("stop", "59000", "60000")
    assert r["mfe_bp"] == "1.6667" and r["mae_bp"] == "-166.6667"
