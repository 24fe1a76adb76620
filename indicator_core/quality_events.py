"""Quality events as columns: a chunk's late trades and refused lines, a bar's gaps, each kind at once.

A file whose trades come out of order by whole blocks (a back-fill appended after
newer trades, two exports merged the wrong way round) makes a late event of every
trade of the block.  Made one by one, each was a dict of eight formatted values and
a trip through the dispatch, ~11 µs a trade: a 300,000-line day with a third of it
late took four times as long as the day in order.  The stream gathers them as columns
instead; :meth:`Indicator.on_quality_events` takes them as they come (the quality log
writes its ``late.jsonl`` lines from the columns, :func:`~indicator_core.jsonlines.json_lines`),
and by default hands each event as the dict :meth:`Indicator.on_quality` always had.  A file holding every
other trade opens a gap at each one, and a damaged file refuses line after line: the gaps that a bar's close
finds and a chunk's refused lines are handed over the same way.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .jsonlines import Field, JsonLines, json_lines, per_distinct
from .numbers import fmt, to_dec
from .timeutil import iso_minute, iso_ms
from .trade_batch import normalize


class LateTrades:
    """Trades that came after the bar of their minute had closed, in stream order: one ``late`` event each.

    ``rows`` are the trades' rows in their chunk (what orders them among the stream's other calls);
    ``minute`` is the minute each belongs to, ``open_minute`` the minute open when it came; prices and
    sizes as parsed, a mantissa and a scale each.
    """

    event = "late"

    def __init__(self, inst_id: str, rows: np.ndarray, trade_id: np.ndarray | Sequence[str], ts: np.ndarray,
                 minute: np.ndarray, open_minute: np.ndarray, is_buy: np.ndarray, px_m: np.ndarray,
                 px_s: np.ndarray, sz_m: np.ndarray, sz_s: np.ndarray) -> None:
        self.inst_id = inst_id
        self.rows, self.trade_id, self.ts = rows, trade_id, ts
        self.minute, self.open_minute, self.is_buy = minute, open_minute, is_buy
        self.px_m, self.px_s, self.sz_m, self.sz_s = px_m, px_s, sz_m, sz_s

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, part: slice) -> "LateTrades":
        """The events ``part`` of these (a slice: their order kept)."""
        return LateTrades(self.inst_id, self.rows[part], self.trade_id[part], self.ts[part], self.minute[part],
                          self.open_minute[part], self.is_buy[part], self.px_m[part], self.px_s[part],
                          self.sz_m[part], self.sz_s[part])

    def before(self, row: int) -> int:
        """How many of these events come before chunk row ``row``."""
        return int(np.searchsorted(self.rows, row))

    def events(self) -> list[dict[str, Any]]:
        """Each event as the dict :meth:`Indicator.on_quality` gets."""
        ids = self.trade_id.tolist() if isinstance(self.trade_id, np.ndarray) else list(self.trade_id)
        return [{
            "event": "late", "inst_id": self.inst_id, "trade_id": str(i), "trade_utc": iso_ms(t),
            "bar_utc": iso_minute(m), "open_bar_utc": iso_minute(o), "side": "buy" if b else "sell",
            "px": fmt(to_dec(pm, ps)), "sz": fmt(to_dec(sm, ss)),
        } for i, t, m, o, b, pm, ps, sm, ss in zip(
            ids, self.ts.tolist(), self.minute.tolist(), self.open_minute.tolist(), self.is_buy.tolist(),
            self.px_m.tolist(), self.px_s.tolist(), self.sz_m.tolist(), self.sz_s.tolist())]

    def json_lines(self) -> JsonLines:
        """The events as the quality log writes them (each dict of :meth:`events` without ``"event"``), byte for
        byte, from the columns."""
        n = len(self)
        ids = self.trade_id
        px, px_scale = normalize(self.px_m, self.px_s)
        sz, sz_scale = normalize(self.sz_m, self.sz_s)
        fields = [
            Field("inst_id", "text", [self.inst_id] * n),
            Field("trade_id", "int", ids) if isinstance(ids, np.ndarray) else Field("trade_id", "text", list(ids)),
            Field("trade_utc", "iso_ms", self.ts),
            # a block of late trades spans few minutes: each minute's text made once
            Field("bar_utc", "text", per_distinct(self.minute, iso_minute)),
            Field("open_bar_utc", "text", per_distinct(self.open_minute, iso_minute)),
            Field("side", "choice", self.is_buy, choices=("buy", "sell")),
            Field("px", "decimal", px, scale=px_scale),
            Field("sz", "decimal", sz, scale=sz_scale),
        ]
        return json_lines(fields, n)


class Gaps:
    """Gaps found when a bar closed, in the order they opened: one ``gap`` event each (SPEC section 7): the
    trade before the gap and the one after it, their times, and how many ids are missing between them."""

    event = "gap"

    def __init__(self, inst_id: str, prev_id: list[int], prev_ts: list[int], next_id: list[int],
                 next_ts: list[int], missing: list[int]) -> None:
        self.inst_id = inst_id
        self.prev_id, self.prev_ts, self.next_id, self.next_ts, self.missing = (
            prev_id, prev_ts, next_id, next_ts, missing)

    def __len__(self) -> int:
        return len(self.missing)

    def events(self) -> list[dict[str, Any]]:
        """Each event as the dict :meth:`Indicator.on_quality` gets."""
        return [{"event": "gap", "inst_id": self.inst_id, "prev_trade_id": str(p), "prev_utc": iso_ms(pt),
                 "next_trade_id": str(n), "next_utc": iso_ms(nt), "missing": m}
                for p, pt, n, nt, m in zip(self.prev_id, self.prev_ts, self.next_id, self.next_ts, self.missing)]

    def json_lines(self) -> JsonLines:
        """The events as the quality log writes them (each dict of :meth:`events` without ``"event"``), byte for
        byte, from the columns."""
        n = len(self)
        prev_id, prev_ts, next_id, next_ts, missing = (np.array(c, dtype=np.int64) for c in (
            self.prev_id, self.prev_ts, self.next_id, self.next_ts, self.missing))
        return json_lines([
            Field("inst_id", "text", [self.inst_id] * n),
            Field("prev_trade_id", "int", prev_id),
            Field("prev_utc", "iso_ms", prev_ts),
            Field("next_trade_id", "int", next_id),
            Field("next_utc", "iso_ms", next_ts),
            Field("missing", "int", missing, quoted=False),
        ], n)


class RejectedLines:
    """Lines of one file that could not be read, in line order: one ``reject`` event each, with the line's number,
    why it was refused and its text (as much of it as the rejects log keeps)."""

    event = "reject"

    def __init__(self, file: str, lines: list[int], reasons: list[str], texts: list[str]) -> None:
        self.file, self.lines, self.reasons, self.texts = file, lines, reasons, texts

    def __len__(self) -> int:
        return len(self.lines)

    def events(self) -> list[dict[str, Any]]:
        """Each event as the dict :meth:`Indicator.on_quality` gets."""
        return [{"event": "reject", "file": self.file, "line": line, "reason": reason, "text": text}
                for line, reason, text in zip(self.lines, self.reasons, self.texts)]

    def json_lines(self) -> JsonLines:
        """The events as the quality log writes them (each dict of :meth:`events` without ``"event"``), byte for
        byte, from the columns."""
        n = len(self)
        return json_lines([
            Field("file", "text", [self.file] * n),
            Field("line", "int", np.array(self.lines, dtype=np.int64), quoted=False),
            Field("reason", "text", self.reasons),
            Field("text", "text", self.texts),
        ], n)
