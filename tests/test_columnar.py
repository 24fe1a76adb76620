"""The column-wise JSON-lines parser agrees with the reference parser on every line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from indicator_core.sources import columnar, okx_jsonl, parsed
from indicator_core.sources.timecheck import TimeWindow
from tests.kernel_paths import on_both_paths, rejects_of
from tests.vaults import ETH_2023, ETH_PERP, OKX

FIELDS = ("ts", "trade_id", "count", "is_buy", "px_m", "px_s", "sz_m", "sz_s")
INST = "BTC-USDT-SWAP"


# every test here runs on both fast paths: the compiled kernel and the numpy one it stands in for
fast_path = on_both_paths("trades", columnar)


# a window that splits generated 13-digit timestamps (1.0e12 .. 2.0e12) about in half
SPLIT = TimeWindow(1_500_000_000_000, 1_600_000_000_000, "2017-07-14")


def assert_same(buf: bytes, inst: str = INST, first: int = 1, window: TimeWindow | None = SPLIT) -> None:
    """The column-wise parser equals the line-by-line reference, without and with a time window."""
    for w in (None, window):
        ref = okx_jsonl.parse_lines(buf, first, inst, w)
        fast = columnar.parse_chunk(buf, first, inst, None, w)
        assert fast.lines == ref.lines
        for f in FIELDS:
            a, b = getattr(fast, f), getattr(ref, f)
            assert a.tolist() == b.tolist(), f
        assert rejects_of(fast) == rejects_of(ref)


decimal_text = st.one_of(
    st.from_regex(r"\A[0-9]{1,8}(\.[0-9]{1,8})?\Z"),
    st.sampled_from(["0", "0.0", "-1", "1.", ".5", "1e5", "", "abc", "1.2.3", "12345678901234567890", "0000.10"]),
)
int_text = st.one_of(st.from_regex(r"\A[0-9]{1,19}\Z"), st.sampled_from(["", "-1", "0", "1.5", "x"]))
values = {
    "instId": st.one_of(st.just(INST), st.sampled_from(["ETH-USDT-SWAP", "", "BTC-USDT-SWAQ"])),
    "tradeId": int_text,
    "px": decimal_text,
    "sz": decimal_text,
    "side": st.one_of(st.sampled_from(["buy", "sell"]), st.sampled_from(["BUY", "hold", ""])),
    "ts": int_text,
    "count": int_text,
}


@st.composite
def line(draw) -> bytes:
    kind = draw(st.sampled_from(["trade"] * 8 + ["push", "raw"]))
    if kind == "raw":
        return draw(st.sampled_from([b"", b"   ", b"{", b"[]", b"null", b'{"a":1}', b"\xef\xbb\xbf{}", b'{"instId":"x"}\r']))
    keys = ["instId", "tradeId", "px", "sz", "side", "ts"]
    if draw(st.booleans()):
        keys.append("count")
    keys = [k for k in keys if draw(st.integers(0, 30)) > 0]  # sometimes a field is missing
    keys = draw(st.permutations(keys))
    obj: dict = {k: draw(values[k]) for k in keys}
    if draw(st.integers(0, 5)) == 0:
        obj["source"] = draw(st.sampled_from(["0", 0, "é", "a\"b", None, 1.5]))
    if draw(st.integers(0, 8)) == 0 and "px" in obj:
        obj["px"] = draw(st.sampled_from([1.5, 100, True, None]))
    if kind == "push":
        text = json.dumps({"arg": {"channel": "trades", "instId": INST}, "data": [obj, obj]})
    else:
        sep = draw(st.sampled_from([(",", ":"), (", ", ": ")]))
        text = json.dumps(obj, separators=sep, ensure_ascii=draw(st.booleans()))
    out = text.encode()
    if draw(st.integers(0, 20)) == 0:
        out += b"\r"
    if draw(st.integers(0, 20)) == 0:
        out = b"\xef\xbb\xbf" + out
    if draw(st.integers(0, 20)) == 0:
        out = out[: draw(st.integers(0, len(out)))]
    return out


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(line(), min_size=1, max_size=30), first=st.integers(1, 10**6))
def test_fast_equals_reference_on_generated_lines(lines: list[bytes], first: int) -> None:
    assert_same(b"\n".join(lines) + b"\n", first=first)


canonical_value = st.one_of(st.from_regex(r"\A[0-9]{0,19}(\.[0-9]{0,19})?\Z"), st.sampled_from(["0", "00.00", ".5"]))


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(canonical_value, canonical_value, canonical_value, canonical_value,
                               st.sampled_from(["buy", "sell"])), min_size=1, max_size=20))
def test_canonical_layout_edge_values(rows) -> None:
    """Lines in the exporter's exact layout with edge-case numbers: zeros, long mantissas, bare points."""
    lines = [
        '{"instId":"%s","tradeId":"%s","px":"%s","sz":"%s","side":"%s","ts":"%s"}' % (INST, t, p, s_, side, ts)
        for t, p, s_, ts, side in rows
    ]
    assert_same(("\n".join(lines) + "\n").encode())


short_value = st.text(alphabet="0123456789..../:-e \x05", min_size=1, max_size=9)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(short_value, short_value), min_size=1, max_size=20), same_length=st.booleans())
def test_short_decimals_read_from_one_word(rows, same_length: bool) -> None:
    """Prices and sizes of up to eight characters take the one-word path: points anywhere, two points,
    bytes next to the digits in ASCII, control bytes; all lines of one length or of mixed lengths."""
    if same_length:
        rows = [(p.ljust(8, "0")[:8], s_.ljust(8, "0")[:8]) for p, s_ in rows]
    lines = [
        '{"instId":"%s","tradeId":"%d","px":"%s","sz":"%s","side":"buy","ts":"1732320000000"}' % (INST, 7 + k, p, s_)
        for k, (p, s_) in enumerate(rows)
    ]
    assert_same(("\n".join(lines) + "\n").encode())


@pytest.mark.parametrize("path,inst", [
    (ETH_PERP / "trades_2024-08-08.jsonl", "ETH-USDT-SWAP"),
    (ETH_2023 / "trades_2023-02-02.jsonl", "ETH-USDT-SWAP"),
    (OKX / "ws-trades-2022-05-13.jsonl", "BTC-USDT"),
    (OKX / "ws-trades-2025.json", "BTC-USDT"),
])
def test_fast_equals_reference_on_real_files(path, inst) -> None:
    buf = path.read_bytes()
    if not buf.endswith(b"\n"):
        buf += b"\n"
    ts = sorted(int(json.loads(x)["ts"]) for x in buf.splitlines() if b'"data"' not in x)
    # a window that cuts the file's trades in two, with a bound of the clock
    middle = TimeWindow.for_day("2000-01-01", now_ms=0)
    if ts:
        middle = TimeWindow(ts[0], ts[len(ts) // 2], "x", clock_hi=ts[len(ts) // 2])
    assert_same(buf, inst, window=middle)
    assert len(columnar.parse_chunk(buf, 1, inst)) > 0


def test_big_mantissa_goes_to_python_ints() -> None:
    buf = b'{"instId":"BTC-USDT-SWAP","tradeId":"1","px":"1234567890123456789.5","sz":"1","side":"buy","ts":"5"}\n'
    assert_same(buf)
    assert columnar.parse_chunk(buf, 1, INST).px_m.tolist() == [12345678901234567895]


extra_field = st.sampled_from([
    ("count", st.from_regex(r"\A[0-9]{1,3}\Z")),
    ("source", st.sampled_from(["0", "1", "", "abcdefghijklmnop", "abcdefghijklmnopq", "a,b", "é"])),
    ("seqId", st.integers(0, 10**19)),
])


@st.composite
def one_layout_chunk(draw) -> bytes:
    """Lines that mostly share one layout (key order, spacing, extra fields), with edge values and strays."""
    keys = draw(st.permutations(["instId", "tradeId", "px", "sz", "side", "ts"]))
    extras = draw(st.lists(extra_field, max_size=2, unique_by=lambda e: e[0]))
    for name, _ in extras:
        keys.insert(draw(st.integers(0, len(keys))), name)
    sep = draw(st.sampled_from([(",", ":"), (", ", ": "), (",", ": ")]))
    plain = {
        "instId": st.just(INST), "tradeId": st.from_regex(r"\A[1-9][0-9]{0,17}\Z"),
        "px": st.from_regex(r"\A[1-9][0-9]{0,7}(\.[0-9]{1,8})?\Z"), "sz": st.from_regex(r"\A[0-9]{1,4}(\.[0-9]{1,4})?\Z"),
        "side": st.sampled_from(["buy", "sell"]), "ts": st.from_regex(r"\A1[0-9]{12}\Z"),
    }
    plain.update({name: strategy for name, strategy in extras})
    out = []
    for _ in range(draw(st.integers(1, 40))):
        roll = draw(st.integers(0, 9))
        if roll == 0:
            out.append(draw(line()))  # a stray line of any shape
            continue
        obj = {k: draw(plain[k] if roll > 2 else values.get(k, plain[k])) for k in keys}
        out.append(json.dumps(obj, separators=sep, ensure_ascii=False).encode())
    return b"\n".join(out) + b"\n"


@settings(max_examples=400, deadline=None)
@given(buf=one_layout_chunk(), first=st.integers(1, 10**6))
def test_fast_equals_reference_on_one_layout_chunks(buf: bytes, first: int) -> None:
    assert_same(buf, first=first)


def test_lines_in_one_layout_never_reach_the_reference(monkeypatch) -> None:
    """The exporter's layout, the spacing of json.dumps and OKX's extra fields all stay on the fast path."""
    calls: list[bytes] = []
    real = okx_jsonl.parse_line
    monkeypatch.setattr(okx_jsonl, "parse_line", lambda out, raw, *a: (calls.append(raw), real(out, raw, *a)))
    rows = [{"instId": INST, "tradeId": str(10**9 + k), "px": f"{60000 + k}.{k % 10}", "sz": str(k % 7 + 1),
             "side": "buy" if k % 3 else "sell", "ts": str(1732320000000 + 37 * k)} for k in range(500)]
    shapes = [
        lambda r: json.dumps(r, separators=(",", ":")),
        lambda r: json.dumps(r),
        lambda r: json.dumps({**r, "count": "3", "source": "0", "seqId": 123456789}),
        lambda r: json.dumps(dict(reversed(list(r.items()))), separators=(",", ":")),
    ]
    for shape in shapes:
        buf = "".join(shape(r) + "\n" for r in rows).encode()
        got = columnar.parse_chunk(buf, 1, INST)
        assert len(got) == 500 and not calls, shape(rows[0])
        assert_same(buf)  # the reference itself goes through parse_line
        calls.clear()
    counted = columnar.parse_chunk(("".join(shapes[2](r) + "\n" for r in rows)).encode(), 1, INST)
    assert (counted.count == 3).all()


@pytest.mark.parametrize("buf", [
    b'{"instId":"BTC-USDT-SWAP","tradeId":"1","px":"1","sz":"1","side":"buy","ts":"1"}\n',
    b'{"tradeId":"1","px":"1","sz":"1","ts":"1","instId":"BTC-USDT-SWAP","side":"buy"}\n' * 3,
    b'{"tradeId":"1","px":"1","sz":"1","ts":"1","instId":"BTC-USDT-SWAP","side":"sell"}\n' * 3,
    b'{"side":"sell","tradeId":"12","px":"1.5","sz":".5","ts":"17","instId":"BTC-USDT-SWAP"}\n' * 2,
    b'{"instId":"BTC-USDT-SWAP","tradeId":"1","px":"1","sz":"1","side":"buy","ts":"1","x":"1"}\n{"a":1}\n',
    b'{"a":1}\n' * 5,
    b"\n",
    b"{}\n",
])
def test_chunk_edges(buf: bytes) -> None:
    """Fields at the very start and end of a chunk, tiny chunks, chunks with no trade at all."""
    assert_same(buf)


CSV_NAMES = {"instId": "instrument_name", "tradeId": "trade_id", "side": "side", "px": "price", "sz": "size",
             "ts": "created_time"}


@st.composite
def csv_chunk(draw) -> tuple[bytes, bytes]:
    """A header in any column order (maybe an extra column) and rows, mostly plain, some odd."""
    order = draw(st.permutations(list(CSV_NAMES)))
    names = [CSV_NAMES[k] for k in order]
    extra = draw(st.booleans())
    if extra:
        names.insert(draw(st.integers(0, len(names))), "note")
    crlf = draw(st.integers(0, 5)) == 0
    plain = {
        "instId": st.just(INST), "tradeId": st.from_regex(r"\A[1-9][0-9]{0,17}\Z"),
        "px": st.from_regex(r"\A[1-9][0-9]{0,7}(\.[0-9]{1,8})?\Z"), "sz": st.from_regex(r"\A[0-9]{1,4}(\.[0-9]{1,4})?\Z"),
        "side": st.sampled_from(["buy", "sell"]), "ts": st.from_regex(r"\A1[0-9]{12}\Z"),
    }
    rows = []
    for _ in range(draw(st.integers(1, 30))):
        roll = draw(st.integers(0, 9))
        cells = []
        for name in names:
            field = next((k for k, v in CSV_NAMES.items() if v == name), None)
            if field is None:
                cells.append(draw(st.sampled_from(["", "x", "a long free text value", "é"])))
            else:
                value = draw(plain[field] if roll > 2 else values[field])
                if roll == 1 and draw(st.booleans()):
                    value = f'"{value}"' if draw(st.booleans()) else f" {value} "
                cells.append(value)
        if roll == 0:
            cells = cells[: draw(st.integers(0, len(cells)))]  # a short row
        rows.append(",".join(cells) + ("\r" if crlf else ""))
    return ",".join(names).encode(), ("\n".join(rows) + "\n").encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(chunk=csv_chunk(), first=st.integers(2, 10**6))
def test_csv_rows_fast_equal_reference(chunk: tuple[bytes, bytes], first: int) -> None:
    from indicator_core.sources import okx_csv
    from indicator_core.sources.parsed import ColumnBuilder

    header, body = chunk
    columns = okx_csv.parse_header(header, "test.csv")
    got = okx_csv.parse_chunk(body, first, INST, columns)
    ref = ColumnBuilder()
    lines = body.split(b"\n")[:-1]
    for k, raw in enumerate(lines):
        okx_csv.parse_row(ref, raw, first + k, INST, columns)
    want = ref.build(len(lines))
    assert got.lines == want.lines
    for f in FIELDS:
        assert getattr(got, f).tolist() == getattr(want, f).tolist(), f
    assert rejects_of(got) == rejects_of(want)


@pytest.mark.parametrize("crlf", [False, True])
def test_plain_csv_rows_never_reach_the_reference(monkeypatch, crlf: bool) -> None:
    """OKX's archive rows (and the same saved with Windows line ends) stay on the column-wise path."""
    from indicator_core.sources import okx_csv

    body = (OKX / "MATIC-USDT-SWAP-trades-2023-08-21.csv").read_bytes()
    header, rows = body.split(b"\n", 1)
    rows = rows * 50
    if crlf:
        rows = rows.replace(b"\n", b"\r\n")
    calls: list[bytes] = []
    real = okx_csv.parse_row
    monkeypatch.setattr(okx_csv, "parse_row", lambda out, raw, *a: (calls.append(raw), real(out, raw, *a)))
    got = okx_csv.parse_chunk(rows, 2, "MATIC-USDT-SWAP", okx_csv.parse_header(header, "x"))
    assert len(got) == rows.count(b"\n") and not calls and not got.rejects


@settings(max_examples=200, deadline=None)
@given(json_chunk=one_layout_chunk(), stray=st.lists(line(), max_size=5), csv=csv_chunk())
def test_positions_never_decrease_from_line_to_line(json_chunk: bytes, stray: list[bytes], csv) -> None:
    """``_Lines.word_at`` and ``_Lines.span_at`` check bounds on a column's first and last entries only: that is
    sound because every column of positions they are handed never decreases from one line to the next, on any
    input."""
    from indicator_core.sources import okx_csv

    real, real_span = columnar._Lines.word_at, columnar._Lines.span_at

    def checked(self, pos, ok):
        assert (np.diff(pos) >= 0).all(), pos
        return real(self, pos, ok)

    def checked_span(self, pos, width):
        assert (np.diff(pos) >= 0).all(), pos
        return real_span(self, pos, width)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(columnar._Lines, "word_at", checked)
        mp.setattr(columnar._Lines, "span_at", checked_span)
        columnar.parse_chunk(json_chunk + b"".join(s + b"\n" for s in stray), 1, INST)
        header, body = csv
        okx_csv.parse_chunk(body, 2, INST, okx_csv.parse_header(header, "test.csv"))


def test_window_rejects_carry_the_reason_on_both_paths() -> None:
    """Out-of-window trades leave the fast path and are rejected with the reference's reason."""
    w = TimeWindow.for_day("2024-11-23")
    good = [1732320000000 + 1000 * k for k in range(20)]
    stamps = [*good[:5], 1732320000000000, *good[5:10], 253402300800000, *good[10:15], 1732320000000 + 90_000_000,
              *good[15:]]
    buf = "".join('{"instId":"%s","tradeId":"%d","px":"1.5","sz":"2","side":"buy","ts":"%d"}\n' % (INST, 10 + k, t)
                  for k, t in enumerate(stamps)).encode()
    assert_same(buf, window=w)
    got = columnar.parse_chunk(buf, 1, INST, None, w)
    assert got.ts.tolist() == good
    refused = got.all_rejects()
    assert [(r.line, r.reason.split(" (")[0]) for r in refused] == [
        (6, "ts 1732320000000000 is not epoch milliseconds of 2009-2099"),
        (12, "ts 253402300800000 is not epoch milliseconds of 2009-2099"),
        (18, "ts 1732410000000"),
    ]
    assert "microseconds" in refused[0].reason and "outside the file's day 2024-11-23" in refused[2].reason
    assert [r.ts for r in refused] == [1732320000000000, 253402300800000, 1732410000000]  # refused for the time only


@settings(max_examples=200, deadline=None)
@given(buf=st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"\n")))
def test_line_ends_of_the_kernel_equal_numpy(buf: bytes) -> None:
    expected = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 0x0A).tolist()
    assert parsed.line_ends(buf).tolist() == expected


def test_layout_codes_name_every_value() -> None:
    layout = columnar.learn_layout(b'{"instId":"BTC-USDT-SWAP","tradeId":"7","px":"1.5","sz":"2","side":"buy",'
                                   b'"ts":"1700000000000","count":"3","source":"x","seqId":12}', INST)
    assert layout is not None
    assert layout.codes == bytes([0, 3, 4, 5, 1, 2, 6, 7])


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.text(alphabet='ab,"}9', max_size=12), min_size=3, max_size=30), k=st.integers(1, 3),
       given_count=st.booleans())
def test_line_ends_read_off_the_commas_are_every_line_end_or_none(rows: list[str], k: int,
                                                                  given_count: bool) -> None:
    """Without the kernel, the line ends of an OKX chunk are guessed from its commas (each line ending as far
    after its last comma as the first line does) and checked; whatever the lines hold, a guess that is
    returned with the chunk's count is exactly the chunk's line ends, and one returned without it (for the
    parse to prove) is line ends, the chunk's last among them."""
    buf = ("\n".join(rows) + "\n").encode()
    assume(len(buf) >= 16)  # the parser reads shorter chunks line by line
    v = columnar._Lines(buf)
    truth = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 0x0A)
    commas = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 0x2C)
    got = columnar._ends_after_commas(v, commas, k, len(truth) if given_count else None)
    if given_count:
        assert got is None or got.tolist() == truth.tolist()
    else:
        assert got is None or (set(got.tolist()) <= set(truth.tolist()) and got[-1] == len(buf) - 1)


def _exporter_line(k: int) -> bytes:
    return (b'{"instId":"%s","tradeId":"%d","px":"9%d.5","sz":"0.0%d","side":"%s","ts":"17323200%05d"}'
            % (INST.encode(), 100 + k, k, k % 7 + 1, b"buy" if k % 3 else b"sell", k))


@settings(max_examples=300, deadline=None)
@given(n=st.integers(2, 40), cuts=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from([b"\n", b"\n\n", b""])),
                                            max_size=4), first=st.integers(1, 10**6))
def test_line_ends_guessed_without_a_count_are_proven_or_searched(n: int, cuts: list, first: int) -> None:
    """Lines in the exporter's layout with line ends put inside them (or a byte taken out): the guesses
    off the commas still land on line ends, yet the chunk holds others; the parse proves its guesses only
    by lines that all fit, else counts and searches: always the reference's trades, rejects and count."""
    buf = bytearray(b"\n".join(_exporter_line(k) for k in range(n)) + b"\n")
    for at, put in cuts:
        at %= len(buf) - 1
        buf[at:at + (0 if put else 1)] = put
    assert_same(bytes(buf), first=first)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["17323200", "17323201", "00000000", "1732320", "99999999"]),
                               st.from_regex(r"\A[0-9]{0,11}\Z"), st.sampled_from(["", "x", ".5", "-"])),
                     min_size=2, max_size=30))
def test_ids_and_times_that_begin_alike_read_as_the_reference(rows) -> None:
    """The kernel remembers the first eight digits of the last trade id and time it read: ids and times that
    share them, differ after them, are shorter, longer, all zeros, or end in a stray byte read as the
    reference reads them."""
    lines = [b'{"instId":"%s","tradeId":"%s","px":"1.5","sz":"2","side":"buy","ts":"%s"}'
             % (INST.encode(), (head + tail + bad).encode(), (head + tail[:5] + bad).encode())
             for head, tail, bad in rows]
    assert_same(b"\n".join(lines) + b"\n")


def test_guessed_line_ends_of_lines_with_no_layout_are_counted() -> None:
    """No line has the layout's five commas (the first six, the next four), the guesses land on line ends,
    and a line end lies between them: counted and searched, not read as two lines."""
    first = _exporter_line(0).replace(b'"px":"9', b'"px":"9,')  # a sixth comma
    delta = len(first) - first.index(b'","side"') - 1  # from its fifth comma to its end
    buf = first + b"\n{,}\n,,," + b"q" * (delta - 1) + b"\n"
    v = columnar._Lines(buf)
    assert columnar._ends_after_commas(v, np.flatnonzero(v.bytes == 0x2C), 5, None) is not None
    assert_same(buf)


def test_a_clean_chunk_is_not_counted_before_its_parse(monkeypatch) -> None:
    """Lines that all fit prove the guessed ends: no pass over the bytes to count them (the kernel counts
    the lines as it reads them)."""
    buf = b"".join(_exporter_line(k) + b"\n" for k in range(300))
    monkeypatch.setattr(columnar, "count_lines", lambda buf: pytest.fail("counted"))
    got = columnar.parse_chunk(buf, 1, INST)
    assert got.lines == len(got) == 300
    monkeypatch.undo()
    assert_same(buf)


def test_line_ends_of_plain_okx_lines_are_read_off_their_commas() -> None:
    """The guess is taken on the lines an exporter writes (so the search of every byte is skipped), and a
    chunk where one line's last value is longer is searched instead, with the same result."""
    lines = [_exporter_line(k) for k in range(50)]
    buf = b"\n".join(lines) + b"\n"
    v = columnar._Lines(buf)
    commas = np.flatnonzero(v.bytes == 0x2C)
    truth = np.flatnonzero(v.bytes == 0x0A).tolist()
    assert columnar._ends_after_commas(v, commas, 5, None).tolist() == truth
    odd = buf.replace(b'"ts":"1732320000007"', b'"ts":"17323200000070"')
    v = columnar._Lines(odd)
    assert columnar._ends_after_commas(v, np.flatnonzero(v.bytes == 0x2C), 5, None) is None
    assert_same(odd)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=16, max_size=80), width=st.integers(1, 6),
       pos=st.lists(st.integers(-60, 120), min_size=1, max_size=20))
def test_spans_read_bytes_outside_the_chunk_as_zeros(data: bytes, width: int, pos: list[int]) -> None:
    """``span_at`` gathers ``8 * width`` bytes a row at once; rows that reach past either end of the chunk
    read zeros there (no literal or value byte is a zero, so such a row never passes for one)."""
    at = np.array(sorted(pos), dtype=np.int64)
    got = columnar._Lines(data).span_at(at, width)
    padded = b"\0" * 200 + data + b"\0" * 200
    want = [padded[p + 200:p + 200 + 8 * width] for p in at.tolist()]
    assert [row.tobytes() for row in got] == want
