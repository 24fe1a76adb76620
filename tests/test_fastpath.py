"""A clean chunk summed up by the compiled kernel gives exactly what the numpy path gives."""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indicator_core import fastpath
from indicator_core.bars import Bar
from indicator_core.instruments import Instrument
from indicator_core.numbers import EXACT
from indicator_core.sources.columnar import parse_chunk
from indicator_core.streams.trade_stream import TradeStream
from indicator_core.trade_batch import TradeBatch

pytestmark = pytest.mark.skipif(fastpath._KERNEL is None, reason="the compiled kernel is not built in this install")

T0 = 1723161600000
INSTRUMENTS = {
    "linear": Instrument("BTC-USDT-SWAP", "linear", Decimal("0.01"), "BTC"),
    "linear_whole": Instrument("BTC-USDT-SWAP", "linear", Decimal("100"), "USD"),
    "spot": Instrument("BTC-USDT-SWAP", "spot", Decimal("1"), "BTC"),
    "inverse": Instrument("BTC-USDT-SWAP", "inverse", Decimal("100"), "USD"),
}


class Recorder:
    """Every event the stream delivers, with the trades' columns and scales exactly as handed over."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def quality(self, event: dict[str, Any]) -> None:
        self.events.append(("quality", event))

    def takes_minute_trades(self) -> bool:
        return True

    def trades(self, batch: TradeBatch, kind: str = "trades") -> None:
        cols = {name: [int(v) for v in getattr(batch, name)] for name in
                ("ts", "trade_id", "first_id", "px", "sz", "base", "quote")}
        scales = (batch.px_scale, batch.sz_scale, batch.base_scale, batch.quote_scale)
        self.events.append((kind, cols, [bool(b) for b in batch.is_buy], scales))

    def chunk_trades(self, batch: TradeBatch) -> None:
        self.trades(batch, "chunk_trades")

    def bar(self, bar: Bar) -> None:
        self.events.append(("bar", bar.to_state()))  # strings: the same digits, not only the same values

    def empty_bars(self, first: int, count: int, price) -> None:
        inst_id = next(e[1]["inst_id"] for e in reversed(self.events) if e[0] == "bar")  # the run follows a bar
        for minute in range(first, first + count):
            self.bar(Bar.empty_at(inst_id, minute, price))

    def advance(self, minute: int) -> None:
        self.events.append(("advance", minute))


def line(tid: int, px: str, sz: str, buy: bool, ts: int, count: int | None) -> bytes:
    extra = f',"count":"{count}"' if count is not None else ""
    side = "buy" if buy else "sell"
    return (f'{{"instId":"BTC-USDT-SWAP","tradeId":"{tid}","px":"{px}","sz":"{sz}","side":"{side}",'
            f'"ts":"{ts}"{extra}}}\n').encode()


def feed(inst: Instrument, lines: list[bytes], cuts: list[int], summarized: bool,
         parse=None) -> tuple[Recorder, TradeStream, int]:
    """The lines through a stream in chunks cut at ``cuts`` (read by ``parse``: OKX's column-wise reader by
    default); with ``summarized``, each chunk prepared as the parse thread prepares it.  Returns the events, the
    stream and how many chunks took the fast path."""
    parse = parse or (lambda buf, first: parse_chunk(buf, first, inst.inst_id))
    rec = Recorder()
    stream = TradeStream(inst, fill_empty=True)
    bounds = [0, *sorted({c % (len(lines) + 1) for c in cuts}), len(lines)]
    fast = 0
    with decimal.localcontext(EXACT):
        for a, b in zip(bounds[:-1], bounds[1:]):
            if a == b:
                continue
            parsed = parse(b"".join(lines[a:b]), a + 1)
            if summarized:
                parsed = stream.prepare(parsed)
                fast += parsed.summary is not None
            stream.process(parsed, "f", rec)
    return rec, stream, fast


step = st.tuples(
    st.sampled_from([1, 1, 1, 1, 1, 1, 0, 2, -3]),  # id step: mostly the next id; a repeat, a gap, one back
    st.sampled_from([0, 150, 900, 4_000, 61_000, -70_000]),  # ts step: mostly forward, sometimes a minute back
    st.sampled_from(["100", "100.5", "99.25", "0.0001", "65000.1", "99999999.99999999"]),
    st.sampled_from(["1", "0.5", "250", "0.00000001", "123456789012.25"]),
    st.booleans(),
    st.sampled_from([None, None, None, 1, 3]),  # OKX's aggregated records: count fills under the last id
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=60), cuts=st.lists(st.integers(0, 100), max_size=5),
       kind=st.sampled_from(sorted(INSTRUMENTS)))
def test_summarized_chunks_deliver_the_same_events(steps, cuts, kind) -> None:
    inst = INSTRUMENTS[kind]
    tid, ts, lines = 1000, T0, []
    for d_id, d_ts, px, sz, buy, count in steps:
        tid, ts = max(tid + d_id, 1), max(ts + d_ts, T0)
        lines.append(line(tid, px, sz, buy, ts, count))
    plain, plain_stream, _ = feed(inst, lines, cuts, summarized=False)
    summed, summed_stream, _ = feed(inst, lines, cuts, summarized=True)
    assert summed.events == plain.events
    assert summed_stream.to_state() == plain_stream.to_state()


def test_clean_chunks_take_the_fast_path(monkeypatch) -> None:
    """Ids one after another and time going forward: every chunk is summed up in the parse thread, and the numpy
    path of the stream is not used at all."""
    lines = [line(5000 + i, "100.5" if i % 3 else "101", "0.25", i % 2 == 0, T0 + 997 * i, None) for i in range(400)]
    plain, _, _ = feed(INSTRUMENTS["linear"], lines, [97, 250], summarized=False)

    def numpy_path(*args, **kw):
        raise AssertionError("a clean chunk went through the numpy path")

    monkeypatch.setattr(TradeStream, "_deliver", numpy_path)
    summed, _, fast = feed(INSTRUMENTS["linear"], lines, [97, 250], summarized=True)
    assert fast == 3
    assert summed.events == plain.events
    assert sum(1 for e in summed.events if e[0] == "bar") == (997 * 399) // 60_000


@pytest.mark.parametrize("lines,why", [
    ([line(10, "1", "1", True, T0, None), line(10, "1", "1", True, T0 + 1, None)], "a repeated id"),
    ([line(10, "1", "1", True, T0, None), line(12, "1", "1", True, T0 + 1, None)], "a gap"),
    ([line(10, "1", "1", True, T0 + 60_000, None), line(11, "1", "1", True, T0, None)], "a minute back"),
    ([line(10, "99999999.99999999", "123456789012.25", True, T0, None)], "a quote past int64"),
])
def test_chunks_that_are_not_clean_are_left_to_the_numpy_path(lines, why) -> None:
    parsed = parse_chunk(b"".join(lines), 1, "BTC-USDT-SWAP")
    assert fastpath.Summarizer(INSTRUMENTS["linear"]).summarize(parsed) is None, why


def test_a_chunk_that_does_not_follow_the_stream_goes_the_numpy_way() -> None:
    """Clean in itself, but its first trade repeats an id the stream has seen: a duplicate, counted as such."""
    first = [line(10, "1", "1", True, T0, None), line(11, "1", "1", True, T0 + 1, None)]
    second = [line(11, "1", "1", True, T0 + 2, None), line(12, "1", "1", True, T0 + 3, None)]
    rec, stream, fast = feed(INSTRUMENTS["linear"], first + second, [2], summarized=True)
    assert fast == 2  # both summed up in the parse thread ...
    assert stream.counters["duplicates"] == 1  # ... and the second still judged against the stream
    assert stream.counters["accepted"] == 3


def test_segments_match_numpy_aggregates_on_real_minutes() -> None:
    """Open and close by (ts, id) with equal times, high, low and sums, against Bar.from_segments."""
    rng = np.random.default_rng(7)
    ts = np.sort(rng.integers(T0, T0 + 5 * 60_000, 2_000)) // 250 * 250  # many equal times
    lines = [line(100 + i, str(60_000 + int(rng.integers(0, 500)) / 10), str(int(rng.integers(1, 900)) / 100),
                  bool(rng.integers(0, 2)), int(t), None) for i, t in enumerate(ts)]
    parsed = parse_chunk(b"".join(lines), 1, "BTC-USDT-SWAP")
    stream = TradeStream(INSTRUMENTS["linear"], fill_empty=True)
    summary = stream.prepare.summarize(parsed)
    assert summary is not None
    batch = stream._batch(parsed, np.arange(len(parsed)))
    seg = summary.segments
    starts = seg[fastpath.START]
    with decimal.localcontext(EXACT):
        expected = Bar.from_segments(batch, starts, seg[fastpath.MINUTE].tolist())
    assert (seg[fastpath.MINUTE] == np.unique(ts // 60_000)).all()
    for k, bar in enumerate(expected):
        assert (int(ts[seg[fastpath.FIRST][k]]), 100 + int(seg[fastpath.FIRST][k])) == bar.first_key
        assert (int(ts[seg[fastpath.LAST][k]]), 100 + int(seg[fastpath.LAST][k])) == bar.last_key
        assert (seg[fastpath.HIGH][k], seg[fastpath.LOW][k]) == (int(bar.high.scaleb(batch.px_scale)),
                                                                  int(bar.low.scaleb(batch.px_scale)))
    assert summary.batch.quote.tolist() == batch.quote.tolist() and summary.batch.quote_scale == batch.quote_scale


def bybit_push(trades: list[tuple[str, str, str, bool, int]]) -> bytes:
    data = ",".join(f'{{"T":{t},"s":"BTCUSDT","S":"{"Buy" if b else "Sell"}","v":"{sz}","p":"{px}","L":"PlusTick",'
                    f'"i":"{i}","BT":false}}' for i, px, sz, b, t in trades)
    return f'{{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":{trades[-1][4] + 3},"data":[{data}]}}\n'.encode()


def feed_bybit(lines: list[bytes], cuts: list[int], summarized: bool) -> tuple[Recorder, TradeStream, int]:
    from indicator_core.sources import bybit_fast

    return feed(Instrument("BTCUSDT", "linear", Decimal("1"), "BTC"), lines, cuts, summarized,
                lambda buf, first: bybit_fast.parse_chunk(buf, first, "BTCUSDT"))


bybit_step = st.tuples(
    st.sampled_from([None, None, None, None, -1, -5]),  # a new id, or the id of one of the last trades again
    st.sampled_from([0, 0, 150, 4_000, 61_000, 125_000, -70_000]),  # equal times, forward, a minute back
    st.sampled_from(["100", "100.5", "99.25", "65000.1"]),
    st.sampled_from(["1", "0.5", "0.001"]),
    st.booleans(),
    st.integers(1, 3),  # trades in the push
)


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(bybit_step, min_size=1, max_size=50), cuts=st.lists(st.integers(0, 60), max_size=4))
def test_summarized_bybit_chunks_deliver_the_same_events(steps, cuts) -> None:
    """Opaque ids: a chunk without repeats and late trades is summed up in the parse thread (open and close
    among equal times by the ids' digests, as the numpy path orders them); repeats of ids kept from earlier
    chunks are still found."""
    ids: list[str] = []
    lines, ts = [], T0
    for again, d_ts, px, sz, buy, n in steps:
        ts = max(ts + d_ts, T0)
        push = []
        for k in range(n):
            tid = ids[again] if again is not None and len(ids) >= -again else f"{len(ids):08x}-aa{k}"
            ids.append(tid)
            push.append((tid, px, sz, buy ^ bool(k % 2), ts))
        lines.append(bybit_push(push))
    plain, plain_stream, _ = feed_bybit(lines, cuts, summarized=False)
    summed, summed_stream, fast = feed_bybit(lines, cuts, summarized=True)
    assert summed.events == plain.events
    assert summed_stream.to_state() == plain_stream.to_state()
    assert summed_stream.counters == plain_stream.counters


def test_clean_bybit_chunks_take_the_fast_path(monkeypatch) -> None:
    lines = [bybit_push([(f"id-{i}-{k}", "100.5" if i % 3 else "101", "0.25", k == 0, T0 + 997 * i)
                         for k in range(2)]) for i in range(300)]
    plain, _, _ = feed_bybit(lines, [97, 250], summarized=False)

    def numpy_path(*args, **kw):
        raise AssertionError("a clean chunk went through the numpy path")

    monkeypatch.setattr(TradeStream, "_deliver", numpy_path)
    summed, stream, fast = feed_bybit(lines, [97, 250], summarized=True)
    assert fast == 3 and summed.events == plain.events
    assert stream.counters["duplicates"] == 0 and stream.counters["accepted"] == 600


@pytest.mark.parametrize("summarized", [False, True])
@pytest.mark.parametrize("cuts", [[], [1], [2], [1, 3]])
def test_bybit_ties_in_time_go_by_the_id_text(summarized: bool, cuts: list[int]) -> None:
    """SPEC section 2: within a bar trades are ordered by (ts, trade_id); Bybit's ids are text, so among the
    trades of the minute's first millisecond the smallest id opens it, of its last the largest closes it —
    whatever the arrival order, the digests' order, or where the chunks are cut."""
    t = T0 + 5_000
    lines = [bybit_push([("id-b", "101", "1", True, t), ("id-a", "100", "1", True, t), ("id-c", "102", "1", True, t)]),
             bybit_push([("mid", "150", "1", False, t + 20_000)]),
             bybit_push([("id-y", "201", "1", True, t + 40_000), ("id-z", "202", "1", True, t + 40_000)]),
             bybit_push([("id-x", "200", "1", True, t + 40_000)]),
             bybit_push([("next", "300", "1", True, t + 70_000)])]  # the next minute closes the bar
    rec, _, _ = feed_bybit(lines, cuts, summarized)
    (bar,) = [e[1] for e in rec.events if e[0] == "bar"]
    assert (bar["open"], bar["close"]) == ("100", "202")
    assert bar["first_key"] == [t, "id-a"] and bar["last_key"] == [t + 40_000, "id-z"]
