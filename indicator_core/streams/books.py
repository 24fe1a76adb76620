"""The order-book stream (SPEC section 10): OKX L2 pushes in, one closed minute of book out.

Raw files: ``{vault}/raw/books/{exchange}/{market}/{INST_ID}/books_{date}.jsonl``,
one WebSocket push per line, read with the same files, cursors and commits
as trades.  :func:`parse_chunk` turns a chunk's lines into :class:`Push`
objects (or rejects); :class:`BookStream` applies them in line order and
decides, push by push, what is a duplicate, a sequence gap, a checksum
mismatch or a crossed book, and when a minute closes.  At each close it hands
a :class:`BookMinute` (the book as of the minute's end) to every book
indicator through ``sink.book``.  Every decision depends only on the pushes
before it, never on where a chunk or a run began.

Where the compiled kernel is built (``_native_books.c``, see :mod:`..native`),
it reads the lines in OKX's layout and applies each push with its checks;
every other line, and every decision of the sequence and the minutes, stays
here, and the pure path gives the same pushes and books (tested).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterator, Protocol

import orjson

from .. import native
from ..book import Book
from ..config import BOOK_CHANNELS
from ..sources.files import Chunk
from ..sources.parsed import Reject
from ..timeutil import MINUTE_MS, iso_minute, iso_ms
from .base import StreamKind

CHANNELS = BOOK_CHANNELS
SNAPSHOT_ONLY = ("books5", "bbo-tbt")  # every push is a full book, with no "action"

COUNTERS = (
    "lines", "pushes", "snapshots", "updates", "heartbeats", "resets", "duplicates", "seq_gaps", "checksum_errors",
    "crossed", "resyncs", "skipped_invalid", "other_channel", "control", "late", "rejects", "minutes",
)

_REJECT_TEXT = 200

_KERNEL = native.load("books")  # the compiled reader of a push line (None: the pure path reads every line)
_LINES_AT_ONCE = 64  # lines read by one call of the kernel (their pushes are then applied one by one)


@dataclass(slots=True)
class Push:
    """One data item of a push, validated; levels are ``[px, sz, ...]`` as received (plain decimal strings)."""

    line: int
    snapshot: bool
    ts: int
    bids: list[list[str]]
    asks: list[list[str]]
    checksum: int
    seq: int | None
    prev: int | None


class ParsedBooks:
    """The lines of a chunk, read as they are iterated: pushes and rejects in line order.

    Read lazily, so each push is applied and let go before the next line is
    parsed (a chunk of parsed pushes held at once costs the garbage collector
    more than the parse).  The counts are complete once iterated.
    """

    __slots__ = ("chunk", "inst_id", "channel", "lines", "other_channel", "control")

    def __init__(self, chunk: Chunk, inst_id: str, channel: str) -> None:
        self.chunk = chunk
        self.inst_id = inst_id
        self.channel = channel
        self.lines = 0
        self.other_channel = 0
        self.control = 0

    def __iter__(self) -> Iterator[Push | Reject]:
        inst_id, channel = self.inst_id, self.channel
        kernel = _KERNEL
        prefix = _prefix(inst_id, channel) if kernel is not None else None
        if prefix is not None:
            return self._compiled(kernel, prefix)
        return self._pure()

    def _compiled(self, kernel: Any, prefix: bytes) -> Iterator[Push | Reject]:
        """The lines in OKX's layout read in C, a few dozen at a time; every other line as :meth:`_pure` reads it."""
        buf = self.chunk.buf
        self.lines = buf.count(b"\n")
        shape = _shape(self.inst_id, self.channel)
        parse_lines, pos, line_no, end = kernel.parse_lines, 0, self.chunk.first_line, len(buf)
        while pos < end:
            items, pos, line_no = parse_lines(buf, pos, prefix, line_no, Push, _LINES_AT_ONCE)
            if not items:
                break
            for item in items:
                if type(item) is Push:
                    yield item
                else:
                    yield from self._line(item[1], item[0], shape)

    def _line(self, line: bytes, line_no: int, shape: Any) -> list[Push | Reject]:
        """The items of one line, read as :meth:`_pure` reads it."""
        if shape(line) is not None:
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                pass
            else:
                item = doc["data"][0]
                return [Push(line_no, doc["action"] == "snapshot", int(item["ts"]), item["bids"], item["asks"],
                             item["checksum"], item.get("seqId"), item.get("prevSeqId"))]
        got = parse_line(line, line_no, self.inst_id, self.channel)
        if type(got) is list:
            return got
        if got is None:
            if b'"event"' in line and b'"data"' not in line:
                self.control += 1
            else:
                self.other_channel += 1
            return []
        return [Reject(line_no, got, line[:_REJECT_TEXT].decode("utf-8", "replace"))]

    def _pure(self) -> Iterator[Push | Reject]:
        inst_id, channel, chunk = self.inst_id, self.channel, self.chunk
        lines = chunk.buf.split(b"\n")
        lines.pop()  # the chunk ends with a line end
        self.lines = len(lines)
        loads = orjson.loads
        shape = _shape(inst_id, channel)
        for line_no, line in enumerate(lines, chunk.first_line):
            if shape(line) is not None:  # OKX's own layout, every price positive: as _known, inline
                try:
                    doc = loads(line)
                except orjson.JSONDecodeError:  # the layout, but not JSON (a number "01", a control character)
                    pass
                else:
                    item = doc["data"][0]
                    yield Push(line_no, doc["action"] == "snapshot", int(item["ts"]), item["bids"], item["asks"],
                               item["checksum"], item.get("seqId"), item.get("prevSeqId"))
                    continue
            got = parse_line(line, line_no, inst_id, channel)
            if type(got) is list:
                yield from got
            elif got is None:
                if b'"event"' in line and b'"data"' not in line:
                    self.control += 1
                else:
                    self.other_channel += 1
            else:
                yield Reject(line_no, got, line[:_REJECT_TEXT].decode("utf-8", "replace"))

    @property
    def items(self) -> list[Push | Reject]:
        return list(self)


class BadPush(ValueError):
    pass


_PLAIN = re.compile(r"(?:\d++(?:\.\d++)?+|\.\d++)\Z", re.ASCII).match  # a plain non-negative decimal: "5", "0.5", ".5"


def _levels(raw: Any, name: str) -> list[list[str]]:
    if not isinstance(raw, list):
        raise BadPush(f"{name} is not a list of levels")
    out = []
    for lv in raw:
        try:
            px, sz = lv[0], lv[1]
            ok = _PLAIN(px) is not None and _PLAIN(sz) is not None
        except (TypeError, KeyError, IndexError):
            ok = False
            px = sz = None
        if not ok or type(lv) is not list:
            if not (isinstance(lv, list) and len(lv) >= 2 and isinstance(px, str) and isinstance(sz, str)):
                raise BadPush(f"a level of {name} is not [px, sz, ...] with px and sz as strings: {str(lv)[:60]}")
            bad = sz if _PLAIN(px) else px
            raise BadPush(f"{name}: not a plain decimal number: {bad!r} (sizes and prices must be non-negative "
                          "plain decimals)")
        if not Decimal(px):
            raise BadPush(f"{name}: price {px!r} is not positive")
        out.append(lv)
    return out


def _int_field(item: dict, key: str, required: bool) -> int | None:
    v = item.get(key)
    if v is None:
        if required:
            raise BadPush(f"no {key!r}")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise BadPush(f"{key!r} is not an integer: {v!r}")
    try:
        return int(v)
    except ValueError:
        raise BadPush(f"{key!r} is not an integer: {v!r}") from None


class _Slow(Exception):
    """The fast path met something unusual: the careful path decides (and explains)."""


def _fast_levels(raw: Any) -> list[list[str]]:
    if type(raw) is not list:
        raise _Slow
    out = []
    plain = _PLAIN
    for lv in raw:
        if type(lv) is not list:
            raise _Slow
        px = lv[0]
        sz = lv[1]
        if plain(px) is None or plain(sz) is None:
            raise _Slow
        if not Decimal(px):
            raise _Slow
        out.append(lv)
    return out


def _fast(doc: Any, line_no: int, inst_id: str, channel: str) -> list[Push]:
    """A well-formed push of the instrument's channel, read with few checks; raises on anything else."""
    arg = doc["arg"]
    if arg["channel"] != channel or arg["instId"] != inst_id:
        raise _Slow
    if channel in SNAPSHOT_ONLY:
        snapshot = True
    else:
        action = doc["action"]
        if action == "update":
            snapshot = False
        elif action == "snapshot":
            snapshot = True
        else:
            raise _Slow
    out = []
    for item in doc["data"]:
        t = item["ts"]
        ck = item.get("checksum", 0)
        seq = item.get("seqId")
        prev = item.get("prevSeqId")
        if (type(t) is not str or not t.isascii() or not t.isdigit() or type(ck) is not int
                or (seq is not None and type(seq) is not int) or (prev is not None and type(prev) is not int)):
            raise _Slow
        out.append(Push(line_no, snapshot, int(t), _fast_levels(item["bids"]), _fast_levels(item["asks"]), ck, seq, prev))
    if not out:
        raise _Slow
    return out


_NUM = rb"(?:\d++(?:\.\d++)?+|\.\d++)"  # possessive: a failed match never backtracks into a number
_LEVEL = rb'\["(?=[0.]*+[1-9])' + _NUM + rb'","' + _NUM + rb'"(?:,"[^"\\]*+")*+\]'
_LEVELS = rb"\[(?:" + _LEVEL + rb"(?:," + _LEVEL + rb")*+)?+\]"
_SHAPES: dict[tuple[str, str], Any] = {}


def _shape(inst_id: str, channel: str):
    """A regex for OKX's own layout of a push, every price and size a plain decimal, every price above 0 (in C)."""
    key = (inst_id, channel)
    rx = _SHAPES.get(key)
    if rx is None:
        rx = _SHAPES[key] = re.compile(
            rb'\{"arg":\{"channel":"' + re.escape(channel.encode()) + rb'","instId":"' + re.escape(inst_id.encode())
            + rb'"\},"action":"(?:snapshot|update)","data":\[\{"asks":' + _LEVELS + rb',"bids":' + _LEVELS
            + rb',"ts":"\d++","checksum":-?\d++(?:,"prevSeqId":-?\d++,"seqId":-?\d++)?+\}\]\}\r?'
        ).fullmatch
    return rx


_SAFE_NAME = re.compile(r"[\x20-\x7e]*\Z")


def _prefix(inst_id: str, channel: str) -> bytes | None:
    """The literal start of a push line in OKX's layout, for the compiled reader (None: names it does not read)."""
    if not (_SAFE_NAME.match(inst_id) and _SAFE_NAME.match(channel)) or '"' in inst_id + channel or "\\" in inst_id + channel:
        return None
    return b'{"arg":{"channel":"' + channel.encode() + b'","instId":"' + inst_id.encode() + b'"},"action":"'


def _known(doc: Any, line_no: int) -> list[Push]:
    """A push whose line matched :func:`_shape`: nothing is left to check."""
    item = doc["data"][0]
    return [Push(line_no, doc["action"] == "snapshot", int(item["ts"]), item["bids"], item["asks"], item["checksum"],
                 item.get("seqId"), item.get("prevSeqId"))]


def parse_line(line: bytes, line_no: int, inst_id: str, channel: str) -> list[Push] | str | None:
    """The pushes of one line; a reason (str) for a bad line; ``None`` for a line skipped without a reject."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if not line.strip():
            return "empty line"
        return f"not valid JSON ({exc.args[0].split(':')[0]})"
    try:
        if _shape(inst_id, channel)(line) is not None:
            return _known(doc, line_no)
        return _fast(doc, line_no, inst_id, channel)
    except Exception:  # noqa: BLE001 - any surprise goes to the careful path below
        pass
    if not isinstance(doc, dict):
        return "not a JSON object"
    arg = doc.get("arg")
    if "event" in doc and "data" not in doc:
        return None  # subscribe/unsubscribe/error acknowledgements of the socket
    if not isinstance(arg, dict) or not isinstance(arg.get("channel"), str):
        return "no \"arg\": {\"channel\", \"instId\"} (not an OKX WebSocket push)"
    if arg["channel"] != channel:
        return None
    if arg.get("instId") != inst_id:
        return f"a push for {arg.get('instId')!r} in the folder of {inst_id}"
    data = doc.get("data")
    if not isinstance(data, list) or not data:
        return "\"data\" is not a non-empty list"
    action = doc.get("action")
    if channel in SNAPSHOT_ONLY:
        snapshot = True
    elif action in ("snapshot", "update"):
        snapshot = action == "snapshot"
    else:
        return f"\"action\" is {action!r}, expected \"snapshot\" or \"update\""
    out = []
    try:
        for item in data:
            if not isinstance(item, dict):
                raise BadPush("a data item is not an object")
            ts = _int_field(item, "ts", True)
            if ts is None or ts < 0:
                raise BadPush(f"\"ts\" is not a time in epoch milliseconds: {item.get('ts')!r}")
            out.append(Push(
                line_no, snapshot, ts, _levels(item.get("bids", []), "bids"), _levels(item.get("asks", []), "asks"),
                _int_field(item, "checksum", False) or 0, _int_field(item, "seqId", False),
                _int_field(item, "prevSeqId", False),
            ))
    except BadPush as exc:
        return str(exc)
    return out


def parse_chunk(chunk: Chunk, inst_id: str, channel: str) -> ParsedBooks:
    """Every line of a chunk of complete lines, in order (read as the result is iterated)."""
    return ParsedBooks(chunk, inst_id, channel)


@dataclass
class BookMinute:
    """The book at the close of one minute: what a book indicator's ``on_book`` receives.

    ``valid`` is False before the first snapshot and from an invalidation to the
    next snapshot; ``taint`` lists why a minute is suspect (``no_book``,
    ``seq_gap``, ``checksum``, ``crossed``: the reason the book is invalid at
    the close, and any invalidation that happened during the minute).
    ``book_ts`` is the time of the last push applied (epoch ms, or None).
    Levels are read best first with :meth:`bids` and :meth:`asks` (exact
    decimals, lazily, so a reader can stop at its band); do not keep them
    past the call: the book goes on changing.
    """

    minute: int
    valid: bool
    book_ts: int | None
    taint: list[str]
    _book: Book | None

    @property
    def timestamp_utc(self) -> str:
        return iso_minute(self.minute)

    @property
    def end_ms(self) -> int:
        return (self.minute + 1) * MINUTE_MS

    def best_bid(self) -> Decimal | None:
        return self._book.bids.best() if self.valid and self._book else None

    def best_ask(self) -> Decimal | None:
        return self._book.asks.best() if self.valid and self._book else None

    def bids(self) -> Iterator[tuple[Decimal, Decimal]]:
        """``(price, size)`` from the best bid down; nothing when not valid."""
        return self._book.bids.decimals() if self.valid and self._book else iter(())

    def asks(self) -> Iterator[tuple[Decimal, Decimal]]:
        """``(price, size)`` from the best ask up; nothing when not valid."""
        return self._book.asks.decimals() if self.valid and self._book else iter(())


class BookSink(Protocol):
    def quality(self, event: dict[str, Any]) -> None: ...
    def book(self, minute: BookMinute) -> None: ...


class BookStream:
    """The book stream state of one instrument (saved in every book consumer's state file)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.book: Book | None = None  # None before the first snapshot
        self.invalid: str | None = None  # why the book is invalid ("seq_gap", "checksum", "crossed")
        self.last_seq: int | None = None
        self.last_ts: int | None = None
        self.next_minute: int | None = None  # the first minute not yet emitted (None before the first push)
        self.open_pushed = False  # a push was read in next_minute
        self.minute_taint: list[str] = []  # invalidations during next_minute
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)

    # --- state -----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "kind": "books",
            "channel": self.channel,
            "book": self.book.to_state() if self.book is not None else None,
            "invalid": self.invalid,
            "last_seq": self.last_seq,
            "last_ts": self.last_ts,
            "next_minute": self.next_minute,
            "open_pushed": self.open_pushed,
            "minute_taint": self.minute_taint,
            "counters": self.counters,
        }

    def set_state(self, data: dict[str, Any]) -> None:
        self.book = Book.from_state(data["book"]) if data["book"] is not None else None
        self.invalid = data["invalid"]
        self.last_seq = data["last_seq"]
        self.last_ts = data["last_ts"]
        self.next_minute = data["next_minute"]
        self.open_pushed = bool(data["open_pushed"])
        self.minute_taint = list(data["minute_taint"])
        self.counters = {**dict.fromkeys(COUNTERS, 0), **data["counters"]}

    # --- pushes ----------------------------------------------------------------------
    def process(self, p: ParsedBooks, file_label: str, sink: BookSink) -> None:
        push = self._push
        for item in p:
            if type(item) is Push:
                push(item, file_label, sink)
            else:
                self._reject(file_label, item, sink)
        c = self.counters
        c["lines"] += p.lines
        c["other_channel"] += p.other_channel
        c["control"] += p.control

    def _reject(self, file_label: str, r: Reject, sink: BookSink) -> None:
        self.counters["rejects"] += 1
        sink.quality({"event": "reject", "file": file_label, "line": r.line, "reason": r.reason, "text": r.text})

    def _event(self, kind: str, p: Push, expected: int | None, sink: BookSink) -> None:
        sink.quality({"event": kind, "ts_utc": iso_ms(p.ts), "seqId": p.seq, "prevSeqId": p.prev,
                      "expected_prev": expected})

    def _invalidate(self, reason: str, p: Push, expected: int | None, sink: BookSink) -> None:
        self.invalid = reason
        if reason not in self.minute_taint:
            self.minute_taint.append(reason)
        self.counters["seq_gaps" if reason == "seq_gap" else "checksum_errors" if reason == "checksum" else "crossed"] += 1
        self._event(reason, p, expected, sink)

    def _push(self, p: Push, file_label: str, sink: BookSink) -> None:
        c = self.counters
        c["pushes"] += 1
        minute = p.ts // MINUTE_MS
        if self.next_minute is None:
            self.next_minute = minute
        elif minute > self.next_minute:
            self._close_until(minute, sink)
        elif minute < self.next_minute:
            c["late"] += 1  # applied in the minute that is open: the book is a sequence, not a set
        self.open_pushed = True
        if p.snapshot:
            c["snapshots"] += 1
            was_invalid = self.book is not None and self.invalid is not None
            if self.book is None:
                self.book = Book()
            else:
                self.book.clear()
            verdict = self._apply(p)
            self.invalid = None
            self.last_seq = p.seq
            self.last_ts = p.ts
            if self._verdict(verdict, p, sink) and was_invalid:
                c["resyncs"] += 1
                self._event("resync", p, None, sink)
            return
        c["updates"] += 1
        if self.book is None:
            self._reject(file_label, Reject(p.line, "an update before any snapshot: skipped (the book starts at "
                                                    "the first snapshot)", ""), sink)
            return
        if self.invalid is not None:
            c["skipped_invalid"] += 1
            return
        if p.seq is not None and p.prev is not None and self.last_seq is not None:
            if p.prev != self.last_seq:
                if p.seq <= self.last_seq and p.prev <= self.last_seq:
                    c["duplicates"] += 1
                    return
                self._invalidate("seq_gap", p, self.last_seq, sink)
                return
            if p.seq == p.prev:
                c["heartbeats"] += 1
            elif p.seq < p.prev:
                c["resets"] += 1
        verdict = self._apply(p)
        if p.seq is not None:
            self.last_seq = p.seq
        self.last_ts = p.ts
        if verdict:
            self._verdict(verdict, p, sink)

    def _apply(self, p: Push) -> int:
        """Apply ``p`` to the book, then check it: 1 for a checksum (when non-zero) that differs, else 2 for a
        crossed book, else 0 (the compiled kernel's ``apply`` does the same in one call)."""
        book = self.book
        assert book is not None
        kernel = _KERNEL
        if kernel is not None:
            verdict = kernel.apply(book, p.bids, p.asks, p.checksum)
            if verdict is not None:
                return verdict
        book.apply(p.bids, p.asks)
        if p.checksum and book.checksum() != p.checksum:
            return 1
        if book.crossed():
            return 2
        return 0

    def _verdict(self, verdict: int, p: Push, sink: BookSink) -> bool:
        """Invalidate the book for the outcome of :meth:`_apply`; False if it did."""
        if verdict:
            self._invalidate("checksum" if verdict == 1 else "crossed", p, None, sink)
            return False
        return True

    # --- minutes ---------------------------------------------------------------------
    def _emit(self, sink: BookSink) -> None:
        minute = self.next_minute
        assert minute is not None
        if self.book is None:
            taint = ["no_book"]
        else:
            taint = list(self.minute_taint)
            if self.invalid is not None and self.invalid not in taint:
                taint.append(self.invalid)
        valid = self.book is not None and self.invalid is None
        self.counters["minutes"] += 1
        sink.book(BookMinute(minute, valid, self.last_ts, taint, self.book))
        self.next_minute = minute + 1
        self.minute_taint = []
        self.open_pushed = False

    def _close_until(self, minute: int, sink: BookSink) -> None:
        """Emit every minute before ``minute`` (the open one, then the ones without pushes)."""
        while self.next_minute is not None and self.next_minute < minute:
            self._emit(sink)

    def close_by_clock(self, now_ms: int, grace_ms: int, sink: BookSink) -> None:
        """Follow mode: close the open minute once the wall clock has passed its end plus ``grace_ms``.

        Only a minute that had pushes is closed; minutes without any are
        emitted when the next push shows the stream went on, as in a batch run.
        """
        m = self.next_minute
        if m is None or not self.open_pushed or (m + 1) * MINUTE_MS + grace_ms > now_ms:
            return
        self._emit(sink)


# the counters `indicators status` shows of a book stream, in its JSON's order
STATUS_COUNTERS = ("pushes", "snapshots", "duplicates", "heartbeats", "seq_gaps", "checksum_errors", "crossed",
                   "resyncs", "other_channel", "late", "rejects", "minutes")


class Books(StreamKind):
    """The ``books`` kind of input (see :mod:`indicator_core.streams`)."""

    name = "books"
    counters = COUNTERS
    parse_in_threads = False  # orjson and Python per line: a worker thread would only wait for the GIL

    def root(self, cfg) -> str:
        return cfg.books.root

    def patterns(self, cfg) -> list[str]:
        return cfg.books.patterns

    def channel(self, cfg, inst_id: str) -> str:
        return cfg.books.channels.get(inst_id, cfg.books.channel)

    def new_stream(self, inst, cfg) -> BookStream:
        return BookStream(self.channel(cfg, inst.inst_id))

    def parser(self, cfg, inst_id: str, tolerance_minutes: int = 0, now_ms: int = 0):
        channel = self.channel(cfg, inst_id)
        return lambda chunk: chunk.file.fmt.parse(chunk, inst_id, channel)

    def quality_log(self, inst):
        from ..quality import BookQualityLog

        return BookQualityLog(inst, BookQualityLog.Params())

    venue_formats = True  # the exchange folder chooses the format (today OKX's pushes: builtin_formats)
    label_suffix = " books"
    status_title = "books"
    state_suffix = ".books"  # the book stream's quality state: {INST_ID}.books.state.json
    status_columns = (("last minute", "last_minute_utc", "<21"), ("pushes", "pushes", ">10"), ("dup", "duplicates", ">6"),
                      ("seqgap", "seq_gaps", ">6"), ("cksum", "checksum_errors", ">5"), ("cross", "crossed", ">5"),
                      ("rejects", "rejects", ">7"), ("valid", "valid", "<5"))

    def summary_line(self, c):
        return (f"{c['pushes']} pushes ({c['lines']} lines), {c['minutes']} minutes closed, {c['duplicates']} "
                f"duplicates, {c['seq_gaps']} sequence gaps, {c['checksum_errors']} checksum errors, {c['crossed']} "
                f"crossed, {c['rejects']} rejects")

    def summary_totals(self, total):
        books = total("pushes")
        return f"{books} book pushes, {total('minutes')} book minutes written, " if books else ""

    def status_fields(self, state, cfg, vault, key):
        stream = state.get("stream") or {}
        counters = stream.get("counters", {})
        return {
            "last_minute_utc": state.get("last_bar_utc"),
            "channel": stream.get("channel"),
            "valid": stream.get("book") is not None and stream.get("invalid") is None,
            **{k: int(counters.get(k, 0)) for k in STATUS_COUNTERS},
        }

    def fingerprint_extra(self, cfg, inst_id: str) -> dict[str, Any]:
        return {"channel": self.channel(cfg, inst_id)}


BOOKS = Books()
