"""The order-book stream (SPEC section 10): checksums, the sequence chain, invalid books, bad lines."""

from __future__ import annotations

import zlib
from pathlib import Path

import orjson
import pytest

from indicator_core.streams import book_stream, okx_books
from indicator_core.streams import order_book as book_module
from indicator_core.streams.order_book import Book, checksum_of
from indicator_core.sources.parsed import Reject
from indicator_core.streams.book_stream import BookStream
from indicator_core.streams.okx_books import parse_line
from tests.kernel_paths import on_both_paths
from tests.vaults import OKX

# every test here runs with the compiled book kernel and with the pure Python it stands in for
book_path = on_both_paths("books", okx_books, book_stream, book_module)


REAL = OKX / "ws-books-2022-05-13.jsonl"
T0 = 1_723_075_200_000  # 2024-08-08T00:00:00Z
INST = "BTC-USDT-SWAP"


class Sink:
    def __init__(self) -> None:
        self.events: list[dict] = []
        self.minutes: list[tuple] = []

    def quality(self, event: dict) -> None:
        self.events.append(event)

    def book(self, m) -> None:
        self.minutes.append((m.minute, m.valid, list(m.taint), m.best_bid(), m.best_ask(), m.book_ts))

    def kinds(self) -> list[str]:
        return [e["event"] for e in self.events]


def push(action: str, bids=(), asks=(), ts: int = T0, seq: int | None = None, prev: int | None = None,
         checksum: int = 0, inst: str = INST, channel: str = "books") -> bytes:
    item: dict = {"asks": [[p, s, "0", "1"] for p, s in asks], "bids": [[p, s, "0", "1"] for p, s in bids],
                  "ts": str(ts), "checksum": checksum}
    if seq is not None:
        item["prevSeqId"], item["seqId"] = prev, seq
    return orjson.dumps({"arg": {"channel": channel, "instId": inst}, "action": action, "data": [item]})


def feed(stream: BookStream, sink: Sink, lines: list[bytes], inst: str = INST) -> None:
    for n, line in enumerate(lines, 1):
        got = parse_line(line, n, inst, stream.channel)
        if isinstance(got, str):
            stream._reject("f", Reject(n, got, ""), sink)
        elif got is not None:
            for p in got:
                stream._push(p, "f", sink)


SNAP = dict(bids=[("100", "5"), ("99.5", "2")], asks=[("100.5", "3"), ("101", "4")])


# --- checksums -------------------------------------------------------------------------
def test_every_real_push_verifies_and_one_changed_size_does_not() -> None:
    lines = REAL.read_bytes().splitlines()
    assert len(lines) == 290
    by_inst: dict[str, list[bytes]] = {}
    for line in lines:
        by_inst.setdefault(orjson.loads(line)["arg"]["instId"], []).append(line)
    assert sorted(by_inst) == ["BTC-USD-220527", "BTC-USDT", "UNI-USD-SWAP"]
    for inst, inst_lines in by_inst.items():
        stream, sink = BookStream("books"), Sink()
        feed(stream, sink, inst_lines, inst)
        assert sink.events == [], inst
        assert stream.counters["pushes"] == len(inst_lines)
        assert stream.invalid is None and stream.book is not None
        # the same pushes with one size of the tenth push changed: its checksum no longer matches
        doc = orjson.loads(inst_lines[9])
        side = "asks" if doc["data"][0]["asks"] else "bids"
        lv = doc["data"][0][side][0]
        lv[1] = "0" if lv[1] != "0" else "1"
        bad = [*inst_lines[:9], orjson.dumps(doc), *inst_lines[10:]]
        stream, sink = BookStream("books"), Sink()
        feed(stream, sink, bad, inst)
        assert sink.kinds() == ["checksum"], inst
        assert stream.invalid == "checksum"
        assert stream.counters["skipped_invalid"] == len(inst_lines) - 10  # nothing applied until a snapshot


def test_checksum_string_interleaves_and_the_longer_side_continues() -> None:
    bids = [("3366.1", "7"), ("3366", "6")]
    asks = [("3366.8", "9"), ("3368", "8"), ("3372", "8")]
    text = "3366.1:7:3366.8:9:3366:6:3368:8:3372:8"
    crc = zlib.crc32(text.encode())
    assert checksum_of(bids, asks) == (crc - 2**32 if crc >= 2**31 else crc)
    # only the first 25 levels of each side count
    many = [(str(1000 - i), "1") for i in range(30)]
    assert checksum_of(many, []) == checksum_of(many[:25], [])
    assert checksum_of(many, []) != checksum_of(many[:24], [])


def test_checksum_follows_updates_kept_in_place():
    """The checksum pieces kept between updates match the book's levels after every kind of change."""
    import random

    rng = random.Random(5)
    for _ in range(300):
        book = Book()
        book.apply([[f"{100 - i}.5", str(rng.randint(1, 9))] for i in range(rng.randint(0, 40))],
                   [[f"{101 + i}", str(rng.randint(1, 9))] for i in range(rng.randint(0, 40))])
        for _ in range(40):
            # sizes changed, levels added and removed, at the top and deeper, a price written two ways
            bids = [[f"{100 - rng.randint(0, 45)}.5" + ("0" if rng.random() < 0.2 else ""),
                     rng.choice(["0", "1", "2.5", "3", "0.0"])] for _ in range(rng.randint(0, 4))]
            asks = [[f"{101 + rng.randint(0, 45)}", rng.choice(["0", "1", "2.5", "3"])] for _ in range(rng.randint(0, 4))]
            book.apply(bids, asks)
            if rng.random() < 0.5:
                assert book.checksum() == checksum_of(book.bids.texts(), book.asks.texts())
            if rng.random() < 0.02:
                book.clear()


def test_checksum_zero_means_no_checksum() -> None:
    stream, sink = BookStream("books"), Sink()
    feed(stream, sink, [push("snapshot", **SNAP, checksum=0), push("update", bids=[("100", "9")], checksum=0)])
    assert sink.events == [] and stream.invalid is None
    wrong = Book.from_state({"bids": [["100", "9"]], "asks": [["100.5", "3"]]}).checksum() + 1
    feed(stream, sink, [push("update", bids=[("100", "8")], checksum=wrong)])
    assert sink.kinds() == ["checksum"]


# --- the sequence ------------------------------------------------------------------------
def test_okx_documentation_sequence_example() -> None:
    """snapshot (prev -1, seq 10) -> (10, 15) -> heartbeat (15, 15) -> reset (15, 3) -> (3, 5): all applied."""
    stream, sink = BookStream("books"), Sink()
    feed(stream, sink, [
        push("snapshot", **SNAP, seq=10, prev=-1, ts=T0),
        push("update", bids=[("100", "6")], seq=15, prev=10, ts=T0 + 100),
        push("update", seq=15, prev=15, ts=T0 + 200),
        push("update", asks=[("100.5", "1")], seq=3, prev=15, ts=T0 + 300),
        push("update", bids=[("99.5", "0")], seq=5, prev=3, ts=T0 + 400),
    ])
    assert sink.events == []
    c = stream.counters
    assert (c["snapshots"], c["updates"], c["heartbeats"], c["resets"], c["duplicates"], c["seq_gaps"]) == (1, 4, 1, 1, 0, 0)
    assert stream.last_seq == 5 and stream.last_ts == T0 + 400
    assert stream.book.to_state() == {"bids": [["100", "6"]], "asks": [["100.5", "1"], ["101", "4"]]}


def test_duplicates_are_skipped_and_a_gap_invalidates_until_the_next_snapshot() -> None:
    stream, sink = BookStream("books"), Sink()
    feed(stream, sink, [
        push("snapshot", **SNAP, seq=10, prev=-1, ts=T0),
        push("update", bids=[("100", "6")], seq=15, prev=10, ts=T0 + 100),
        push("update", bids=[("100", "6")], seq=15, prev=10, ts=T0 + 100),  # the same push again
        push("update", bids=[("100", "1")], seq=12, prev=9, ts=T0 + 150),  # an old one
        push("update", bids=[("100", "7")], seq=20, prev=17, ts=T0 + 61_000),  # 15 -> 17 is missing
        push("update", bids=[("100", "8")], seq=22, prev=20, ts=T0 + 61_100),  # skipped: the book is invalid
        push("snapshot", **SNAP, seq=30, prev=-1, ts=T0 + 125_000),
        push("update", bids=[("100", "2")], seq=31, prev=30, ts=T0 + 185_000),
    ])
    c = stream.counters
    assert c["duplicates"] == 2 and c["seq_gaps"] == 1 and c["skipped_invalid"] == 1 and c["resyncs"] == 1
    assert sink.events == [
        {"event": "seq_gap", "ts_utc": "2024-08-08T00:01:01.000Z", "seqId": 20, "prevSeqId": 17, "expected_prev": 15},
        {"event": "resync", "ts_utc": "2024-08-08T00:02:05.000Z", "seqId": 30, "prevSeqId": -1, "expected_prev": None},
    ]
    m0 = T0 // 60000
    # minute 0 valid; minute 1 invalid (seq_gap); minute 2 resynced during the minute but tainted by nothing new
    assert [(m, v, t) for m, v, t, *_ in sink.minutes] == [(m0, True, []), (m0 + 1, False, ["seq_gap"]), (m0 + 2, True, [])]
    assert sink.minutes[1][3] is None  # no prices in an invalid minute
    assert sink.minutes[1][5] == T0 + 100  # book_ts: the last push applied


def test_crossed_book_is_invalid_until_a_snapshot() -> None:
    stream, sink = BookStream("books"), Sink()
    feed(stream, sink, [
        push("snapshot", **SNAP, ts=T0),
        push("update", bids=[("100.5", "1")], ts=T0 + 1000),  # bid at the best ask
        push("update", bids=[("100.5", "0")], ts=T0 + 2000),  # skipped: invalid until a snapshot
        push("update", ts=T0 + 61_000),
    ])
    assert sink.kinds() == ["crossed"]
    assert sink.minutes == [(T0 // 60000, False, ["crossed"], None, None, T0 + 1000)]
    assert stream.counters["skipped_invalid"] == 2


def test_every_minute_has_a_record_from_the_first_push_on() -> None:
    stream, sink = BookStream("books"), Sink()
    feed(stream, sink, [
        push("update", bids=[("1", "1")], ts=T0 + 5),  # before any snapshot: rejected, but the minutes start
        push("snapshot", **SNAP, ts=T0 + 120_500),
        push("update", bids=[("100", "1")], ts=T0 + 300_000),
    ])
    m0 = T0 // 60000
    assert [(m, v, t) for m, v, t, *_ in sink.minutes] == [
        (m0, False, ["no_book"]), (m0 + 1, False, ["no_book"]), (m0 + 2, True, []), (m0 + 3, True, []), (m0 + 4, True, []),
    ]
    assert sink.kinds() == ["reject"]
    assert "before any snapshot" in sink.events[0]["reason"] and sink.events[0]["line"] == 1


@pytest.mark.parametrize("line, reason", [
    (push("snapshot", **SNAP, inst="ETH-USDT-SWAP"), "'ETH-USDT-SWAP' in the folder of BTC-USDT-SWAP"),
    (push("snapshot", bids=[("100", "-1")]), "non-negative plain decimals"),
    (b'{"arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"action":"update","data":[{"bids":[[100,"1"]],"asks":[],"ts":"1"}]}',
     "not [px, sz, ...] with px and sz as strings"),
    (b'{"arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"action":"update","data":[{"bids":[["100"]],"asks":[],"ts":"1"}]}',
     "not [px, sz, ...]"),
    (b'{"arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"action":"update","data":[{"bids":[],"asks":[]}]}', "no 'ts'"),
    (b'{"arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"action":"partial","data":[{"bids":[],"asks":[],"ts":"1"}]}',
     "expected \"snapshot\" or \"update\""),
    (b'{"arg":{"channel":"books"', "not valid JSON"),
])
def test_bad_lines_are_rejected_with_a_reason(line: bytes, reason: str) -> None:
    got = parse_line(line, 7, INST, "books")
    assert isinstance(got, str) and reason in got


def test_other_channels_and_socket_events_are_skipped_not_rejected() -> None:
    assert parse_line(push("snapshot", **SNAP, channel="books5"), 1, INST, "books") is None
    assert parse_line(b'{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT-SWAP"}}', 1, INST, "books") is None
    # books5 / bbo-tbt: every push is a whole book, with no action
    line = orjson.dumps({"arg": {"channel": "books5", "instId": INST},
                         "data": [{"asks": [["101", "1", "0", "1"]], "bids": [["100", "2", "0", "1"]], "ts": str(T0)}]})
    (p,) = parse_line(line, 1, INST, "books5")
    assert p.snapshot


def test_state_round_trip_gives_the_same_decisions() -> None:
    lines = [push("snapshot", **SNAP, seq=1, prev=-1, ts=T0)] + [
        push("update", bids=[("100", str(k))], seq=k + 1, prev=k, ts=T0 + 20_000 * k) for k in range(1, 12)]
    whole, sink_whole = BookStream("books"), Sink()
    feed(whole, sink_whole, lines)
    for cut in range(1, len(lines)):
        a, sink = BookStream("books"), Sink()
        feed(a, sink, lines[:cut])
        b = BookStream("books")
        b.set_state(orjson.loads(orjson.dumps(a.to_state())))
        feed(b, sink, lines[cut:])
        assert sink.minutes == sink_whole.minutes and b.to_state() == whole.to_state()


def test_generated_stream_with_gaps_resets_and_heartbeats(tmp_path: Path) -> None:
    from bench.generate_books import book_lines

    lines = [line for _, line in book_lines(minutes=2, interval_ms=100, levels=60, seed=3, gap_every=401,
                                            reset_every=97, heartbeat_every=10)]
    stream, sink = BookStream("books"), Sink()
    feed(stream, sink, lines)
    c = stream.counters
    assert c["seq_gaps"] == 2 and c["resyncs"] == 2 and c["checksum_errors"] == 0 and c["crossed"] == 0
    assert c["resets"] >= 5 and c["heartbeats"] >= 50
    assert sink.kinds() == ["seq_gap", "resync", "seq_gap", "resync"]
    # without seqIds, the checksum finds the same two gaps
    lines = [line for _, line in book_lines(minutes=2, interval_ms=100, levels=60, seed=3, gap_every=401, seq=False)]
    stream, sink = BookStream("books"), Sink()
    feed(stream, sink, lines)
    assert sink.kinds() == ["checksum", "resync", "checksum", "resync"]


def test_the_fast_paths_read_lines_as_the_careful_path_does() -> None:
    """A line in OKX's own layout is checked by one regex; the same push with its keys in another order is not."""
    from bench.generate_books import book_lines
    from indicator_core.streams import okx_books as books

    lines = REAL.read_bytes().splitlines()[:40] + [line.rstrip(b"\n") for _, line in book_lines(minutes=0.1, levels=30)]
    for n, line in enumerate(lines, 1):
        inst = orjson.loads(line)["arg"]["instId"]
        fast = parse_line(line, n, inst, "books")
        assert isinstance(fast, list)
        assert books._shape(inst, "books")(line) is not None  # it took the regex path
        resorted = orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS)
        assert books._shape(inst, "books")(resorted) is None
        assert parse_line(resorted, n, inst, "books") == fast
    zero = push("update", asks=[("0.000", "1")])
    assert parse_line(zero, 1, INST, "books") == "asks: price '0.000' is not positive"
    assert parse_line(push("update", asks=[("0.001", "1")]), 1, INST, "books")[0].asks[0][0] == "0.001"
    # the same read through a chunk (the inline path): the zero price is a reject, the next push is read
    from types import SimpleNamespace

    from indicator_core.streams.okx_books import parse_chunk

    chunk = SimpleNamespace(buf=zero + b"\n" + push("update", asks=[("0.001", "1")]) + b"\n", first_line=7)
    got = list(parse_chunk(chunk, INST, "books"))
    assert isinstance(got[0], Reject) and got[0].line == 7 and got[0].reason == "asks: price '0.000' is not positive"
    assert got[1].asks == [["0.001", "1", "0", "1"]] and got[1].line == 8


def test_a_push_whose_time_goes_back_is_applied_in_the_open_minute_and_counted_late() -> None:
    stream, sink = BookStream("books"), Sink()
    feed(stream, sink, [
        push("snapshot", **SNAP, ts=T0 + 1000),
        push("update", bids=[("100", "7")], ts=T0 + 61_000),
        push("update", bids=[("100", "8")], ts=T0 + 59_000),  # back into the closed minute 0
        push("update", ts=T0 + 121_000),
    ])
    assert stream.counters["late"] == 1
    assert [(m - T0 // 60000, ts) for m, _, _, _, _, ts in sink.minutes] == [(0, T0 + 1000), (1, T0 + 59_000)]
    assert stream.book.bids.texts(1) == [("100", "8")]
