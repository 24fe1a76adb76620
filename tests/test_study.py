"""`indicators study` (SPEC 13) on hand-built series whose answers are known."""

from __future__ import annotations

import json

import pytest

from indicator_core.cli import main
from indicator_core.report.study import KEYS
from indicator_core.timeutil import iso_minute

from .study_vaults import T0, bar, write_output, write_volume


def study(capsys, vault, *args) -> list[dict]:
    capsys.readouterr()
    assert main(["study", "--vault", str(vault), "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def pick(rows, inst="BTC-USDT-SWAP", signal="absorption", h=1) -> dict:
    (r,) = [r for r in rows if (r["inst_id"], r["signal"], r["horizon"]) == (inst, signal, h)]
    return r


def zigzag(n=20, **kw) -> list[dict]:
    """Even minutes close 10000 and absorb selling (delta < 0: long); odd minutes close 10010 (high 10020, low 9990)."""
    out = []
    for i in range(n):
        if i % 2 == 0:
            out.append(bar(i, 10000, delta="-5", absorption=True, tier="T4", **kw))
        else:
            out.append(bar(i, 10010, high=10020, low=9990, delta="-5", **kw))
    return out


def test_signal_followed_by_ten_bp_every_time(tmp_path, capsys):
    write_volume(tmp_path, "BTC-USDT-SWAP", zigzag(20))
    rows = study(capsys, tmp_path, "--signal", "absorption", "--horizons", "1,2,5,60")
    assert [tuple(r) for r in rows] == [KEYS] * 4  # exactly the SPEC keys, in its order
    r = pick(rows, h=1)
    # 10 signals at minutes 0, 2, .., 18; each is followed by 10000 -> 10010 = +10 bp
    assert r["n"] == 10
    assert r["mean_bp"] == 10.0 and r["median_bp"] == 10.0 and r["hit_rate"] == 1.0
    assert r["std_bp"] == 0.0 and r["ci_low_bp"] == 10.0 and r["ci_high_bp"] == 10.0
    assert r["mfe_bp"] == 20.0 and r["mae_bp"] == -10.0  # high 10020, low 9990 of the next minute
    assert r["overlapping"] == 0 and r["skipped_no_direction"] == 0
    # baseline: every minute with -sign(delta) = long: 10 rises of +10 bp and 9 falls 10010 -> 10000 (the
    # last minute has nothing after it)
    fall = (10000 / 10010 - 1) * 1e4
    base = (10 * 10.0 + 9 * fall) / 19
    assert r["baseline_n"] == 19
    assert r["baseline_mean_bp"] == pytest.approx(base, abs=1e-4)
    assert r["edge_bp"] == pytest.approx(10.0 - base, abs=1e-4)
    # two minutes later the price is back: 0 bp; windows of 2 do not overlap signals 2 minutes apart
    r2 = pick(rows, h=2)
    assert (r2["n"], r2["mean_bp"], r2["hit_rate"], r2["overlapping"]) == (9, 0.0, 0.0, 0)
    assert r2["mfe_bp"] == 20.0 and r2["mae_bp"] == -10.0
    # horizon 5 ends at an odd minute: +10 bp; signals at 0..14 have 5 minutes after them; all overlap the previous
    r5 = pick(rows, h=5)
    assert (r5["n"], r5["mean_bp"], r5["overlapping"]) == (8, 10.0, 7)
    # a horizon running past the end of the data: nothing to measure, nulls, not zeros
    r60 = pick(rows, h=60)
    assert r60["n"] == 0 and r60["baseline_n"] == 0
    assert all(r60[k] is None for k in KEYS if k.endswith("_bp") or k == "hit_rate")


def test_short_signals_and_zero_drift_baseline(tmp_path, capsys):
    """Selling absorbed = bearish... here buying is absorbed (delta > 0: short) before a 10 bp drop, on a flat market."""
    bars = []
    for i in range(30):
        if i % 3 == 0:
            bars.append(bar(i, 10000, delta="+7", absorption=True, tier="T4"))
        elif i % 3 == 1:
            bars.append(bar(i, 9990, delta="+1"))
        else:
            bars.append(bar(i, 10000, delta="-1"))
    write_volume(tmp_path, "BTC-USDT-SWAP", bars)
    rows = study(capsys, tmp_path, "--signal", "absorption", "--signal", "tier:T2", "--horizons", "1,3")
    r = pick(rows, h=1)
    assert r["n"] == 10 and r["mean_bp"] == 10.0 and r["hit_rate"] == 1.0
    # at horizon 3 every minute is back at its own price: the baseline drifts by exactly zero
    r3 = pick(rows, h=3)
    assert r3["mean_bp"] == 0.0 and r3["baseline_mean_bp"] == 0.0 and r3["edge_bp"] == 0.0
    assert r3["baseline_n"] == 27
    # tier:T2 follows sign(delta): long after +1 (9990 -> 10000), short after -1 (10000 -> 10000)
    t = pick(rows, signal="tier:T2", h=1)
    assert t["n"] == 19  # the last minute (T2) has nothing after it
    rise = (10000 / 9990 - 1) * 1e4
    assert t["mean_bp"] == pytest.approx(10 * rise / 19, abs=1e-4)


def test_no_direction_empty_bars_missing_minutes_and_range(tmp_path, capsys):
    bars = [
        bar(0, 100, delta="0", absorption=True),  # direction 0: left out, counted
        bar(1, 100, delta="-1", absorption=True),  # long
        bar(2, 101),
        bar(3, 101, empty=True, tier="T1"),  # empty minute: carries the close
        bar(4, 102, delta="+1", absorption=True),  # short; its minute+1 (5) is missing
        bar(6, 99),
        bar(7, 99, delta="-1", absorption=True),  # long
        bar(8, 100),
    ]
    write_volume(tmp_path, "BTC-USDT-SWAP", bars, uncommitted=[bar(9, 200), bar(10, 300, delta="-1", absorption=True)])
    rows = study(capsys, tmp_path, "--signal", "absorption", "--horizons", "1,2")
    r1 = pick(rows, h=1)
    assert r1["skipped_no_direction"] == 1
    assert r1["n"] == 2  # minute 4 has no minute 5: left out; the uncommitted minutes 9, 10 are not read
    assert r1["mean_bp"] == pytest.approx(((101 / 100 - 1) + (100 / 99 - 1)) / 2 * 1e4, abs=1e-4)
    r2 = pick(rows, h=2)
    # minute 1 -> 3 (empty, close 101); minute 4 -> 6: short 102 -> 99; minute 7 has no minute 9 committed
    assert r2["n"] == 2
    assert r2["mean_bp"] == pytest.approx(((101 / 100 - 1) - (99 / 102 - 1)) / 2 * 1e4, abs=1e-4)
    # MFE over minutes 5..6 of the short from 102 skips the missing minute 5: low 99
    # --from/--to choose the signal minutes [from, to)
    rows = study(capsys, tmp_path, "--signal", "absorption", "--horizons", "1",
                 "--from", iso_minute(T0 + 2), "--to", iso_minute(T0 + 8)[:16])
    r = pick(rows)
    assert (r["n"], r["skipped_no_direction"]) == (1, 0)
    assert r["mean_bp"] == pytest.approx((100 / 99 - 1) * 1e4, abs=1e-4)


def test_pooled_rows_and_same_report_twice(tmp_path, capsys):
    write_volume(tmp_path, "BTC-USDT-SWAP", zigzag(20))
    eth = []
    for i in range(12):  # ETH: absorbed selling followed by -10 bp
        eth.append(bar(i, 2000 if i % 2 == 0 else 1998, delta="-3", absorption=i % 2 == 0, tier="T4",
                       inst="ETH-USDT-SWAP"))
    write_volume(tmp_path, "ETH-USDT-SWAP", eth)
    rows = study(capsys, tmp_path, "--signal", "absorption", "--horizons", "1")
    assert [r["inst_id"] for r in rows] == ["BTC-USDT-SWAP", "ETH-USDT-SWAP", "all"]
    a, e, p = rows
    assert e["n"] == 6 and e["mean_bp"] == -10.0
    assert p["n"] == 16 and p["mean_bp"] == pytest.approx((10 * 10 - 6 * 10) / 16, abs=1e-4)
    assert p["baseline_n"] == a["baseline_n"] + e["baseline_n"]
    assert p["ci_low_bp"] < p["mean_bp"] < p["ci_high_bp"]
    assert p["hit_rate"] == 0.625
    # fixed seed: the same vault gives the same report
    assert study(capsys, tmp_path, "--signal", "absorption", "--horizons", "1") == rows
    # --inst selects; then no pooled row
    only = study(capsys, tmp_path, "--signal", "absorption", "--horizons", "1", "--inst", "ETH-USDT-SWAP")
    assert [r["inst_id"] for r in only] == ["ETH-USDT-SWAP"]
    assert only[0] == e


def test_bootstrap_interval_is_the_documented_one():
    import numpy as np

    from indicator_core.report.study import bootstrap_ci

    x = np.array([1.0, 2.0, 3.0, 10.0])
    lo, hi = bootstrap_ci(x)
    rng = np.random.default_rng(20261125)
    means = x[rng.integers(0, 4, (10_000, 4))].mean(axis=1)
    assert (lo, hi) == tuple(np.percentile(means, [2.5, 97.5]))
    assert 1.0 <= lo < 4.0 < hi <= 10.0


def test_whale_and_confluence_directions_and_mix_baseline(tmp_path, capsys):
    bars = []
    for i in range(10):
        bars.append(bar(i, 100 + i, whale_count=1 if i in (2, 5) else 0,
                        whale_buy="300000" if i == 2 else "0", whale_sell="200000" if i == 5 else "0"))
    write_volume(tmp_path, "BTC-USDT-SWAP", bars)
    sig = [
        {"timestamp_utc": iso_minute(T0 + 1), "inst_id": "BTC-USDT-SWAP", "direction": "long", "level": "101",
         "score": 3},
        {"timestamp_utc": iso_minute(T0 + 1), "inst_id": "BTC-USDT-SWAP", "direction": "short", "level": "102",
         "score": 3},
        {"timestamp_utc": iso_minute(T0 + 4), "inst_id": "BTC-USDT-SWAP", "direction": "long", "level": "104",
         "score": 4},
    ]
    write_output(tmp_path, "confluence", "BTC-USDT-SWAP", "signals", sig)
    rows = study(capsys, tmp_path, "--horizons", "1")
    assert [r["signal"] for r in rows] == ["absorption", "divergence", "tier:T1", "tier:T2", "tier:T3", "tier:T4",
                                           "whale", "confluence"]
    w = pick(rows, signal="whale")
    # long at 2 (102 -> 103), short at 5 (105 -> 106)
    assert w["n"] == 2 and w["mean_bp"] == pytest.approx(((103 / 102 - 1) - (106 / 105 - 1)) / 2 * 1e4, abs=1e-4)
    assert w["baseline_mean_bp"] == 0.0  # one long, one short: the same mix at random minutes makes nothing
    c = pick(rows, signal="confluence")
    assert c["n"] == 3 and c["overlapping"] == 1  # two records in minute 1
    raw = [(100 + i + 1) / (100 + i) - 1 for i in range(9)]
    assert c["baseline_n"] == 9
    assert c["baseline_mean_bp"] == pytest.approx(sum(raw) / 9 * 1e4 * (1 / 3), abs=1e-4)


def test_cli_boundary_messages(tmp_path, capsys):
    assert main(["study", "--vault", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "indicators run --vault" in err and "volume" in err
    assert main(["study", "--vault", str(tmp_path / "nope")]) == 2
    write_volume(tmp_path, "BTC-USDT-SWAP", zigzag(6))
    for bad, words in [
        (["--signal", "tier:T9"], "unknown"),
        (["--signal", "confluence"], "enable the `confluence`"),
        (["--horizons", "0,5"], "--horizons"),
        (["--horizons", "x"], "--horizons"),
        (["--inst", "ETH-USDT-SWAP"], "indicators run --vault"),
        (["--from", "2024-13-01"], "--from"),
        (["--from", "2024-11-02", "--to", "2024-11-01"], "not after"),
    ]:
        capsys.readouterr()
        assert main(["study", "--vault", str(tmp_path), *bad]) == 2, bad
        assert words in capsys.readouterr().err, bad
    capsys.readouterr()
    assert main(["study", "--vault", str(tmp_path), "--signal", "absorption"]) == 0
    out = capsys.readouterr().out
    assert "absorption" in out and "+10.00" in out and "95% CI" in out


def test_html_report_with_signals_that_never_fired(tmp_path, capsys):
    write_volume(tmp_path, "BTC-USDT-SWAP", zigzag(30))
    out = tmp_path / "r" / "report.html"
    assert main(["study", "--vault", str(tmp_path), "--html", str(out), "--horizons", "1,5,60"]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.count("<section>") == 7  # every signal but confluence, whale among them with no event
    assert "no signal with this horizon" in text  # whale: nothing to draw, said so
    assert '"paths": 7' in text and "<script" not in text and "http" not in text.replace("http://www.w3.org", "")
