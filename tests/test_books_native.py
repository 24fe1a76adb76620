"""The compiled kernel of the book stream (_native_books.c) gives exactly what the pure path gives.

Each piece is compared with the pure code it stands in for: reading a push line
(on hypothesis-generated lines, hand-made bad ones and the recorded pushes),
applying levels to a book side (the sides' whole inner state, after every
update), the checksum, and whole ``indicators run`` passes (every output byte).
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indicator_core import native
from indicator_core.streams import book_stream
from indicator_core.streams import okx_books as books
from indicator_core.streams import order_book as book_mod
from indicator_core.streams.book_stream import BookStream
from indicator_core.streams.okx_books import Push
from indicator_core.streams.order_book import Book, Side, checksum_of
from tests.vaults import OKX, outputs, run

KERNEL = native.load("books")
pytestmark = pytest.mark.skipif(KERNEL is None, reason="the compiled kernel is not built in this install")

REAL = OKX / "ws-books-2022-05-13.jsonl"
INST = "BTC-USDT-SWAP"


@contextmanager
def path(compiled: bool):
    """Run the block on the compiled kernel or on the pure path."""
    saved = books._KERNEL, book_stream._KERNEL, book_mod._KERNEL
    books._KERNEL = book_stream._KERNEL = book_mod._KERNEL = KERNEL if compiled else None
    try:
        yield
    finally:
        books._KERNEL, book_stream._KERNEL, book_mod._KERNEL = saved


def read(buf: bytes, inst: str = INST, channel: str = "books", compiled: bool = True):
    """Every item of a chunk and the chunk's counts, on one path."""
    with path(compiled):
        p = books.parse_chunk(SimpleNamespace(buf=buf, first_line=3), inst, channel)
        items = list(p)
    return items, (p.lines, p.other_channel, p.control)


def assert_same_reading(lines: list[bytes], inst: str = INST, channel: str = "books") -> list:
    buf = b"".join(line + b"\n" for line in lines)
    fast, pure = read(buf, inst, channel, True), read(buf, inst, channel, False)
    assert fast == pure
    return fast[0]


def side_state(s: Side) -> tuple:
    """Everything of a side but its share of the interleaved pieces (the kernel hashes both sides' pieces in place)."""
    return list(s.keys), dict(s.levels), dict(s.by_text), None if s.top is None else list(s.top)


def book_state(b: Book) -> tuple:
    exact = [[(str(p), str(s)) for p, s in side.decimals()] for side in (b.bids, b.asks)]  # str: the exponent too
    return side_state(b.bids), side_state(b.asks), b.bids.texts(), b.asks.texts(), b.crossed(), b.bids.best(), \
        b.asks.best(), exact


def line_of(action: str = "update", asks=(), bids=(), ts="1723075200100", checksum=0, seq=None, prev=None,
            inst=INST, channel="books") -> bytes:
    item: dict = {"asks": [list(a) for a in asks], "bids": [list(b) for b in bids], "ts": ts, "checksum": checksum}
    if seq is not None:
        item["prevSeqId"], item["seqId"] = prev, seq
    return orjson.dumps({"arg": {"channel": channel, "instId": inst}, "action": action, "data": [item]})


# --- reading a line -----------------------------------------------------------------------
def test_the_recorded_pushes_are_read_in_c_as_the_pure_path_reads_them() -> None:
    lines = REAL.read_bytes().splitlines()
    insts = {orjson.loads(line)["arg"]["instId"] for line in lines}
    for inst in insts:
        mine = [line for line in lines if orjson.loads(line)["arg"]["instId"] == inst]
        items = assert_same_reading(lines, inst)
        assert sum(type(i) is Push for i in items) == len(mine)  # every push of the instrument, others skipped
        prefix = books._prefix(inst, "books")
        for n, line in enumerate(mine, 1):  # and each of its lines was read by the kernel, not passed on
            got = KERNEL.parse(line, prefix, n, Push)
            assert got is not None and [got] == books.parse_line(line, n, inst, "books")


BAD_LINES = [
    line_of(asks=[("100", "-1", "0", "1")]),  # negative size
    line_of(asks=[("-100", "1", "0", "1")]),  # negative price
    line_of(asks=[("0", "1", "0", "1")]),  # zero price
    line_of(asks=[("0.000", "1", "0", "1")]),
    line_of(bids=[("00.0", "1")]),
    line_of(asks=[("1e5", "1", "0", "1")]),  # not a plain decimal
    line_of(asks=[("5.", "1", "0", "1")]),
    line_of(asks=[(".5", ".5", "0", "1")]),  # plain: read
    line_of(asks=[("100", "1.", "0", "1")]),
    line_of(asks=[("1.2.3", "1", "0", "1")]),
    line_of(asks=[("", "1", "0", "1")]),
    line_of(asks=[("100", "", "0", "1")]),
    line_of(asks=[(" 100", "1", "0", "1")]),
    line_of(asks=[("１００", "1", "0", "1")]),  # non-ASCII digits
    line_of(asks=[(100, "1", "0", "1")]),  # not strings
    line_of(asks=[("100", 1, "0", "1")]),
    line_of(asks=[("100", None)]),
    line_of(asks=[("100",)]),  # short level
    line_of(asks=[()]),
    line_of(asks=[("100", "1", 0, 1)]),  # extra fields not strings
    line_of(asks=[("100", "1", "é", "1")]),  # extra fields beyond ASCII, or with escapes
    line_of(asks=[("100", "1", "a\"b", "1")]),
    line_of(asks=[("100", "1", "\u0001", "1")]),
    line_of(asks=[("100", "1", "0", "1", "x", "y", "z", "w", "v", "u", "t")]),  # many extra fields
    line_of(asks=[("100", "1")], bids=[("99", "2")]),
    line_of(inst="ETH-USDT-SWAP", asks=[("100", "1")]),  # wrong instrument
    line_of(inst="BTC-USDT-SWAP2", asks=[("100", "1")]),
    line_of(channel="books5", asks=[("100", "1")]),  # another channel
    line_of(channel="book", asks=[("100", "1")]),
    line_of(action="partial", asks=[("100", "1")]),
    line_of(action="Snapshot"),
    line_of(ts="17230752001OO"),
    line_of(ts=""),
    line_of(ts=1723075200100),  # ts not a string
    line_of(ts="-1723075200100"),
    line_of(ts="0001723075200100"),
    line_of(ts="1" * 19),  # longer than the kernel reads: the pure path decides
    line_of(ts="9" * 18),  # the longest integers the kernel reads itself
    line_of(checksum=10**18 - 1, seq=10**18 - 1, prev=-(10**18 - 1)),
    line_of(checksum=-(10**18)),  # 19 digits: the pure path
    line_of(checksum=-2147483648),
    line_of(checksum=2**40),
    line_of(checksum=2**63 - 1),
    line_of(checksum="12"),
    line_of(seq=5, prev=4),
    line_of(seq=5, prev=-1),
    line_of(seq=2**62, prev=2**62 - 1),
    line_of(seq=2**64 - 1, prev=2**64 - 2),
    line_of(seq="5", prev="4"),
    line_of(seq=None, prev=4) + b"",
    line_of(asks=[("100", "1")]) + b"\r",  # a Windows line end: read
    line_of(asks=[("100", "1")]) + b" ",
    line_of(asks=[("100", "1")]) + b"x",
    line_of(asks=[("100", "1")])[:-1],  # cut short
    line_of(asks=[("100", "1")])[:-20],
    line_of(asks=[("100", "1")]).replace(b'"checksum":0', b'"checksum":01'),  # not JSON
    line_of(asks=[("100", "1")]).replace(b'"checksum":0', b'"checksum":-0'),
    line_of(asks=[("100", "1")]).replace(b'"checksum":0', b'"checksum":-'),
    line_of(asks=[("100", "1")]).replace(b'"checksum":0', b'"checksum":1.5'),
    line_of(seq=5, prev=4).replace(b'"seqId":5', b'"seqId":05'),
    line_of(asks=[("100", "1")]).replace(b'"asks"', b'"asks" '),  # spaces
    line_of(asks=[("100", "1")]).replace(b'"ts"', b'"tS"'),
    line_of(asks=[("100", "1")]).replace(b'[["100"', b'[ ["100"'),
    line_of(asks=[("100", "1")]).replace(b',"bids"', b',"bids":[],"bids"'),
    line_of(asks=[("100", "1")]).replace(b"}]}", b"},{}]}"),
    line_of(asks=[("100", "1")]).replace(b"}]}", b"}],\"x\":1}"),
    b'{"arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"action":"update","data":[]}',
    b'{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT-SWAP"}}',
    b'{"arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"action":"update","data":[{"asks":[["100","1","0","1"]],'
    b'"bids":[],"ts":"1723075200100","checksum":0}]',
    b"",
    b"   ",
    b"\xff\xfe",
    b"[]",
    b"null",
]


def test_bad_and_unusual_lines_are_read_as_the_pure_path_reads_them() -> None:
    items = assert_same_reading(BAD_LINES)
    assert any(type(i) is Push for i in items) and any(type(i) is not Push for i in items)
    for line in BAD_LINES:  # one by one too: the line numbers and the counts of each
        assert_same_reading([line])


def test_the_kernel_reads_only_lines_the_layout_regex_accepts() -> None:
    prefix = books._prefix(INST, "books")
    shape = books._shape(INST, "books")
    for n, line in enumerate(BAD_LINES):
        got = KERNEL.parse(line, prefix, n, Push)
        if got is not None:
            assert shape(line) is not None, line
            assert [got] == books.parse_line(line, n, INST, "books")


def test_the_kernel_reads_the_layout_itself_up_to_18_digits() -> None:
    prefix = books._prefix(INST, "books")
    for line in (line_of(ts="9" * 18), line_of(checksum=10**18 - 1, seq=10**18 - 1, prev=-(10**18 - 1)),
                 line_of(asks=[(".5", ".5", "0", "1")]), line_of(asks=[("100", "1")]) + b"\r",
                 line_of("snapshot", bids=[("0.001", "0")])):
        got = KERNEL.parse(line, prefix, 1, Push)
        assert got is not None and [got] == books.parse_line(line, 1, INST, "books")
    for line in (line_of(ts="1" * 19), line_of(checksum=-(10**18)), line_of(seq=10**18, prev=1)):
        assert KERNEL.parse(line, prefix, 1, Push) is None


def test_lines_are_read_a_few_at_a_time_with_their_numbers() -> None:
    prefix = books._prefix(INST, "books")
    good, bad = line_of(asks=[("100", "1")]), b'{"event":"subscribe"}'
    buf = good + b"\n" + bad + b"\r\n" + good + b"\n" + good  # the last line has no line end yet: not read
    items, pos, line_no = KERNEL.parse_lines(buf, 0, prefix, 7, Push, 2)
    assert [type(i) for i in items] == [Push, tuple] and items[0].line == 7 and items[1] == (8, bad + b"\r")
    assert pos == len(good) + len(bad) + 3 and line_no == 9
    items, pos, line_no = KERNEL.parse_lines(buf, pos, prefix, line_no, Push, 64)
    assert [i.line for i in items] == [9] and pos == len(buf) - len(good) and line_no == 10
    assert KERNEL.parse_lines(buf, pos, prefix, line_no, Push, 64) == ([], pos, 10)
    assert KERNEL.parse_lines(buf, 10**9, prefix, 1, Push, 64) == ([], len(buf), 1)
    # a chunk of many lines: the same items, whatever number of lines one call reads
    lines = REAL.read_bytes().splitlines() * 3 + BAD_LINES
    fast = read(b"".join(line + b"\n" for line in lines), "BTC-USD-220527")
    saved = books._LINES_AT_ONCE
    try:
        for n in (1, 5, 1000):
            books._LINES_AT_ONCE = n
            assert read(b"".join(line + b"\n" for line in lines), "BTC-USD-220527") == fast
    finally:
        books._LINES_AT_ONCE = saved
    assert fast == read(b"".join(line + b"\n" for line in lines), "BTC-USD-220527", compiled=False)


def test_names_the_kernel_does_not_read_are_left_to_the_pure_path() -> None:
    assert books._prefix('BTC"X', "books") is None and books._prefix("BTC\\X", "books") is None
    assert books._prefix("BTC-É", "books") is None
    odd = 'BTC"X'
    assert_same_reading([line_of(inst=odd, asks=[("100", "1")])], inst=odd)


decimal_text = st.one_of(
    st.from_regex(r"\A[0-9]{1,6}(\.[0-9]{1,4})?\Z"),
    st.sampled_from(["0", "0.0", "00", "-1", "1.", ".5", "1e5", "", "1.2.3", "0001.10", "7", "100", "100.0", " 1"]),
)
text_or_not = st.one_of(decimal_text, decimal_text, decimal_text, st.integers(-5, 5), st.none())
level = st.tuples(text_or_not, text_or_not).map(list) | st.lists(decimal_text, min_size=0, max_size=6)
levels = st.lists(level, max_size=6)
int_or_not = st.one_of(st.integers(-2**63, 2**64 - 1), st.integers(-1000, 1000), st.sampled_from(["5", None, 1.5]))


@st.composite
def push_lines(draw) -> bytes:
    item: dict = {"asks": draw(levels), "bids": draw(levels),
                  "ts": draw(st.one_of(st.from_regex(r"\A[0-9]{1,20}\Z"), st.integers(0, 2**45), st.just("x"))),
                  "checksum": draw(int_or_not)}
    if draw(st.booleans()):
        item["prevSeqId"], item["seqId"] = draw(int_or_not), draw(int_or_not)
    doc = {"arg": {"channel": draw(st.sampled_from(["books", "books", "books5"])),
                   "instId": draw(st.sampled_from([INST, INST, INST, "ETH-USDT-SWAP"]))},
           "action": draw(st.sampled_from(["snapshot", "update", "update", "partial"])), "data": [item]}
    line = orjson.dumps(doc)
    edit = draw(st.integers(0, 9))
    if edit == 0:  # a byte changed, removed or added somewhere
        i = draw(st.integers(0, len(line)))
        b = draw(st.sampled_from([b"", b" ", b"0", b'"', b"\\", b",", b"]", b"-", b"\r", b"\x00"]))
        line = line[:i] + b + line[i + draw(st.integers(0, 1)):]
    elif edit == 1:
        line = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    elif edit == 2:
        line += b"\r"
    return line


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(push_lines(), min_size=1, max_size=5))
def test_generated_lines_are_read_as_the_pure_path_reads_them(lines: list[bytes]) -> None:
    assert_same_reading(lines)


# --- the book side -----------------------------------------------------------------------
px_text = st.sampled_from(["100", "100.0", "100.00", "0100", "99.5", "99.50", "101", "101.0", "98", "97.25", "102",
                           "103.5", "1", ".5", "0.5", "100.1", "99.9", "120", "80"]) | st.from_regex(
    r"\A[1-9][0-9]{0,2}(\.[0-9]{1,2})?\Z")
sz_text = st.sampled_from(["0", "0.0", "0.000", "00", "1", "2.5", "10", "0.001", "3"]) | st.from_regex(
    r"\A[0-9]{1,3}(\.[0-9]{1,2})?\Z")
rows = st.lists(st.tuples(px_text, sz_text).map(list), max_size=12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(rows, rows, st.booleans(), st.booleans()), min_size=1, max_size=25))
def test_applying_levels_in_c_keeps_the_same_book_as_the_pure_path(steps) -> None:
    """Prices written two ways, zero sizes, removals of absent levels, deep books and the first-25 bookkeeping."""
    books_ = []
    for compiled in (True, False):
        with path(compiled):
            b, states = Book(), []
            for bids, asks, check, clear in steps:
                if clear:
                    b.clear()
                b.apply(bids, asks)
                states.append((book_state(b), b.checksum() if check else None))
            books_.append(states)
    fast, pure = books_
    assert fast == pure
    for state, ck in fast:
        if ck is not None:
            assert ck == checksum_of(state[2][:25], state[3][:25])


def test_a_deep_book_tracks_its_first_25_levels_in_c() -> None:
    lines = REAL.read_bytes().splitlines()
    for compiled in (True, False):
        with path(compiled):
            b = Book()
            seen = []
            for line in lines:
                item = orjson.loads(line)["data"][0]
                if orjson.loads(line)["action"] == "snapshot":
                    b.clear()
                b.apply(item["bids"], item["asks"])
                seen.append((b.checksum(), b.bids.texts(), b.asks.texts(), b.bids.top, b.asks.top))
            if compiled:
                fast = seen
    assert fast == seen


def test_update_leaves_rows_it_does_not_read_to_the_pure_path() -> None:
    s = Side(True)
    s.update([["100", "1"]])
    before = side_state(s)
    for bad in ([["100", 2]], [[100, "2"]], [["100"]], ["100:2"], [{"100": "2"}], (("100", "2"),)[0:0] or None):
        if bad is None:
            continue
        assert KERNEL.update(s, bad) is False
        assert side_state(s) == before
    assert KERNEL.update(s, (("100", "3"),)) is True and s.texts() == [("100", "3")]
    assert KERNEL.update(s, iter([["100", "4"]])) is False


def test_prices_written_two_ways_are_one_level_in_c() -> None:
    with path(True):
        b = Book()
        b.apply([["100", "1"], ["99.5", "2"]], [["101", "1"]])
        b.checksum()
        b.apply([["100.0", "3"], ["099.50", "0"]], [["101.00", "0"]])
        assert b.bids.texts() == [("100.0", "3")] and b.asks.texts() == [] and b.bids.by_text == {"100.0": Decimal("-100")}
        assert b.checksum() == checksum_of([("100.0", "3")], [])


def test_exact_levels_in_c_keep_the_price_as_the_book_holds_it() -> None:
    """The same piece "100.0:3" at the key of "100" and at its own key: prices 100 and 100.0, as the pure path says."""
    out = []
    for compiled in (True, False):
        with path(compiled):
            for _ in range(2):  # the second time from the kernel's cache
                one, two = Book(), Book()
                one.apply([["100", "1"]], [["101", "1"]])
                one.apply([["100.0", "3"]], [["101.00", "2"]])
                two.apply([["100.0", "3"]], [["101.00", "2"]])
                out.append([[(str(p), str(z)) for p, z in side.decimals()]
                            for side in (one.bids, one.asks, two.bids, two.asks)])
                deep = Side(False)
                deep.update([[f"{i}.5", f"{i % 7}"] for i in range(1, 3000)])
                got = list(deep.decimals())
                out.append((len(got), got[0], got[31], got[32], got[-1]))
                assert [(p, z) for p, z in got] == [(Decimal(f"{i}.5"), Decimal(f"{i % 7}")) for i in range(1, 3000)
                                                    if i % 7]
    assert out[0] == [[("100", "3")], [("101", "2")], [("100.0", "3")], [("101.00", "2")]]
    assert out[0] == out[2] == out[4] == out[6] and out[1] == out[3] == out[5] == out[7]


def test_the_checksum_in_c_is_okx_crc32() -> None:
    for bids, asks in ([], []), (["1:2"], []), ([], ["3:4"]), (["1:2", "5:6"], ["3:4"]), (["é:1"], ["x" * 5000]):
        text = ":".join([p for pair in zip(bids, asks) for p in pair] + bids[len(asks):] + asks[len(bids):])
        crc = zlib.crc32(text.encode())
        assert KERNEL.checksum(bids, asks) == (crc - (1 << 32) if crc >= 1 << 31 else crc)
        assert KERNEL.checksum(bids, asks) == book_mod._crc(bids, asks)
    with pytest.raises(TypeError):
        KERNEL.checksum(["1:2", 3], [])


def test_apply_checks_as_the_stream_does() -> None:
    """A checksum that differs (or cannot be a CRC-32), then a crossed book; rows it does not read are left alone."""
    b = Book()
    assert KERNEL.apply(b, [["100", "1"]], [["101", "2"]], 0) == 0
    good = checksum_of([("100", "1")], [("101", "2")])
    assert KERNEL.apply(b, [], [], good) == 0 and b.crc == good
    assert KERNEL.apply(b, [], [], good + 1) == 1
    assert KERNEL.apply(b, [], [], 2**70) == 1
    assert KERNEL.apply(b, [["101.5", "1"]], [], 0) == 2  # crossed: the bid is above the ask
    assert KERNEL.apply(b, [["101.5", "0"]], [["100.5", "1"]], 0) == 0
    assert KERNEL.apply(b, [], [["99.5", "1"]], 0) == 2
    assert KERNEL.apply(b, [], [["99.5", "0"], ["100.5", "0"]], checksum_of([("100", "1")], [("101", "2")])) == 0
    before = book_state(b)
    assert KERNEL.apply(b, [["99", "1"]], [["102", 3]], 0) is None and book_state(b) == before
    with path(False):
        pure = Book()
        pure.apply([["100", "1"], ["101.5", "1"], ["101.5", "0"]],
                   [["101", "2"], ["100.5", "1"], ["99.5", "1"], ["99.5", "0"], ["100.5", "0"]])
        assert pure.checksum() == b.crc
    assert book_state(pure) == before


def test_the_key_cache_stays_bounded_and_gives_the_same_keys() -> None:
    s = Side(False)
    for i in range(1, 20_000):
        s.update([[f"{i}.5", "1"], [f"{i}.5", "0"]])
    assert len(s) == 0
    s.update([["7.50", "1"], ["7.5", "2"]])
    assert s.texts() == [("7.5", "2")] and s.keys == [Decimal("7.5")]


# --- whole passes ----------------------------------------------------------------------------
def _stream(lines: list[bytes], compiled: bool) -> tuple:
    class Sink:
        def __init__(self) -> None:
            self.out: list = []

        def quality(self, e) -> None:
            self.out.append(e)

        def book(self, m) -> None:
            self.out.append((m.minute, m.valid, list(m.taint), m.book_ts, list(m.bids()), list(m.asks())))

    with path(compiled):
        s, sink = BookStream("books"), Sink()
        buf = b"".join(line + b"\n" for line in lines)
        half = buf.index(b"\n", len(buf) // 2) + 1
        s.process(books.parse_chunk(SimpleNamespace(buf=buf[:half], first_line=1), INST, "books"), "f", sink)
        mid = s.to_state()
        s2 = BookStream("books")
        s2.set_state(orjson.loads(orjson.dumps(mid)))  # resumed from the state file in the middle
        s2.process(books.parse_chunk(SimpleNamespace(buf=buf[half:], first_line=buf[:half].count(b"\n") + 1), INST,
                                     "books"), "f", sink)
        return sink.out, s2.to_state()


@pytest.mark.parametrize("options", [dict(), dict(checksums=False), dict(seq=False, gap_every=57),
                                     dict(gap_every=41, reset_every=33, heartbeat_every=7)])
def test_generated_streams_give_the_same_minutes_events_and_state(options) -> None:
    from bench.generate_books import book_lines

    lines = [line.rstrip(b"\n") for _, line in book_lines(minutes=3, levels=60, interval_ms=250, seed=3, **options)]
    lines.insert(40, line_of(asks=[("100", "-1")], ts="1723075210000"))
    lines.insert(90, line_of(asks=[("0", "1")], ts="1723075230000"))
    fast, pure = _stream(lines, True), _stream(lines, False)
    assert fast == pure
    assert len(fast[0]) > 3


def test_a_run_on_the_kernel_writes_the_bytes_of_a_pure_run(tmp_path: Path) -> None:
    from tests.resume_cases import config, materialize

    got = []
    for compiled in (True, False):
        vault = tmp_path / ("compiled" if compiled else "pure")
        with path(compiled):
            materialize(vault, 0.45)  # a cut: the second run resumes from the state the first one left
            assert run(vault, config(tmp_path, 4096)) == 0
            materialize(vault, 1.0)
            assert run(vault, config(tmp_path, 4096)) == 0
        got.append(outputs(vault))
        state = vault / "state"
        got.append({p.relative_to(state).as_posix(): p.read_bytes() for p in sorted(state.rglob("*books*"))})
    assert got[0] == got[2] and got[1] == got[3]
    assert any("buckets" in name for name in got[0]) and got[1]


def test_the_environment_switch_gives_the_pure_path_the_same_bytes(tmp_path: Path) -> None:
    """``indicators run`` as a user starts it, with and without INDICATOR_CORE_PURE, on the recorded pushes."""
    import os
    import subprocess
    import sys

    from tests.test_buckets import _real_vault
    from tests.vaults import REPO

    trees = []
    for pure in (False, True):
        vault = tmp_path / ("pure" if pure else "compiled")
        _real_vault(vault)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop(native.PURE_ENV, None)
        if pure:
            env[native.PURE_ENV] = "1"
        done = subprocess.run([sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--quiet"],
                              env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        trees.append(outputs(vault))
    assert trees[0] == trees[1] and any(name.startswith("buckets/") for name in trees[0])
