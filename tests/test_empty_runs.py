"""A run of empty minutes at once (``Indicator.on_empty_bars``) is the same as its bars one by one.

The host hands a stretch of filled minutes without a trade to every indicator in
one call; the built-ins override it to skip per-bar work.  Each must write the
same records and end in the same state as when it gets ``on_bar`` with
``Bar.empty_at`` for every minute, from any state, across session ends, window
ends and candle periods.  (That both paths agree with an independent
implementation is tests/test_e2e_oracle.py's part.)
"""

from __future__ import annotations

import decimal
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from indicator_core import Bar, Indicator
from indicator_core.instruments import InstrumentTable
from indicator_core.numbers import EXACT
from indicator_core_plugins.candles_adapter import Candles
from indicator_core_plugins.cvd_adapter import Cvd
from indicator_core_plugins.volume import VolumeAnalyzer
from indicator_core_plugins.vwap_adapter import Vwap
from indicator_core_plugins.wicks_adapter import Wicks

INST = InstrumentTable().get("BTC-USDT-SWAP")
START = 28_860_000 - 30  # half an hour before a UTC midnight

money = st.integers(min_value=0, max_value=5_000_000).map(lambda v: Decimal(v).scaleb(-2))
price = st.integers(min_value=9_000_000, max_value=9_100_000).map(lambda v: Decimal(v).scaleb(-2))


@st.composite
def traded_bar(draw: Any, minute: int) -> Bar:
    o, c, a, b = draw(price), draw(price), draw(price), draw(price)
    buy_q, sell_q = draw(money), draw(money)
    if buy_q == sell_q == 0:
        buy_q = Decimal("0.01")
    px = (o + c) / 2
    return Bar(INST.inst_id, minute, o, max(o, c, a, b), min(o, c, a, b), c, trade_count=draw(st.integers(1, 50)),
               buy_quote=buy_q, sell_quote=sell_q, buy_base=(buy_q / px).quantize(Decimal("0.0001")),
               sell_base=(sell_q / px).quantize(Decimal("0.0001")), buy_contracts=buy_q / 100,
               sell_contracts=sell_q / 100)


# each step: a traded bar, then a run of empty minutes (0: none) before the next traded minute
steps = st.lists(st.tuples(st.just(None), st.integers(0, 200) | st.integers(1300, 1600)), min_size=1, max_size=8)

INDICATORS = [
    (VolumeAnalyzer, st.fixed_dictionaries({
        "median_window": st.integers(1, 6), "median_min_bars": st.just(1),
        "tier_t2_from": st.sampled_from(["0", "0.5"]), "unit": st.sampled_from(["quote", "base", "contracts"])})),
    (Cvd, st.fixed_dictionaries({"session_anchor": st.sampled_from(["00:00", "23:45", "08:00"]),
                                 "unit": st.sampled_from(["quote", "base"])})),
    (Vwap, st.fixed_dictionaries({"windows": st.lists(st.integers(1, 40), min_size=0, max_size=3, unique=True),
                                  "session_anchor": st.sampled_from(["00:00", "23:45"])})),
    (Candles, st.fixed_dictionaries({"timeframes": st.lists(st.sampled_from(["1m", "5m", "1h", "1d"]), min_size=1,
                                                            max_size=3, unique=True)})),
    (Wicks, st.fixed_dictionaries({"timeframe": st.sampled_from(["1m", "5m", "1h"]), "min_wick_pct": st.just("0")})),
]


def feed(indicator: Indicator, script: list[tuple[Bar, int]], runs: bool) -> tuple[dict[str, list[bytes]], bytes]:
    """The records of each output stream (each is its own file: the order across them is free) and the state."""
    out: dict[str, list[bytes]] = {}

    def emit(stream: str, record: dict[str, Any]) -> None:
        out.setdefault(stream, []).append(orjson.dumps(record))

    with decimal.localcontext(EXACT):
        for bar, empty in script:
            indicator.on_bar(bar, emit)
            first = bar.minute + 1
            if empty and runs:
                indicator.on_empty_bars(first, empty, bar.close, emit)
            elif empty:
                for minute in range(first, first + empty):
                    indicator.on_bar(Bar.empty_at(INST.inst_id, minute, bar.close), emit)
            indicator.on_advance(first + empty, emit)
    return out, orjson.dumps(indicator.get_state())


@settings(max_examples=60, deadline=None)
@given(data=st.data(), which=st.integers(0, len(INDICATORS) - 1), shape=steps)
def test_a_run_of_empty_minutes_equals_its_bars_one_by_one(data: Any, which: int, shape: list) -> None:
    cls, params = INDICATORS[which]
    p = cls.Params.model_validate(data.draw(params))
    script, minute = [], START
    for _, empty in shape:
        script.append((data.draw(traded_bar(minute)), empty))
        minute += 1 + empty
    at_once, one_by_one = cls(INST, p), cls(INST, p)
    runs, records = feed(at_once, script, runs=True), feed(one_by_one, script, runs=False)
    assert runs == records


def test_the_default_hands_each_minute_to_on_bar() -> None:
    seen: list[tuple[int, bool, Decimal]] = []

    class Plain(Indicator):
        name = "plain"

        def on_bar(self, bar: Bar, emit: Any) -> None:
            seen.append((bar.minute, bar.empty, bar.close))

    price = Decimal("65000.1")
    Plain(INST, Plain.Params()).on_empty_bars(100, 3, price, lambda s, r: None)
    assert seen == [(100, True, price), (101, True, price), (102, True, price)]


def test_a_traded_minute_of_zero_volume_before_a_quiet_stretch() -> None:
    """A traded minute whose volume rounds to 0 in the unit (``0.0000`` base) is not an empty minute: a window
    holding it is not yet a window of empty minutes, even though every value in it is 0."""
    p = VolumeAnalyzer.Params.model_validate({"unit": "base", "median_window": 2, "median_min_bars": 1})
    bar = Bar(INST.inst_id, START, Decimal("90000"), Decimal("90000"), Decimal("90000"), Decimal("90000"),
              trade_count=1, buy_quote=Decimal("0.01"), buy_base=Decimal("0.0000"), buy_contracts=Decimal("0.0001"))
    script = [(bar, 1), (replace(bar, minute=START + 2), 5)]
    at_once, one_by_one = VolumeAnalyzer(INST, p), VolumeAnalyzer(INST, p)
    assert feed(at_once, script, runs=True) == feed(one_by_one, script, runs=False)


def test_the_timestamps_of_a_run_are_those_of_its_minutes() -> None:
    from indicator_core.timeutil import iso_minute, iso_minutes

    for first, count in [(START, 3), (START, 5), (START + 1, 5), (START, 5), (START - 1440, 1441), (0, 1)]:
        assert iso_minutes(first, count) == [iso_minute(m) for m in range(first, first + count)]
