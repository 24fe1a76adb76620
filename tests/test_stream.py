"""The stream's decisions depend only on the trades before them, never on chunk boundaries."""

from __future__ import annotations

import decimal
import pickle
import random
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from indicator_core.bars import Bar, Rows
from indicator_core.instruments import Instrument
from indicator_core.numbers import EXACT
from indicator_core.sources.columnar import parse_chunk
from indicator_core.streams.trade_stream import TradeStream
from indicator_core.trade_batch import TradeBatch
from tests.vaults import trade_line

INST = Instrument("BTC-USDT-SWAP", "linear", Decimal("0.01"), "BTC")
T0 = 1723161600000


class Recorder:
    """A sink that records every event the stream delivers."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.trades_by_minute: dict[int, list[int]] = {}
        self.chunk_trades_by_minute: dict[int, list[int]] = {}

    def quality(self, event: dict[str, Any]) -> None:
        self.events.append(("quality", event))

    def chunk_trades(self, batch: TradeBatch) -> None:
        for minute, trade_id in zip((batch.ts // 60000).tolist(), batch.trade_id.tolist()):
            self.chunk_trades_by_minute.setdefault(minute, []).append(trade_id)

    def takes_minute_trades(self) -> bool:
        return True

    def trades(self, batch: TradeBatch) -> None:
        minute = int(batch.ts[0]) // 60000
        assert (batch.ts // 60000 == minute).all()
        ids = self.trades_by_minute.setdefault(minute, [])
        ids.extend(batch.trade_id.tolist())
        # Indicator.trades_by_minute False: the chunk's batch brought these trades already, in the same order
        assert self.chunk_trades_by_minute.get(minute, [])[:len(ids)] == ids

    def bar(self, bar: Bar) -> None:
        self.inst_id = bar.inst_id
        # every trade of the minute came in chunk batches, once, before the bar closed
        assert self.chunk_trades_by_minute.get(bar.minute, []) == self.trades_by_minute.get(bar.minute, [])
        # values, not representations: 1.00 and 1.000 are the same volume
        state = {k: (Decimal(v) if k in Bar._DECIMALS else v) for k, v in bar.to_state().items()}
        self.events.append(("bar", state))

    def empty_bars(self, first: int, count: int, price: Decimal) -> None:
        # as the bars one by one; a run of empty minutes always follows a bar of the same instrument
        for minute in range(first, first + count):
            self.bar(Bar.empty_at(self.inst_id, minute, price))

    def advance(self, minute: int) -> None:
        self.events.append(("advance", minute))


trades = st.lists(
    st.tuples(
        st.integers(0, 40),  # id offset: repeats make duplicates, jumps make gaps
        st.integers(0, 6 * 60_000),  # ts offset: 6 minutes, arrival order random
        st.sampled_from(["100", "100.5", "99.9", "101.25"]),
        st.sampled_from(["1", "0.5", "250"]),
        st.booleans(),
    ),
    min_size=1,
    max_size=60,
)


def _feed(lines: list[bytes], cuts: list[int], state: dict | None = None, sink: type[Recorder] = Recorder,
          prepared: bool = False) -> Recorder:
    """The events of ``lines`` cut into chunks at ``cuts`` (``state``: the stream saved and restored between
    chunks; ``prepared``: each chunk summed up first, as the runtime's parse thread does (fastpath.py))."""
    rec = sink()
    stream = TradeStream(INST, fill_empty=True)
    bounds = [0, *sorted(set(c % (len(lines) + 1) for c in cuts)), len(lines)]
    with decimal.localcontext(EXACT):
        for a, b in zip(bounds[:-1], bounds[1:]):
            if a == b:
                continue
            if state is not None:  # a new run: the stream comes back from its saved state
                saved = stream.to_state()
                stream = TradeStream(INST, fill_empty=True)
                stream.set_state(saved)
            parsed = parse_chunk(b"".join(lines[a:b]), a + 1, INST.inst_id)
            if prepared:
                parsed = stream.prepare(parsed)
            stream.process(parsed, "f", rec)
    rec.state = stream.to_state()
    return rec


@settings(max_examples=300, deadline=None)
@given(rows=trades, cuts=st.lists(st.integers(0, 100), max_size=6), restart=st.booleans())
def test_events_do_not_depend_on_chunking(rows, cuts, restart) -> None:
    lines = [trade_line(INST.inst_id, 1000 + i, px, sz, "buy" if b else "sell", T0 + t) for i, t, px, sz, b in rows]
    whole = _feed(lines, [])
    cut = _feed(lines, cuts, state={} if restart else None)
    assert cut.events == whole.events
    assert cut.trades_by_minute == whole.trades_by_minute


class _ChunksOnly(Recorder):
    """A sink where nothing takes one minute's trades (every indicator takes a chunk's at once)."""

    def takes_minute_trades(self) -> bool:
        return False

    def trades(self, batch: TradeBatch) -> None:
        raise AssertionError("a minute's trades were cut out of the chunk for no taker")

    def bar(self, bar: Bar) -> None:
        self.trades_by_minute[bar.minute] = self.chunk_trades_by_minute.get(bar.minute, [])
        super().bar(bar)


@settings(max_examples=100, deadline=None)
@given(rows=trades, cuts=st.lists(st.integers(0, 100), max_size=6))
def test_a_minutes_trades_are_cut_out_only_for_a_taker(rows, cuts) -> None:
    """With no taker of one minute's trades the stream hands out no minute batches, and the same bars,
    advances and quality events as with one."""
    lines = [trade_line(INST.inst_id, 1000 + i, px, sz, "buy" if b else "sell", T0 + t) for i, t, px, sz, b in rows]
    assert _feed(lines, cuts, sink=_ChunksOnly).events == _feed(lines, []).events


class _RunsOnly(_ChunksOnly):
    """A sink whose consumers take closed minutes only in runs: a chunk's closed minutes come at once
    (``closed``), recorded here as the bars, filled minutes and advances one at a time would be."""

    def takes_runs_only(self) -> bool:
        return True

    def closed(self, items: list[Any], rows: int, last: int) -> None:
        # the minutes inside the chunk come as rows of their parts (Rows): as bars, they have no trade keys
        items = [x for item in items for x in (item.items() if isinstance(item, Rows) else [item])]
        assert rows == sum(1 if isinstance(item, Bar) else item[1] for item in items)
        for k, item in enumerate(items):
            if isinstance(item, Bar):
                if k:
                    self.advance(item.minute)  # the advance to each closed minute's own after the first
                self.bar(item)
            else:
                self.empty_bars(*item)
        tail = items[-1]
        assert last == (tail.minute if isinstance(tail, Bar) else tail[0] + tail[1] - 1)


def test_a_clean_chunks_inner_minutes_close_as_rows() -> None:
    """A clean chunk (summed up in the parse thread) hands its inner minutes over as rows of their parts, and
    those are the bars, fills and advances one at a time would give, the stream's state the same too."""
    rnd = random.Random(5)
    ts, lines = T0, []
    for k in range(400):
        ts += rnd.choice([0, 50, 900, 20_000, 61_000, 185_000])
        lines.append(trade_line(INST.inst_id, 1000 + k, rnd.choice(["100", "100.5", "99.9"]), "0.5",
                                "buy" if rnd.random() < 0.5 else "sell", ts))
    seen: list[int] = []

    class Counting(_RunsOnly):
        def closed(self, items: list[Any], rows: int, last: int) -> None:
            seen.extend(len(item) for item in items if isinstance(item, Rows))
            super().closed(items, rows, last)

    at_once = _feed(lines, [97, 211, 330], sink=Counting, prepared=True)
    one_at_a_time = _feed(lines, [97, 211, 330])
    assert len(seen) == 4 and sum(seen) > 100  # each chunk's inner minutes, filled ones included
    assert _without_keys(at_once.events) == _without_keys(one_at_a_time.events)
    assert at_once.state == one_at_a_time.state


def _without_keys(events: list[Any]) -> list[Any]:
    """The events, each bar's trade keys left out (a closed bar's are of no use: they order merges)."""
    return [(kind, {k: v for k, v in e.items() if k not in ("first_key", "last_key")} if kind == "bar" else e)
            for kind, e in events]


# a tape in order (ids one after another, times rising, quiet minutes between busy ones), sometimes with a
# jump in the ids (a gap, judged when its bar closes) or a trade out of its minute (late)
ordered = st.lists(st.tuples(st.integers(0, 3 * 60_000), st.sampled_from(["100", "100.5", "99.9", "101.25"]),
                             st.sampled_from(["1", "0.5"]), st.booleans()), min_size=1, max_size=80)


@settings(max_examples=150, deadline=None)
@given(rows=ordered, cuts=st.lists(st.integers(0, 100), max_size=6), restart=st.booleans(),
       jump=st.none() | st.integers(0, 120), late=st.none() | st.integers(0, 120), prepared=st.booleans())
def test_a_chunks_closed_minutes_at_once_are_the_minutes_one_at_a_time(rows, cuts, restart, jump, late,
                                                                       prepared) -> None:
    """For consumers that take runs only, a chunk's closed bars and filled minutes come in one call: the
    same bars, fills and advances, in the same order, as one at a time."""
    ts, lines = T0, []
    for k, (step, px, sz, buy) in enumerate(rows):
        ts += step
        tid = 1000 + k + (3 if jump is not None and k >= jump else 0)
        at = T0 if k == late and k else ts
        lines.append(trade_line(INST.inst_id, tid, px, sz, "buy" if buy else "sell", at))
    at_once = _feed(lines, cuts, state={} if restart else None, sink=_RunsOnly, prepared=prepared)
    one_at_a_time = _feed(lines, cuts)
    assert _without_keys(at_once.events) == _without_keys(one_at_a_time.events)
    assert at_once.state == one_at_a_time.state  # the last close, the count of bars


def test_bars_of_a_chunk_make_their_decimals_when_read() -> None:
    """A chunk's bars hold their integer parts and make each decimal when it is first read; one merged
    into another first makes its own (a merge drops the parts)."""
    lines = [trade_line(INST.inst_id, 1000 + k, px, "0.5", "buy" if k % 2 else "sell", T0 + 1000 * k)
             for k, px in enumerate(["100.5", "101", "99.25", "100"])]
    parsed = parse_chunk(b"".join(lines), 1, INST.inst_id)
    batch = TradeStream(INST, fill_empty=True)._batch(parsed, np.arange(len(parsed)))
    with decimal.localcontext(EXACT):
        first, second = Bar.from_segments(batch, np.array([0, 2]), [T0 // 60000] * 2)
        assert not set(Bar._DECIMALS) & set(first.__dict__)  # none made yet
        assert first.close == Decimal("101") and "close" in first.__dict__ and "open" not in first.__dict__
        again = pickle.loads(pickle.dumps(second))
        first.merge(second)
        whole = Bar.from_trades(T0 // 60000, batch)
    assert first.parts is None and first.to_state() == whole.to_state()
    assert again == second and again.low == Decimal("99.25")


def test_bars_close_in_order_with_empty_fill_and_open_close_by_ts_then_id() -> None:
    lines = [
        trade_line(INST.inst_id, 5, "101", "1", "buy", T0 + 500),
        trade_line(INST.inst_id, 4, "100", "1", "sell", T0 + 500),  # same ts, lower id: gap fill? no: id 4 < 5 -> duplicate-or-gap
        trade_line(INST.inst_id, 6, "102", "2", "buy", T0 + 100),  # earliest ts of the minute: the open
        trade_line(INST.inst_id, 7, "103", "1", "sell", T0 + 3 * 60_000),
    ]
    rec = _feed(lines, [])
    bars = [e[1] for e in rec.events if e[0] == "bar"]
    assert [b["minute"] for b in bars] == [T0 // 60000, T0 // 60000 + 1, T0 // 60000 + 2]
    first = bars[0]
    assert first["open"] == 102 and first["close"] == 101 and first["trade_count"] == 2
    assert bars[1]["empty"] and bars[1]["open"] == bars[1]["close"] == 101
    assert ("advance", T0 // 60000 + 3) in rec.events
    assert np.array_equal(rec.trades_by_minute[T0 // 60000], [5, 6])


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 59_999), st.integers(1, 50), st.sampled_from(["1", "99999999999.5", "0.001"]),
                            st.sampled_from(["1", "123456789012.25", "0.5"]), st.booleans()), min_size=1, max_size=40),
    cuts=st.lists(st.integers(1, 39), max_size=5),
)
def test_bars_of_segments_equal_bars_of_each_segment(rows, cuts) -> None:
    """The vectorized aggregation equals the per-segment one, int64 or Python-int columns alike."""
    # ids unique, as the stream guarantees; their order is shuffled against ts
    lines = [trade_line(INST.inst_id, 1000 + k * 7 % 41 + 41 * k, px, sz, "buy" if b else "sell", T0 + t)
             for k, (t, _, px, sz, b) in enumerate(rows)]
    parsed = parse_chunk(b"".join(lines), 1, INST.inst_id)
    stream = TradeStream(INST, fill_empty=True)
    batch = stream._batch(parsed, np.arange(len(parsed)))
    starts = np.array(sorted({0, *[c for c in cuts if c < len(batch)]}))
    bounds = [*starts.tolist(), len(batch)]
    with decimal.localcontext(EXACT):
        together = Bar.from_segments(batch, starts, [T0 // 60000] * len(starts))
        one_by_one = [Bar.from_trades(T0 // 60000, batch.take(slice(a, b))) for a, b in zip(bounds[:-1], bounds[1:])]
    assert [b.to_state() for b in together] == [b.to_state() for b in one_by_one]


class _EventsAtOnce(Recorder):
    """A sink that takes late trades, gaps and rejects a block at a time, as the runtime's dispatch does."""

    def quality_events(self, events) -> None:
        assert events.event in ("late", "gap", "reject") and len(events) > 0
        assert events.json_lines() == b"".join(
            orjson.dumps({k: v for k, v in e.items() if k != "event"}, option=orjson.OPT_APPEND_NEWLINE)
            for e in events.events())
        self.events += [("quality", e) for e in events.events()]


@settings(max_examples=200, deadline=None)
@given(rows=trades, cuts=st.lists(st.integers(0, 100), max_size=6))
def test_late_trades_a_block_at_a_time_come_where_one_at_a_time_came(rows, cuts) -> None:
    """Late trades, gaps and refused lines handed over as blocks arrive as the same events, at the same places
    among the bars, and their lines from the columns are those of the dicts."""
    lines = [trade_line(INST.inst_id, 1000 + i, px, sz, "buy" if b else "sell", T0 + t) for i, t, px, sz, b in rows]
    one = _feed(lines, cuts)
    blocks = _feed(lines, cuts, sink=_EventsAtOnce)
    assert blocks.events == one.events and blocks.state == one.state


def _fills_one_by_one(stream: TradeStream, rows: list[int], first: list[int], ids: list[int]) -> tuple:
    """The reference: each row's ids taken out of the missing ranges in turn (TradeStream._fill_gap)."""
    accepted, fills, duplicates = [], [], 0
    for i, lo, hi in zip(rows, first, ids):
        got = stream._fill_gap(lo, hi)
        accepted.append(got is not None)
        if got is None:
            duplicates += 1
        else:
            fills.append((i, *got))
    return accepted, fills, duplicates


ranges = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 12)), max_size=8)  # (gap before, length)
spans = st.lists(st.tuples(st.integers(0, 6), st.integers(1, 3)), min_size=1, max_size=40)  # (step, count)


@settings(max_examples=500, deadline=None)
@given(missing=ranges, spans=spans, rising=st.booleans(), seed=st.integers(0, 2**16), offset=st.integers(0, 150))
def test_seen_ids_taken_at_once_fill_and_duplicate_as_one_by_one(missing, spans, rising, seed, offset) -> None:
    """Rows whose ids were passed (a late block, a file read twice) judged at once: the same fills, duplicates and
    missing ranges left as judging them in turn."""
    known, at = [], 0
    for gap, length in missing:
        at += gap + 1
        known.append([at, at + length])
        at += length + 1
    ids, top = [], offset  # (missing ranges below, among and above the rows' ids)
    for step, count in spans:  # rising ids, each span `count` ids long (a trade's `count`)
        top += step + count
        ids.append((top - count + 1, top))
    if not rising:
        random.Random(seed).shuffle(ids)
    first = np.array([lo for lo, _ in ids], dtype=np.int64)
    last = np.array([hi for _, hi in ids], dtype=np.int64)
    rows = np.arange(len(ids), dtype=np.int64) * 2 + 1
    at_once, in_turn = TradeStream(INST, fill_empty=True), TradeStream(INST, fill_empty=True)
    at_once.missing = [list(r) for r in known]
    in_turn.missing = [list(r) for r in known]
    accepted = np.zeros(rows[-1] + 1, dtype=bool)
    at_once._take_seen(rows, _spread(first, rows),
                       _spread(last, rows), accepted)
    want_accepted, want_fills, want_duplicates = _fills_one_by_one(in_turn, rows.tolist(), first.tolist(),
                                                                   last.tolist())
    assert accepted[rows].tolist() == want_accepted
    assert at_once.counters["duplicates"] == want_duplicates
    got_fills = [t for block in at_once._fills for t in zip(*(x.tolist() for x in block))]
    assert got_fills == want_fills
    assert at_once.missing == in_turn.missing


def _spread(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A chunk-long column holding ``values`` at ``rows`` (what _take_seen indexes by row)."""
    out = np.zeros(int(rows[-1]) + 1, dtype=np.int64)
    out[rows] = values
    return out


@settings(max_examples=200, deadline=None)
@given(rows=trades, cuts=st.lists(st.integers(0, 100), max_size=6), restart=st.booleans())
def test_forgotten_missing_ranges_still_count_in_their_gap_and_do_not_depend_on_chunking(rows, cuts, restart,
                                                                                          ) -> None:
    """Past MAX_MISSING_RANGES (here 3) the oldest missing range is forgotten (a trade filling it later is a
    duplicate), but a gap waiting for its bar's close still counts its ids: the events are those of one chunk,
    however the trades are cut."""
    import indicator_core.streams.trade_stream as ts_module

    saved = ts_module.MAX_MISSING_RANGES
    ts_module.MAX_MISSING_RANGES = 3
    try:
        lines = [trade_line(INST.inst_id, 1000 + i, px, sz, "buy" if b else "sell", T0 + t)
                 for i, t, px, sz, b in rows]
        whole = _feed(lines, [])
        cut = _feed(lines, cuts, state={} if restart else None)
    finally:
        ts_module.MAX_MISSING_RANGES = saved
    assert cut.events == whole.events


def test_a_chunk_opening_more_gaps_than_are_kept_reports_every_one() -> None:
    """Every other trade missing, 41 gaps in one chunk against 10 ranges kept: each gap is reported with its
    missing id once its bar closes (it was lost when its range was forgotten before its bar closed)."""
    import indicator_core.streams.trade_stream as ts_module

    lines = [trade_line(INST.inst_id, 1000 + 2 * k, "100", "1", "buy", T0 + 3_000 * k) for k in range(41)]
    lines.append(trade_line(INST.inst_id, 1083, "100", "1", "buy", T0 + 10 * 60_000))  # a later minute closes all
    saved = ts_module.MAX_MISSING_RANGES
    ts_module.MAX_MISSING_RANGES = 10
    try:
        rec = _feed(lines, [])
    finally:
        ts_module.MAX_MISSING_RANGES = saved
    gaps = [e for kind, e in rec.events if kind == "quality" and e["event"] == "gap"]
    assert len(gaps) == 40 and all(g["missing"] == 1 for g in gaps)  # (the last, 1081-1082, waits in its minute)
    assert rec.state["counters"]["gaps"] == 40 and len(rec.state["pending_gaps"]) == 1
    assert len(rec.state["missing"]) == 10
