"""What `indicators chart` puts in its page (SPEC 14), checked on hand-built committed outputs."""

from __future__ import annotations

import json
import re

from indicator_core.cli import main
from indicator_core.report.chart import build_data
from indicator_core.timeutil import iso_minute

from .study_vaults import T0, bar, book_minutes, write_output, write_volume

INST = "BTC-USDT-SWAP"


def page_data(path) -> dict:
    text = path.read_text(encoding="utf-8")
    m = re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


def test_aggregation_markers_levels_and_book(tmp_path):
    start = T0 - T0 % 5  # a 5-minute period
    base = start - T0
    bars = [
        bar(base + 0, 101, open_=100, high=103, low=99, delta="+5", tier="T4", absorption=True),
        bar(base + 1, 102, open_=101, high=104, low=100, delta="-2", tier="T1", divergence=True, pcp="+0.99"),
        bar(base + 2, 102, empty=True, tier="T1", delta="0"),
        bar(base + 3, 98, open_=102, high=102, low=97, delta="-1", tier="T2"),
        bar(base + 4, 99, open_=98, high=99, low=98, delta="+1", tier="T1"),
        bar(base + 5, 99, empty=True, tier="T1"),  # a period of only an empty minute: flat at the carried close
    ]
    write_volume(tmp_path, INST, bars, uncommitted=[bar(base + 6, 500)])
    write_output(tmp_path, "cvd", INST, "cvd_1m", [
        {"timestamp_utc": iso_minute(start + i), "cvd": str(10 * i)} for i in range(6)])
    write_output(tmp_path, "vwap", INST, "vwap_1m", [
        {"timestamp_utc": iso_minute(start + i), "vwap_session": str(100 + i), "vwap_60m": "100",
         "session_start": "2024-01-01T00:00:00Z"} for i in range(6)])
    write_output(tmp_path, "wicks", INST, "wicks_1h", [
        {"event": "wick", "side": "upper", "level": "105", "timestamp_utc": iso_minute(start - 120), "wick_pct": "1"},
        {"event": "wick", "side": "lower", "level": "90", "timestamp_utc": iso_minute(start - 120), "wick_pct": "1"},
        {"event": "touch", "side": "upper", "level": "105", "timestamp_utc": iso_minute(start - 120),
         "wick_pct": "1", "touched_utc": iso_minute(start + 3)[:-1] + ".250Z"},
        {"event": "wick", "side": "upper", "level": "200", "timestamp_utc": iso_minute(start - 600), "wick_pct": "1"},
        {"event": "touch", "side": "upper", "level": "200", "timestamp_utc": iso_minute(start - 600),
         "wick_pct": "1", "touched_utc": iso_minute(start - 10)},  # touched before the range: not drawn
    ])
    write_output(tmp_path, "confluence", INST, "signals", [
        {"timestamp_utc": iso_minute(start + 3), "direction": "long", "level": "97", "score": 4}])
    book_minutes(tmp_path, INST, [(iso_minute(start + i), 100.0) for i in range(6)])
    d = build_data(tmp_path, INST, None, None, "5m")
    assert d["t"] == [start * 60, (start + 5) * 60]
    assert (d["o"], d["h"], d["l"], d["c"]) == ([100, 99], [104, 99], [97, 99], [99, 99])
    assert d["tier"] == [1, 1]  # most minutes of the first period are T1
    assert d["d"] == [3.0, 0.0]
    assert d["cvd"] == [40.0, 50.0] and d["vwap"]["vwap_session"] == [104.0, 105.0]
    assert d["markers"] == [[start * 60, "A", -1, 0], [start * 60, "C", 1, 4, "97"], [start * 60, "D", -1, 0]]
    # levels: from the candle's close (or the range's start) to the touch, untouched ones to the end
    assert sorted(d["levels"]) == [[90.0, -1, start * 60, None], [105.0, 1, start * 60, (start + 3) * 60]]
    heat = d["heat"]
    assert heat["step"] == 10.0 and len(heat["rows"]) == 2
    assert all(len(row[1]) == 30 and len(row[2]) == 30 for row in heat["rows"])  # the 30 largest per side
    assert heat["max"] >= 2_500_000

    one = build_data(tmp_path, INST, start + 1, start + 4, "1m")
    assert one["t"] == [(start + i) * 60 for i in (1, 2, 3)]
    assert one["o"][1] == one["c"][1] == 102  # the empty minute: flat at its carried close


def test_chart_file_is_self_contained(tmp_path):
    write_volume(tmp_path, INST, [bar(i, 100 + i) for i in range(30)])
    out = tmp_path / "c.html"
    assert main(["chart", "--vault", str(tmp_path), "--inst", INST, "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "TradingView Lightweight Charts" in text and "Apache License 2.0" in text
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text)
    d = page_data(out)
    assert len(d["t"]) == 30 and d["cvd"] is None and d["heat"] is None and d["levels"] == []
