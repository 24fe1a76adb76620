"""The order-book stream (SPEC section 10): pushes applied in line order, one closed minute of book out.

:class:`BookStream` applies the pushes of :mod:`.okx_books` in line order and
decides, push by push, what is a duplicate, a sequence gap, a checksum
mismatch or a crossed book, and when a minute closes.  At each close it hands
a :class:`BookMinute` (the book as of the minute's end, the event book
indicators receive) to the sink.  Every decision depends only on the pushes
before it, never on where a chunk or a run began.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterator, Protocol

from .. import native
from ..sources.parsed import Reject
from ..timeutil import MINUTE_MS, ClosedMinute, iso_ms
from .okx_books import ParsedBooks, Push
from .order_book import Book

_KERNEL = native.load("books")  # applies a push and checks the book in one call (None: the pure path)

COUNTERS = (
    "lines", "pushes", "snapshots", "updates", "heartbeats", "resets", "duplicates", "seq_gaps", "checksum_errors",
    "crossed", "resyncs", "skipped_invalid", "other_channel", "control", "late", "rejects", "minutes",
)


@dataclass
class BookMinute(ClosedMinute):
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
        # Binance: the id of the REST snapshot applied last, until an update straddles it (None: none pending)
        self.straddle: int | None = None

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
            **({"straddle": self.straddle} if self.straddle is not None else {}),  # OKX states stay as they were
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
        self.straddle = data.get("straddle")

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
            self.straddle = p.seq if p.straddle else None
            if self._verdict(verdict, p, sink) and was_invalid:
                c["resyncs"] += 1
                self._event("resync", p, None, sink)
            return
        c["updates"] += 1
        if self.book is None and p.first is not None:
            c["stale"] = c.get("stale", 0) + 1  # Binance: updates buffered before the REST snapshot is fetched
            return
        if self.book is None:
            self._reject(file_label, Reject(p.line, "an update before any snapshot: skipped (the book starts at "
                                                    "the first snapshot)", ""), sink)
            return
        if self.invalid is not None:
            c["skipped_invalid"] += 1
            return
        if self.straddle is not None and p.first is not None and p.seq is not None:
            # the first update after a REST snapshot S: older ones are skipped, the first applied has U <= S <= u
            if p.seq < self.straddle:
                c["stale"] = c.get("stale", 0) + 1
                return
            if p.first > self.straddle:
                self._invalidate("seq_gap", p, self.straddle, sink)
                self.straddle = None
                return
            self.straddle = None
            verdict = self._apply(p)
            self.last_seq = p.seq
            self.last_ts = p.ts
            if verdict:
                self._verdict(verdict, p, sink)
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


