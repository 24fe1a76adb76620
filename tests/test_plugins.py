"""Each built-in indicator driven directly, at the boundaries the spec names."""

from __future__ import annotations

import decimal
import json
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from indicator_core.bars import Bar
from indicator_core.instruments import Instrument
from indicator_core.numbers import EXACT, parse_decimal
from indicator_core.trade_batch import TradeBatch, derive_quantities, normalize
from indicator_core_plugins.candles_adapter import Candles
from indicator_core_plugins.cvd_adapter import Cvd
from indicator_core_plugins.volume import VolumeAnalyzer
from indicator_core_plugins.vwap_adapter import Vwap
from indicator_core_plugins.wicks_adapter import Wicks

BTC = Instrument("BTC-USDT-SWAP", "linear", Decimal("0.01"), "BTC")
M0 = 28_719_360  # 2024-08-09 00:00 UTC in minutes


@pytest.fixture(autouse=True)
def exact_context():
    old = decimal.getcontext()
    decimal.setcontext(EXACT.copy())
    yield
    decimal.setcontext(old)


class Sink:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, stream: str, record: dict[str, Any]) -> None:
        json.dumps(record)  # must be JSON-ready
        self.records.append((stream, record))

    def of(self, stream: str) -> list[dict[str, Any]]:
        return [r for s, r in self.records if s == stream]


def bar(minute: int, o: str, h: str, lo: str, c: str, buy: str = "0", sell: str = "0", count: int = 1,
        base_buy: str = "0", base_sell: str = "0", taint: list[str] | None = None) -> Bar:
    return Bar("BTC-USDT-SWAP", minute, Decimal(o), Decimal(h), Decimal(lo), Decimal(c), trade_count=count,
               buy_quote=Decimal(buy), sell_quote=Decimal(sell), buy_base=Decimal(base_buy),
               sell_base=Decimal(base_sell), taint=taint or [])


def batch(rows: list[tuple[int, int, str, str, str]], inst: Instrument = BTC) -> TradeBatch:
    """Trades ``(ts, id, px, sz, side)`` as a batch."""
    px = [parse_decimal(r[2]) for r in rows]
    sz = [parse_decimal(r[3]) for r in rows]
    p, ps = normalize(np.array([m for m, _ in px], np.int64), np.array([s for _, s in px]))
    s, ss = normalize(np.array([m for m, _ in sz], np.int64), np.array([s for _, s in sz]))
    base, bs, quote, qs = derive_quantities(inst, p, ps, s, ss)
    ids = np.array([r[1] for r in rows], np.int64)
    return TradeBatch(inst, np.array([r[0] for r in rows], np.int64), ids, ids,
                      np.array([r[4] == "buy" for r in rows]), p, ps, s, ss, base, bs, quote, qs)


def roundtrip(ind, cls, params):
    """A fresh instance restored from the JSON of ``ind``'s state."""
    fresh = cls(BTC, params)
    fresh.set_state(json.loads(json.dumps(ind.get_state())))
    return fresh


# --- volume -----------------------------------------------------------------------------------
def volume_records(totals: list[str], last: Bar, **params) -> dict[str, Any]:
    p = VolumeAnalyzer.Params(**params)
    v = VolumeAnalyzer(BTC, p)
    sink = Sink()
    for k, t in enumerate(totals):
        v.on_bar(bar(M0 + k, "100", "100", "100", "100", buy=t), sink)
    v = roundtrip(v, VolumeAnalyzer, p)
    v.on_bar(last, sink)
    return sink.of("volume_1m")[-1]


@pytest.mark.parametrize("total,tier", [
    ("201", "T4"), ("200", "T3"), ("100.01", "T3"), ("100", "T2"), ("50", "T2"), ("49.99", "T1"), ("0", "T1"),
])
def test_volume_tier_boundaries_are_exact(total: str, tier: str) -> None:
    rec = volume_records(["100"] * 20, bar(M0 + 20, "100", "100", "100", "100", buy=total))
    assert rec["volume_median"] == "100"
    assert rec["volume_tier"] == tier


def test_volume_median_even_count_and_ratio_rounding() -> None:
    rec = volume_records(["1", "2", "3", "10"], bar(M0 + 4, "100", "100", "100", "100", buy="7"), median_min_bars=4)
    assert rec["volume_median"] == "2.5"  # (2 + 3) / 2
    assert rec["volume_ratio"] == "2.8"
    rec = volume_records(["3"] * 3, bar(M0 + 3, "100", "100", "100", "100", buy="1"), median_min_bars=3)
    assert rec["volume_ratio"] == "0.3333"


def test_volume_median_null_before_min_bars_and_ratio_null_on_zero_median() -> None:
    rec = volume_records(["5"] * 19, bar(M0 + 19, "100", "100", "100", "100", buy="5"))
    assert rec["volume_median"] is None and rec["volume_ratio"] is None and rec["volume_tier"] is None
    rec = volume_records(["0"] * 20, bar(M0 + 20, "100", "100", "100", "100", buy="5"))
    assert rec["volume_median"] == "0" and rec["volume_ratio"] is None and rec["volume_tier"] is None


def test_volume_window_slides_and_excludes_current() -> None:
    rec = volume_records(["1000"] * 5 + ["1"] * 100, bar(M0 + 105, "100", "100", "100", "100", buy="1"))
    assert rec["volume_median"] == "1"  # the first five fell out of the 100-bar window


def test_whales_strictly_above_threshold_by_side() -> None:
    p = VolumeAnalyzer.Params(whale_threshold_usd=Decimal("100000"))
    v = VolumeAnalyzer(BTC, p)
    sink = Sink()
    t = M0 * 60000
    # 100000 / (60000 × 0.01) = 166.666… contracts: 166.67 is a whale, 166.66 is not; exactly 100000 is not.
    v.on_trades(batch([(t, 1, "60000", "166.67", "buy"), (t + 1, 2, "60000", "166.66", "sell"),
                       (t + 2, 3, "50000", "200", "sell"), (t + 3, 4, "50000", "200.01", "sell")]), sink)
    v = roundtrip(v, VolumeAnalyzer, p)
    v.on_bar(bar(M0, "60000", "60000", "50000", "50000", buy="100002", sell="300005", count=4), sink)
    (rec,) = sink.of("volume_1m")
    assert rec["whale_count"] == 2
    assert rec["whale_buy_volume"] == "100002" and rec["whale_sell_volume"] == "100005"
    assert rec["whale_volume"] == "200007"


def test_absorption_divergence_change_and_taint() -> None:
    last = bar(M0 + 20, "1000", "1001", "999", "1000.99", buy="100", sell="400", taint=["gap", "late"])
    rec = volume_records(["100"] * 20, last)
    assert rec["volume_tier"] == "T4" and rec["absorption"] is True  # |0.99| / 1000 < 0.001
    assert rec["divergence"] is True  # price up, delta -300
    assert rec["delta"] == "-300" and rec["price_change_pct"] == "+0.099"
    assert rec["tainted"] is True and rec["taint"] == ["gap", "late"]
    rec = volume_records(["100"] * 20, bar(M0 + 20, "1000", "1001", "999", "1001", buy="500"))
    assert rec["absorption"] is False  # moved exactly 0.1%
    assert rec["divergence"] is False and rec["delta"] == "+500"


def test_volume_empty_bar() -> None:
    v = VolumeAnalyzer(BTC, VolumeAnalyzer.Params())
    sink = Sink()
    v.on_bar(Bar.empty_at("BTC-USDT-SWAP", M0, Decimal("101.5")), sink)
    (rec,) = sink.of("volume_1m")
    assert rec["empty"] is True and rec["open"] == rec["close"] == "101.5"
    assert rec["total_volume"] == "0" and rec["delta"] == "0" and rec["price_change_pct"] == "0"


def test_volume_params_are_validated() -> None:
    with pytest.raises(ValidationError):
        VolumeAnalyzer.Params(median_window=0)
    with pytest.raises(ValidationError):
        VolumeAnalyzer.Params(median_window=10, median_min_bars=20)
    with pytest.raises(ValidationError):
        VolumeAnalyzer.Params(unit="usd")
    with pytest.raises(ValidationError):
        VolumeAnalyzer.Params(whale=1)


# --- cvd and vwap ----------------------------------------------------------------------------
@pytest.mark.parametrize("anchor,reset_at", [("00:00", M0), ("13:30", M0 + 810)])
def test_cvd_session_resets_at_anchor(anchor: str, reset_at: int) -> None:
    p = Cvd.Params(session_anchor=anchor)
    c = Cvd(BTC, p)
    sink = Sink()
    for m in (reset_at - 2, reset_at - 1):
        c.on_bar(bar(m, "1", "1", "1", "1", buy="10", sell="4"), sink)
    c = roundtrip(c, Cvd, p)
    c.on_bar(bar(reset_at, "1", "1", "1", "1", buy="1", sell="3"), sink)
    recs = sink.of("cvd_1m")
    assert [r["cvd"] for r in recs] == ["+6", "+12", "+10"]
    assert [r["cvd_session"] for r in recs] == ["+6", "+12", "-2"]
    assert recs[-1]["delta"] == "-2"


def test_vwap_session_and_rolling_windows() -> None:
    p = Vwap.Params(windows=[2], session_anchor="00:00")
    v = Vwap(BTC, p)
    sink = Sink()
    v.on_bar(bar(M0 - 1, "1", "1", "1", "1", buy="300", base_buy="3"), sink)  # 23:59, previous session
    v.on_bar(bar(M0, "1", "1", "1", "1", buy="100", base_buy="1"), sink)  # 00:00: the session restarts
    v = roundtrip(v, Vwap, p)
    v.on_bar(Bar.empty_at("BTC-USDT-SWAP", M0 + 1, Decimal(1)), sink)
    v.on_bar(bar(M0 + 2, "1", "1", "1", "1", sell="70", base_sell="0.3"), sink)
    recs = sink.of("vwap_1m")
    assert [r["vwap_session"] for r in recs] == ["100", "100", "100", "130.76923077"]
    assert [r["session_start"][11:16] for r in recs] == ["00:00", "00:00", "00:00", "00:00"]
    assert recs[0]["session_start"][:10] == "2024-08-08" and recs[1]["session_start"][:10] == "2024-08-09"
    assert [r["vwap_2m"] for r in recs] == ["100", "100", "100", "233.33333333"]  # (300+100)/(3+1), …, 70/0.3
    v2 = Vwap(BTC, p)
    sink2 = Sink()
    v2.on_bar(Bar.empty_at("BTC-USDT-SWAP", M0, Decimal(1)), sink2)
    assert sink2.of("vwap_1m")[0]["vwap_session"] is None


# --- candles ----------------------------------------------------------------------------------
def test_candles_align_to_utc_and_close_on_advance() -> None:
    p = Candles.Params(timeframes=["1m", "5m", "1h", "1d"])
    c = Candles(BTC, p)
    sink = Sink()
    start = M0 + 57  # 00:57
    c.on_bar(bar(start, "10", "12", "9", "11", buy="5", base_buy="0.5", count=2), sink)
    c.on_bar(Bar.empty_at("BTC-USDT-SWAP", start + 1, Decimal(11)), sink)
    c = roundtrip(c, Candles, p)
    c.on_bar(bar(start + 2, "11", "15", "11", "14", sell="7", base_sell="0.25", count=3), sink)
    c.on_advance(start + 3, sink)  # 01:00: the 00:55 5m and the 00:00 1h candles close
    assert [r["timestamp_utc"][11:16] for r in sink.of("candles_1m")] == ["00:57", "00:58", "00:59"]
    assert sink.of("candles_1m")[1] == {"timestamp_utc": "2024-08-09T00:58:00Z", "open": "11", "high": "11",
                                        "low": "11", "close": "11", "volume": "0", "quote_volume": "0",
                                        "trade_count": 0}
    (five,) = sink.of("candles_5m")
    assert five == {"timestamp_utc": "2024-08-09T00:55:00Z", "open": "10", "high": "15", "low": "9", "close": "14",
                    "volume": "0.75", "quote_volume": "12", "trade_count": 5}
    (hour,) = sink.of("candles_1h")
    assert hour["timestamp_utc"] == "2024-08-09T00:00:00Z" and hour["trade_count"] == 5
    assert sink.of("candles_1d") == []  # the day is still open


# --- wicks ------------------------------------------------------------------------------------
def test_wick_levels_threshold_and_first_touch() -> None:
    p = Wicks.Params(timeframe="1m", min_wick_pct=Decimal("0.1"))
    w = Wicks(BTC, p)
    sink = Sink()
    # close 1000: upper wick 1001.5-1000 = 0.15% qualifies; lower wick 999-998 = 0.1% exactly qualifies
    w.on_bar(bar(M0, "999", "1001.5", "998", "1000"), sink)
    w.on_advance(M0 + 1, sink)
    events = sink.of("wicks_1m")
    assert events == [
        {"event": "wick", "side": "upper", "level": "1001.5", "timestamp_utc": "2024-08-09T00:00:00Z", "wick_pct": "0.15"},
        {"event": "wick", "side": "lower", "level": "998", "timestamp_utc": "2024-08-09T00:00:00Z", "wick_pct": "0.1"},
    ]
    w = roundtrip(w, Wicks, p)
    t = (M0 + 1) * 60000
    w.on_trades(batch([(t, 10, "1001.4", "1", "buy"), (t + 5, 11, "1001.5", "1", "buy"), (t + 9, 12, "1002", "1", "buy")]), sink)
    touch = sink.of("wicks_1m")[-1]
    assert touch == {"event": "touch", "side": "upper", "level": "1001.5", "timestamp_utc": "2024-08-09T00:00:00Z",
                     "wick_pct": "0.15", "touched_utc": "2024-08-09T00:01:00.005Z"}
    w.on_trades(batch([(t + 20, 13, "1003", "1", "buy")]), sink)
    assert len(sink.of("wicks_1m")) == 3  # a level is touched once
    w.on_trades(batch([(t + 30, 14, "998.01", "1", "sell")]), sink)
    assert len(sink.of("wicks_1m")) == 3
    w.on_trades(batch([(t + 40, 15, "997.99", "1", "sell")]), sink)
    assert sink.of("wicks_1m")[-1]["side"] == "lower"
    # a wick just under the threshold makes no level
    w2 = Wicks(BTC, p)
    sink2 = Sink()
    w2.on_bar(bar(M0, "1000", "1000.99", "1000", "1000"), sink2)
    w2.on_advance(M0 + 1, sink2)
    assert sink2.records == []


def test_wicks_judge_trades_only_once_the_bars_before_them_are_in() -> None:
    """A chunk's trades come before the bars of their minutes: they wait until those bars (and the candles
    they close) are in, and a state that has trades waiting (none of its bars closed yet) keeps them."""
    p = Wicks.Params(timeframe="1m", min_wick_pct=Decimal("0.1"))
    t = (M0 + 1) * 60000
    touching = batch([(t + 5, 11, "1001.5", "1", "buy")])
    # the candle of M0 makes an upper level at 1001.5; the trade of M0 + 1 reaches it
    at_once, sink = Wicks(BTC, p), Sink()
    at_once.on_bar(bar(M0, "999", "1001.5", "998", "1000"), sink)
    at_once.on_advance(M0 + 1, sink)
    at_once.on_trades(touching, sink)
    expected = sink.of("wicks_1m")
    assert expected[-1]["event"] == "touch" and expected[-1]["touched_utc"] == "2024-08-09T00:01:00.005Z"
    # the trade first, while the bar of M0 is still on its way: nothing yet, then the touch once it comes
    early, sink = Wicks(BTC, p), Sink()
    early.on_trades(touching, sink)
    assert sink.records == [] and early.get_state()["waiting"]
    early = roundtrip(early, Wicks, p)  # a commit in between: the waiting trade is in the state
    early.on_bar(bar(M0, "999", "1001.5", "998", "1000"), sink)
    assert sink.records == []  # the candle of M0 is not closed until the stream passes M0
    early.on_advance(M0 + 1, sink)
    assert sink.of("wicks_1m") == expected
    assert "waiting" not in early.get_state()
    # a state written before trades were judged this way (no "known"): its trades wait for the next bars
    old = at_once.get_state()
    del old["known"]
    restored = Wicks(BTC, p)
    restored.set_state(json.loads(json.dumps(old)))
    sink = Sink()
    restored.on_trades(batch([(t + 20, 12, "997", "1", "sell")]), sink)
    assert sink.records == []
    restored.on_advance(M0 + 2, sink)
    assert [e["event"] for e in sink.of("wicks_1m")] == ["touch"] and sink.of("wicks_1m")[0]["side"] == "lower"
