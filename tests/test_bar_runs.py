"""Closed minutes handed over as runs of columns (``Indicator.on_bars``, ``BarRun``).

An indicator that implements ``on_bars`` must write, byte for byte, what its
``on_bar``/``on_empty_bars`` write minute by minute, and end in the same state,
however the minutes are cut into runs: held here on generated bars (decimals
of mixed exponents, bars merged from parts, taints, whales, quiet stretches,
huge values) for every built-in that takes runs, and through the runtime,
where the runs are cut by the other hooks an indicator implements.
"""

from __future__ import annotations

import decimal
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indicator_core import BarRun, Indicator
from indicator_core.bars import Bar
from indicator_core.instruments import _builtin
from indicator_core.jsonlines import JsonLines
from indicator_core.numbers import EXACT, fmt, to_dec
from indicator_core.plugins import collect_indicators, make_plugin_manager
from indicator_core.runtime.dispatch import Dispatch, implements

INDICATORS = {n: info.cls for n, info in collect_indicators(make_plugin_manager()).items()}
TAKE_RUNS = sorted(n for n, cls in INDICATORS.items() if implements(cls, "on_bars") and cls.consumes == "trades")
DAY = 29_000_000  # a minute in 2025


def test_the_built_in_minute_indicators_take_runs() -> None:
    assert {"volume", "cvd", "vwap", "candles"} <= set(TAKE_RUNS)


def _bar(rnd: random.Random, minute: int, price: int, huge: bool) -> Bar:
    """A traded bar: from one chunk's integers (``parts`` set, one scale a column), or as a merge leaves one
    (no parts, buy and sell of different exponents)."""
    ps = rnd.choice([0, 1, 2, 4])
    px = [price * 10**ps + rnd.randint(-50, 50) for _ in range(4)]
    o, c = px[0], px[1]
    h, lo = max(px), min(px)
    scales = [rnd.choice([0, 2, 5, 8]) for _ in range(3)]
    top = 10**30 if huge else 10**9
    vols = [rnd.choice([0, rnd.randint(1, top)]) for _ in range(6)]
    if not any(vols[:2]):
        vols[0] = 7
    n = rnd.randint(1, 500)
    taint = rnd.choice([[], [], [], ["gap"], ["late"], ["gap", "late"]])
    qs, bs, ss = scales
    d = [to_dec(v, s) for v, s in zip(vols, (qs, qs, bs, bs, ss, ss))]
    bar = Bar("BTC-USDT-SWAP", minute, to_dec(o, ps), to_dec(h, ps), to_dec(lo, ps), to_dec(c, ps), n, *d,
              taint=list(taint))
    if rnd.random() < 0.7 and not huge:
        bar.parts = (o, h, lo, c, *vols, ps, qs, bs, ss)
    elif rnd.random() < 0.5:  # merged: the sell side gained digits from another part
        bar.sell_quote = bar.sell_quote + Decimal("0.001")
        bar.low = bar.low - Decimal("0.5")
    return bar


def _items(seed: int, length: int, huge: bool = False) -> list[Any]:
    rnd = random.Random(seed)
    minute, price = DAY, 60_000
    out: list[Any] = []
    while len(out) < length:
        if out and rnd.random() < 0.3:
            count = rnd.choice([1, 2, 3, 40, 130])
            last = out[-1]
            close = last.close if isinstance(last, Bar) else last[2]
            out.append((minute, count, close))
            minute += count
            continue
        price += rnd.randint(-30, 30)
        out.append(_bar(rnd, minute, price, huge))
        minute += 1 + (rnd.random() < 0.1) * rnd.randint(1, 5)  # sometimes a gap (filling off)
    return out


def _whales(ind: Indicator, items: list[Any], seed: int) -> None:
    """Whale sums of some traded minutes, as the volume analyzer's on_trades leaves them."""
    rnd = random.Random(seed)
    for item in items:
        if isinstance(item, Bar) and rnd.random() < 0.3:
            ind.whales[item.minute] = [rnd.randint(0, 10**12), rnd.randint(0, 10**12), rnd.randint(1, 9),
                                       rnd.choice([0, 3, 8])]


class _Consumer:
    """What the dispatch needs of a consumer: the indicator, and where its records go."""

    def __init__(self, indicator: Indicator) -> None:
        self.indicator = indicator
        self.last_bar = None
        self.out: list[bytes] = []

    def emit(self, stream: str, record: Any) -> None:
        if type(record) is JsonLines:
            self.out.extend(stream.encode() + b" " + line + b"\n" for line in bytes(record).splitlines())
        else:
            self.out.append(stream.encode() + b" " + orjson.dumps(record) + b"\n")


def _through_dispatch(ind: Indicator, items: list[Any], cuts: list[int]) -> bytes:
    """``items`` as the trade stream delivers them (a bar, the filled minutes after it, the advance to the next
    traded minute), through the runtime's dispatch, flushed and the state read (as a commit does) before the
    items at ``cuts``."""
    d = Dispatch()
    c = _Consumer(ind)
    d.add(c)  # type: ignore[arg-type]
    at = {k % (len(items) + 1) for k in cuts}
    for k, item in enumerate(items):
        if k in at:
            d.flush()
            ind.get_state()  # a commit: the state is read between runs (it must not change what follows)
        if isinstance(item, tuple):
            d.empty_bars(*item)
        else:
            if k:
                d.advance(item.minute)
            d.bar(item)
    last = items[-1]
    d.advance(last.minute + 1 if isinstance(last, Bar) else last[0] + last[1])  # a later trade came: they closed
    d.flush()
    assert not d.failures, d.failures
    return _by_file(b"".join(c.out))


def _by_file(lines: bytes) -> bytes:
    """Each output file's lines in their order (the order across files is free)."""
    return b"".join(sorted(lines.splitlines(keepends=True), key=lambda line: line.split(b" ", 1)[0]))


def _one_by_one(ind: Indicator, items: list[Any]) -> bytes:
    """The same calls to the same indicator taking its bars one at a time (``on_bars`` as the base class's)."""
    one_by_one = type("OneByOne", (type(ind),), {"on_bars": Indicator.on_bars})
    ind.__class__ = one_by_one
    return _through_dispatch(ind, items, [])


def _in_runs(ind: Indicator, items: list[Any], cuts: list[int]) -> bytes:
    return _through_dispatch(ind, items, cuts)


def _make(name: str, params: dict[str, Any]) -> Indicator:
    cls = INDICATORS[name]
    return cls(_builtin("BTC-USDT-SWAP"), cls.Params(**params))


PARAMS = {
    "volume": [{}, {"median_window": 5, "median_min_bars": 2, "unit": "base", "base_volumes": True},
               {"median_window": 3, "median_min_bars": 3, "tier_t4_above": "0", "tier_t3_above": "0",
                "tier_t2_from": "0", "absorption_max_move": "0.5"}],
    "cvd": [{}, {"unit": "contracts", "session_anchor": "08:00"}],
    "vwap": [{}, {"windows": [1, 3, 200], "session_anchor": "13:30"}],
    "candles": [{}, {"timeframes": ["1m", "5m", "1h"]}, {"timeframes": ["15m", "1d"]}],
    "wicks": [{"timeframe": "1m", "min_wick_pct": "0"}, {"min_wick_pct": "0"}, {"timeframe": "5m", "min_wick_pct": "0"}],
}


@pytest.mark.parametrize("name", TAKE_RUNS)
@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10**6), length=st.integers(1, 60), cuts=st.lists(st.integers(0, 200), max_size=6),
       which=st.integers(0, 2), huge=st.booleans())
def test_runs_write_what_minute_by_minute_writes(name: str, seed: int, length: int, cuts: list[int], which: int,
                                                 huge: bool) -> None:
    params = PARAMS.get(name, [{}])[which % len(PARAMS.get(name, [{}]))]
    items = _items(seed, length, huge)
    a, b = _make(name, params), _make(name, params)
    if name == "volume":
        _whales(a, items, seed)
        _whales(b, items, seed)
    with decimal.localcontext(EXACT):  # as under the engine: a Decimal operation that would round raises
        expected = _one_by_one(a, items)
        got = _in_runs(b, items, cuts)
    assert got == expected
    assert orjson.dumps(b.get_state()) == orjson.dumps(a.get_state())


@pytest.mark.parametrize("name", TAKE_RUNS)
def test_runs_continue_from_a_restored_state(name: str) -> None:
    """Half the minutes one by one, a commit (the state through JSON), the rest in runs: as all one by one."""
    params = PARAMS.get(name, [{}])[-1]
    items = _items(7, 400)
    a, b = _make(name, params), _make(name, params)
    with decimal.localcontext(EXACT):
        expected = _one_by_one(a, items)
        first = _one_by_one(b, items[:200])
        c = _make(name, params)
        c.set_state(orjson.loads(orjson.dumps(b.get_state())))
        assert _by_file(first + _in_runs(c, items[200:], [13, 77, 150])) == expected
    assert orjson.dumps(c.get_state()) == orjson.dumps(a.get_state())


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_volume_runs_between_bars_one_by_one_write_what_one_by_one_writes(seed: int) -> None:
    """Runs of minutes, then minutes one at a time, then runs again, on one analyzer (which keeps its window
    as integers from one run to the next): the records and the state of minutes all one by one."""
    params = PARAMS["volume"][1]
    items = _items(seed, 360)
    a, b = _make("volume", params), _make("volume", params)
    runs = type(b)
    with decimal.localcontext(EXACT):
        expected = _one_by_one(a, items)
        got = _in_runs(b, items[:120], [40, 90])
        got += _one_by_one(b, items[120:240])
        b.__class__ = runs
        got += _in_runs(b, items[240:], [30])
    assert _by_file(got) == expected
    assert orjson.dumps(b.get_state()) == orjson.dumps(a.get_state())


def test_a_run_gives_back_its_bars() -> None:
    """``BarRun.items`` gives back the bars and filled stretches it was made from (the values, and the
    exponents of a bar made from one chunk)."""
    items = _items(3, 80)
    run = BarRun.of(items, "BTC-USDT-SWAP")
    assert run.items() == items
    run.source = None  # made again from the columns
    back = run.items()

    def minutes(xs: list[Any]) -> list[Any]:  # a stretch of filled minutes may come back as two or one
        return [x if isinstance(x, Bar) else (m, x[2]) for x in xs
                for m in ([x] if isinstance(x, Bar) else range(x[0], x[0] + x[1]))]

    assert minutes(back) == minutes(items)
    for x, y in zip(minutes(items), minutes(back)):
        if isinstance(x, tuple):
            continue
        if x.parts is not None:
            assert [str(getattr(y, f)) for f in Bar._DECIMALS] == [str(getattr(x, f)) for f in Bar._DECIMALS]


class _Log(Indicator):
    """Records the order of its calls: runs of bars among per-minute trades, advances and quality events."""

    name = "log_runs"
    log: list[Any]

    def __init__(self, instrument, params) -> None:
        super().__init__(instrument, params)
        self.log = []

    def on_trades(self, trades, emit) -> None:
        self.log.append(("trades", int(trades.ts[0]) // 60_000))

    def on_bars(self, bars, emit) -> None:
        self.log += [("bar", m) for m in bars.minute.tolist()]
        self.on_advance(int(bars.minute[-1]) + 1, emit)  # the advance a run implies

    def on_advance(self, minute, emit) -> None:
        self.log.append(("advance", minute))


class _LogEach(_Log):
    on_bars = Indicator.on_bars  # the base class's: this one takes its bars one at a time

    def on_bar(self, bar, emit) -> None:
        self.log.append(("bar", bar.minute))

    def on_empty_bars(self, first, count, price, emit) -> None:
        self.log += [("bar", m) for m in range(first, first + count)]


def test_the_runtime_cuts_runs_where_another_hook_is_due(tmp_path: Path) -> None:
    """Through the dispatch: an indicator taking runs and per-minute trades and advances sees its calls in the
    order one taking bars one by one does, and every minute once."""
    from indicator_core.runtime.consumer import Consumer
    from indicator_core.sources.columnar import parse_chunk
    from indicator_core.storage import InstrumentKey
    from indicator_core.streams.trade_stream import TradeStream
    from tests.vaults import trade_line

    inst = _builtin("BTC-USDT-SWAP")
    logs = []
    for cls in (_Log, _LogEach):
        d = Dispatch()
        ind = cls(inst, Indicator.Params())
        c = Consumer(tmp_path / cls.__name__, InstrumentKey("okx", "perps", inst.inst_id), ind, {}, "fp")
        d.add(c)
        stream = TradeStream(inst, fill_empty=True)
        rnd = random.Random(5)
        ts = DAY * 60_000
        for k in range(6):
            lines = []
            for j in range(50):
                ts += rnd.choice([100, 5_000, 61_000, 300_000])
                lines.append(trade_line(inst.inst_id, k * 50 + j + 1, "60000.5", "1", rnd.choice(["buy", "sell"]), ts))
            stream.process(parse_chunk(b"".join(lines), k * 50 + 1, inst.inst_id), "x", d)
        d.flush()
        # an advance right after a bar to the next minute is implied by a run: the same calls otherwise
        logs.append([e for k, e in enumerate(ind.log)
                     if not (e[0] == "advance" and k and ind.log[k - 1] == ("bar", e[1] - 1))])
    assert logs[0] == logs[1]
    assert sum(1 for e in logs[0] if e[0] == "bar") > 50


def test_readme_indicator_in_runs_writes_what_one_by_one_writes() -> None:
    """The README's ``on_bars`` example: its records from columns equal those from the bars one at a time."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = text.index("# range_runs/__init__.py")
    namespace: dict = {}
    exec(text[start:text.index("```", start)], namespace)
    cls = namespace["MinuteRange"]

    class OneByOne(cls):  # the same records minute by minute, as a dict each
        on_bars = Indicator.on_bars

        def on_bar(self, bar, emit):
            emit("range_1m", {"timestamp_utc": bar.timestamp_utc, "range": fmt(bar.high - bar.low),
                              "trades": bar.trade_count})

    items = _items(11, 120)
    inst = _builtin("BTC-USDT-SWAP")
    with decimal.localcontext(EXACT):
        got = _through_dispatch(cls(inst, Indicator.Params()), items, [40, 90])
        expected = _through_dispatch(OneByOne(inst, Indicator.Params()), items, [])
    assert got == expected and got.count(b"\n") == sum(1 if isinstance(x, Bar) else x[1] for x in items)
