"""Record consumers (SPEC section 12) and the confluence detector, on hand-built producer files.

The producers' outputs and state files are written by hand (the volume analyzer's
``volume_1m``, the wick events of ``wicks_1h`` and SPEC section 11 ``buckets_1m``
records), the producers themselves are disabled, and ``indicators run`` runs
confluence over what they "committed".
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from indicator_core.cli import main
from indicator_core.timeutil import iso_minute, iso_ms, minute_of_iso
from tests import oracle
from tests.vaults import inst_dir, read_jsonl, write_config

INST = "ETH-USDT-SWAP"
M = minute_of_iso("2024-08-08T10:00:00Z")  # the minute under test; the 09:00 candle closed at its open
CANDLE = iso_minute(M - 60)
PRODUCERS_OFF = "".join(f"[plugins.{n}]\nenabled = false\n" for n in ("volume", "wicks", "cvd", "vwap", "candles"))


@pytest.fixture(autouse=True)
def _builtins_only(monkeypatch) -> None:
    monkeypatch.setenv("INDICATOR_CORE_DISABLE_ENTRYPOINTS", "1")


def vol(minute: int, high: str, low: str, close: str | None = None, tier: str | None = "T4",
        absorption: bool = True, empty: bool = False) -> dict:
    return {"timestamp_utc": iso_minute(minute), "inst_id": INST, "open": low, "high": high, "low": low,
            "close": close or low, "volume_tier": tier, "absorption": absorption, "empty": empty}


def wick(side: str, level: str, candle: str = CANDLE) -> dict:
    return {"event": "wick", "side": side, "level": level, "timestamp_utc": candle, "wick_pct": "0.2"}


def touch(side: str, level: str, ms: int, candle: str = CANDLE) -> dict:
    return {**wick(side, level, candle), "event": "touch", "touched_utc": iso_ms(ms)}


def book(minute: int, *, asks=(), bids=(), imbalance: str | None = "0", step: str = "1", valid: bool = True) -> dict:
    rec = {"timestamp_utc": iso_minute(minute), "valid": valid, "step": step if valid else None,
           "bids": [list(b) for b in bids], "asks": [list(a) for a in asks],
           "imbalance": imbalance if valid else None}
    return rec


def produce(vault: Path, name: str, stream: str, records: list[dict], last_bar: int | None) -> None:
    """A producer's committed output and state, as the engine writes them."""
    out = vault / "derived" / name / "okx" / "perps" / INST / f"{stream}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records)
    out.write_bytes(data)
    state = vault / "state" / name / "okx" / "perps" / f"{INST}.state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_bytes(orjson.dumps({"format": 1, "indicator": name, "outputs": {stream: len(data)}, "last_bar": last_bar}))


def make_vault(tmp: Path, volume: list[dict], wicks: list[dict], buckets: list[dict] | None = None,
               last_bar: int | None = None) -> Path:
    vault = tmp / "v"
    (inst_dir(vault, INST) / "trades_2024-08-08.jsonl").write_bytes(b"")
    last = last_bar if last_bar is not None else max(minute_of_iso(v["timestamp_utc"]) for v in volume)
    produce(vault, "volume", "volume_1m", volume, last)
    produce(vault, "wicks", "wicks_1h", wicks, last)
    if buckets is not None:
        produce(vault, "buckets", "buckets_1m", buckets, None)
    return vault


def signals(tmp: Path, vault: Path, extra: str = "") -> list[dict]:
    cfg = write_config(tmp / "c.toml", PRODUCERS_OFF + extra)
    assert main(["run", "--vault", str(vault), "--config", str(cfg), "--quiet"]) == 0
    path = vault / "derived" / "confluence" / "okx" / "perps" / INST / "signals.jsonl"
    return read_jsonl(path) if path.exists() else []


WALL = ("2000", "2500000")


@pytest.mark.parametrize("bar,bk,layers,conviction", [
    # all five: T4, absorbed, a 2.5M ask wall on the level, the book leaning short
    (vol(M, "1999.5", "1990"), book(M, asks=[WALL], imbalance="-0.8"),
     {"wick": True, "volume": True, "absorption": True, "wall": True, "imbalance": True}, "max"),
    # four: the book leans the other way
    (vol(M, "1999.5", "1990"), book(M, asks=[WALL], imbalance="0.8"),
     {"wick": True, "volume": True, "absorption": True, "wall": True, "imbalance": False}, "high"),
    # exactly at the threshold counts (>= 0.7), aligned: negated for an upper level
    (vol(M, "1999.5", "1990", tier="T3", absorption=False), book(M, asks=[WALL], imbalance="-0.7"),
     {"wick": True, "volume": False, "absorption": False, "wall": True, "imbalance": True}, "normal"),
    # no book record for the minute: wall and imbalance null
    (vol(M, "1999.5", "1990"), None,
     {"wick": True, "volume": True, "absorption": True, "wall": None, "imbalance": None}, "normal"),
    # an invalid book: null too
    (vol(M, "1999.5", "1990"), book(M, valid=False),
     {"wick": True, "volume": True, "absorption": True, "wall": None, "imbalance": None}, "normal"),
    # both depths 0: imbalance null; the wall below wall_min: false
    (vol(M, "2001", "1990"), book(M, asks=[("2000", "1999999")], imbalance=None),
     {"wick": True, "volume": True, "absorption": True, "wall": False, "imbalance": None}, "normal"),
    # tier null: volume and absorption null
    (vol(M, "2001", "1990", tier=None, absorption=False), book(M, asks=[WALL], imbalance="-0.9"),
     {"wick": True, "volume": None, "absorption": None, "wall": True, "imbalance": True}, "normal"),
    # a bid wall does not defend a resistance
    (vol(M, "2001", "1990"), book(M, bids=[WALL], imbalance="-0.9"),
     {"wick": True, "volume": True, "absorption": True, "wall": False, "imbalance": True}, "high"),
])
def test_layers_and_conviction_of_an_upper_level(tmp_path: Path, bar, bk, layers, conviction) -> None:
    vault = make_vault(tmp_path, [bar], [wick("upper", "2000")], [bk] if bk else [book(M - 5)])
    got = signals(tmp_path, vault, "[plugins.confluence]\nmin_score = 1\n")
    assert len(got) == 1
    s = got[0]
    assert s["layers"] == layers and s["conviction"] == conviction
    assert s["score"] == sum(v is True for v in layers.values()) and s["of"] == sum(v is not None for v in layers.values())
    assert (s["direction"], s["level"], s["level_side"], s["level_tf"], s["level_utc"]) == ("short", "2000", "upper", "1h", CANDLE)
    assert s["timestamp_utc"] == iso_minute(M) and s["close"] == bar["close"] and s["inst_id"] == INST
    assert s["volume_tier"] == bar["volume_tier"]
    assert s["wall"] == ({"price": "2000", "notional": "2500000"} if layers["wall"] else None)
    assert s["imbalance"] == (bk["imbalance"] if layers["imbalance"] is not None else None)
    assert list(s) == ["timestamp_utc", "inst_id", "direction", "level", "level_side", "level_tf", "level_utc", "close",
                       "score", "of", "layers", "volume_tier", "wall", "imbalance", "conviction"]


def test_min_score_default_three_drops_weaker_signals(tmp_path: Path) -> None:
    bars = [vol(M, "2001", "1990", tier="T2", absorption=False), vol(M + 1, "2001", "1990", tier="T4", absorption=False),
            vol(M + 2, "2001", "1990", tier="T4", absorption=True)]
    vault = make_vault(tmp_path, bars, [wick("upper", "2000")])
    got = signals(tmp_path, vault)
    assert [(s["timestamp_utc"], s["score"], s["of"]) for s in got] == [(iso_minute(M + 2), 3, 3)]


@pytest.mark.parametrize("tolerance,wall", [
    # widened by 0.02 % of 2000.3 = 0.40006: bid 1999 ([1999, 2000) -> [1998.59994, 2000.40006)) and bid 2000 both
    # hold the level; the larger notional wins
    ("0.02", {"price": "1999", "notional": "3000000"}),
    # widened by 0.001 % = 0.020003 only: 1999's range ends at 2000.020003, below the level; 2000's holds it
    ("0.001", {"price": "2000", "notional": "2100000"}),
    # not widened at all: [2000, 2001) holds 2000.3
    ("0", {"price": "2000", "notional": "2100000"}),
])
def test_lower_level_bid_wall_range_widened(tmp_path: Path, tolerance: str, wall: dict) -> None:
    bk = book(M, bids=[("2000", "2100000"), ("1999", "3000000")], imbalance="0.75")
    vault = make_vault(tmp_path, [vol(M, "2010", "2000.5", tier="T1")], [wick("lower", "2000.3")], [bk])
    (s,) = signals(tmp_path, vault, f"[plugins.confluence]\nmin_score = 1\nwall_tolerance_pct = {tolerance}\n")
    assert (s["direction"], s["layers"]["wall"], s["layers"]["imbalance"], s["imbalance"]) == ("long", True, True, "0.75")
    assert s["wall"] == wall


def test_ask_bucket_range_is_open_below(tmp_path: Path) -> None:
    # ask bucket 2001 covers (2000, 2001]: the level 2000 is not in it without widening
    bk = book(M, asks=[("2001", "5000000")], imbalance="0")
    vault = make_vault(tmp_path, [vol(M, "2000", "1990")], [wick("upper", "2000")], [bk])
    (s,) = signals(tmp_path, vault, "[plugins.confluence]\nmin_score = 1\nwall_tolerance_pct = 0\n")
    assert s["layers"]["wall"] is False and s["wall"] is None


def test_wall_with_the_largest_notional_among_matches(tmp_path: Path) -> None:
    bk = book(M, asks=[("2000", "2200000"), ("2001", "4000000"), ("2005", "9000000")], imbalance="0")
    vault = make_vault(tmp_path, [vol(M, "2000", "1990")], [wick("upper", "2000")], [bk])
    (s,) = signals(tmp_path, vault, "[plugins.confluence]\nmin_score = 1\n")
    # ask 2001 covers (2000, 2001]; widened by 0.4: (1999.6, 2001.4] holds 2000; 2005 does not
    assert s["wall"] == {"price": "2001", "notional": "4000000"}


@pytest.mark.parametrize("high,low,side,level,tested", [
    ("1999", "1990", "upper", "2000", True),        # 2000 × (1 − 0.0005) = 1999 exactly
    ("1998.99", "1990", "upper", "2000", False),
    ("2010", "2001", "lower", "2000", True),        # 2000 × 1.0005 = 2001 exactly
    ("2010", "2001.01", "lower", "2000", False),
])
def test_tolerance_boundaries_are_exact(tmp_path: Path, high, low, side, level, tested) -> None:
    vault = make_vault(tmp_path, [vol(M, high, low)], [wick(side, level)])
    assert bool(signals(tmp_path, vault, "[plugins.confluence]\nmin_score = 1\n")) is tested


def test_empty_minutes_and_levels_before_their_candle_closed_test_nothing(tmp_path: Path) -> None:
    bars = [vol(M - 1, "2050", "1950"),  # 09:59: the 09:00 candle is still open
            vol(M, "2050", "1950", empty=True),
            vol(M + 1, "2050", "1950")]
    vault = make_vault(tmp_path, bars, [wick("upper", "2000")])
    got = signals(tmp_path, vault, "[plugins.confluence]\nmin_score = 1\n")
    assert [s["timestamp_utc"] for s in got] == [iso_minute(M + 1)]


def test_a_level_tested_in_the_minute_it_is_touched_and_not_after(tmp_path: Path) -> None:
    t = (M + 2) * 60000 + 30_500
    bars = [vol(M + k, "2001", "1990") for k in range(5)]
    vault = make_vault(tmp_path, bars, [wick("upper", "2000"), touch("upper", "2000", t)])
    got = signals(tmp_path, vault, "[plugins.confluence]\nmin_score = 1\n")
    assert [s["timestamp_utc"] for s in got] == [iso_minute(M), iso_minute(M + 1), iso_minute(M + 2)]


def test_two_levels_in_one_minute_ordered_by_level_with_unique_ids(tmp_path: Path) -> None:
    from plugins.confluence import signal_id

    wicks = [wick("upper", "1999.9", iso_minute(M - 120)), wick("upper", "2000"), wick("lower", "1990.5")]
    vault = make_vault(tmp_path, [vol(M, "2000", "1990")], wicks)
    got = signals(tmp_path, vault, "[plugins.confluence]\nmin_score = 1\n")
    assert [(s["level"], s["direction"]) for s in got] == [("1990.5", "long"), ("1999.9", "short"), ("2000", "short")]
    ids = [signal_id(s) for s in got]
    assert len(set(ids)) == 3 and ids[0] == f"{INST}|{iso_minute(M)}|1990.5"


def test_a_lagging_producer_holds_the_consumer_back_then_it_catches_up(tmp_path: Path, capsys) -> None:
    bars = [vol(M + k, "2001", "1990") for k in range(6)]
    events = [wick("upper", "2000"), touch("upper", "2000", (M + 4) * 60000 + 1)]
    vault = make_vault(tmp_path, bars, [wick("upper", "2000")])
    produce(vault, "wicks", "wicks_1h", [wick("upper", "2000")], M + 2)  # the wicks indicator committed up to 10:02
    got = signals(tmp_path, vault, "[plugins.confluence]\nmin_score = 1\n")
    assert [s["timestamp_utc"] for s in got] == [iso_minute(M + k) for k in range(3)]
    cfg = str(tmp_path / "c.toml")
    capsys.readouterr()
    assert main(["status", "--vault", str(vault), "--config", cfg]) == 0
    assert (f"confluence waits for wicks (last committed {iso_minute(M + 2)}) — volume at {iso_minute(M + 5)}"
            in capsys.readouterr().out)
    assert main(["status", "--vault", str(vault), "--config", cfg, "--json"]) == 0
    rows = {r["indicator"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["confluence"]["last_bar_utc"] == iso_minute(M + 2) and "waits for wicks" in rows["confluence"]["waiting"]
    # the wicks indicator commits on: its touch at 10:04 ends the level after that minute
    produce(vault, "wicks", "wicks_1h", events, M + 5)
    got = signals(tmp_path, vault, "[plugins.confluence]\nmin_score = 1\n")
    assert [s["timestamp_utc"] for s in got] == [iso_minute(M + k) for k in range(5)]
    # the same as one run over the finished producers
    fresh = make_vault(tmp_path / "one", bars, events)
    assert signals(tmp_path / "one", fresh, "[plugins.confluence]\nmin_score = 1\n") == got
    assert main(["status", "--vault", str(vault), "--config", cfg]) == 0
    assert "waits" not in capsys.readouterr().out


def test_books_that_start_later_give_null_layers_before_their_first_record(tmp_path: Path) -> None:
    bars = [vol(M + k, "2001", "1990") for k in range(4)]
    books = [book(M + 2, asks=[WALL], imbalance="-0.8"), book(M + 3, asks=[WALL], imbalance="-0.8")]
    vault = make_vault(tmp_path, bars, [wick("upper", "2000")], books)
    got = signals(tmp_path, vault, "[plugins.confluence]\nmin_score = 1\n")
    assert [(s["of"], s["conviction"]) for s in got] == [(3, "normal"), (3, "normal"), (5, "max"), (5, "max")]


def test_only_committed_bytes_are_read(tmp_path: Path) -> None:
    vault = make_vault(tmp_path, [vol(M, "2001", "1990")], [wick("upper", "2000")])
    out = vault / "derived/volume/okx/perps" / INST / "volume_1m.jsonl"
    with open(out, "ab") as f:  # a record the volume analyzer wrote but did not commit
        f.write(orjson.dumps(vol(M + 1, "2001", "1990"), option=orjson.OPT_APPEND_NEWLINE))
    assert len(signals(tmp_path, vault, "[plugins.confluence]\nmin_score = 1\n")) == 1


def test_reset_of_a_producer_resets_its_consumers_and_says_so(tmp_path: Path, capsys) -> None:
    vault = make_vault(tmp_path, [vol(M, "2001", "1990")], [wick("upper", "2000")])
    assert signals(tmp_path, vault, "[plugins.confluence]\nmin_score = 1\n")
    capsys.readouterr()
    assert main(["reset", "--vault", str(vault), "--indicator", "wicks"]) == 0
    assert "also resetting confluence: it reads the records of wicks" in capsys.readouterr().out
    assert not (vault / "derived/confluence").exists() or not any((vault / "derived/confluence").rglob("*.jsonl"))
    assert not any((vault / "state/confluence").rglob("*.json"))


def test_a_producer_rebuilt_underneath_is_an_error_naming_the_reset(tmp_path: Path, capsys) -> None:
    vault = make_vault(tmp_path, [vol(M, "2001", "1990"), vol(M + 1, "2001", "1990")], [wick("upper", "2000")])
    assert signals(tmp_path, vault, "[plugins.confluence]\nmin_score = 1\n")
    produce(vault, "volume", "volume_1m", [vol(M, "2001", "1990"), vol(M + 1, "2002", "1990")], M + 1)
    capsys.readouterr()
    cfg = write_config(tmp_path / "c.toml", PRODUCERS_OFF + "[plugins.confluence]\nmin_score = 1\n")
    assert main(["run", "--vault", str(vault), "--config", str(cfg), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "was rebuilt" in err and "indicators reset" in err and "--indicator confluence" in err


def test_timeframe_that_disagrees_with_wicks_is_a_config_error(tmp_path: Path, capsys) -> None:
    vault = tmp_path / "v"
    (inst_dir(vault, INST) / "trades_2024-08-08.jsonl").write_bytes(b"")
    cfg = write_config(tmp_path / "c.toml", '[plugins.wicks]\ntimeframe = "4h"\n[plugins.confluence]\ntimeframe = "1h"\n')
    assert main(["run", "--vault", str(vault), "--config", str(cfg), "--quiet"]) == 2
    assert "plugins.confluence: reads wicks_1h of wicks, but wicks as configured writes wicks_4h" in capsys.readouterr().err


@pytest.mark.parametrize("read_bytes", [1 << 20, 700, 100])  # producers' files read in one piece or many
def test_real_eth_trades_end_to_end_against_an_oracle(tmp_path: Path, monkeypatch, read_bytes: int) -> None:
    from indicator_core.sources import committed as records
    from tests.vaults import ETH_PERP

    monkeypatch.setattr(records, "READ_BYTES", read_bytes)
    seen: list[int] = []
    fill = records.InputReader._fill

    def spy(self) -> None:
        fill(self)
        seen.append(len(self.pending))

    monkeypatch.setattr(records.InputReader, "_fill", spy)

    vault = tmp_path / "v"
    folder = inst_dir(vault, INST)
    for f in ETH_PERP.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    cfg = write_config(tmp_path / "c.toml", """
[plugins.volume]
median_window = 3
median_min_bars = 1
[plugins.wicks]
timeframe = "1m"
min_wick_pct = "0.001"
[plugins.confluence]
tiers = ["T2", "T3", "T4"]
min_score = 2
wick_tolerance_pct = 0.02
""")
    assert main(["run", "--vault", str(vault), "--config", str(cfg), "--quiet"]) == 0
    d = vault / "derived"
    volume = read_jsonl(d / "volume/okx/perps" / INST / "volume_1m.jsonl")
    wicks = read_jsonl(d / "wicks/okx/perps" / INST / "wicks_1m.jsonl")
    got = read_jsonl(d / "confluence/okx/perps" / INST / "signals.jsonl")
    expected = oracle.confluence(volume, wicks, "0.02", {"T2", "T3", "T4"}, 2, "1m")
    assert got == expected
    assert len(got) >= 2 and {s["direction"] for s in got} == {"long", "short"}
    if read_bytes < 1000:  # a few records at a time, never the whole file ahead
        assert max(seen) <= 1 + read_bytes // 100


def test_follow_mode_signals_follow_each_commit(tmp_path: Path) -> None:
    """A follower's record phase runs after each commit, on what the producers committed."""
    import decimal

    from indicator_core.config import load_config
    from indicator_core.runtime.follow import Follower
    from indicator_core.runtime.host import Host
    from indicator_core.numbers import EXACT
    from tests.vaults import ETH_PERP

    text = "[plugins.volume]\nmedian_window = 3\nmedian_min_bars = 1\n[plugins.wicks]\ntimeframe = \"1m\"\n" \
           "min_wick_pct = \"0.001\"\n[plugins.confluence]\ntiers = [\"T2\", \"T3\", \"T4\"]\nmin_score = 2\n"
    cfg_path = write_config(tmp_path / "c.toml", text)
    whole = tmp_path / "whole"
    for f in ETH_PERP.iterdir():
        (inst_dir(whole, INST) / f.name).write_bytes(f.read_bytes())
    assert main(["run", "--vault", str(whole), "--config", str(cfg_path), "--quiet"]) == 0
    expected = (whole / "derived/confluence/okx/perps" / INST / "signals.jsonl").read_bytes()

    vault = tmp_path / "followed"
    folder = inst_dir(vault, INST)
    day1 = (ETH_PERP / "trades_2024-08-08.jsonl").read_bytes()
    half = day1[: day1.index(b"\n", len(day1) // 2) + 1]
    (folder / "trades_2024-08-08.jsonl").write_bytes(half)
    signals_file = vault / "derived/confluence/okx/perps" / INST / "signals.jsonl"
    follower = Follower(Host.load(load_config(cfg_path)), vault)
    from indicator_core.runtime.instrument_pass import wall_clock_ms as never  # with the grace below, no bar closes by the clock
    with decimal.localcontext(EXACT):
        follower.step(never, 10 * 365 * 86400 * 1000, commit=False)
        assert not signals_file.exists()  # the producers wrote records but committed nothing yet
        follower.step(never, 10 * 365 * 86400 * 1000, commit=True)
        first = signals_file.read_bytes()
        assert first and expected.startswith(first)
        (folder / "trades_2024-08-08.jsonl").write_bytes(day1)
        (folder / "trades_2024-08-09.jsonl").write_bytes((ETH_PERP / "trades_2024-08-09.jsonl").read_bytes())
        follower.step(never, 10 * 365 * 86400 * 1000, commit=True)
        follower.commit()
    assert signals_file.read_bytes() == expected


def test_readme_record_consumer_example_runs(tmp_path: Path, monkeypatch) -> None:
    from indicator_core import plugins
    from tests.vaults import ETH_PERP, REPO

    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("# whale_cvd/__init__.py")
    pkg = tmp_path / "pkgs" / "whale_cvd"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(text[start:text.index("```", start)])
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    monkeypatch.setitem(plugins.BUILTIN_PLUGINS, "whale_cvd", "whale_cvd")
    vault = tmp_path / "v"
    for f in ETH_PERP.iterdir():
        (inst_dir(vault, INST) / f.name).write_bytes(f.read_bytes())
    cfg = write_config(tmp_path / "c.toml", '[plugins.volume]\nwhale_threshold_usd = "20000"\n')
    assert main(["run", "--vault", str(vault), "--config", str(cfg), "--quiet"]) == 0
    d = vault / "derived"
    got = read_jsonl(d / "whale_cvd/okx/perps" / INST / "whale_cvd_1m.jsonl")
    volume = read_jsonl(d / "volume/okx/perps" / INST / "volume_1m.jsonl")
    cvd = {r["timestamp_utc"]: r["cvd"] for r in read_jsonl(d / "cvd/okx/perps" / INST / "cvd_1m.jsonl")}
    assert got == [{"timestamp_utc": v["timestamp_utc"], "whales": v["whale_count"], "cvd": cvd[v["timestamp_utc"]]}
                   for v in volume if v["whale_count"] > 0]
    assert got


def test_producer_disabled_in_one_run_and_enabled_in_the_next(tmp_path: Path, capsys) -> None:
    from tests.vaults import ETH_PERP

    base = ("[plugins.volume]\nmedian_window = 3\nmedian_min_bars = 1\n[plugins.wicks]\ntimeframe = \"1m\"\n"
            "min_wick_pct = \"0.001\"\n{off}[plugins.confluence]\ntiers = [\"T2\", \"T3\", \"T4\"]\nmin_score = 2\n")
    vaults = {}
    for name in ("one", "two"):
        vaults[name] = tmp_path / name
        for f in ETH_PERP.iterdir():
            (inst_dir(vaults[name], INST) / f.name).write_bytes(f.read_bytes())
    on = write_config(tmp_path / "on.toml", base.format(off=""))
    off = write_config(tmp_path / "off.toml", base.format(off="enabled = false\n"))
    assert main(["run", "--vault", str(vaults["one"]), "--config", str(on), "--quiet"]) == 0
    assert main(["run", "--vault", str(vaults["two"]), "--config", str(off), "--quiet"]) == 0
    signals_file = vaults["two"] / "derived/confluence/okx/perps" / INST / "signals.jsonl"
    assert not signals_file.exists()
    capsys.readouterr()
    assert main(["status", "--vault", str(vaults["two"]), "--config", str(off)]) == 0
    assert "confluence waits for wicks (disabled) — volume at 2024-08-08T23:59:00Z" in capsys.readouterr().out
    assert main(["run", "--vault", str(vaults["two"]), "--config", str(on), "--quiet"]) == 0
    expected = (vaults["one"] / "derived/confluence/okx/perps" / INST / "signals.jsonl").read_bytes()
    assert expected and signals_file.read_bytes() == expected


@pytest.mark.parametrize("enabled,books,started,counts", [
    (True, True, False, True),     # book files exist: wait for buckets even before it has run
    (True, False, False, False),   # no book files and no buckets state: never held back
    (False, True, False, False),   # buckets disabled: never held back
    (True, False, True, True),     # buckets has started for the instrument
])
def test_when_the_optional_buckets_input_holds_confluence_back(tmp_path: Path, enabled, books, started, counts) -> None:
    from types import SimpleNamespace

    from indicator_core.config import Config
    from indicator_core.runtime.records import RecordConsumer
    from indicator_core.storage import InstrumentKey
    from plugins.confluence import Confluence, ConfluenceParams

    vault = tmp_path / "v"
    key = InstrumentKey("okx", "perps", INST)
    if books:
        folder = vault / "raw" / "books" / "okx" / "perps" / INST
        folder.mkdir(parents=True)
        (folder / "books_2024-08-08.jsonl").write_bytes(b"{}\n")
    if started:
        produce(vault, "buckets", "buckets_1m", [], None)
    settings = {"buckets": SimpleNamespace(enabled=enabled)}
    rc = RecordConsumer(SimpleNamespace(stream_state=None, key=key, name="confluence"),
                        Confluence.inputs(ConfluenceParams()), settings, vault, Config())
    (reader,) = [r for r in rc.readers if r.inp.name == "buckets"]
    reader.refresh("confluence")
    assert rc.counts(reader) is counts
    assert all(rc.counts(r) for r in rc.readers if r.inp.required)
