"""The per-instrument trade stream: data quality, bar closing and event order.

This is the only place that decides, trade by trade and in arrival order,
what is a duplicate, what opens a gap, what is late, and when a bar closes
(SPEC sections 2 and 7).  The decisions are computed for a whole parsed
chunk at once with numpy (running maxima of ids and minutes); only the rare
rows that need a sequential look at the gap list go through a Python loop.
Every decision depends only on the trades before it, never on where a chunk
or a run began, which is what makes the outputs independent of batching.
"""

from __future__ import annotations

import bisect
from decimal import Decimal
from typing import Any, Protocol

import numpy as np

from ..bars import Bar, Rows, filled_parts
from ..errors import StateError
from ..fastpath import (BASE, BUY_BASE, BUY_QUOTE, BUY_SZ, FIRST, HIGH, LAST, LOW, MINUTE, QUOTE, START, SZ,
                       Summarizer)
from ..instruments import Instrument
from ..numbers import to_dec
from ..quality_events import Gaps, LateTrades, RejectedLines
from ..sources.parsed import LISTED_PER_FILE, ParsedChunk
from ..timeutil import MINUTE_MS, iso_ms
from ..trade_batch import TradeBatch, derive_quantities, normalize

# Known gaps are kept so that a trade arriving later with a missing id fills
# the gap instead of counting as a duplicate.  The oldest are forgotten past
# this many (a trade from such an old gap would then count as a duplicate).
MAX_MISSING_RANGES = 10_000
# A defence: the empty bars filled for one jump in time are at most this many (31 days), the ones
# right before the new trade.  Trades are checked against their file's day and the clock, so only
# files dated more than a month apart with nothing between them come near it.
MAX_FILL_MINUTES = 31 * 24 * 60


def _no() -> bool:
    """A sink's answer to what it does not say (an optional question of the Sink protocol)."""
    return False


def _quality_events(events: LateTrades | Gaps | RejectedLines, sink: Sink) -> None:
    """Quality events of one kind to ``sink`` at once, or one at a time to a sink that takes them so."""
    at_once = getattr(sink, "quality_events", None)
    if at_once is not None:
        at_once(events)
    else:
        for event in events.events():
            sink.quality(event)


COUNTERS = ("lines", "trades", "accepted", "duplicates", "gaps", "missing_ids", "late", "rejects", "bars")


class Sink(Protocol):
    """Where the stream delivers its events, in order."""

    def quality(self, event: dict[str, Any]) -> None: ...
    def chunk_trades(self, batch: TradeBatch) -> None:
        """All accepted trades of a chunk, before any bar among their minutes closes."""
    def trades(self, batch: TradeBatch) -> None:
        """The accepted trades of one minute, just before they join its open bar."""
    def takes_minute_trades(self) -> bool:
        """Whether :meth:`trades` has a taker at all (asked once a chunk): when not, the stream does not cut
        the chunk's trades into minutes."""
    def bar(self, bar: Bar) -> None: ...
    def empty_bars(self, first: int, count: int, price: Decimal) -> None:
        """Filled minutes ``first .. first + count - 1`` without a trade, all at ``price``: as many
        :meth:`bar` calls with ``Bar.empty_at``, delivered at once."""
    def advance(self, minute: int) -> None: ...
    # optional: a sink whose consumers take closed minutes only in runs says so (takes_runs_only, asked once a
    # chunk) and then gets a chunk's closed bars and filled stretches at once: closed(items, rows, last minute),
    # each advance to a minute that the filled minutes reach left out; and a sink with quality_events(events)
    # gets late trades, gaps and refused lines a block at a time (LateTrades, Gaps, RejectedLines), else each as
    # quality(event)


class TradeStream:
    """The stream state of one instrument (saved in every consumer's state file)."""

    def __init__(self, inst: Instrument, fill_empty: bool) -> None:
        self.inst = inst
        self.fill_empty = fill_empty
        self.max_id = -1
        self.max_id_ts = 0
        self.missing: list[list[int]] = []  # sorted, disjoint [lo, hi] id ranges never seen
        self.open_bar: Bar | None = None
        # follow mode: the wall clock closed the bars before this minute and no trade came since (0: none)
        self.closed_until = 0
        self._last_close: str | None = None  # the close of the last emitted bar, for filling after a clock close
        self._closed: Bar | None = None  # the last emitted bar, whose close is that (its text made when asked)
        self.pending_taint: dict[int, list[str]] = {}
        # gap candidates, judged when the bar of their ``minute`` closes: only ids still missing then are a gap
        self.pending_gaps: list[dict[str, Any]] = []
        # while a chunk is processed: the ids its rows filled, by block (rows, first id, last id: arrays, in row
        # order), and the row being processed
        self._fills: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._row = 0
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        # run on each parsed chunk in the parse thread, before process(): a clean chunk's aggregates
        self.prepare = Summarizer(inst)
        # what the ids count, where a venue has two streams (Binance "aggTrade" / "trade"): fixed by the first
        self.id_space: str | None = None
        # ids that are not integers (Bybit): their digests by the minute of the trade, for the open minute and
        # the one before it (duplicates are recognised there; gaps are never judged).  None: integer ids.
        self.recent: dict[int, list[int]] | None = None
        # the lines of the file being read that were refused only for their time (outside the file's day):
        # logged as one line of the rejects log once the stream moves on to another file (None: none yet)
        self.outside: dict[str, Any] | None = None

    @property
    def last_close(self) -> str | None:
        if self._closed is not None:
            self._last_close, self._closed = str(self._closed.close), None
        return self._last_close

    @last_close.setter
    def last_close(self, text: str | None) -> None:
        self._last_close, self._closed = text, None

    # --- state -----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "max_id": self.max_id,
            "max_id_ts": self.max_id_ts,
            "missing": self.missing,
            "open_bar": self.open_bar.to_state() if self.open_bar else None,
            "closed_until": self.closed_until,
            "last_close": self.last_close,
            "pending_taint": {str(k): v for k, v in self.pending_taint.items()},
            "pending_gaps": [dict(g) for g in self.pending_gaps],
            "counters": self.counters,
            # only where a venue needs them, so that the state of an OKX stream stays as it was
            **({"id_space": self.id_space} if self.id_space is not None else {}),
            **({"recent": {str(m): keys for m, keys in self.recent.items()}} if self.recent is not None else {}),
            **({"outside": dict(self.outside)} if self.outside is not None else {}),
        }

    def set_state(self, data: dict[str, Any]) -> None:
        self.max_id = int(data["max_id"])
        self.max_id_ts = int(data["max_id_ts"])
        self.missing = [list(map(int, r)) for r in data["missing"]]
        self.open_bar = Bar.from_state(data["open_bar"]) if data["open_bar"] else None
        self.closed_until = int(data.get("closed_until", 0))
        self.last_close = data.get("last_close")
        self.pending_taint = {int(k): list(v) for k, v in data["pending_taint"].items()}
        self.pending_gaps = [dict(g) for g in data.get("pending_gaps", [])]
        self.counters = {**dict.fromkeys(COUNTERS, 0), **data["counters"]}
        self.id_space = data.get("id_space")
        recent = data.get("recent")
        self.recent = {int(m): [int(k) for k in keys] for m, keys in recent.items()} if recent is not None else None
        self.outside = dict(data["outside"]) if data.get("outside") is not None else None

    # --- gaps ------------------------------------------------------------------------
    def _add_missing(self, lo: int, hi: int, waiting: tuple[tuple[list[int], list[dict[str, Any]]], ...]) -> None:
        """A gap's ids ``lo..hi`` are missing (above every known range); past :data:`MAX_MISSING_RANGES` the oldest
        range is forgotten, its ids still counted by the gap that opened it if that gap waits for its bar's close
        (``waiting``: the stream's pending gaps, then the chunk's so far, each as their first missing ids and the
        gaps, in the order they opened)."""
        self.missing.append([lo, hi])
        if len(self.missing) > MAX_MISSING_RANGES:
            a, b = self.missing.pop(0)
            for lows, gaps in waiting:
                k = bisect.bisect_right(lows, a) - 1
                if k >= 0 and b <= gaps[k]["hi"]:
                    gaps[k]["forgotten"] = gaps[k].get("forgotten", 0) + b - a + 1
                    break

    def _fill_gap(self, lo: int, hi: int) -> tuple[int, int] | None:
        """Take ids ``lo..hi`` out of the missing ranges: the ids taken, or None if ``hi`` was not missing."""
        k = bisect.bisect_right(self.missing, [hi, float("inf")]) - 1
        if k < 0 or not (self.missing[k][0] <= hi <= self.missing[k][1]):
            return None
        a, b = self.missing[k]
        lo = max(lo, a)
        parts = ([[a, lo - 1]] if lo > a else []) + ([[hi + 1, b]] if hi < b else [])
        self.missing[k : k + 1] = parts
        return lo, hi

    def _take_seen(self, rows: np.ndarray, first: np.ndarray, ids: np.ndarray, accepted: np.ndarray) -> None:
        """Rows ``rows`` of the chunk (in row order) hold ids at or below the highest seen before them: each
        fills the missing ids it holds (and is accepted) or is a duplicate, as :meth:`_fill_gap` one after the
        other would judge them.  Taken at once when no row's id is missing, or when the rows' ids rise without
        their spans overlapping (a block of trades that came late, a file read twice); else one by one."""
        c = self.counters
        lo, hi = first[rows], ids[rows]
        # the missing ranges their ids can fall in (of up to MAX_MISSING_RANGES), as arrays
        k0 = bisect.bisect_left(self.missing, int(lo.min()), key=lambda r: r[1])
        k1 = bisect.bisect_right(self.missing, int(hi.max()), key=lambda r: r[0])
        if k1 > k0:
            ranges = np.array(self.missing[k0:k1], dtype=np.int64)
            a, b = ranges[:, 0], ranges[:, 1]
            k = np.searchsorted(a, hi, side="right") - 1
            inside = k >= 0
            inside[inside] = hi[inside] <= b[k[inside]]
        else:
            inside = np.zeros(len(rows), dtype=bool)
        if not inside.any():  # nothing missing among them: all duplicates, whatever their order
            c["duplicates"] += len(rows)
            return
        if len(rows) > 1 and not bool(np.all(lo[1:] > hi[:-1])):  # spans out of order or overlapping: in turn
            taken: list[tuple[int, int, int]] = []
            for i in rows.tolist():
                filled = self._fill_gap(int(first[i]), int(ids[i]))
                if filled is None:
                    c["duplicates"] += 1
                else:
                    accepted[i] = True
                    taken.append((i, *filled))
            if taken:
                self._fills.append(tuple(np.array(x, dtype=np.int64) for x in zip(*taken)))
            return
        # Rising, non-overlapping spans: a fill takes nothing a later row's id could be in, so each row is
        # judged against the missing ranges as they were, and each range loses the spans filled in it.
        c["duplicates"] += int(np.count_nonzero(~inside))
        kk = k[inside]
        top = hi[inside]
        low = np.maximum(lo[inside], a[kk])  # (the part of a span below its range was never missing)
        filled_rows = rows[inside]
        accepted[filled_rows] = True
        self._fills.append((filled_rows, low, top))
        opens = np.ones(len(kk), dtype=bool)  # each range's first fill
        opens[1:] = kk[1:] != kk[:-1]
        closes = np.ones(len(kk), dtype=bool)  # and its last
        closes[:-1] = opens[1:]
        before = np.empty_like(top)  # the range's ids left below each fill: from the range's start or the last fill
        before[0] = a[kk[0]]
        before[1:] = np.where(opens[1:], a[kk[1:]], top[:-1] + 1)
        untouched = np.ones(len(a), dtype=bool)
        untouched[kk] = False
        starts = np.concatenate((a[untouched], before, top[closes] + 1))
        ends = np.concatenate((b[untouched], low - 1, b[kk[closes]]))
        keep = starts <= ends
        order = np.argsort(starts[keep], kind="stable")
        self.missing[k0:k1] = np.column_stack((starts[keep][order], ends[keep][order])).tolist()

    def _missing_count(self, lo: int, hi: int) -> int:
        """How many of the ids ``lo..hi`` are still missing."""
        k = max(bisect.bisect_right(self.missing, [lo, float("inf")]) - 1, 0)
        total = 0
        while k < len(self.missing) and self.missing[k][0] <= hi:
            a, b = self.missing[k]
            total += max(0, min(b, hi) - max(a, lo) + 1)
            k += 1
        return total

    def _judge_gaps(self, bar: Bar, sink: Sink) -> None:
        """The bar of ``bar.minute`` closes: gap candidates up to it whose ids are still missing are gaps."""
        pending = self.pending_gaps
        if not pending:
            return
        # the gaps wait in the order they opened, which is the order of their minutes (a gap's minute is its
        # trade's, or the open one's when that trade is late: never before an earlier gap's)
        due = 0
        while due < len(pending) and pending[due]["minute"] <= bar.minute:
            due += 1
        self.pending_gaps = pending[due:]
        found = Gaps(self.inst.inst_id, [], [], [], [], [])
        for g in pending[:due]:
            missing = self._missing_count(g["lo"], g["hi"]) + g.get("forgotten", 0)
            # ids filled by rows of this chunk at or after the one that closes the bar came too late
            for rows, a, b in self._fills:
                later = rows >= self._row
                if later.any():
                    span = np.minimum(b[later], g["hi"]) - np.maximum(a[later], g["lo"]) + 1
                    missing += int(span[span > 0].sum())
            if missing == 0:
                continue  # the ids came out of order before the bar closed: no gap
            self.counters["gaps"] += 1
            self.counters["missing_ids"] += missing
            if g["taint"]:
                bar.add_taint("gap")
            found.prev_id.append(g["prev_id"])
            found.prev_ts.append(g["prev_ts"])
            found.next_id.append(g["next_id"])
            found.next_ts.append(g["next_ts"])
            found.missing.append(missing)
        if len(found):
            _quality_events(found, sink)

    # --- the chunk -------------------------------------------------------------------
    def process(self, p: ParsedChunk, file_label: str, sink: Sink) -> None:
        c = self.counters
        c["lines"] += p.lines
        self._refusals(p, file_label, sink)
        if p.skipped:  # valid lines that are not trades of the tape (Binance's insurance-fund and ADL fills)
            c["skipped"] = c.get("skipped", 0) + p.skipped
        if p.id_space is not None and p.id_space != self.id_space:
            if self.id_space is not None and len(p):
                raise StateError(
                    f"{file_label}: {p.id_space!r} trades after {self.id_space!r} trades in one instrument's stream; "
                    "the ids of the two streams count different things, so duplicates and gaps could not be "
                    "judged. Keep one stream per instrument folder (move this file away)"
                )
            self.id_space = self.id_space or (p.id_space if len(p) else None)
        n = len(p)
        if n == 0:
            return
        c["trades"] += n
        if p.keys is not None:
            self._process_opaque(p, sink)
            return
        if p.summary is not None and self._follows_on(p):
            c["accepted"] += n
            self.max_id, self.max_id_ts = int(p.trade_id[-1]), int(p.ts[-1])
            try:
                self._deliver_clean(p, p.summary, sink)
            finally:
                self._row = 0
            return
        ids, ts = p.trade_id, p.ts
        first = ids - (p.count - 1)
        run = np.maximum.accumulate(ids)
        prev = np.empty(n, dtype=np.int64)
        prev[0] = self.max_id
        np.maximum(run[:-1], self.max_id, out=prev[1:])
        seen = ids <= prev  # a duplicate, or a trade filling a known gap
        opens_gap = ~seen & (first > prev + 1) & (prev >= 0)
        accepted = ~seen
        events: list[LateTrades] = []  # the late trades not yet sent (at most one block), sent in row order
        candidates: list[tuple[int, dict[str, Any]]] = []  # (row, gap candidate)
        special = np.flatnonzero(seen | opens_gap)
        if len(special):
            holder = np.maximum.accumulate(np.where(~seen, np.arange(n), -1))
            opened_lo: list[int] = []  # the first missing id of each of the chunk's gaps, and the gaps
            opened: list[dict[str, Any]] = []
            waiting = (([g["lo"] for g in self.pending_gaps], self.pending_gaps), (opened_lo, opened))
            # in row order: the rows of seen ids between two gap openings a run at a time, each opening alone
            gap_rows = special[opens_gap[special]]
            before = holder[np.maximum(gap_rows - 1, 0)]  # the row of the highest id before each gap's trade
            prev_ts = np.where((gap_rows > 0) & (before >= 0), ts[np.maximum(before, 0)], self.max_id_ts)
            at = 0
            for i, stop, prev_id, prev_t, first_id, next_id, next_t in zip(
                    gap_rows.tolist(), np.searchsorted(special, gap_rows).tolist(), prev[gap_rows].tolist(),
                    prev_ts.tolist(), first[gap_rows].tolist(), ids[gap_rows].tolist(), ts[gap_rows].tolist()):
                if stop > at:
                    self._take_seen(special[at:stop], first, ids, accepted)
                at = stop + 1
                lo, hi = prev_id + 1, first_id - 1
                self._add_missing(lo, hi, waiting)
                gap = {"lo": lo, "hi": hi, "prev_id": prev_id, "prev_ts": prev_t, "next_id": next_id, "next_ts": next_t}
                candidates.append((i, gap))
                opened_lo.append(lo)
                opened.append(gap)
            if len(special) > at:
                self._take_seen(special[at:], first, ids, accepted)
        if int(run[-1]) > self.max_id:
            self.max_id = int(run[-1])
            self.max_id_ts = int(ts[int(np.flatnonzero(ids == run[-1])[0])])

        rows = np.flatnonzero(accepted)
        c["accepted"] += len(rows)
        if len(rows) == 0:  # every trade a duplicate (a gap candidate is always accepted)
            return
        try:
            self._deliver(p, rows, ids, ts, events, candidates, sink)
        finally:
            self._fills = []
            self._row = 0

    def _refusals(self, p: ParsedChunk, file_label: str, sink: Sink) -> None:
        """The chunk's refused lines to the rejects log, in line order.  Of the lines refused only for their time
        (outside the file's day: an exporter that never rolled its file, or that names files by local time), a
        file's first :data:`LISTED_PER_FILE` are logged one by one, the rest counted into one line written when
        the stream moves on to another file: a file of three days' trades is not a flood of millions of lines."""
        c = self.counters
        held = self.outside
        if held is not None and held["file"] != file_label:
            self._log_outside(sink)
            held = None
        plain: list[tuple[int, str, str]] = []  # (line, reason, text) of the lines logged one by one
        timed: list[tuple[int, int, str, str | None]] = []  # (line, ts, text, reason) in line order
        for r in p.rejects:
            c["rejects"] += 1
            if r.ts is not None:
                c["refused_for_time"] = c.get("refused_for_time", 0) + 1
                timed.append((r.line, r.ts, r.text, r.reason))
            else:
                plain.append((r.line, r.reason, r.text))
        o = p.outside
        n_aside = len(o) if o is not None else 0
        if n_aside:
            c["rejects"] += n_aside
            c["refused_for_time"] = c.get("refused_for_time", 0) + n_aside
            lines, ts = o.lines.tolist()[:len(o.texts)], o.ts.tolist()[:len(o.texts)]
            timed.extend((lines[k], ts[k], o.texts[k], None) for k in range(len(lines)))
        if not timed and not plain:
            return
        timed.sort(key=lambda t: t[0])
        listed = held["listed"] if held is not None else 0
        shown = timed[:max(0, LISTED_PER_FILE - listed)]
        window = o.window if o is not None else None
        for line, t, text, reason in shown:
            plain.append((line, reason if reason is not None else window.reason(t), text))
        if plain:
            plain.sort(key=lambda e: e[0])
            lines, reasons, texts = (list(x) for x in zip(*plain))
            _quality_events(RejectedLines(file_label, lines, reasons, texts), sink)
        if held is None and timed:  # (the column-wise ones are in timed too, their first texts at least)
            held = self.outside = {"file": file_label, "listed": 0, "lines": 0, "line": None, "ts": None,
                                   "min_ts": None, "max_ts": None, "text": "", "reason": ""}
        if held is None:
            return
        held["listed"] += len(shown)
        # the rest: the time-refused lines of the chunk not shown, reference ones and column-wise ones alike
        from_aside = sum(1 for x in shown if x[3] is None)
        rest = [x for x in timed[len(shown):] if x[3] is not None]  # reference ones
        rest_aside = n_aside - from_aside
        count = len(rest) + rest_aside
        if not count:
            return
        candidates = list(rest)
        if rest_aside:
            k = from_aside
            t = int(o.ts[k])
            candidates.append((int(o.lines[k]), t, o.texts[k] if k < len(o.texts) else "", window.reason(t)))
            lo, hi = int(o.ts[k:].min()), int(o.ts[k:].max())
        else:
            lo = hi = None
        for _, t, _, _ in rest:
            lo = t if lo is None else min(lo, t)
            hi = t if hi is None else max(hi, t)
        first = min(candidates, key=lambda x: x[0])
        if held["line"] is None or first[0] < held["line"]:
            held.update(line=first[0], ts=first[1], text=first[2], reason=first[3] or window.reason(first[1]))
        held["lines"] += count
        held["min_ts"] = lo if held["min_ts"] is None else min(held["min_ts"], lo)
        held["max_ts"] = hi if held["max_ts"] is None else max(held["max_ts"], hi)

    def _log_outside(self, sink: Sink) -> None:
        """The summary line of the file just left: its lines refused for their time beyond the ones listed."""
        h, self.outside = self.outside, None
        assert h is not None
        n = h["lines"]
        if not n:
            return
        reason = (f"{n:,} more lines refused for their time (not listed one by one), from {iso_ms(h['min_ts'])} to "
                  f"{iso_ms(h['max_ts'])}; the first of them: {h['reason']}")
        sink.quality({"event": "reject", "file": h["file"], "line": h["line"], "lines": n, "reason": reason,
                      "text": h["text"]})

    def _process_opaque(self, p: ParsedChunk, sink: Sink) -> None:
        """A chunk whose trade ids are not integers (Bybit): a trade is a duplicate when its id was accepted
        in the open minute or the one before it (the open minute counting this trade's own); no gaps."""
        c = self.counters
        recent = self.recent if self.recent is not None else {}
        ids, ts = p.trade_id, p.ts
        mins = ts // MINUTE_MS
        open_min = max(self.open_bar.minute if self.open_bar is not None else -1, self.closed_until)
        known = np.array([k for keys in recent.values() for k in keys], dtype=np.int64)
        s = p.summary
        if (s is not None and s.sorted_ids is not None and int(s.segments[MINUTE, 0]) >= open_min
                and not _any_in(known, s.sorted_ids)):
            # clean: no id twice in the chunk nor kept from before it, minutes never going back, none late
            c["accepted"] += len(p)
            self._keep_recent(recent, mins, ids, max(open_min, int(mins.max())))
            try:
                self._deliver_clean(p, s, sink)
            finally:
                self._row = 0
            return
        # only a row whose id occurs earlier (in the saved minutes or the chunk) can be a duplicate
        both = np.concatenate((known, ids.astype(np.int64)))
        _, first, inverse = np.unique(both, return_index=True, return_inverse=True)
        again = np.flatnonzero(first[inverse[len(known):]] < np.arange(len(known), len(both)))
        accepted = np.ones(len(p), dtype=bool)
        if len(again):
            last_minute = {k: m for m, keys in recent.items() for k in keys}  # an id's minute when accepted
            suspects = set(ids[again].tolist())
            running = np.maximum.accumulate(np.maximum(mins, open_min))  # the open minute as each trade comes
            for i in range(len(p)):
                key = int(ids[i])
                if key not in suspects:
                    continue
                seen = last_minute.get(key)
                if seen is not None and seen >= int(running[i]) - 1:
                    accepted[i] = False
                    c["duplicates"] += 1
                else:
                    last_minute[key] = int(mins[i])
        rows = np.flatnonzero(accepted)
        c["accepted"] += len(rows)
        self._keep_recent(recent, mins[rows], ids[rows], max(open_min, int(mins.max())))
        if len(rows):
            try:
                self._deliver(p, rows, ids, ts, [], [], sink)
            finally:
                self._row = 0

    def _keep_recent(self, recent: dict[int, list[int]], mins: np.ndarray, ids: np.ndarray, top: int) -> None:
        """Keep the accepted ids (``ids`` at ``mins``, in arrival order) of the minutes a later trade can still
        be compared with: the newest minute ``top`` and the one before it."""
        late_enough = mins >= top - 1
        kept_mins, kept_ids = mins[late_enough], ids[late_enough]
        for m in np.unique(kept_mins).tolist():  # in arrival order within each minute
            recent.setdefault(m, []).extend(kept_ids[kept_mins == m].tolist())
        self.recent = {m: keys for m, keys in recent.items() if m >= top - 1}

    def _deliver(self, p: ParsedChunk, rows: np.ndarray, ids: np.ndarray, ts: np.ndarray, events: list[LateTrades],
                 candidates: list[tuple[int, dict[str, Any]]], sink: Sink) -> None:
        """Late trades, gap candidates, bars and trades of the accepted ``rows``, in row order."""
        c = self.counters
        mins = ts[rows] // MINUTE_MS
        open_min = self.open_bar.minute if self.open_bar is not None else -1
        open_min = max(open_min, self.closed_until)
        runm = np.maximum.accumulate(mins)
        prevm = np.empty(len(rows), dtype=np.int64)
        prevm[0] = open_min
        np.maximum(runm[:-1], open_min, out=prevm[1:])
        late = mins < prevm
        if candidates:  # judged when the bar holding the jump closes (a late one: the open bar)
            at = np.searchsorted(rows, [i for i, _ in candidates])
            for (_, g), minute, was_late in zip(candidates, np.where(late[at], prevm[at], mins[at]).tolist(),
                                                late[at].tolist()):
                g["minute"] = minute
                g["taint"] = not was_late
                self.pending_gaps.append(g)
        if late.any():
            k = np.flatnonzero(late)
            i = rows[k]
            c["late"] += len(k)
            # the bars open when they came are tainted "late" (prevm never decreases: its distinct minutes come in
            # the order of their first late trade, the order the taints are kept in)
            for minute in np.unique(prevm[k]).tolist():
                reasons = self.pending_taint.setdefault(minute, [])
                if "late" not in reasons:
                    reasons.append("late")
            events.append(LateTrades(
                self.inst.inst_id, i, [str(p.keys[r]) for r in i.tolist()] if p.keys is not None else ids[i],
                ts[i], mins[k], prevm[k], p.is_buy[i], p.px_m[i], p.px_s[i], p.sz_m[i], p.sz_s[i]))
        keep = rows[~late]
        if len(keep) == 0:
            self._send(events, len(ids), sink)
            return
        batch = self._batch(p, keep)
        kmins = mins[~late]
        starts = np.concatenate(([0], np.flatnonzero(np.diff(kmins)) + 1))
        minutes = kmins[starts].tolist()
        parts = Bar.from_segments(batch, starts, minutes)
        self._segments(batch, starts.tolist(), minutes, parts, keep, events, sink)
        self._send(events, len(ids), sink)

    def _follows_on(self, p: ParsedChunk) -> bool:
        """Whether a clean chunk's first trade follows the stream as the rest of the chunk follows it: a new id
        (no duplicate), no gap before it, not before the open minute (not late)."""
        first_id = int(p.trade_id[0]) - (int(p.count[0]) - 1)
        open_min = max(self.open_bar.minute if self.open_bar is not None else -1, self.closed_until)
        return (int(p.trade_id[0]) > self.max_id and (self.max_id < 0 or first_id <= self.max_id + 1)
                and int(p.summary.segments[0, 0]) >= open_min)

    def _deliver_clean(self, p: ParsedChunk, s, sink: Sink) -> None:
        """:meth:`_deliver` of a clean chunk whose columns and minutes the parse thread summed up (fastpath.py)."""
        batch, seg = s.batch, s.segments
        starts = seg[START].tolist()
        minutes = seg[MINUTE].tolist()
        counts = np.diff(seg[START], append=len(p)).tolist()
        volumes = tuple(x.tolist() for x in (seg[BUY_QUOTE], seg[QUOTE] - seg[BUY_QUOTE], seg[BUY_BASE],
                                             seg[BASE] - seg[BUY_BASE], seg[BUY_SZ], seg[SZ] - seg[BUY_SZ]))
        first, last, high, low = (seg[k].tolist() for k in (FIRST, LAST, HIGH, LOW))
        if len(minutes) > 2 and batch.keys is None and self._closes_at_once(sink):
            # no bar made for the minutes inside the chunk: their parts go to the runs as rows
            ends = (0, -1)
            parts = Bar.from_parts(batch, *([x[k] for k in ends] for x in (minutes, first, last, high, low, counts)),
                                   tuple([v[k] for k in ends] for v in volumes))
            rows = Bar.parts_rows(batch, first, last, high, low, volumes)
            self._segments(batch, starts, minutes, parts, None, [], sink, inside=(rows, counts))
            return
        parts = Bar.from_parts(batch, minutes, first, last, high, low, counts, volumes)
        self._segments(batch, starts, minutes, parts, None, [], sink)

    def _closes_at_once(self, sink: Sink) -> bool:
        """Whether a chunk's minutes after its first may close at once (:meth:`_close_at_once`): the consumers
        take closed minutes only in runs and no minute's trades, the stream fills empty minutes, and no gap or
        taint waits for a bar's close."""
        return (self.fill_empty and not self.pending_gaps and not self.pending_taint
                and not sink.takes_minute_trades() and getattr(sink, "takes_runs_only", _no)())

    def _segments(self, batch: TradeBatch, starts: list[int], minutes: list[int], parts: list[Bar],
                  keep: np.ndarray | None, events: list[LateTrades], sink: Sink,
                  inside: tuple[list[tuple[int, ...]], list[int]] | None = None) -> None:
        """Each minute's trades in turn: close the bars before it, merge its part into the open bar, hand its
        trades to the indicators.  ``keep`` maps batch rows to chunk rows (``None``: the same).  With
        ``inside`` (each minute's parts and trade count), ``parts`` holds the bars of the first and last minute
        only, and the minutes after the first close at once (:meth:`_close_at_once`)."""
        sink.chunk_trades(batch)
        bounds = [*starts, len(batch)]
        minute_trades = sink.takes_minute_trades()
        if inside is None and len(minutes) > 2 and not events and self._closes_at_once(sink):
            inside = ([bar.parts for bar in parts], [bar.trade_count for bar in parts])
        at_once = inside is not None
        for k, minute in enumerate(minutes[:1] if at_once else minutes):
            a, b = bounds[k], bounds[k + 1]
            self._row = int(keep[a]) if keep is not None else a
            if events:
                self._send(events, self._row, sink)
            if self.open_bar is not None and minute > self.open_bar.minute:
                self._close_until(minute, sink)
            elif self.open_bar is None and self.closed_until and minute >= self.closed_until:
                # the wall clock closed the last bar: fill the minutes between it and this trade
                self._fill_empty(self.closed_until, minute, sink)
                if minute > self.closed_until:
                    sink.advance(minute)
                self.closed_until = 0
            if self.open_bar is None:
                self.open_bar = parts[k]
            else:
                self.open_bar.merge(parts[k])
            if minute_trades:
                sink.trades(batch.take(slice(a, b)))
        if inside is not None:
            self._close_at_once(minutes, *inside, parts[-1], sink)
            self._row = bounds[-2]

    def _close_at_once(self, minutes: list[int], parts: list[tuple[int, ...]], counts: list[int], last_bar: Bar,
                       sink: Sink) -> None:
        """The minutes after a chunk's first, for a sink whose consumers take closed minutes only in runs: each
        closes the bar before it (the empty minutes between them filled) as :meth:`_close_until` does, handed
        over at once (:meth:`Dispatch.closed`): the first minute's bar, then the minutes inside the chunk as rows
        of their ``parts`` (no :class:`Bar` made), and ``last_bar``, the last minute's, left open."""
        bar = self.open_bar
        assert bar is not None
        items: list[Any] = [bar]
        n = 1
        if minutes[1] > bar.minute + 1:  # the empty minutes after the first one's bar, at its close
            first = max(bar.minute + 1, minutes[1] - MAX_FILL_MINUTES)
            items.append((first, minutes[1] - first, bar.close))
            n += minutes[1] - first
        inner_minutes: list[int] = []
        inner: list[tuple[int, ...]] = []
        inner_counts: list[int] = []
        filled: list[bool] = []
        for k in range(1, len(minutes) - 1):
            minute, p = minutes[k], parts[k]
            inner_minutes.append(minute)
            inner.append(p)
            inner_counts.append(counts[k])
            filled.append(False)
            stop = minutes[k + 1]
            if stop > minute + 1:  # filled at this minute's close, as BarRun.of makes a filled minute's row
                first = max(minute + 1, stop - MAX_FILL_MINUTES)
                inner_minutes += range(first, stop)
                inner += [filled_parts(p[3], p[10])] * (stop - first)
                inner_counts += [0] * (stop - first)
                filled += [True] * (stop - first)
        items.append(Rows(bar.inst_id, inner_minutes, inner, inner_counts, filled))
        n += len(inner_minutes)
        self.counters["bars"] += n
        close = parts[len(minutes) - 2]
        self.last_close = str(to_dec(close[3], close[10]))  # the last closed bar's, as _emit_open_bar keeps it
        sink.closed(items, n, inner_minutes[-1])
        sink.advance(minutes[-1])
        self.open_bar = last_bar

    @staticmethod
    def _send(events: list[LateTrades], before_row: int, sink: Sink) -> None:
        """Deliver (and drop) the late trades of rows before ``before_row``, in row order, at once."""
        if not events:
            return
        late = events[0]
        k = late.before(before_row)
        if k == 0:
            return
        sent, rest = (late, None) if k == len(late) else (late.take(slice(0, k)), late.take(slice(k, None)))
        _quality_events(sent, sink)
        if rest is None:
            events.clear()
        else:
            events[0] = rest

    def _batch(self, p: ParsedChunk, rows: np.ndarray) -> TradeBatch:
        sel: np.ndarray | slice = slice(None) if len(rows) == len(p) else rows  # all rows: views, no copies
        px, px_scale = normalize(p.px_m[sel], p.px_s[sel])
        sz, sz_scale = normalize(p.sz_m[sel], p.sz_s[sel])
        base, base_scale, quote, quote_scale = derive_quantities(self.inst, px, px_scale, sz, sz_scale)
        ids, count = p.trade_id[sel], p.count[sel]
        return TradeBatch(
            self.inst, p.ts[sel], ids, ids - (count - 1), p.is_buy[sel],
            px, px_scale, sz, sz_scale, base, base_scale, quote, quote_scale,
            p.keys[sel] if p.keys is not None else None,
        )

    def _emit_open_bar(self, sink: Sink) -> Bar:
        """Close the open bar: attach its taints and deliver it."""
        bar = self.open_bar
        assert bar is not None
        self._judge_gaps(bar, sink)
        if self.pending_taint:
            for key in sorted(k for k in self.pending_taint if k <= bar.minute):
                for reason in self.pending_taint.pop(key):
                    bar.add_taint(reason)
        self.open_bar = None
        self.counters["bars"] += 1
        self._closed = bar  # (its close as text only when asked: most are never)
        sink.bar(bar)
        return bar

    def _close_until(self, minute: int, sink: Sink) -> None:
        """Close the open bar, fill the empty minutes before ``minute``, and advance."""
        bar = self._emit_open_bar(sink)
        self._fill_empty(bar.minute + 1, minute, sink)
        sink.advance(minute)

    def _fill_empty(self, first: int, stop: int, sink: Sink) -> None:
        """Empty bars for the minutes ``first .. stop-1`` at the last close (when filling is on)."""
        if not self.fill_empty or first >= stop or self.last_close is None:
            return
        first = max(first, stop - MAX_FILL_MINUTES)
        self.counters["bars"] += stop - first
        sink.empty_bars(first, stop - first, Decimal(self.last_close))

    def close_by_clock(self, now_ms: int, grace_ms: int, sink: Sink) -> None:
        """Follow mode: close the open bar once the wall clock has passed its end plus ``grace_ms``.

        Only the bar itself is closed: the empty minutes after it are filled
        when the next trade shows how many there are ("between two traded
        minutes"), exactly as in a batch run.  A trade that arrives later for
        the closed minute is late.
        """
        bar = self.open_bar
        if bar is None or (bar.minute + 1) * MINUTE_MS + grace_ms > now_ms:
            return
        self._emit_open_bar(sink)
        self.closed_until = bar.minute + 1
        sink.advance(bar.minute + 1)


def _any_in(values: np.ndarray, sorted_ids: np.ndarray) -> bool:
    """Whether any of ``values`` is in ``sorted_ids`` (ascending)."""
    if not len(values) or not len(sorted_ids):
        return False
    at = np.minimum(np.searchsorted(sorted_ids, values), len(sorted_ids) - 1)
    return bool(np.any(sorted_ids[at] == values))
