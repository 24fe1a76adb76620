"""The footprint, session profile and naked POCs (SPEC section 18).

Hand-built minutes check each rule (ties, one-row minutes, a missing neighbour row, a run of exactly
``stacked_min``, the value-area edges); real ETH trades and generated ones are checked against an
independent plain-Decimal reading of the section below (json + Decimal, no project code).
"""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from indicator_core.cli import main
from plugins.footprint import poc_of, value_area
from tests.vaults import ETH_PERP, inst_dir, read_jsonl, run, trade_line, write_config

T0 = 1732320000000  # 2024-11-23 00:00 UTC
ON = "[plugins.footprint]\nenabled = true\n"


def fp(vault: Path, stream: str, inst: str = "BTC-USDT-SWAP") -> list[dict]:
    path = vault / "derived" / "footprint" / "okx" / "perps" / inst / f"{stream}.jsonl"
    return read_jsonl(path) if path.exists() else []


def write_trades(vault: Path, trades: list[tuple], inst: str = "BTC-USDT-SWAP") -> None:
    """trades: (ts, px, sz, side); ids in order."""
    by_day: dict[str, list[bytes]] = {}
    import time

    for i, (ts, px, sz, side) in enumerate(trades):
        by_day.setdefault(time.strftime("%Y-%m-%d", time.gmtime(ts // 1000)), []).append(
            trade_line(inst, 1000 + i, px, sz, side, ts))
    for day, lines in by_day.items():
        (inst_dir(vault, inst) / f"trades_{day}.jsonl").write_bytes(b"".join(lines))


# --- an independent reading of SPEC 18 ---------------------------------------------------------------------

def _s(d: Decimal) -> str:
    t = format(d, "f")
    return t.rstrip("0").rstrip(".") if "." in t else t


def plain_footprint(trades: list[tuple], ct_val: Decimal, row: Decimal, ratio: Decimal = Decimal(3),
                    stacked_min: int = 3, pct: Decimal = Decimal(70)) -> tuple[list, list, list]:
    """(footprint records, profile records, naked POC events) of trades (ts, id, px, sz, side) in stream order,
    one UTC-day session, every trade kept (no duplicates or late ones in the input)."""
    import time

    def iso(m: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(m * 60))

    def iso_ms(ts: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts // 1000)) + f".{ts % 1000:03d}Z"

    def rowk(px: Decimal) -> int:
        return int((px / row).to_integral_value(rounding="ROUND_FLOOR"))

    minutes: dict[int, list] = {}
    for t in trades:
        minutes.setdefault(t[0] // 60000, []).append(t)
    recs, profiles, events = [], [], []
    session = None
    svol: dict[int, Decimal] = {}
    sclose = None
    naked: list[tuple[int, str, int]] = []
    for m in sorted(minutes):
        ts_ = minutes[m]
        sess = m - m % 1440
        if session is not None and sess > session:
            lo, hi = min(svol), max(svol)
            ks = list(range(lo, hi + 1))
            vols = [svol.get(k, Decimal(0)) for k in ks]
            best = max(ks, key=lambda k: (vols[k - lo], -abs(k - sclose), -k))
            total = sum(vols)
            a = b = best - lo
            area = vols[a]
            while area * 100 < total * pct:
                up = [i for i in (b + 1, b + 2) if i < len(vols)]
                dn = [i for i in (a - 1, a - 2) if i >= 0]
                if not up and not dn:
                    break
                vu, vd = sum(vols[i] for i in up), sum(vols[i] for i in dn)
                if up and (not dn or vu >= vd):
                    b, area = up[-1], area + vu
                else:
                    a, area = dn[-1], area + vd
            level = _s(best * row)
            profiles.append({"session_start": iso(session), "row": _s(row), "poc": level, "vah": _s((lo + b) * row),
                             "val": _s((lo + a) * row), "volume": _s(total)})
            events.append({"event": "naked_poc", "level": level, "session_start": iso(session)})
            naked.append((best, level, session))
        if session is None or sess > session:
            session, svol = sess, {}
        buy: dict[int, Decimal] = {}
        sell: dict[int, Decimal] = {}
        cnt: dict[int, int] = {}
        for ts, tid, px, sz, side in ts_:
            k = rowk(Decimal(px))
            base = Decimal(sz) * ct_val
            (buy if side == "buy" else sell)[k] = (buy if side == "buy" else sell).get(k, Decimal(0)) + base
            cnt[k] = cnt.get(k, 0) + 1
        for k in cnt:  # the naked POCs this minute touches, by the first trade in its row
            pass
        touched = []
        for n_i, (k, level, s0) in enumerate(naked):
            first = next((t for t in ts_ if rowk(Decimal(t[2])) == k), None)
            if first is not None:
                touched.append((ts_.index(first), s0, n_i, level, first[0]))
        for _, s0, _, level, t in sorted(touched):
            events.append({"event": "poc_touched", "level": level, "session_start": iso(s0), "touched_utc": iso_ms(t)})
        naked = [x for i, x in enumerate(naked) if i not in {t[2] for t in touched}]
        rows = sorted(cnt)
        last = max(ts_, key=lambda t: (t[0], t[1]))
        close = rowk(Decimal(last[2]))
        hi_k = rowk(max(Decimal(t[2]) for t in ts_))
        lo_k = rowk(min(Decimal(t[2]) for t in ts_))
        B = lambda k: buy.get(k, Decimal(0))  # noqa: E731
        S = lambda k: sell.get(k, Decimal(0))  # noqa: E731
        asks = [k for k in rows if B(k) > 0 and B(k) >= ratio * S(k - 1)]
        bids = [k for k in rows if S(k) > 0 and S(k) >= ratio * B(k + 1)]

        def runs(ks: list[int], side: str) -> list[dict]:
            out, start = [], 0
            for i in range(1, len(ks) + 1):
                if i == len(ks) or ks[i] != ks[i - 1] + 1:
                    if i - start >= stacked_min:
                        out.append({"side": side, "from": _s(ks[start] * row), "to": _s(ks[i - 1] * row),
                                    "rows": i - start})
                    start = i
            return out

        poc = max(rows, key=lambda k: (B(k) + S(k), -abs(k - close), -k))
        delta = sum(buy.values(), Decimal(0)) - sum(sell.values(), Decimal(0))
        recs.append({
            "timestamp_utc": iso(m), "row": _s(row),
            "levels": [[_s(k * row), _s(B(k)), _s(S(k)), cnt[k]] for k in rows],
            "poc": _s(poc * row),
            "delta": ("+" if delta > 0 else "") + _s(delta),
            "ask_imbalances": [_s(k * row) for k in asks], "bid_imbalances": [_s(k * row) for k in bids],
            "stacked": runs(asks, "ask") + runs(bids, "bid"),
            "unfinished_high": B(hi_k) > 0 and S(hi_k) > 0, "unfinished_low": B(lo_k) > 0 and S(lo_k) > 0,
        })
        for k in rows:
            svol[k] = svol.get(k, Decimal(0)) + B(k) + S(k)
        sclose = close
    return recs, profiles, events


# --- hand-built minutes ------------------------------------------------------------------------------------

def test_poc_ties_go_to_the_row_nearer_the_close_then_the_lower() -> None:
    assert poc_of([1, 2, 3], [5, 5, 1], 3) == 2  # 2 is nearer the close (row 3)
    assert poc_of([1, 2, 3], [5, 1, 5], 2) == 1  # both one row away: the lower
    assert poc_of([7], [1], 7) == 7


def test_value_area_edges() -> None:
    vols = [Fraction(v) for v in (1, 2, 10, 2, 1)]
    assert value_area(vols, 2, Decimal(70)) == (2, 4)  # 10 of 16 < 70 %; the pairs tie (3 and 3): the one above
    assert value_area(vols, 2, Decimal(90)) == (0, 4)  # 13 of 16 < 90 %: then the pair below
    assert value_area(vols, 2, Decimal(62.5)) == (2, 2)  # the POC alone holds exactly 62.5 %
    assert value_area([Fraction(v) for v in (5, 1, 1)], 0, Decimal(90)) == (0, 2)  # nothing below: above only
    assert value_area([Fraction(v) for v in (1, 1, 5)], 2, Decimal(90)) == (0, 2)  # nothing above: below only
    assert value_area([Fraction(v) for v in (3, 7)], 1, Decimal(70)) == (1, 1)  # the POC alone holds 70 %
    assert value_area([Fraction(1)], 0, Decimal(100)) == (0, 0)


def test_hand_built_minutes(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    m = T0
    trades = [
        # minute 0, row 10: 60000 bought 4 contracts (0.04 BTC), 60010 sold 1 and bought 3 (ask: 3 >= 3 x sold at
        # 60000, which is 0), 60030 bought 1 with 60020 not traded (a missing neighbour counts 0), 60040 sold 5
        (m + 1000, "60001", "4", "buy"), (m + 2000, "60012", "1", "sell"), (m + 3000, "60011", "3", "buy"),
        (m + 4000, "60035", "1", "buy"), (m + 5000, "60041", "5", "sell"), (m + 6000, "60009", "1", "sell"),
        # minute 1: one row only, bought and sold (unfinished high and low), a three-row ask stack
        (m + 61000, "60100", "2", "buy"), (m + 62000, "60100", "2", "sell"),
        (m + 63000, "60110", "6", "buy"), (m + 64000, "60120", "6", "buy"), (m + 65000, "60130", "6", "buy"),
    ]
    write_trades(vault, trades)
    cfg = write_config(tmp_path / "c.toml", ON + 'row = "10"\n')
    assert run(vault, cfg) == 0
    recs = fp(vault, "footprint_1m")
    assert len(recs) == 1  # the second minute is still open
    r = recs[0]
    assert r["levels"] == [["60000", "0.04", "0.01", 2], ["60010", "0.03", "0.01", 2], ["60030", "0.01", "0", 1],
                           ["60040", "0", "0.05", 1]]
    # 60000 and 60040 tie at 0.05: 60000 holds the close (the last trade, 60009)
    assert r["poc"] == "60000" and r["delta"] == "+0.01"
    assert r["ask_imbalances"] == ["60000", "60010", "60030"]  # 60010: 0.03 >= 3 x 0.01 sold at 60000, exactly
    assert r["bid_imbalances"] == ["60010", "60040"]  # 60000: 0.01 < 3 x 0.03; 60040: 0.05 >= 3 x 0 (60050)
    assert r["stacked"] == [] and r["unfinished_high"] is False and r["unfinished_low"] is True
    with open(inst_dir(vault, "BTC-USDT-SWAP") / "trades_2024-11-23.jsonl", "ab") as f:
        f.write(trade_line("BTC-USDT-SWAP", 5000, "60100", "1", "buy", m + 130_000))
    assert run(vault, cfg) == 0
    r = fp(vault, "footprint_1m")[1]
    assert r["stacked"] == [{"side": "ask", "from": "60100", "to": "60130", "rows": 4}]  # 60100: 0.02 >= 3 x 0
    assert r["unfinished_low"] is True and r["unfinished_high"] is False


def test_a_run_of_exactly_stacked_min(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    trades = [(T0 + 1000 + i, str(60000 + 10 * i), "2", "sell") for i in range(3)]  # three bid rows in a row
    trades += [(T0 + 2000, "60050", "1", "buy"), (T0 + 2001, "60070", "1", "sell"), (T0 + 61000, "60000", "1", "buy")]
    write_trades(vault, trades)
    assert run(vault, write_config(tmp_path / "c.toml", ON + 'row = "10"\nstacked_min = 3\n')) == 0
    (r,) = fp(vault, "footprint_1m")
    assert r["stacked"] == [{"side": "bid", "from": "60000", "to": "60020", "rows": 3}]
    assert r["bid_imbalances"] == ["60000", "60010", "60020", "60070"]


# --- against the plain reading ------------------------------------------------------------------------------

def _eth_trades() -> list[tuple]:
    out = []
    for path in sorted(ETH_PERP.glob("trades_*.jsonl")):
        for line in path.read_text().splitlines():
            d = json.loads(line)
            out.append((int(d["ts"]), int(d["tradeId"]), d["px"], d["sz"], d["side"]))
    return out


@pytest.mark.parametrize("batch", [4096, 1 << 20])
def test_real_eth_trades_against_a_plain_reading(tmp_path: Path, batch: int) -> None:
    """14,076 real trades crossing midnight: a session closes, its POC is naked, then touched."""
    vault = tmp_path / "v"
    folder = inst_dir(vault, "ETH-USDT-SWAP")
    for p in ETH_PERP.glob("trades_*.jsonl"):
        (folder / p.name).write_bytes(p.read_bytes())
    cfg = write_config(tmp_path / "c.toml", ON + f'row = "0.5"\n[run]\nbatch_bytes = {batch}\n')
    assert run(vault, cfg) == 0
    trades = _eth_trades()
    recs, profiles, events = plain_footprint(trades, Decimal("0.1"), Decimal("0.5"))
    got = fp(vault, "footprint_1m", "ETH-USDT-SWAP")
    assert got == recs[:len(got)] and len(got) == len(recs) - 1  # the last minute is still open
    assert fp(vault, "profile", "ETH-USDT-SWAP") == profiles and len(profiles) == 1
    assert fp(vault, "naked_pocs", "ETH-USDT-SWAP") == [e for e in events if e["event"] == "naked_poc"
                                                        or e["touched_utc"] < got[-1]["timestamp_utc"][:16] + ":59.999Z"]


def test_generated_days_against_a_plain_reading_with_auto_rows(tmp_path: Path) -> None:
    import math
    import random

    rnd = random.Random(9)
    px = 60000.0
    trades = []
    ts = T0 - 3 * 3_600_000  # from 21:00 the day before, over two midnights
    for i in range(12000):
        ts += rnd.randrange(1, 20_000)
        px = 60000.0 * (1 + 0.004 * math.sin(i / 900)) + rnd.gauss(0, 8)  # swings back over the old POCs
        trades.append((ts, f"{px:.1f}", str(rnd.choice((1, 2, 3, 10, 40))), rnd.choice(("buy", "sell"))))
    vault = tmp_path / "v"
    write_trades(vault, trades)
    assert run(vault, write_config(tmp_path / "c.toml", ON)) == 0
    got = fp(vault, "footprint_1m")
    row = Decimal(got[0]["row"])
    assert row == Decimal(5)  # 1 bp of ~60,000 is 6: the nearest of 5 and 10 by ratio is 5
    recs, profiles, events = plain_footprint([(t, 1000 + i, p, s, side) for i, (t, p, s, side) in enumerate(trades)],
                                             Decimal("0.01"), row)
    assert got == recs[:-1]
    assert fp(vault, "profile") == profiles and len(profiles) == 2
    last = got[-1]["timestamp_utc"]
    naked = fp(vault, "naked_pocs")
    assert naked == [e for e in events if e.get("touched_utc", "") < last[:16] + ":59.999Z"]
    assert [e["event"] for e in naked].count("poc_touched") >= 1


def test_changed_row_is_refused_until_reset(tmp_path: Path, capsys) -> None:
    vault = tmp_path / "v"
    write_trades(vault, [(T0 + 1000, "60000", "1", "buy"), (T0 + 61000, "60000", "1", "buy")])
    assert run(vault, write_config(tmp_path / "a.toml", ON + 'row = "10"\n')) == 0
    assert run(vault, write_config(tmp_path / "b.toml", ON + 'row = "5"\n')) == 1
    assert "indicators reset" in capsys.readouterr().err
    assert main(["plugins", "--config", str(write_config(tmp_path / "c.toml", ON + 'row = "-1"\n'))]) == 2
    assert "plugins.footprint.row: Value error, must be \"auto\" or a positive decimal price width" in \
        capsys.readouterr().err


def _swinging_vault(tmp_path: Path, extra: str = "") -> Path:
    import math
    import random

    rnd = random.Random(9)
    trades = []
    ts = T0 - 3 * 3_600_000
    for i in range(12000):
        ts += rnd.randrange(1, 20_000)
        px = 60000.0 * (1 + 0.004 * math.sin(i / 900)) + rnd.gauss(0, 8)
        trades.append((ts, f"{px:.1f}", str(rnd.choice((1, 2, 3, 10, 40))), rnd.choice(("buy", "sell"))))
    vault = tmp_path / "v"
    write_trades(vault, trades)
    assert run(vault, write_config(tmp_path / "c.toml", ON + 'row = "2"\n' + extra)) == 0
    return vault


def test_study_scores_the_footprint_signals(tmp_path: Path, capsys) -> None:
    vault = _swinging_vault(tmp_path)
    minutes = fp(vault, "footprint_1m")
    vol = read_jsonl(vault / "derived/volume/okx/perps/BTC-USDT-SWAP/volume_1m.jsonl")
    close = {r["timestamp_utc"]: Decimal(r["close"]) for r in vol}
    have_next = {r["timestamp_utc"] for r in vol[:-1]}  # a 1-minute horizon needs the minute after
    capsys.readouterr()
    assert main(["study", "--vault", str(vault), "--horizons", "1", "--json"] + sum(
        (["--signal", s] for s in ("stacked_ask", "stacked_bid", "unfinished_high", "unfinished_low",
                                   "naked_poc_test")), [])) == 0
    rows = {r["signal"]: r for r in json.loads(capsys.readouterr().out)}
    for name, test in (("stacked_ask", lambda r: any(s["side"] == "ask" for s in r["stacked"])),
                       ("stacked_bid", lambda r: any(s["side"] == "bid" for s in r["stacked"])),
                       ("unfinished_high", lambda r: r["unfinished_high"]),
                       ("unfinished_low", lambda r: r["unfinished_low"])):
        expected = sum(1 for r in minutes if test(r) and r["timestamp_utc"] in have_next)
        assert rows[name]["n"] == expected > 0, name
    import time

    tests = []
    for e in fp(vault, "naked_pocs"):
        if e["event"] == "poc_touched":
            m = e["touched_utc"][:16] + ":00Z"
            prev = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(
                int(time.mktime(time.strptime(m, "%Y-%m-%dT%H:%M:00Z"))) - time.timezone - 60))
            d = (close[prev] > Decimal(e["level"])) - (close[prev] < Decimal(e["level"]))
            if m in have_next and d:
                tests.append(d)
    assert rows["naked_poc_test"]["n"] == len(tests) > 0


def test_confluence_tests_naked_pocs_as_levels(tmp_path: Path, capsys) -> None:
    extra = ('[plugins.wicks]\ntimeframe = "1h"\nmin_wick_pct = "5"\n'  # wicks this long never happen here
             '[plugins.confluence]\nmin_score = 1\nlevels = ["wicks", "naked_pocs"]\nwick_tolerance_pct = "0.01"\n')
    vault = _swinging_vault(tmp_path, extra)
    signals = read_jsonl(vault / "derived/confluence/okx/perps/BTC-USDT-SWAP/signals.jsonl")
    events = fp(vault, "naked_pocs")
    vol = {r["timestamp_utc"]: r for r in read_jsonl(vault / "derived/volume/okx/perps/BTC-USDT-SWAP/volume_1m.jsonl")}
    assert signals and all(s["level_tf"] == "poc" for s in signals)
    for s in signals:
        naked = next(e for e in events if e["event"] == "naked_poc" and e["level"] == s["level"]
                     and e["session_start"] == s["level_utc"])
        assert naked["session_start"][:10] < s["timestamp_utc"][:10]  # naked from the next session on
        touch = next((e for e in events if e["event"] == "poc_touched" and e["session_start"] == s["level_utc"]), None)
        assert touch is None or touch["touched_utc"][:16] >= s["timestamp_utc"][:16]  # not touched before
        bar, level = vol[s["timestamp_utc"]], Decimal(s["level"])
        if s["level_side"] == "upper":
            assert Decimal(bar["high"]) * 10000 >= level * 9999 and s["direction"] == "short"
        else:
            assert Decimal(bar["low"]) * 10000 <= level * 10001 and s["direction"] == "long"
    # naked POCs need the footprint: without it the config is refused, not left waiting
    off = write_config(tmp_path / "off.toml", '[plugins.confluence]\nlevels = ["naked_pocs"]\n')
    assert run(vault, off) == 2
    assert "reads naked_pocs of footprint, which is not enabled" in capsys.readouterr().err


@pytest.mark.parametrize("cuts", [[0.31, 0.5, 0.77], [0.5003, 0.9]])
def test_cut_runs_with_touches_equal_one_run(tmp_path: Path, cuts: list[float]) -> None:
    """Runs cut mid-minute (the open minute and its rows' first trades kept in the state), small chunks:
    the bytes of one run, touches of naked POCs included."""
    from tests.vaults import outputs

    ref = _swinging_vault(tmp_path / "ref")
    expected = outputs(ref)
    assert b"poc_touched" in expected["footprint/okx/perps/BTC-USDT-SWAP/naked_pocs.jsonl"]
    files = {p.name: p.read_bytes() for p in inst_dir(ref, "BTC-USDT-SWAP").glob("trades_*.jsonl")}
    body = b"".join(files[n] for n in sorted(files))
    sizes = [(n, len(files[n])) for n in sorted(files)]
    vault = tmp_path / "cut"
    cfg = write_config(tmp_path / "cut.toml", ON + 'row = "2"\n[run]\nbatch_bytes = 3000\n')
    for fraction in [*cuts, 1.0]:
        left = int(len(body) * fraction)
        for name, size in sizes:
            part = files[name][:max(0, min(size, left))]
            left -= size
            path = inst_dir(vault, "BTC-USDT-SWAP") / name
            if part and (not path.exists() or path.stat().st_size < len(part)):
                path.write_bytes(part)
        assert run(vault, cfg) == 0
    got = outputs(vault)
    assert {k: v for k, v in got.items() if k.startswith("footprint/")} == \
        {k: v for k, v in expected.items() if k.startswith("footprint/")}


def test_chart_data_profiles_follow_the_session_anchor(tmp_path: Path) -> None:
    """A session anchored at 08:00 UTC: the chart's profile of it sums the rows of its own minutes."""
    from indicator_core.report.chart import build_data

    vault = _swinging_vault(tmp_path, 'session_anchor = "08:00"\n')
    data = build_data(vault, "BTC-USDT-SWAP", None, None, "1m", streams={})
    profiles = fp(vault, "profile")
    assert profiles and profiles[0]["session_start"].endswith("T08:00:00Z")
    drawn = data["footprint"]["profiles"]
    assert len(drawn) == len(profiles)
    for (t0, t1, poc, vah, val, rows), prof in zip(drawn, profiles):
        total = sum(v for _, v in rows)
        assert abs(total - float(prof["volume"])) < 1e-6 * max(1.0, total)  # the same minutes, summed
        assert float(prof["val"]) <= poc <= float(prof["vah"])
